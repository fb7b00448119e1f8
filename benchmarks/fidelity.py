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


def population_mode(name: str, engine, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:  # type: ignore[no-untyped-def]
    """Population-mode scores on held-out questions: per question × source (the model, the
    calibration, the baselines, the noise floor), and the paired comparisons."""
    from survey_sim import (
        HUMAN_DATASETS,
        Calibration,
        InputError,
        compare,
        paired_differences,
        simulate,
    )
    from survey_sim.data.aligned import answered_option_questions
    from survey_sim.evaluate.metrics import BASELINES, scores

    human = HUMAN_DATASETS[name]()
    people = human.distribution()
    answered = [q.id for q in answered_option_questions(people, human)]
    held_out = sorted(
        np.random.default_rng(seed).choice(answered, len(answered) // 3, replace=False).tolist()
    )
    trained = [q for q in answered if q not in held_out]
    questionnaire = human.questionnaire.select(answered)
    result = simulate(questionnaire, human.population(), engine, progress=True, cache=False)
    per_question = compare(result.population, human, fitted_on=trained).filter(
        pl.col("question_id").is_in(held_out)
    )
    try:
        calibration = Calibration(result, human, questions=trained)
        calibration.fit(seed=seed)
        predicted = calibration.predict(held_out, seed=seed)
        rows = []
        for question_id in held_out:
            question = questionnaire.question(question_id)
            codes = [o.code for o in question.options]  # type: ignore[attr-defined]
            mine = predicted.filter(pl.col("question_id") == question_id)
            q = [mine.filter(pl.col("option_code") == c)["predicted"][0] for c in codes]
            theirs = people.filter(pl.col("question_id") == question_id)
            p = [theirs.filter(pl.col("option_code") == c)["prob"][0] for c in codes]
            rows.append(
                {
                    "question_id": question_id,
                    "source": "calibrated",
                    **scores(question, p, q),  # type: ignore[arg-type]
                    "coverage": None,
                    "n": int(theirs["n"][0]),
                }
            )
        per_question = pl.concat([per_question, pl.DataFrame(rows, schema=per_question.schema)])
    except InputError as error:
        print(f"{name}: population calibration not applicable: {error}")
    paired = pl.concat(
        [
            paired_differences(per_question, "model", BASELINES, seed=seed),
            paired_differences(per_question, "calibrated", ("model", *BASELINES), seed=seed),
        ]
        if "calibrated" in set(per_question["source"])
        else [paired_differences(per_question, "model", BASELINES, seed=seed)]
    )
    note = (
        f"{len(result.responses['persona_id'].unique())} cells; held out: {', '.join(held_out)}; "
        f"fitted on (calibration, fitted_marginal): {', '.join(trained)}"
    )
    return (
        per_question.with_columns(dataset=pl.lit(name), note=pl.lit(note)),
        paired.with_columns(dataset=pl.lit(name), unit=pl.lit("questions")),
    )


MODEL_FREE = ("uniform", "marginal", "cell", "regression")


def individual_mode(
    name: str, engine, train: int, test: int, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame, dict]:  # type: ignore[no-untyped-def]
    """Individual-mode scores, the paired differences that matter (each model-based method
    against the strongest model-free one at each k, and model+regression against
    regression), and the run's facts."""
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
    result = simulate_individuals(human, engine, split, cache=False)  # timed: nothing reused
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
    view = evaluation.population.select(report.columns).with_columns(
        metric=pl.lit("population ") + pl.col("metric")
    )
    log_loss = report.filter(pl.col("metric") == "log_loss", pl.col("method").is_in(MODEL_FREE))
    strongest = {
        k: group.sort("estimate")["method"][0]
        for (k,), group in log_loss.partition_by("shots", as_dict=True).items()
    }
    wanted = [
        pl.col("versus") == pl.col("shots").replace_strict(strongest, return_dtype=pl.String),
        pl.col("method").is_in(["model", "model+regression", "calibrated"]),
    ]
    paired = evaluation.differences.filter(
        pl.all_horizontal(wanted)
        | ((pl.col("method") == "model+regression") & (pl.col("versus") == "regression"))
    )
    note = f"{train} train / {test} test respondents; pool {evaluation.pool}"
    return (
        pl.concat([report, view]).with_columns(dataset=pl.lit(name), note=pl.lit(note)),
        paired.with_columns(dataset=pl.lit(name), unit=pl.lit("respondents")),
        facts,
    )


def markdown(
    population: pl.DataFrame,
    individual: pl.DataFrame,
    paired: pl.DataFrame,
    facts: dict[str, dict],  # type: ignore[type-arg]
) -> str:
    from survey_sim import summarise

    lines = ["# Fidelity of the default model (benchmarks/fidelity.py)", ""]
    for name in DATASETS:
        data = population.filter(pl.col("dataset") == name)
        if data.is_empty():
            continue
        lines += [f"## {name}", "", "### Population mode (held-out questions)", ""]
        lines += [f"{data['note'][0]}", "", "Mean over the held-out questions:", ""]
        lines += _table(
            ["source", "representativeness", "Jensen-Shannon", "total variation", "questions"],
            [
                [row["source"], *(_number(row[m]) for m in POPULATION_METRICS), row["questions"]]
                for row in summarise(data).iter_rows(named=True)
            ],
        )
        lines += ["", "Per question (Jensen-Shannon):", ""]
        wide = data.pivot(on="source", index="question_id", values="jensen_shannon")
        lines += _table(
            wide.columns,
            [[_number(v) if isinstance(v, float) else v for v in r] for r in wide.rows()],
        )
        lines += [
            "",
            "Paired over the held-out questions (first − second, mean over questions, 90% "
            "interval resampling the questions together):",
            "",
        ]
        pairs = paired.filter(pl.col("dataset") == name, pl.col("unit") == "questions")
        lines += _paired_table(pairs)
        rows = individual.filter(pl.col("dataset") == name)
        fact = facts[name]
        shots = fact["shots"]
        lines += [
            "",
            "### Individual mode: log-loss (nats) on test respondents' held-out answers",
            "",
            "(90% bootstrap intervals over respondents)",
            "",
            f"{rows['note'][0]}; {fact['eligible']} eligible respondents (the pool is the "
            f"eligible ones outside the split); prefix reuse {fact['hit_rate']:.1%} of prompt "
            f"tokens; {fact['seconds_per_respondent']:.2f} s per respondent (all k).",
            "",
        ]
        lines += _table(
            ["method", *(f"k = {k}" for k in shots)],
            [
                [method, *(_interval(group, k) for k in shots)]
                for (method,), group in rows.filter(pl.col("metric") == "log_loss").group_by(
                    "method", maintain_order=True
                )
            ],
        )
        lines += [
            "",
            "Paired on the same test respondents (log-loss, first − second; negative: the "
            "first is better), against the strongest model-free method at each k:",
            "",
        ]
        pairs = paired.filter(
            pl.col("dataset") == name,
            pl.col("unit") == "respondents",
            pl.col("metric") == "log_loss",
        )
        lines += _paired_table(pairs)
        top = shots[-1]
        lines += [
            "",
            f"All metrics at k = {top} (population view: predictions averaged per "
            "question over the test respondents; noise_floor: what the true "
            "distribution would score against so few answers):",
            "",
        ]
        at_top = rows.filter(pl.col("shots") == top)
        metrics = ["log_loss", "accuracy", "brier", "ece", "population total_variation"]
        lines += _table(
            ["method", "log-loss", "accuracy", "Brier", "ECE", "population TV"],
            [
                [method, *(_interval(group.filter(pl.col("metric") == m), top) for m in metrics)]
                for (method,), group in at_top.group_by("method", maintain_order=True)
            ],
        )
        alpha = fact["alpha"]
        lines += [
            "",
            "Respondent-level calibration, posterior of alpha per k "
            "(1: trust the model's log-odds as they are, 0: they carry nothing):",
            "",
        ]
        lines += _table(
            ["k", "mean", "sd", "90% HDI"],
            [
                [
                    index,
                    f"{row['mean']:.2f}",
                    f"{row['sd']:.2f}",
                    f"{row.iloc[2]:.2f} to {row.iloc[3]:.2f}",
                ]
                for index, row in alpha.iterrows()
            ],
        )
        lines.append("")
    return "\n".join(lines)


POPULATION_METRICS = ("representativeness", "jensen_shannon", "total_variation")


def _table(header: list, rows: list[list]) -> list[str]:  # type: ignore[type-arg]
    return [
        "| " + " | ".join(map(str, header)) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(map(str, row)) + " |" for row in rows),
    ]


def _paired_table(pairs: pl.DataFrame) -> list[str]:
    has_shots = "shots" in pairs.columns
    return _table(
        [
            "first",
            "second",
            *(["k"] if has_shots else []),
            "metric",
            "difference",
            "90% interval",
            "verdict",
        ],
        [
            [
                row["method"],
                row["versus"],
                *([row["shots"] if row["shots"] is not None else ""] if has_shots else []),
                row["metric"],
                f"{row['difference']:+.4f}",
                "" if row["lower"] is None else f"[{row['lower']:+.4f}, {row['upper']:+.4f}]",
                row["verdict"],
            ]
            for row in pairs.iter_rows(named=True)
        ],
    )


def _interval(rows: pl.DataFrame, k: int) -> str:
    at_k = rows.filter(pl.col("shots") == k)
    if at_k.is_empty():
        return ""
    row = at_k.row(0, named=True)
    if row["lower"] is None:
        return f"{row['estimate']:.3f}"
    return f"{row['estimate']:.3f} [{row['lower']:.3f}, {row['upper']:.3f}]"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--model", default=None, help="model folder (default: the default model)")
    parser.add_argument("--train", type=int, default=60, help="training respondents")
    parser.add_argument("--test", type=int, default=80, help="test respondents")
    parser.add_argument("--seed", type=int, default=0, help="seed of every split")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the tables")
    args = parser.parse_args()
    from survey_sim import TransformersEngine

    logging.getLogger("pymc").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    engine = TransformersEngine.from_pretrained(args.model)
    populations, individuals, paired, facts = [], [], [], {}
    for name in args.datasets:
        started = time.time()
        per_question, population_pairs = population_mode(name, engine, args.seed)
        scored, individual_pairs, facts[name] = individual_mode(
            name, engine, args.train, args.test, args.seed
        )
        populations.append(per_question)
        individuals.append(scored)
        paired += [
            population_pairs.rename({"source": "method"}).drop(
                "estimate", "reference", "questions"
            ),
            individual_pairs,
        ]
        print(f"{name}: {time.time() - started:.0f} s")
    population, individual = pl.concat(populations), pl.concat(individuals)
    pairs = pl.concat(paired, how="diagonal")
    args.results.mkdir(exist_ok=True, parents=True)
    population.write_csv(args.results / "fidelity.population.csv")
    individual.write_csv(args.results / "fidelity.individual.csv")
    pairs.write_csv(args.results / "fidelity.paired.csv")
    text = markdown(population, individual, pairs, facts)
    (args.results / "fidelity.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
