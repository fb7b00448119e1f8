"""What simulated respondents cost, and whether their marginals are the exact ones.

The bundled flow questionnaire (ANES 2016 vote sequence + GSS spending items) x the demo
personas, on one engine, no results store (every prompt computed in each run):

* for each N and memory setting: distinct prompts, engine requests, computed tokens,
  seconds, and requests and tokens per respondent. Without memory the work is bounded by
  the personas' distinct prompts, whatever N; with ``memory: full`` it grows with the
  distinct interview paths.
* the exact population run (``simulate``, no memory) beside the largest sample: per question
  and option, the share among respondents asked vs the exact distribution among those asked
  (p_asked-weighted), and the share asked vs p_asked; the largest gaps.

    python benchmarks/respondents.py                       # default model; N 100 1000 10000
    python benchmarks/respondents.py --model tiny-dir --n 50 200 --memory-n 50
"""

from __future__ import annotations

import argparse
import time
import warnings

import polars as pl

from survey_sim import (
    Population,
    TransformersEngine,
    bundled_file,
    load_questionnaire,
    simulate,
    simulate_respondents,
)
from survey_sim.errors import FlowWarning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model (default: the default model)")
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--memory-n", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    instrument = load_questionnaire(bundled_file("questionnaires", "anes_2016_vote_flow.yaml"))
    population = Population.from_file(bundled_file("personas", "us_adults_demo.yaml"))
    engine = TransformersEngine.from_pretrained(args.model)
    runs = [("none", n) for n in args.n] + [("full", n) for n in args.memory_n]
    header = (
        f"{'memory':<7} {'N':>7} {'prompts':>8} {'requests':>9} {'tokens':>9} "
        f"{'seconds':>8} {'req/resp':>9} {'tok/resp':>9}"
    )
    print(f"{instrument.id} x {len(population)} personas on {engine.model_id}\n")
    print(header)
    print("-" * len(header))
    largest = None
    for memory, n in runs:
        questionnaire = instrument.model_copy(update={"memory": memory})
        before = engine.stats.requests, engine.stats.computed_tokens
        started = time.perf_counter()
        sample = simulate_respondents(
            questionnaire, population, engine, n, seed=args.seed, progress=False, cache=False
        )
        seconds = time.perf_counter() - started
        requests = engine.stats.requests - before[0]
        tokens = engine.stats.computed_tokens - before[1]
        assert sample.manifest is not None and sample.manifest.respondents is not None
        prompts = sample.manifest.respondents.distinct_prompts
        if prompts != requests:
            raise SystemExit(f"{prompts} distinct prompts but {requests} engine requests")
        print(
            f"{memory:<7} {n:>7,} {prompts:>8,} {requests:>9,} {tokens:>9,} {seconds:>8.1f} "
            f"{requests / n:>9.3f} {tokens / n:>9.1f}"
        )
        if memory == "none" and (largest is None or n > largest[0]):
            largest = (n, sample)
    if largest is None:
        return
    n, sample = largest
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FlowWarning)  # the piped question is left out
        exact = simulate(instrument, population, engine, progress=False, cache=False)
    asked = sample.microdata.filter(pl.col("asked"))
    shares = (
        asked.group_by("question_id", "answer_code")
        .len()
        .with_columns(observed=pl.col("len") / pl.col("len").sum().over("question_id"))
        .rename({"answer_code": "option_code"})
    )
    compared = exact.population.join(shares, on=["question_id", "option_code"], how="left")
    compared = compared.with_columns(pl.col("observed").fill_null(0.0))
    reached = sample.microdata.group_by("question_id").agg(share_asked=pl.col("asked").mean())
    asked_gap = exact.population.unique("question_id").join(reached, on="question_id")
    gap = (compared["observed"] - compared["prob"]).abs()
    print(
        f"\n{n:,} respondents vs the exact population run (no memory, "
        f"{compared['question_id'].n_unique()} questions with exact distributions):\n"
        f"  answer shares among those asked: largest |observed - exact| {gap.max():.4f} "
        f"(mean {gap.mean():.4f})\n"
        f"  share asked vs p_asked: largest gap "
        f"{(asked_gap['share_asked'] - asked_gap['p_asked']).abs().max():.4f}"
    )
    print(sample.summary())


if __name__ == "__main__":
    main()
