"""Plots of simulated against human answer distributions and of the calibration model
(PNG, via matplotlib)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from survey_sim._io import write_atomic
from survey_sim.analysis.models import coverage_by_question
from survey_sim.data.aligned import (
    answered_option_questions,
    leave_one_out_marginal,
    option_probs,
    shared_questions,
    simulated_distribution,
)
from survey_sim.data.responses import HumanResponses
from survey_sim.errors import InputError

if TYPE_CHECKING:
    import arviz as az


def plot_distributions(
    simulated: pl.DataFrame,
    human: HumanResponses,
    comparison: pl.DataFrame,
    path: str | Path,
    *,
    title: str | None = None,
    columns: int = 3,
    interval: float = 0.9,
) -> Path:
    """One small bar chart per compared question: human shares (with their sampling
    interval, from the effective sample size) beside simulated probabilities, the uniform
    distribution as a dashed line and the human marginal of the other questions as ticks.
    Each panel names the question (id and the start of its wording), the respondents who
    answered, and its scores from ``comparison`` (:func:`survey_sim.evaluate.metrics.compare`):
    the model's representativeness and total variation beside the human-marginal reference
    and the noise floor. ``title`` says what was compared (model, population, data).
    """
    figure = distributions_figure(
        simulated, human, comparison, title=title, columns=columns, interval=interval
    )
    return _save(figure, path, legend_inches=LEGEND_INCHES)


LEGEND_INCHES = 0.35
"""Room kept at the bottom of a figure for a legend of one row."""


def distributions_figure(
    simulated: pl.DataFrame,
    human: HumanResponses,
    comparison: pl.DataFrame,
    *,
    title: str | None = None,
    columns: int = 3,
    interval: float = 0.9,
) -> Any:
    """The figure :func:`plot_distributions` saves (a matplotlib ``Figure``, laid out)."""
    plt = _pyplot()
    people = human.distribution()
    model = simulated_distribution(simulated)
    questions = shared_questions(model, people, human)
    every = answered_option_questions(people, human)
    human_probs = {q.id: option_probs(people, q) for q in every}
    wordings = _distinct_wordings([q.text for q in questions])
    z = NormalDist().inv_cdf(0.5 + interval / 2)
    rows = math.ceil(len(questions) / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(4.3 * columns, 3.1 * rows), squeeze=False, sharey=True
    )
    for axis, question in zip(axes.flat, questions, strict=False):
        answered = people.filter(pl.col("question_id") == question.id)
        shares = np.array(human_probs[question.id])
        n_effective = float(answered["n_effective"][0])
        spread = z * np.sqrt(shares * (1 - shares) / n_effective)
        positions = np.arange(len(question.options))
        axis.bar(positions - 0.2, shares, width=0.4, yerr=spread, capsize=2, label="people")
        axis.bar(positions + 0.2, option_probs(model, question), width=0.4, label="simulated")
        axis.axhline(1 / len(positions), color="grey", linestyle="--", linewidth=0.8)
        marginal = leave_one_out_marginal(question, every, human_probs)
        if marginal is not None:
            axis.scatter(positions - 0.2, marginal, marker="_", s=200, color="black", zorder=3)
        _option_ticks(axis, [o.text for o in question.options])
        scores = {
            row["source"]: row
            for row in comparison.filter(pl.col("question_id") == question.id).iter_rows(named=True)
        }
        axis.set_title(
            f"{question.id}: {_short(wordings[question.text], 48)}\n"
            f"{_sample_size(answered)}  repr {_score(scores, 'model')} "
            f"(marginal {_score(scores, 'human_marginal')}, noise floor "
            f"{_score(scores, 'noise_floor')})  TV {scores['model']['total_variation']:.2f}",
            fontsize=8,
        )
    for axis in list(axes.flat)[len(questions) :]:
        axis.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    handles += [
        plt.Line2D([], [], color="grey", linestyle="--", linewidth=0.8),
        plt.Line2D([], [], color="black", marker="_", linestyle="none", markersize=12),
    ]
    labels += ["uniform", "human marginal of the other questions"]
    figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    figure.suptitle(
        (textwrap.fill(title, 160) + "\n" if title else "")
        + f"people: {interval:.0%} sampling intervals; repr: representativeness",
        fontsize=9,
    )
    _lay_out(figure, LEGEND_INCHES)
    return figure


def _option_ticks(axis: Any, texts: list[str]) -> None:
    """Option labels under the bars: wrapped under few options, upright under many (a long
    scale's end labels would run into their neighbours)."""
    positions = list(range(len(texts)))
    if len(texts) <= 4:
        labels = [textwrap.fill(_short(text, 40), 14) for text in texts]
        axis.set_xticks(positions, labels, fontsize=7)
        return
    axis.set_xticks(positions, [_short(text, 18) for text in texts], fontsize=7, rotation=90)


LABELLED_POINTS = 15
"""Calibration points named by question up to this many (more would cover each other)."""


def plot_calibration(idata: az.InferenceData, predictions: pl.DataFrame, path: str | Path) -> Path:
    """The calibration posterior and its held-out interval coverage, side by side.

    Left: the posterior of ``alpha`` (0: the simulated probabilities carry no signal about
    people, 1: they are right as they are). Right: every held-out question's free shares
    (all options but the last, which the others fix: a yes/no question is one point), the
    calibrated prediction and its interval against the observed human share, labelled by
    question; intervals that miss the diagonal are drawn in red.

    Args:
        idata: A :meth:`survey_sim.analysis.Calibration.fit` posterior.
        predictions: :meth:`~survey_sim.analysis.Calibration.predict` or
            :meth:`~survey_sim.analysis.Calibration.held_out` rows.
    """
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    alpha = idata.posterior["alpha"].values.reshape(-1)
    sigma = float(idata.posterior["sigma"].mean())
    left.hist(alpha, bins=40, color="tab:blue", alpha=0.8)
    for reference, label in [(0, "no signal"), (1, "as simulated")]:
        left.axvline(reference, color="grey", linestyle="--", linewidth=1)
        left.text(reference, left.get_ylim()[1] * 0.95, f" {label}", fontsize=8, va="top")
    left.set_title(f"alpha posterior (mean {alpha.mean():.2f}); sigma {sigma:.2f}", fontsize=10)
    left.set_xlabel("alpha: how far human log-odds follow the simulated ones")
    left.set_yticks([])

    free = predictions.filter(pl.col("free"))
    covered = free["covered"].to_numpy()
    for mask, colour, meaning in [
        (covered, "tab:blue", "interval holds the human share"),
        (~covered, "tab:red", "interval misses it"),
    ]:
        rows = free.filter(pl.Series(mask))
        middle = rows["predicted"].to_numpy()
        spans = np.vstack([middle - rows["lower"].to_numpy(), rows["upper"].to_numpy() - middle])
        right.errorbar(
            rows["human"],
            middle,
            yerr=spans,
            fmt="o",
            color=colour,
            markersize=3,
            label=f"{meaning} ({rows.height})",
        )
    if free.height <= LABELLED_POINTS:
        several = free["option_code"].n_unique() > 1
        for row in free.iter_rows(named=True):
            label = row["question_id"] + (f" {row['option_code']}" if several else "")
            right.annotate(
                label,
                (row["human"], row["predicted"]),
                fontsize=6,
                xytext=(3, 2),
                textcoords="offset points",
            )
    values = np.concatenate([free[name].to_numpy() for name in ("human", "lower", "upper")])
    low, high = float(values.min()), float(values.max())
    pad = 0.05 * (high - low or 1.0)
    limits = (max(0.0, low - pad), min(1.0, high + pad))
    right.set_xlim(limits)
    right.set_ylim(limits)
    right.plot(
        limits, limits, color="grey", linestyle="--", linewidth=1, label="prediction = share"
    )
    right.legend(fontsize=7, loc="upper left")
    right.set_xlabel("human share (held-out question)")
    level = free["interval"][0]
    right.set_ylabel(f"calibrated prediction, {level:.0%} interval")
    questions = coverage_by_question(predictions)
    right.set_title(
        f"held out: {int(covered.sum())} of {len(covered)} free shares inside their "
        f"{level:.0%} interval;\n{int(questions['all_covered'].sum())} of {questions.height} "
        "questions wholly",
        fontsize=10,
    )
    return _save(figure, path)


def _sample_size(answered: pl.DataFrame) -> str:
    """``n=N``, and the Kish effective n where weights make it smaller."""
    n, effective = int(answered["n"][0]), float(answered["n_effective"][0])
    return f"n={n:,}" if round(effective) >= n else f"n={n:,} (effective {effective:,.0f})"


def plot_gaps(gaps: pl.DataFrame, path: str | Path, *, by: str, title: str | None = None) -> Path:
    """How far apart subgroups answer in the simulation against among people
    (:func:`survey_sim.evaluate.metrics.subgroup_gaps`): one point per question and pair of
    groups, labelled by question; on the diagonal the simulation separates the groups as
    much as people do, near the floor it does not tell them apart. Hollow points move the
    wrong way (the simulation's difference points against people's)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 5.2))
    largest = max(0.05, gaps.select(pl.max_horizontal(pl.col("people", "model").max())).item())
    for (a, b), rows in gaps.group_by("group_a", "group_b", maintain_order=True):
        wrong = rows["same_direction"].eq(False).to_numpy()
        points = axis.scatter(
            rows["people"].filter(~wrong), rows["model"].filter(~wrong), label=f"{a} vs {b}", s=22
        )
        axis.scatter(
            rows["people"].filter(wrong),
            rows["model"].filter(wrong),
            s=22,
            facecolors="none",
            edgecolors=points.get_facecolor(),
        )
        for row in rows.iter_rows(named=True):
            axis.annotate(
                row["question_id"],
                (row["people"], row["model"]),
                fontsize=6,
                xytext=(3, 2),
                textcoords="offset points",
            )
    axis.plot([0, largest * 1.05], [0, largest * 1.05], color="grey", linestyle="--", linewidth=1)
    axis.set_xlabel(f"people: total variation between the {by} groups")
    axis.set_ylabel(f"simulation: total variation between the {by} groups")
    axis.set_title(
        (textwrap.fill(title, 80) + "\n" if title else "") + f"Gaps between {by} groups "
        "(hollow: the simulation moves the other way)",
        fontsize=9,
    )
    axis.legend(fontsize=7)
    return _save(figure, path)


MEASURE_NAMES = {
    "cramers_v": "Cramér's V",
    "tau_b": "Kendall's tau-b",
    "polychoric": "polychoric correlation",
}


def plot_associations(
    associations: pl.DataFrame,
    path: str | Path,
    *,
    measure: str,
    title: str | None = None,
    interval: float = 0.9,
) -> Path:
    """Association between every pair of questions among people and in the simulation, as
    two heat-maps on one colour scale, and their difference (simulation − people) on a
    scale of its own; differences whose interval excludes zero are marked with a dot.
    ``associations`` has rows of
    :attr:`survey_sim.evaluate.joints.JointComparison.associations`; pairs without
    ``measure`` (a nominal question for an ordinal measure) stay blank; ``interval`` is the
    level of the rows' intervals."""
    plt = _pyplot()
    rows = associations.filter(pl.col("measure") == measure)
    if rows.is_empty():
        raise InputError("associations", f"no pair has the measure {measure!r}")
    questions = list(dict.fromkeys([*associations["first"], *associations["second"]]))
    index = {question: i for i, question in enumerate(questions)}
    size = len(questions)
    grids = {name: np.full((size, size), np.nan) for name in ("people", "model", "difference")}
    credible = np.zeros((size, size), dtype=bool)
    for row in rows.iter_rows(named=True):
        i, j = index[row["first"]], index[row["second"]]
        for name, grid in grids.items():
            grid[i, j] = grid[j, i] = row[name]
        credible[i, j] = credible[j, i] = row["verdict"] != "no clear difference"
    signed = measure != "cramers_v"
    low = -1.0 if signed else 0.0
    largest = float(np.nanmax(np.abs(grids["difference"]))) or 1.0
    figure, axes = plt.subplots(1, 3, figsize=(12.6, 3.4 + 0.1 * size))
    panels = [
        ("people", "People", "RdBu_r" if signed else "viridis", low, 1.0),
        ("model", "Simulation", "RdBu_r" if signed else "viridis", low, 1.0),
        ("difference", "Simulation − people", "PuOr_r", -largest, largest),
    ]
    for axis, (name, label, colours, vmin, vmax) in zip(axes, panels, strict=True):
        image = axis.imshow(grids[name], cmap=colours, vmin=vmin, vmax=vmax)
        axis.set_xticks(range(size), questions, rotation=90, fontsize=7)
        axis.set_yticks(range(size), questions, fontsize=7)
        axis.set_title(label, fontsize=9)
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
        if size <= 12:
            for i, j in zip(*np.nonzero(~np.isnan(grids[name])), strict=True):
                axis.text(j, i, f"{grids[name][i, j]:.2f}", ha="center", va="center", fontsize=6)
        if name == "difference":
            marked = np.nonzero(credible)
            axis.scatter(marked[1], marked[0] + 0.3, s=5, color="black")
    figure.suptitle(
        (textwrap.fill(title, 110) + "\n" if title else "")
        + f"{MEASURE_NAMES.get(measure, measure)} per pair of questions (blank: not defined "
        f"for the pair); dot: the difference's {interval:.0%} interval excludes 0",
        fontsize=9,
    )
    return _save(figure, path)


def _short(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _distinct_wordings(texts: list[str]) -> dict[str, str]:
    """Each text without the words every text starts with ("Should it be possible for ...
    if she is married" -> "... if she is married"), so that short labels tell them apart."""
    words = [text.split() for text in texts]
    shared = 0
    if len(words) > 1:
        while all(len(w) > shared + 1 and w[shared] == words[0][shared] for w in words):
            shared += 1
    if shared < 3:
        return {text: text for text in texts}
    return {text: "… " + " ".join(w[shared:]) for text, w in zip(texts, words, strict=True)}


def _score(scores: dict[str, dict[str, Any]], source: str) -> str:
    value = scores.get(source, {}).get("representativeness")
    return "-" if value is None else f"{value:.2f}"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _lay_out(figure: Any, legend_inches: float = 0.0) -> None:
    """Tight layout, keeping ``legend_inches`` at the bottom for a figure legend."""
    figure.tight_layout(rect=(0, legend_inches / figure.get_figheight(), 1, 1))


def _save(figure: Any, path: str | Path, *, legend_inches: float = 0.0) -> Path:
    import matplotlib.pyplot as plt

    _lay_out(figure, legend_inches)
    written = write_atomic(
        Path(path), lambda temporary: figure.savefig(temporary, format="png", dpi=110)
    )
    plt.close(figure)
    return written


def plot_learning_curve(
    report: pl.DataFrame, path: str | Path, *, metric: str = "log_loss", title: str | None = None
) -> Path:
    """``metric`` against the number of shown answers k, one line per method with its
    bootstrap interval as a band, from an individual evaluation's ``report``
    (:func:`survey_sim.evaluate_individuals`); the title gives the test respondents and
    ``title`` (say, the model and the data)."""
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
    respondents = int(chosen.select(pl.col("respondents").max()).item())
    axis.set_title(
        (textwrap.fill(title, 90) + "\n" if title else "")
        + f"Held-out answers of {respondents:,} test respondents: "
        f"{metric.replace('_', '-')} by k (bands: bootstrap intervals)",
        fontsize=9,
    )
    axis.legend(fontsize=8, ncol=2)
    return _save(figure, path)


def plot_loss_history(history: pl.DataFrame, path: str | Path, *, best: int | None = None) -> Path:
    """Training and validation loss against the step, from a tuning run's ``history``
    (:class:`survey_sim.tune.TuningResult`), with the kept checkpoint (``best``) marked."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for (split,), rows in history.group_by("split", maintain_order=True):
        marker = "o" if split == "validation" else None
        axis.plot(rows["step"].to_numpy(), rows["loss"].to_numpy(), marker=marker, label=split)
    if best is not None:
        axis.axvline(best, color="grey", linestyle=":", label=f"kept (step {best})")
    axis.set_xlabel("training step")
    axis.set_ylabel("loss")
    axis.set_title("Tuning: training and validation loss")
    axis.legend(fontsize=8)
    return _save(figure, path)
