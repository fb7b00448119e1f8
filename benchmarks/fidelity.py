"""How close the default model gets to real people, in both modes, beside the baselines.

    python benchmarks/fidelity.py [--model PATH] [--train 120] [--test 150] [--seed 0]

For GSS 2018 spending and CCES 2016 (the bundled surveys; the ``data`` extra):

* **population mode**: the post-stratified persona cells of the mapping's recipe answer every
  question; a seeded third of the questions is held out, and on those the simulation is
  scored beside uniform, the human marginal of the other questions, the split-half noise
  floor, and the PyMC calibration fitted on the other two thirds (where the questions share
  one answer scale);
* **individual mode**: a seeded split of respondents; every test respondent's held-out
  answers predicted after k = 0, 1, 2, 4, ... of their own answers, by every method of
  :func:`survey_sim.evaluate_individuals`, with 90% bootstrap intervals over respondents.

Writes ``benchmarks/results/fidelity.csv`` (every number) and ``fidelity.md`` (the tables the
README links to). Nothing here is tuned on what it reports: every fit sees training
questions or training respondents only.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

RESULTS = Path(__file__).with_name("results")
DATASETS = ("gss_spending_2018", "cces_2016")


def population_mode(name: str, engine, seed: int) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    """Population-mode scores on held-out questions, one row per method × metric."""
    from survey_sim import HUMAN_DATASETS, Calibration, InputError, compare, simulate, summarise
    from survey_sim.evaluate.metrics import (
        jensen_shannon,
        representativeness_of,
        total_variation,
    )

    human = HUMAN_DATASETS[name]()
    questionnaire = human.questionnaire
    ids = [q.id for q in questionnaire]
    held_out = sorted(
        np.random.default_rng(seed).choice(ids, len(ids) // 3, replace=False).tolist()
    )
    trained = [q for q in ids if q not in held_out]
    result = simulate(questionnaire, human.population(), engine, progress=True)
    comparison = compare(result.population, human).filter(pl.col("question_id").is_in(held_out))
    rows = [
        {"method": row["source"], "metric": metric, "estimate": row[metric]}
        for row in summarise(comparison).iter_rows(named=True)
        for metric in ("representativeness", "jensen_shannon", "total_variation")
    ]
    try:
        calibration = Calibration(result, human, questions=trained)
        calibration.fit(seed=seed)
        predicted = calibration.predict(held_out, seed=seed)
        people = human.distribution()
        scores: dict[str, list[float]] = {
            "jensen_shannon": [],
            "total_variation": [],
            "representativeness": [],
        }
        for question_id in held_out:
            question = questionnaire.question(question_id)
            codes = [o.code for o in question.options]  # type: ignore[attr-defined]
            mine = predicted.filter(pl.col("question_id") == question_id)
            q = [mine.filter(pl.col("option_code") == c)["predicted"][0] for c in codes]
            theirs = people.filter(pl.col("question_id") == question_id)
            p = [theirs.filter(pl.col("option_code") == c)["prob"][0] for c in codes]
            scores["jensen_shannon"].append(jensen_shannon(p, q))
            scores["total_variation"].append(total_variation(p, q))
            score = representativeness_of(question, p, q)  # type: ignore[arg-type]
            scores["representativeness"].append(score)
        rows += [
            {"method": "calibrated", "metric": m, "estimate": float(np.mean(v)) if v else None}
            for m, v in scores.items()
        ]
    except InputError as error:
        print(f"{name}: population calibration not applicable: {error}")
    frame = pl.DataFrame(
        rows, schema={"method": pl.String, "metric": pl.String, "estimate": pl.Float64}
    )
    return frame.with_columns(
        dataset=pl.lit(name),
        mode=pl.lit("population"),
        shots=pl.lit(None, pl.Int64),
        lower=pl.lit(None, pl.Float64),
        upper=pl.lit(None, pl.Float64),
        note=pl.lit(
            f"{len(result.responses['persona_id'].unique())} cells; held out: {', '.join(held_out)}"
        ),
    )


def individual_mode(
    name: str, engine, train: int, test: int, seed: int
) -> tuple[pl.DataFrame, dict]:  # type: ignore[no-untyped-def]
    """Individual-mode scores (and the run's prefix reuse and time per respondent)."""
    import arviz as az

    from survey_sim import (
        HUMAN_DATASETS,
        IndividualSplit,
        evaluate_individuals,
        simulate_individuals,
    )

    human = HUMAN_DATASETS[name]()
    split = IndividualSplit.draw(human, train=train, test=test, seed=seed)
    started = time.time()
    result = simulate_individuals(human, engine, split)
    simulated = time.time() - started
    evaluation = evaluate_individuals(result, human, seed=seed)
    alpha = az.summary(evaluation.calibration, var_names=["alpha"], kind="stats", hdi_prob=0.9)
    facts = {
        "eligible": split.eligible,
        "pool": evaluation.pool,
        "shots": list(split.shots),
        "hit_rate": result.manifest.work.hit_rate,
        "seconds_per_respondent": simulated / len(split.respondents),
        "cached": result.manifest.cache.model_dump() if result.manifest.cache else None,
        "alpha": alpha,
    }
    report = evaluation.report.select("method", "shots", "metric", "estimate", "lower", "upper")
    view = evaluation.population.select("method", "shots", "metric", "estimate").with_columns(
        metric=pl.lit("population ") + pl.col("metric"),
        lower=pl.lit(None, pl.Float64),
        upper=pl.lit(None, pl.Float64),
    )
    frame = pl.concat([report, view.select(report.columns)])
    return (
        frame.with_columns(
            dataset=pl.lit(name),
            mode=pl.lit("individual"),
            note=pl.lit(f"{train} train / {test} test respondents; pool {evaluation.pool}"),
        ),
        facts,
    )


def markdown(frame: pl.DataFrame, facts: dict[str, dict]) -> str:  # type: ignore[type-arg]
    lines = ["# Fidelity of the default model (benchmarks/fidelity.py)", ""]
    for name in DATASETS:
        data = frame.filter(pl.col("dataset") == name)
        if data.is_empty():
            continue
        lines += [f"## {name}", "", "### Population mode (held-out questions)", ""]
        population = data.filter(pl.col("mode") == "population")
        lines += [
            f"{population['note'][0]}",
            "",
            "| method | representativeness | Jensen-Shannon | total variation |",
            "|---|---|---|---|",
        ]
        for method, group in population.group_by("method", maintain_order=True):
            value = {r["metric"]: r["estimate"] for r in group.iter_rows(named=True)}
            lines.append(
                f"| {method[0]} | "
                + " | ".join(
                    _number(value.get(m))
                    for m in ("representativeness", "jensen_shannon", "total_variation")
                )
                + " |"
            )
        individual = data.filter(pl.col("mode") == "individual")
        fact = facts[name]
        shots = fact["shots"]
        lines += [
            "",
            "### Individual mode: log-loss (nats) on test respondents' held-out answers",
            "",
            "(90% bootstrap intervals over respondents)",
            "",
            f"{individual['note'][0]}; {fact['eligible']} eligible respondents; prefix reuse "
            f"{fact['hit_rate']:.1%} of prompt tokens; "
            f"{fact['seconds_per_respondent']:.2f} s per respondent (all k).",
            "",
            "| method | " + " | ".join(f"k = {k}" for k in shots) + " |",
            "|---|" + "---|" * len(shots),
        ]
        for method, group in individual.filter(pl.col("metric") == "log_loss").group_by(
            "method", maintain_order=True
        ):
            cells = {
                r["shots"]: f"{r['estimate']:.3f} [{r['lower']:.3f}, {r['upper']:.3f}]"
                for r in group.iter_rows(named=True)
            }
            lines.append(f"| {method[0]} | " + " | ".join(cells.get(k, "") for k in shots) + " |")
        top = shots[-1]
        lines += [
            "",
            f"All metrics at k = {top}:",
            "",
            "| method | log-loss | accuracy | Brier | ECE | population TV |",
            "|---|---|---|---|---|---|",
        ]
        at_top = individual.filter(pl.col("shots") == top)
        for method, group in at_top.group_by("method", maintain_order=True):
            value = {r["metric"]: r for r in group.iter_rows(named=True)}
            cells = [
                f"{value[m]['estimate']:.3f} [{value[m]['lower']:.3f}, {value[m]['upper']:.3f}]"
                for m in ("log_loss", "accuracy", "brier", "ece")
            ]
            cells.append(_number(value["population total_variation"]["estimate"]))
            lines.append(f"| {method[0]} | " + " | ".join(cells) + " |")
        alpha = fact["alpha"]
        lines += [
            "",
            "Respondent-level calibration, posterior of alpha per k "
            "(1: trust the model's log-odds as they are, 0: they carry nothing):",
            "",
            "| k | mean | sd | 90% HDI |",
            "|---|---|---|---|",
        ]
        for index, row in alpha.iterrows():
            low, high = row.iloc[2], row.iloc[3]
            lines.append(
                f"| {index} | {row['mean']:.2f} | {row['sd']:.2f} | {low:.2f} to {high:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None)
    parser.add_argument("--train", type=int, default=120)
    parser.add_argument("--test", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    args = parser.parse_args()
    from survey_sim import TransformersEngine

    logging.getLogger("pymc").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    engine = TransformersEngine.from_pretrained(args.model)
    frames, facts = [], {}
    for name in args.datasets:
        started = time.time()
        frames.append(population_mode(name, engine, args.seed))
        individual, facts[name] = individual_mode(name, engine, args.train, args.test, args.seed)
        frames.append(individual.select(frames[0].columns))
        print(f"{name}: {time.time() - started:.0f} s")
    frame = pl.concat(frames)
    RESULTS.mkdir(exist_ok=True)
    frame.write_csv(RESULTS / "fidelity.csv")
    text = markdown(frame, facts)
    (RESULTS / "fidelity.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
