"""What exact joints cost against the marginal run of the same questions.

The first ``--questions`` GSS 2018 spending items (every pair: q·(q-1)/2) × the first
``--personas`` demo personas, on one engine, no results store, side by side in one process:

* the marginal run (``simulate``): one request per persona × question;
* the joints (``joint``): per persona and pair, in both asking orders, the first question's
  distribution (the marginal run's prompt) and one conditional request per option of the
  first question, all after the same persona-and-first-question prefix.

Prints requests, tokens computed and seconds of each, their ratios, the ratio expected from
counting prompts, and the largest difference between the joints' first factor and the
marginal run's distribution (the same prompt, so it should be float noise).

    python benchmarks/joints.py                       # 18 items (153 pairs), 1 persona
    python benchmarks/joints.py --model tiny-dir --questions 3 --personas 2
"""

from __future__ import annotations

import argparse
import time

import polars as pl

from survey_sim import (
    Population,
    TransformersEngine,
    bundled_file,
    joint,
    load_questionnaire,
    simulate,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model (default: the default model)")
    parser.add_argument("--questions", type=int, default=18)
    parser.add_argument("--personas", type=int, default=1)
    args = parser.parse_args()

    questionnaire = load_questionnaire(bundled_file("questionnaires", "gss_spending_2018.yaml"))
    questionnaire = questionnaire.select(list(questionnaire.listed_order[: args.questions]))
    demo = Population.from_file(bundled_file("personas", "us_adults_demo.yaml"))
    population = Population(list(demo)[: args.personas], id="benchmark")
    ids = questionnaire.listed_order
    pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]]
    engine = TransformersEngine.from_pretrained(args.model)

    def measured(run):  # type: ignore[no-untyped-def]
        before = engine.stats.requests, engine.stats.computed_tokens
        started = time.perf_counter()
        result = run()
        return (
            result,
            engine.stats.requests - before[0],
            engine.stats.computed_tokens - before[1],
            time.perf_counter() - started,
        )

    marginal, m_requests, m_tokens, m_seconds = measured(
        lambda: simulate(questionnaire, population, engine, progress=False, cache=False)
    )
    joints, j_requests, j_tokens, j_seconds = measured(
        lambda: joint(questionnaire, population, engine, pairs, progress=False, cache=False)
    )
    options = {q.id: len(q.options) for q in questionnaire}  # type: ignore[union-attr]
    counted = len(population) * (len(ids) + sum(options[a] + options[b] for a, b in pairs))
    first = (
        joints.joints.filter(pl.col("asked") == "first, second")
        .group_by("persona_id", "first", "second", "first_code")
        .agg(pl.col("prob").sum())
        .join(
            marginal.responses.select(
                "persona_id", first="question_id", first_code="option_code", marginal="prob"
            ),
            on=["persona_id", "first", "first_code"],
        )
    )
    gap = (first["prob"] - first["marginal"]).abs().max()
    print(
        f"{len(ids)} questions ({len(pairs)} pairs, both orders) x {len(population)} persona(s) "
        f"on {engine.model_id}\n"
    )
    header = f"{'run':<9} {'requests':>9} {'tokens':>10} {'seconds':>8}"
    print(header)
    print("-" * len(header))
    print(f"{'marginal':<9} {m_requests:>9,} {m_tokens:>10,} {m_seconds:>8.1f}")
    print(f"{'joints':<9} {j_requests:>9,} {j_tokens:>10,} {j_seconds:>8.1f}")
    print(
        f"\njoints / marginal: requests {j_requests / m_requests:.1f}x (counted: "
        f"{counted / (len(population) * len(ids)):.1f}x), tokens {j_tokens / m_tokens:.1f}x, "
        f"seconds {j_seconds / m_seconds:.1f}x. Per pair and order: 1 + options of the "
        f"first question requests.\nJoints' first factor vs the marginal run: largest "
        f"difference {gap:.1e}"
    )
    if j_requests != counted or gap > 1e-4:
        raise SystemExit("the joints asked other prompts than counted, or their first factor moved")


if __name__ == "__main__":
    main()
