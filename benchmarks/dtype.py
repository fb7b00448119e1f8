"""float32 against bfloat16 on this CPU: speed and probabilities, in one run, interleaved.

On the demo study (the 8 demo personas x the 18 GSS 2018 spending questions, chat format,
default model) it measures, per dtype:

* prefill tokens/s of a plain batched forward pass (8 x 256 tokens, best of three);
* the study's computed tokens/s with the default strategy (``cache``), best of ``--rounds``
  runs, the dtypes taking turns;
* every option probability against float32 with the same strategy (max and mean |dp|), and,
  within bfloat16, between strategies (``cache``, ``request``, ``none``) on the first
  ``--agreement-personas`` personas: in float32 the strategies agree to about 1e-6;
* whether torch's CPU kernels have bfloat16 support here (its backend flags).

    python benchmarks/dtype.py                 # then read the verdict at the end
    python benchmarks/dtype.py --model DIR --rounds 1 --agreement-personas 1   # smoke
"""

from __future__ import annotations

import argparse
import time

import torch
from prefix_reuse import forward_ceiling

from survey_sim import (
    EngineSettings,
    Population,
    TransformersEngine,
    bundled_file,
    load_questionnaire,
)
from survey_sim.asking.formats import get_format
from survey_sim.asking.kinds import choice_request
from survey_sim.engines.base import ScoreRequest, ScoreResult

SPEED_NEEDED = 1.5
LARGEST_CHANGE = 0.01
"""bfloat16 becomes the default only if it is at least this much faster and moves no
probability by more than this (issue 32)."""


def differences(first: list[ScoreResult], second: list[ScoreResult]) -> tuple[float, float]:
    """Largest and mean |dp| over every option of every request."""
    gaps = [
        abs(a - b)
        for x, y in zip(first, second, strict=True)
        for a, b in zip(x.probs, y.probs, strict=True)
    ]
    return max(gaps), sum(gaps) / len(gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: the default)")
    parser.add_argument("--rounds", type=int, default=2, help="timed runs per dtype, in turns")
    parser.add_argument("--agreement-personas", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    engines = {
        dtype: TransformersEngine.from_pretrained(
            args.model, settings=EngineSettings(threads=args.threads, dtype=dtype)
        )
        for dtype in ("float32", "bfloat16")
    }
    population = Population.from_file(bundled_file("personas", "us_adults_demo.yaml"))
    questions = load_questionnaire(bundled_file("questionnaires", "gss_spending_2018.yaml"))
    chat = get_format("chat")
    requests = [
        choice_request(q, chat, description=p.description, chat=engines["float32"])
        for p in population
        for q in questions
    ]
    capability = torch.backends.cpu.get_cpu_capability()
    bf16_kernels = bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())
    print(
        f"{len(population)} personas x {len(questions)} questions = {len(requests)} prompts on "
        f"{engines['float32'].model_id}; torch {torch.__version__}, {torch.get_num_threads()} "
        f"threads, CPU capability {capability}, oneDNN (mkldnn) available "
        f"{torch.backends.mkldnn.is_available()}, oneDNN bfloat16 kernels {bf16_kernels}\n"
    )
    ceiling = {dtype: forward_ceiling(engine) for dtype, engine in engines.items()}
    best: dict[str, float] = {}
    results: dict[str, list[ScoreResult]] = {}
    tokens: dict[str, int] = {}
    for _ in range(args.rounds):
        for dtype, engine in engines.items():
            engine.clear_cache()
            before = engine.stats.computed_tokens
            started = time.perf_counter()
            results[dtype] = engine.score(requests)
            seconds = time.perf_counter() - started
            tokens[dtype] = engine.stats.computed_tokens - before
            best[dtype] = min(best.get(dtype, seconds), seconds)
    print(
        f"{'dtype':<9} {'ceiling tok/s':>13} {'study s':>8} {'study tok/s':>11} {'vs float32':>10}"
    )
    for dtype in engines:
        rate = tokens[dtype] / best[dtype]
        speedup = best["float32"] / best[dtype]
        print(
            f"{dtype:<9} {ceiling[dtype]:>13.0f} {best[dtype]:>8.1f} {rate:>11.0f} {speedup:>9.2f}x"
        )
    largest, mean = differences(results["float32"], results["bfloat16"])
    print(
        f"\nbfloat16 against float32 (cache strategy, every option): max |dp| {largest:.4f}, "
        f"mean |dp| {mean:.5f}"
    )

    subset: list[ScoreRequest] = requests[: args.agreement_personas * len(questions)]
    print(f"\nStrategies against cache, {len(subset)} prompts (max |dp|, mean |dp|):")
    for dtype, base in engines.items():
        scored = {}
        for strategy in ("cache", "request", "none"):
            engine = TransformersEngine(
                base.model,
                base.tokenizer,
                model_id=base.model_id,
                settings=EngineSettings(threads=args.threads, dtype=dtype, prefix_reuse=strategy),
            )
            scored[strategy] = engine.score(subset)
        for strategy in ("request", "none"):
            gap, average = differences(scored["cache"], scored[strategy])
            print(f"  {dtype:<9} {strategy:<8} {gap:.2e} {average:.2e}")
    faster = best["float32"] / best["bfloat16"]
    default = faster >= SPEED_NEEDED and largest <= LARGEST_CHANGE
    print(
        f"\nVerdict: bfloat16 is {faster:.2f}x the speed of float32 and moves probabilities by "
        f"up to {largest:.3f}; the rule (at least {SPEED_NEEDED}x and at most {LARGEST_CHANGE}) "
        f"{'makes bfloat16 the default' if default else 'keeps float32 the default'}."
    )


if __name__ == "__main__":
    main()
