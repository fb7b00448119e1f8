"""Plots of simulated against human answer distributions (PNG, via matplotlib)."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl

from survey_sim.human import HumanResponses
from survey_sim.metrics import compare
from survey_sim.questionnaire import OptionsQuestion


def plot_distributions(
    simulated: pl.DataFrame, human: HumanResponses, path: str | Path, *, columns: int = 3
) -> Path:
    """One small bar chart per question: human shares beside simulated probabilities,
    titled with the question's representativeness (or total variation when not ordinal)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    comparison = compare(simulated, human, splits=1).filter(pl.col("source") == "model")
    people = human.distribution()
    model = simulated.group_by("question_id", "option_code").agg(pl.col("prob").mean())
    questions = [
        q
        for q in human.questionnaire
        if isinstance(q, OptionsQuestion) and q.id in set(comparison["question_id"])
    ]
    rows = math.ceil(len(questions) / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(4 * columns, 2.6 * rows), squeeze=False, sharey=True
    )
    for axis, question in zip(axes.flat, questions, strict=False):
        codes = [o.code for o in question.options]
        shares = [_prob(people, question.id, code) for code in codes]
        simulated_probs = [_prob(model, question.id, code) for code in codes]
        positions = range(len(codes))
        axis.bar([x - 0.2 for x in positions], shares, width=0.4, label="human")
        axis.bar([x + 0.2 for x in positions], simulated_probs, width=0.4, label="simulated")
        axis.set_xticks(list(positions), [o.text for o in question.options], fontsize=7)
        score = comparison.filter(pl.col("question_id") == question.id).row(0, named=True)
        metric = (
            f"repr {score['representativeness']:.2f}"
            if score["representativeness"] is not None
            else f"TV {score['total_variation']:.2f}"
        )
        axis.set_title(f"{question.id} ({metric})", fontsize=9)
    for axis in list(axes.flat)[len(questions) :]:
        axis.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _prob(frame: pl.DataFrame, question_id: str, code: str) -> float:
    match = frame.filter(pl.col("question_id") == question_id, pl.col("option_code") == code)
    return float(match["prob"][0]) if match.height else 0.0
