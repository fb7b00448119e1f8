"""Plots of simulated against human answer distributions (PNG, via matplotlib)."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl

from survey_sim.human import HumanResponses
from survey_sim.metrics import option_probs, shared_questions, simulated_distribution


def plot_distributions(
    simulated: pl.DataFrame,
    human: HumanResponses,
    comparison: pl.DataFrame,
    path: str | Path,
    *,
    columns: int = 3,
) -> Path:
    """One small bar chart per compared question: human shares beside simulated
    probabilities, titled with the question's representativeness (or total variation when
    not ordinal) from ``comparison`` (:func:`survey_sim.metrics.compare`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    people = human.distribution()
    model = simulated_distribution(simulated)
    questions = shared_questions(model, people, human)
    rows = math.ceil(len(questions) / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(4 * columns, 2.6 * rows), squeeze=False, sharey=True
    )
    for axis, question in zip(axes.flat, questions, strict=False):
        shares = option_probs(people, question)
        simulated_probs = option_probs(model, question)
        positions = range(len(question.options))
        axis.bar([x - 0.2 for x in positions], shares, width=0.4, label="human")
        axis.bar([x + 0.2 for x in positions], simulated_probs, width=0.4, label="simulated")
        axis.set_xticks(list(positions), [o.text for o in question.options], fontsize=7)
        score = comparison.filter(
            pl.col("question_id") == question.id, pl.col("source") == "model"
        ).row(0, named=True)
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
