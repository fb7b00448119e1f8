"""The results cache: reruns do no model work, keys change with everything that matters,
two processes can write at once, and a run killed with SIGKILL resumes to identical
results."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import torch

from survey_sim import EngineSettings, Population, TransformersEngine, simulate
from survey_sim.data.bundled import bundled_file
from survey_sim.errors import PrecisionWarning
from survey_sim.runs import ResultsCache, SimulationResult
from survey_sim.runs.manifest import StoreRecord
from survey_sim.testing import InterruptedAfter, assert_same_results

SCRIPT = str(Path(sys.executable).with_name("survey-sim"))


def engine_totals(engine: TransformersEngine) -> tuple[int, int]:
    return engine.stats.requests, engine.stats.decode_tokens


@pytest.mark.slow
def test_rerun_is_served_from_the_cache(tmp_path, tiny_engine, gss, demo_population):
    cache = ResultsCache(tmp_path / "cache.sqlite")
    kinds = {"method": {"default": "exact", "ordinal": "sample"}, "samples": 5}
    first = simulate(gss, demo_population, tiny_engine, cache=cache, progress=False, **kinds)
    before = engine_totals(tiny_engine)
    again = simulate(gss, demo_population, tiny_engine, cache=cache, progress=False, **kinds)
    assert engine_totals(tiny_engine) == before  # no model work at all
    assert again.responses.equals(first.responses) and again.draws.equals(first.draws)
    assert again.manifest.cache == StoreRecord(
        path=str(cache.path), hits=first.manifest.cache.misses, misses=0
    )
    # A new seed is new work, never a stale hit; so is another prompt format.
    reseeded = simulate(
        gss, demo_population, tiny_engine, cache=cache, progress=False, seed=1, **kinds
    )
    assert reseeded.manifest.cache.misses == len(demo_population) * len(gss)
    assert not reseeded.draws["text"].equals(first.draws["text"])
    plain = simulate(gss, demo_population, tiny_engine, cache=cache, progress=False, format="plain")
    assert plain.manifest.cache.hits == 0
    fresh = ResultsCache(cache.path, fresh=True)
    recomputed = simulate(gss, demo_population, tiny_engine, cache=fresh, progress=False, **kinds)
    assert recomputed.manifest.cache.hits == 0
    assert_same_results(recomputed.responses, first.responses)  # all in one call, not chunks
    info = cache.info()
    assert info["entries"] > 0 and info["bytes"] > 0
    assert cache.clear() == info["entries"] and cache.info()["entries"] == 0


def copy_of(engine: TransformersEngine) -> torch.nn.Module:
    model = type(engine.model)(engine.model.config)
    model.load_state_dict(engine.model.state_dict())
    return model


def test_fingerprint_covers_weights_tokenizer_and_settings(tiny_engine, tiny_model_dir, tmp_path):
    tokenizer = tiny_engine.tokenizer
    renamed = TransformersEngine(tiny_engine.model, tokenizer, model_id="renamed")
    threads = TransformersEngine(
        tiny_engine.model, tokenizer, model_id="x", settings=EngineSettings(threads=1)
    )
    assert renamed.fingerprint == threads.fingerprint  # in memory: every tensor hashed
    with pytest.warns(PrecisionWarning, match="bfloat16: probabilities are not exact"):
        bf16 = TransformersEngine(
            copy_of(tiny_engine), tokenizer, model_id="x", settings=EngineSettings(dtype="bfloat16")
        )
    assert bf16.fingerprint != renamed.fingerprint
    altered = copy_of(tiny_engine)
    with torch.no_grad():
        next(altered.parameters()).view(-1)[0] += 1e-3
    changed = TransformersEngine(altered, tokenizer, model_id="x")
    assert changed.fingerprint != renamed.fingerprint

    # Loaded from files: the files' contents are hashed, wherever they are.
    moved = tmp_path / "moved"
    shutil.copytree(tiny_model_dir, moved)
    assert TransformersEngine.from_pretrained(moved).fingerprint == tiny_engine.fingerprint
    altered.save_pretrained(moved)
    assert TransformersEngine.from_pretrained(moved).fingerprint != tiny_engine.fingerprint


WRITER = """
import sys
from survey_sim.runs import ResultsCache
cache = ResultsCache(sys.argv[1])
name = sys.argv[2]
for batch in range(40):
    cache.put({f"{name}-{batch}-{i}": {"batch": batch, "i": i, "by": name} for i in range(25)})
    got = cache.get([f"{name}-{batch}-0"])
    assert got[f"{name}-{batch}-0"]["by"] == name
"""


def test_two_processes_write_at_once(tmp_path):
    path = tmp_path / "shared.sqlite"
    ResultsCache(path)
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), name], stderr=subprocess.PIPE)
        for name in ("a", "b")
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr.decode()
    cache = ResultsCache(path)
    assert cache.info()["entries"] == 2 * 40 * 25
    assert cache.get(["a-39-24", "b-0-0"]) == {
        "a-39-24": {"batch": 39, "i": 24, "by": "a"},
        "b-0-0": {"batch": 0, "i": 0, "by": "b"},
    }


def stored(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=30) as connection:
            return connection.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


@pytest.mark.slow
def test_a_killed_run_resumes_to_identical_results(tmp_path, tiny_model_dir, gss):
    personas = Population.from_records(
        {"id": f"p{i:03d}", "age": 20 + i % 60, "job": ["nurse", "farmer", "clerk"][i % 3]}
        for i in range(60)
    )
    personas.write_csv(tmp_path / "people.csv")
    total = len(personas) * len(gss)
    command = [
        SCRIPT,
        "run",
        str(bundled_file("questionnaires", "gss_spending_2018.yaml")),
        "--personas",
        str(tmp_path / "people.csv"),
        "--model",
        str(tiny_model_dir),
        "--quiet",
    ]

    def environment(cache: Path) -> dict[str, str]:
        return dict(os.environ, SURVEY_SIM_RESULTS_CACHE=str(cache))

    cache = tmp_path / "resumed.sqlite"
    out = tmp_path / "resumed.parquet"
    killed = subprocess.Popen([*command, "--out", str(out)], env=environment(cache))
    while stored(cache) == 0 and killed.poll() is None:  # the first results are stored
        time.sleep(0.01)
    os.kill(killed.pid, signal.SIGSTOP)  # frozen mid-run: nothing more is computed or stored
    assert killed.poll() is None, "the run finished before it could be killed"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    done_before_kill = stored(cache)
    assert killed.returncode == -signal.SIGKILL
    assert 0 < done_before_kill < total, done_before_kill
    assert not out.exists() and not list(tmp_path.glob(".resumed*"))  # nothing partial

    resumed = subprocess.run(
        [*command, "--out", str(out)], env=environment(cache), capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    manifest = SimulationResult.read_parquet(out).manifest
    assert manifest is not None and manifest.cache is not None
    assert manifest.cache.hits == done_before_kill
    assert manifest.cache.misses == total - done_before_kill

    whole = tmp_path / "whole.parquet"
    uninterrupted = subprocess.run(
        [*command, "--out", str(whole)],
        env=environment(tmp_path / "other.sqlite"),
        capture_output=True,
        text=True,
    )
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    first, second = SimulationResult.read_parquet(out), SimulationResult.read_parquet(whole)
    assert_same_results(first.responses, second.responses)
    assert_same_results(pl.read_parquet(tmp_path / "resumed.population.parquet"), second.population)


def test_manifest_says_how_results_were_made(tmp_path, tiny_engine, gss, demo_population):
    result = simulate(gss, demo_population, tiny_engine, progress=False, cache=False)
    written = result.write_parquet(tmp_path / "r.parquet")
    assert tmp_path / "r.manifest.json" in written
    manifest = SimulationResult.read_parquet(tmp_path / "r.parquet").manifest
    assert manifest.model.fingerprint == tiny_engine.fingerprint
    assert {"survey-sim", "torch", "transformers", "polars"} <= set(manifest.packages)
    assert manifest.questionnaire.id == gss.id and len(manifest.questionnaire.sha256) == 64
    assert manifest.population.personas == len(demo_population)
    assert manifest.settings.seed == 0 and manifest.cache is None
    assert manifest.seconds >= 0


@pytest.mark.parametrize("action", ["info", "clear"])
def test_cache_command(action, tmp_path):
    env = dict(os.environ, SURVEY_SIM_RESULTS_CACHE=str(tmp_path / "c.sqlite"))
    ResultsCache(tmp_path / "c.sqlite").put({"k": 1})
    result = subprocess.run([SCRIPT, "cache", action], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    expected = "1 entries" if action == "info" else "Deleted 1 entries"
    assert expected in result.stdout


def test_an_interrupted_run_resumes_to_identical_results(tmp_path, tiny_model_dir, gss):
    """Each pass's results are stored together, so the resumed run computes the rest in the
    same passes as an uninterrupted one. Fresh engines: no prefix state carries over."""
    personas = Population.from_records(
        {"id": f"p{i}", "age": 20 + 7 * i, "job": ["nurse", "farmer"][i % 2]} for i in range(6)
    )
    store = ResultsCache(tmp_path / "store.sqlite")
    stopping = InterruptedAfter(TransformersEngine.from_pretrained(tiny_model_dir), passes=3)
    with pytest.raises(KeyboardInterrupt):
        simulate(gss, personas, stopping, cache=store, progress=False)
    stored_before = store.info()["entries"]
    assert 0 < stored_before < len(personas) * len(gss)
    resumed = simulate(
        gss,
        personas,
        TransformersEngine.from_pretrained(tiny_model_dir),
        cache=store,
        progress=False,
    )
    assert resumed.manifest.cache.hits == stored_before
    whole = simulate(
        gss,
        personas,
        TransformersEngine.from_pretrained(tiny_model_dir),
        cache=False,
        progress=False,
    )
    assert_same_results(resumed.responses, whole.responses)
