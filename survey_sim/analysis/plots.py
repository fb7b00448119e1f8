"""Plots of simulated against human answer distributions and of the calibration model
(PNG, via matplotlib)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from survey_sim._io import write_atomic
from survey_sim.data.responses import HumanResponses
from survey_sim.evaluate.metrics import option_probs, shared_questions, simulated_distribution

if TYPE_CHECKING:
    import arviz as az


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
    not ordinal) from ``comparison`` (:func:`survey_sim.evaluate.metrics.compare`)."""
    plt = _pyplot()
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
    return _save(figure, path)


def plot_calibration(idata: az.InferenceData, predictions: pl.DataFrame, path: str | Path) -> Path:
    """The calibration posterior and its held-out interval coverage, side by side.

    Left: the posterior of ``alpha`` (0: the simulated probabilities carry no signal about
    people, 1: they are right as they are). Right: every held-out question x option, the
    calibrated prediction and its interval against the observed human share; intervals
    that miss the diagonal are drawn in red.

    Args:
        idata: A :meth:`survey_sim.analysis.Calibration.fit` posterior.
        predictions: :meth:`~survey_sim.analysis.Calibration.predict` or
            :meth:`~survey_sim.analysis.Calibration.held_out` rows.
    """
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    alpha = idata.posterior["alpha"].values.reshape(-1)
    sigma = float(idata.posterior["sigma"].mean())
    left.hist(alpha, bins=40, color="tab:blue", alpha=0.8)
    for reference, label in [(0, "no signal"), (1, "as simulated")]:
        left.axvline(reference, color="grey", linestyle="--", linewidth=1)
        left.text(reference, left.get_ylim()[1] * 0.95, f" {label}", fontsize=8, va="top")
    left.set_title(f"alpha posterior (mean {alpha.mean():.2f}); sigma {sigma:.2f}", fontsize=10)
    left.set_xlabel("alpha: how far human log-odds follow the simulated ones")
    left.set_yticks([])

    covered = predictions["covered"].to_numpy()
    for mask, colour in [(covered, "tab:blue"), (~covered, "tab:red")]:
        rows = predictions.filter(pl.Series(mask))
        middle = rows["predicted"].to_numpy()
        spans = np.vstack([middle - rows["lower"].to_numpy(), rows["upper"].to_numpy() - middle])
        right.errorbar(rows["human"], middle, yerr=spans, fmt="o", color=colour, markersize=3)
    right.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    right.set_xlabel("human share (held out)")
    right.set_ylabel("calibrated prediction and interval")
    right.set_title(
        f"held-out intervals cover {int(covered.sum())} of {len(covered)} shares", fontsize=10
    )
    return _save(figure, path)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    written = write_atomic(
        Path(path), lambda temporary: figure.savefig(temporary, format="png", dpi=110)
    )
    plt.close(figure)
    return written


def plot_learning_curve(
    report: pl.DataFrame, path: str | Path, *, metric: str = "log_loss"
) -> Path:
    """``metric`` against the number of shown answers k, one line per method with its
    bootstrap interval as a band, from an individual evaluation's ``report``
    (:func:`survey_sim.evaluate_individuals`)."""
    plt = _pyplot()
    chosen = report.filter(pl.col("metric") == metric).sort("shots")
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for (method,), rows in chosen.group_by("method", maintain_order=True):
        shots = rows["shots"].to_numpy()
        (line,) = axis.plot(shots, rows["estimate"].to_numpy(), marker="o", label=str(method))
        axis.fill_between(
            shots,
            rows["lower"].to_numpy(),
            rows["upper"].to_numpy(),
            alpha=0.15,
            color=line.get_color(),
        )
    axis.set_xscale("symlog", linthresh=1)
    ticks = sorted(set(chosen["shots"].to_list()))
    axis.set_xticks(ticks, [str(k) for k in ticks])
    axis.set_xlabel("answers shown (k)")
    axis.set_ylabel(metric.replace("_", "-"))
    axis.set_title(f"Held-out answers of test respondents: {metric.replace('_', '-')} by k")
    axis.legend(fontsize=8, ncol=2)
    return _save(figure, path)
