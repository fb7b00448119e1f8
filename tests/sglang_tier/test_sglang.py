"""The SGLang engine against a real SGLang server: exact parity with the embedded engine,
valid constrained samples, the radix cache, a router over two workers, faults, and the CLI."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading

import httpx
import polars as pl
import pytest
from servers import SERVER_ARGS, SERVER_ENV, free_port, start

from survey_sim import Population, ResultsCache, ScoringError, SimulationResult, simulate
from survey_sim.asking.formats import get_format
from survey_sim.asking.kinds import choice_request
from survey_sim.asking.schemas import answer_schema
from survey_sim.engines import SampleRequest, ScoreRequest
from survey_sim.engines.sglang import SGLangEngine, SGLangSettings
from survey_sim.engines.validation import conforms
from survey_sim.errors import ServerError
from survey_sim.testing import train_tokenizer

PARITY = 1e-3
pytestmark = pytest.mark.slow  # each test talks to a real SGLang server (the tier: ~5 min)


def survey_requests(engine, gss, population) -> list[ScoreRequest]:
    requests = [
        choice_request(q, get_format(name, answer=answer), description=p.description, chat=engine)
        for p in list(population)[:2]
        for q in gss.questions[:3]
        for name, answer in (("chat", "label"), ("spectrum", "text"), ("plain", "label"))
    ]
    boundary = [  # multi-token options, options that begin others, a prompt ending in a space
        ScoreRequest("Question: how many?\nAnswer: ", ("1", "10", "100", "one hundred")),
        ScoreRequest("Question: how many?\nAnswer:", (" 1", " 10", " 100\n", " 1\n")),
        ScoreRequest("The colour is", (" red", " green and blue", " purple")),
    ]
    return requests + boundary


def test_option_logprobs_equal_the_embedded_engines(
    sglang_engine, tiny_engine, gss, demo_population
):
    requests = survey_requests(sglang_engine, gss, demo_population)
    served = sglang_engine.score(requests)
    local = tiny_engine.score(requests)
    worst = max(
        abs(a - b)
        for s, e in zip(served, local, strict=True)
        for a, b in zip(s.logprobs, e.logprobs, strict=True)
    )
    options = sum(len(r.continuations) for r in requests)
    print(f"\nparity: max |dlogp| {worst:.2e} over {options} options")
    assert worst <= PARITY
    assert [s.continuation_tokens for s in served] == [e.continuation_tokens for e in local]


def test_sampled_answers_are_valid_under_their_schema(sglang_engine, gss):
    question = gss.question("natsoc")
    prefix = choice_request(
        question, get_format("chat"), description="A nurse.", chat=sglang_engine
    ).prefix
    labels = answer_schema(question, wrap=False)
    with pytest.warns(UserWarning, match="sampling seeds are not honoured"):
        result = sglang_engine.sample([SampleRequest(prefix, labels, n=24, max_new_tokens=4)])[0]
    assert set(result.values) <= {"A", "B", "C"} and len(result.values) == 24
    assert not any(result.truncated) and not any(result.invalid)
    with_reason = answer_schema(question, reason_chars=30)
    drawn = sglang_engine.sample([SampleRequest(prefix, with_reason, n=24, max_new_tokens=48)])[0]
    for value, cut, bad in zip(drawn.values, drawn.truncated, drawn.invalid, strict=True):
        # Flagged draws carry no value; every other one satisfies the schema.
        assert (value is None) == (cut or bad)
        assert value is None or conforms(value, with_reason)
    short = sglang_engine.sample([SampleRequest(prefix, with_reason, n=4, max_new_tokens=3)])[0]
    assert all(short.truncated) and all(value is None for value in short.values)
    assert sglang_engine.describe().details["reproducible_draws"] is False


def test_repeated_persona_prefixes_are_served_from_the_cache(sglang_server, gss, demo_population):
    httpx.post(f"{sglang_server.url}/flush_cache")
    engine = SGLangEngine.connect(sglang_server.url, settings=SGLangSettings(concurrency=1))
    persona = next(iter(demo_population))
    requests = [
        choice_request(q, get_format("chat"), description=persona.description, chat=engine)
        for q in gss.questions
    ]
    results = engine.score(requests)
    assert results[0].reused_tokens < results[-1].reused_tokens
    assert all(result.reused_tokens > 0 for result in results[1:])
    print(f"\none persona x {len(requests)} questions: hit rate {engine.stats.hit_rate:.1%}")
    assert engine.stats.hit_rate > 0.5
    engine.close()


def test_a_wrong_url_a_wrong_model_and_a_wrong_tokenizer_are_refused(sglang_server, tmp_path):
    quick = SGLangSettings(connect_timeout_s=2, retries=0)
    with pytest.raises(ServerError, match="cannot reach an SGLang server"):
        SGLangEngine.connect(f"http://127.0.0.1:{free_port()}", settings=quick)
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    with pytest.raises(ServerError, match="is not an SGLang server"):
        SGLangEngine.connect(f"http://127.0.0.1:{other.server_address[1]}", settings=quick)
    other.shutdown()
    with pytest.raises(ServerError, match=r"runs model .* not 'Qwen3-14B'"):
        SGLangEngine.connect(sglang_server.url, model="Qwen3-14B")
    train_tokenizer(["a different corpus, other merges"] * 50, vocab_size=300).save_pretrained(
        tmp_path / "tokenizer"
    )
    with pytest.raises(ScoringError, match="local tokenizer does not match"):
        SGLangEngine.connect(sglang_server.url, tokenizer=tmp_path / "tokenizer")


def test_a_router_over_two_workers_answers_the_same(
    tiny_model_dir, sglang_engine, gss, demo_population
):
    requests = survey_requests(sglang_engine, gss, demo_population)[:6]
    single = sglang_engine.score(requests)
    with start(tiny_model_dir, workers=2) as routed:
        engine = SGLangEngine.connect(routed.url)
        assert engine.behind_router and not sglang_engine.behind_router
        behind_router = engine.score(requests)
        engine.close()
    for a, b in zip(single, behind_router, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=PARITY)


def test_a_port_in_use_is_refused_before_anything_starts(tiny_model_dir):
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port + 2))
        with pytest.raises(ServerError, match=rf"port {port + 2} on 127.0.0.1 is in use"):
            start(tiny_model_dir, port=port, workers=2, timeout_s=1)


def test_the_cli_runs_a_study_on_sglang(sglang_server, tiny_engine, tmp_path):
    out = tmp_path / "r.parquet"
    command = [sys.executable, "-m", "survey_sim.cli", "demo", "--quiet", "--engine", "sglang"]
    done = subprocess.run(
        [*command, "--url", sglang_server.url, "--out", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "prompt tokens" in done.stdout
    manifest = SimulationResult.read_parquet(out).manifest
    assert manifest is not None and manifest.model.engine == "SGLangEngine"
    assert manifest.work.hit_rate is not None and manifest.work.hit_rate > 0
    served = pl.read_parquet(out)
    local = simulate_demo(tiny_engine)
    joined = served.join(local, on=["persona_id", "question_id", "option_code"], suffix="_local")
    assert joined.height == served.height
    assert (joined["logprob"] - joined["logprob_local"]).abs().max() <= PARITY


def simulate_demo(engine) -> pl.DataFrame:
    from survey_sim import load_questionnaire
    from survey_sim.data.bundled import bundled_file

    questionnaire = load_questionnaire(bundled_file("questionnaires", "gss_spending_2018.yaml"))
    population = Population.from_file(bundled_file("personas", "us_adults_demo.yaml"))
    return simulate(questionnaire, population, engine, progress=False, cache=False).responses


class KillServerAfterFirstBatch:
    """An engine that stops the server it talks to once the first results were handed on."""

    def __init__(self, engine: SGLangEngine, serve: subprocess.Popen[str]) -> None:
        self.engine, self.serve = engine, serve
        for name in ("model_id", "fingerprint", "stats", "describe", "render_chat", "sample"):
            setattr(self, name, getattr(engine, name))
        self.context_length, self.sequence_tokens = engine.context_length, engine.sequence_tokens

    def score(self, requests, *, on_results=None):
        def forward(batch):
            on_results(batch)
            if self.serve.poll() is None:
                self.serve.send_signal(signal.SIGINT)  # Ctrl-C: serve stops SGLang
                self.serve.wait(timeout=60)

        return self.engine.score(requests, on_results=forward)


def test_serve_a_killed_server_mid_run_and_a_resumed_rerun(
    tiny_model_dir, sglang_server, gss, demo_population, tmp_path
):
    port = free_port()
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "survey_sim.cli",
            "serve",
            str(tiny_model_dir),
            "--port",
            str(port),
            "--",
            *SERVER_ARGS,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **SERVER_ENV},
    )
    assert serve.stdout is not None
    try:
        first_line = serve.stdout.readline()
        assert f"at http://127.0.0.1:{port}" in first_line, first_line
        url = f"http://127.0.0.1:{port}"
        store = ResultsCache(tmp_path / "store.sqlite")
        settings = SGLangSettings(concurrency=1, sequences_per_call=6, retries=2, backoff_s=0.2)
        dying = KillServerAfterFirstBatch(SGLangEngine.connect(url, settings=settings), serve)
        with pytest.raises(ServerError, match=r"stopped answering.*rerun the same command"):
            simulate(gss, demo_population, dying, cache=store, progress=False)
    finally:  # a server left running polls at a full core for the rest of the session
        if serve.poll() is None:
            serve.terminate()  # SIGTERM: serve stops the SGLang processes it started
            serve.wait(timeout=60)
    assert serve.returncode == 0
    assert "stopping SGLang" in serve.stdout.read()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/model_info", timeout=2)
    stored = store.info()["entries"]
    assert 0 < stored < len(demo_population) * len(gss)
    resumed = simulate(
        gss, demo_population, SGLangEngine.connect(sglang_server.url), cache=store, progress=False
    )
    assert resumed.manifest.cache.hits == stored
    assert resumed.responses.height == len(demo_population) * sum(len(q.options) for q in gss)


def test_an_adapter_the_server_does_not_serve_is_refused(sglang_server, tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (folder / name).write_text("{}")
    with pytest.raises(ServerError, match="does not serve adapter 'elsewhere'"):
        SGLangEngine.connect(sglang_server.url, adapter=folder)
