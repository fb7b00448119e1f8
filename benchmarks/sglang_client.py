"""The SGLang engine against a real server: start-up, parity, cache hit rate, throughput.

Starts SGLang (from .venv-sglang; on a CPU machine with the test tier's flags and support)
serving the tiny test model, then, on a persona × question grid (GSS spending questions,
chat format, letter answers):

* the largest |Δ log-prob| against the embedded engine on the same weights;
* the share of prompt tokens the server's radix cache served (cache flushed before);
* requests/s with 1 and with 8 calls in flight, against the same server, cache flushed
  before each (the client must not be the bottleneck).

    python benchmarks/sglang_client.py                 # 20 personas x 10 questions
    python benchmarks/sglang_client.py --url http://127.0.0.1:30000 --model DIR  # a running server
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

from survey_sim import TransformersEngine, bundled_file, load_questionnaire
from survey_sim.asking.formats import get_format
from survey_sim.asking.kinds import choice_request
from survey_sim.engines.sglang import SGLangEngine, SGLangSettings

ROOT = Path(__file__).parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "tests"), str(ROOT / "tests" / "sglang_tier")]

from conftest import build_tiny_model  # noqa: E402  (tests/conftest.py: the tiny test model)
from prefix_reuse import persona_grid  # noqa: E402
from servers import start  # noqa: E402  (the test tier's flags for this machine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=20)
    parser.add_argument("--url", help="a running server (default: start one)")
    parser.add_argument("--model", type=Path, help="the served model's directory (with --url)")
    args = parser.parse_args()
    server = None
    if args.url is None:
        model = build_tiny_model(Path(tempfile.mkdtemp(prefix="tiny-model-")))
        started = time.perf_counter()
        server = start(model)
        print(f"server up in {time.perf_counter() - started:.1f} s")
        url = server.url
    else:
        url, model = args.url, args.model
    try:
        questionnaire = load_questionnaire(bundled_file("questionnaires", "gss_spending_2018.yaml"))
        population = persona_grid(args.personas)
        probe = SGLangEngine.connect(url)
        requests = [
            choice_request(q, get_format("chat"), description=p.description, chat=probe)
            for p in population
            for q in questionnaire
        ]
        embedded = TransformersEngine.from_pretrained(model).score(requests)
        grid = f"{len(population)} personas x {len(questionnaire)} questions"
        print(f"{grid} = {len(requests)} requests")
        for concurrency in (1, 8):
            httpx.post(f"{url}/flush_cache")
            engine = SGLangEngine.connect(url, settings=SGLangSettings(concurrency=concurrency))
            began = time.perf_counter()
            served = engine.score(requests)
            seconds = time.perf_counter() - began
            worst = max(
                abs(a - b)
                for s, e in zip(served, embedded, strict=True)
                for a, b in zip(s.logprobs, e.logprobs, strict=True)
            )
            print(
                f"concurrency {concurrency}: {len(requests) / seconds:6.1f} requests/s, "
                f"cache served {engine.stats.hit_rate:.1%} of {engine.stats.prompt_tokens:,} "
                f"prompt tokens, max |dlogp| vs embedded {worst:.1e}"
            )
            engine.close()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
