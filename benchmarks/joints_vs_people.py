"""Joint structure against people: the exact joints of every pair of a survey's mapped
questions against people's cross-tabs.

    python benchmarks/joints_vs_people.py [--model PATH] [--by party] [--questions N]

For GSS 2018 spending (the 7 items with valid targets) and CCES 2016 (racial attitudes and
religiosity: ordinal and nominal items), the persona cells of ``--by`` (post-stratified to
the sample) answer every pair of questions in both asking orders (:func:`survey_sim.joint`);
:func:`survey_sim.evaluate.joints.compare_joints` scores the averaged joint against people's
weighted cross-tab beside the references (personas only, model and human independence, the
noise floor) and compares association per pair with 90% bootstrap intervals over
respondents. Writes ``benchmarks/results/joints.md`` (the tables the README links to) and
``joints.associations.csv`` (every pair and measure). Nothing is fitted: the model sees no
human answer.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import polars as pl

RESULTS = Path(__file__).with_name("results")
DATASETS = ("gss_spending_2018", "cces_2016")


def markdown(frame: pl.DataFrame) -> str:
    """A frame as a Markdown table (floats to 3 decimals)."""
    columns = frame.columns
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.iter_rows():
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model (default: the default model)")
    parser.add_argument("--by", default="party", help="persona cell attributes (default: party)")
    parser.add_argument(
        "--questions", type=int, default=None, help="the first N mapped questions (default: all)"
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--resamples", type=int, default=200, help="bootstrap resamples (200)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="output folder")
    args = parser.parse_args()

    from survey_sim import HUMAN_DATASETS, ChoiceQuestion, TransformersEngine, joint
    from survey_sim.evaluate.joints import compare_joints

    engine = TransformersEngine.from_pretrained(args.model)
    sections = [
        "# Joint structure against people\n",
        f"`python benchmarks/joints_vs_people.py --by {args.by}` on {engine.model_id}: every pair "
        "of each survey's mapped questions, both asking orders averaged, persona cells by "
        f"{args.by} weighted like the sample. Intervals: 90%, {args.resamples} bootstrap "
        "resamples of the respondents (people) or of the pairs (paired rows).\n",
    ]
    every: list[pl.DataFrame] = []
    for name in args.datasets:
        human = HUMAN_DATASETS[name]()
        answered = set(human.frame["question_id"])
        questions = [
            q.id for q in human.questionnaire if isinstance(q, ChoiceQuestion) and q.id in answered
        ][: args.questions]
        pairs = list(itertools.combinations(questions, 2))
        population = human.population(args.by.split(","))
        started = time.perf_counter()
        joints = joint(human.questionnaire, population, engine, pairs, progress=False)
        seconds = time.perf_counter() - started
        compared = compare_joints(joints, human, resamples=args.resamples)
        measure = "tau_b" if "tau_b" in set(compared.associations["measure"]) else "cramers_v"
        every.append(compared.associations.with_columns(dataset=pl.lit(name)))
        sections += [
            f"## {name}: {len(questions)} questions, {len(pairs)} pairs, {len(population)} "
            f"personas ({seconds:.0f} s, results cache included)\n",
            "Mean over pairs, against people's cross-tab:\n",
            markdown(compared.summary()),
            "\nModel minus each reference, paired over pairs:\n",
            markdown(
                compared.paired.select(
                    "versus", "metric", "difference", "lower", "upper", "verdict"
                )
            ),
            "\nAssociation, model against people, per measure:\n",
            markdown(compared.association_summary()),
            f"\nPer pair ({measure}):\n",
            markdown(
                compared.associations.filter(pl.col("measure") == measure).select(
                    "pair",
                    "people",
                    "people_lower",
                    "people_upper",
                    "model",
                    "personas_only",
                    "verdict",
                    "n",
                )
            ),
            "",
        ]
        print(f"{name}: {len(pairs)} pairs")
        print(compared.summary())
        print(compared.association_summary())
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "joints.md").write_text("\n".join(sections) + "\n")
    pl.concat(every).write_csv(args.results / "joints.associations.csv")
    print(f"Wrote {args.results / 'joints.md'}")


if __name__ == "__main__":
    main()
