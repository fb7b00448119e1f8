"""Joint structure against people: the exact joints of question pairs
(:func:`survey_sim.runs.joints.joint`) beside people's weighted cross-tabs.

Per pair, :func:`compare_joints` scores the model's population joint against people's
cross-tab (Jensen-Shannon divergence and total variation over the cells) beside references:

* ``personas_only``: each persona's two marginals multiplied, then weighted over the
  personas: the joint the model would give if, within a persona, the second answer ignored
  the first. What the model's association owes to the personas differing from each other;
* ``model_independence``: the product of the model's population marginals (no association
  at all; what the model's marginals alone give);
* ``human_independence``: the product of people's marginals (a simulator with perfect
  marginals and no association);
* ``noise_floor``: what people's true joint would score against a sample of this many
  (effective) respondents who answered both questions.

and measures association in both (:mod:`survey_sim._association`): Cramér's V for every
pair (people's bias-corrected by the bootstrap: a sample's plain V is biased upward, so a
model with people's true joint would read as "lower"), Kendall's tau-b and the polychoric
correlation where both questions are ordinal (over the options on their scales). People's
association gets a basic bootstrap interval over respondents (resampled with their weights),
and so does the model's difference from it (the model's joint is exact for its personas: the
interval is people's sampling error).
Respondents who answered both questions of a pair count; the model's joint is over all
options, people's over the options they chose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import polars as pl

from survey_sim._association import association, cramers_v_of, measures_of, phi_squared
from survey_sim.data.crosstabs import CrossTabs
from survey_sim.data.responses import HumanResponses
from survey_sim.data.splits import seeded_rng
from survey_sim.errors import InputError
from survey_sim.evaluate.metrics import (
    jensen_shannon_rows,
    paired_differences,
    total_variation_rows,
)
from survey_sim.evaluate.paired import bootstrap_weight_chunks, interval_of
from survey_sim.runs.joints import ASKED_ORDERS, JointResult
from survey_sim.runs.paths import choice_questions

JOINT_SOURCES = ("model", "personas_only", "model_independence", "human_independence")
"""What is scored against people's cross-tab (besides the noise floor)."""
JOINT_METRICS = ("jensen_shannon", "total_variation")

SCORES_SCHEMA: dict[str, pl.DataType] = {
    "first": pl.String(),
    "second": pl.String(),
    "pair": pl.String(),
    "source": pl.String(),
    "jensen_shannon": pl.Float64(),
    "total_variation": pl.Float64(),
    "n": pl.Int64(),
    "n_effective": pl.Float64(),
}
ASSOCIATIONS_SCHEMA: dict[str, pl.DataType] = {
    "first": pl.String(),
    "second": pl.String(),
    "pair": pl.String(),
    "measure": pl.String(),
    "people": pl.Float64(),
    "people_lower": pl.Float64(),
    "people_upper": pl.Float64(),
    "model": pl.Float64(),
    "personas_only": pl.Float64(),
    "difference": pl.Float64(),
    "difference_lower": pl.Float64(),
    "difference_upper": pl.Float64(),
    "verdict": pl.String(),
    "n": pl.Int64(),
    "n_effective": pl.Float64(),
}


@dataclass(frozen=True)
class JointComparison:
    """The joints of question pairs against people's cross-tabs (module docstring).

    Attributes:
        scores: One row per pair × source (:data:`JOINT_SOURCES`, ``noise_floor``):
            ``jensen_shannon`` and ``total_variation`` against people's cross-tab, ``n``
            (respondents who answered both) and ``n_effective`` (their Kish effective n).
        associations: One row per pair × measure: people's value and its ``interval``
            (``people_lower``, ``people_upper``), the model's, the ``personas_only``
            reference's, ``difference`` (model − people) with its interval, and
            ``verdict`` (``model higher``, ``model lower``, ``no clear difference``).
        paired: The model against each reference over the pairs, paired
            (:func:`~survey_sim.evaluate.metrics.paired_differences` with pairs as units;
            pairs share questions, so the interval is optimistic where they do).
        asked: Which asking order of the joints was compared.
        interval: The level of every interval.
    """

    scores: pl.DataFrame
    associations: pl.DataFrame
    paired: pl.DataFrame
    asked: str
    interval: float

    def summary(self) -> pl.DataFrame:
        """Mean scores over the pairs, one row per source."""
        return self.scores.group_by("source", maintain_order=True).agg(
            pairs=pl.len(), **{metric: pl.col(metric).mean() for metric in JOINT_METRICS}
        )

    def association_summary(self) -> pl.DataFrame:
        """Per measure, over the pairs: mean association among people and in the model,
        their correlation across pairs (does the model know which pairs go together more?
        null under three pairs), the mean absolute difference, and how many pairs the model
        is credibly higher, lower, or not clearly different."""
        return self.associations.group_by("measure", maintain_order=True).agg(
            pairs=pl.len(),
            people=pl.col("people").mean(),
            model=pl.col("model").mean(),
            correlation=pl.when(pl.len() >= 3).then(pl.corr("people", "model")),
            mean_absolute_difference=pl.col("difference").abs().mean(),
            model_higher=(pl.col("verdict") == "model higher").sum(),
            model_lower=(pl.col("verdict") == "model lower").sum(),
            no_clear_difference=(pl.col("verdict") == "no clear difference").sum(),
        )


def compare_joints(
    joints: JointResult,
    human: HumanResponses,
    *,
    asked: str = "average",
    resamples: int = 200,
    interval: float = 0.9,
    seed: int = 0,
) -> JointComparison:
    """Score exact joints against people's weighted cross-tabs (module docstring).

    Args:
        joints: Joints of question pairs (:func:`~survey_sim.runs.joints.joint`).
        human: People's answers to the same questionnaire's questions (weighted if they
            carry weights).
        asked: The joints' asking order compared (:data:`~survey_sim.runs.joints.ASKED_ORDERS`).
        resamples: Bootstrap resamples of the respondents, and samples of the noise floor.
        interval: Level of the intervals.
        seed: Seed of the resampling.

    Raises:
        InputError: an unknown asking order, or no pair that people answered; before any
            computation.
    """
    if asked not in ASKED_ORDERS:
        raise InputError("joints", f"asked must be one of {', '.join(ASKED_ORDERS)}, not {asked!r}")
    chosen = joints.joints.filter(pl.col("asked") == asked)
    people = CrossTabs(human)
    pairs = [
        (first, second)
        for first, second in chosen.select("first", "second").unique(maintain_order=True).rows()
        if people.answered(first) and people.answered(second)
    ]
    if not pairs:
        raise InputError(
            human.source,
            "no pair of these joints has answers to both of its questions here (joints of "
            f"{', '.join(sorted(set(chosen['first']) | set(chosen['second'])))})",
        )
    rng = seeded_rng(seed, "joint noise floor")
    scores: list[dict[str, object]] = []
    associations: list[dict[str, object]] = []
    for first, second in pairs:
        first_question, second_question = choice_questions(
            human.questionnaire, [first, second], human.source
        )
        questions = (first_question, second_question)
        weights, tables = joints.tables(*questions, asked)
        counts = bootstrap_weight_chunks(people.respondents, resamples, seed)  # same each pair
        crosstab = people.of(*questions, counts)
        observed, n, n_effective = crosstab.shares, crosstab.n, crosstab.n_effective
        model = np.einsum("p,pij->ij", weights, tables)
        sources = {
            "model": model,
            "personas_only": np.einsum(
                "p,pi,pj->ij", weights, tables.sum(axis=2), tables.sum(axis=1)
            ),
            "model_independence": np.outer(model.sum(axis=1), model.sum(axis=0)),
            "human_independence": np.outer(observed.sum(axis=1), observed.sum(axis=0)),
        }
        size = max(1, round(n_effective))
        samples = rng.multinomial(size, observed.ravel(), size=resamples) / size
        floor = {
            "jensen_shannon": float(jensen_shannon_rows(observed.ravel(), samples).mean()),
            "total_variation": float(total_variation_rows(observed.ravel(), samples).mean()),
        }
        pair = {"first": first, "second": second, "pair": f"{first} × {second}"}
        sizes = {"n": n, "n_effective": n_effective}
        for source, table in sources.items():
            scores.append(
                {
                    **pair,
                    "source": source,
                    "jensen_shannon": float(jensen_shannon_rows(observed.ravel(), table.ravel())),
                    "total_variation": float(total_variation_rows(observed.ravel(), table.ravel())),
                    **sizes,
                }
            )
        scores.append({**pair, "source": "noise_floor", **floor, **sizes})
        for measure, rows, columns in measures_of(*questions):
            people_value, lower, upper = _people_association(
                measure, observed, crosstab.resampled, rows, columns, interval
            )
            model_value = _association_of(measure, model, rows, columns)
            difference_lower, difference_upper = model_value - upper, model_value - lower
            associations.append(
                {
                    **pair,
                    "measure": measure,
                    "people": people_value,
                    "people_lower": lower,
                    "people_upper": upper,
                    "model": model_value,
                    "personas_only": _association_of(
                        measure, sources["personas_only"], rows, columns
                    ),
                    "difference": model_value - people_value,
                    "difference_lower": difference_lower,
                    "difference_upper": difference_upper,
                    "verdict": "model higher"
                    if difference_lower > 0
                    else "model lower"
                    if difference_upper < 0
                    else "no clear difference",
                    **sizes,
                }
            )
    score_frame = pl.DataFrame(scores, schema=SCORES_SCHEMA)
    paired = paired_differences(
        score_frame,
        "model",
        JOINT_SOURCES[1:],
        metrics=JOINT_METRICS,
        interval=interval,
        seed=seed,
        unit="pair",
    ).rename({"questions": "pairs"})
    return JointComparison(
        score_frame,
        pl.DataFrame(associations, schema=ASSOCIATIONS_SCHEMA),
        paired,
        asked,
        interval,
    )


def _kept(
    table: np.ndarray, rows: Sequence[int], columns: Sequence[int]
) -> tuple[list[int], list[int]]:
    """The rows and columns of ``table`` among those given that hold any probability."""
    part = table[np.ix_(rows, columns)]
    kept_rows = [r for r, total in zip(rows, part.sum(axis=1), strict=True) if total > 0]
    kept_columns = [c for c, total in zip(columns, part.sum(axis=0), strict=True) if total > 0]
    return kept_rows, kept_columns


def _shares(tables: np.ndarray) -> np.ndarray:
    shares: np.ndarray = tables / tables.sum(axis=(-2, -1), keepdims=True)
    return shares


def _association_of(
    measure: str, table: np.ndarray, rows: Sequence[int], columns: Sequence[int]
) -> float:
    """``measure`` of an exact ``table`` over ``rows`` × ``columns`` (those with
    probability; NaN with fewer than two of either)."""
    kept_rows, kept_columns = _kept(table, rows, columns)
    if len(kept_rows) < 2 or len(kept_columns) < 2:
        return float("nan")
    return float(association(measure, _shares(table[np.ix_(kept_rows, kept_columns)])))


def _people_association(
    measure: str,
    table: np.ndarray,
    resampled: np.ndarray,
    rows: Sequence[int],
    columns: Sequence[int],
    interval: float,
) -> tuple[float, float, float]:
    """``measure`` of a sample's ``table`` with its basic bootstrap interval (2·estimate −
    the resamples' upper and lower quantiles, within the measure's range), from the
    ``resampled`` tables where the measure is defined (a resample can lose every answer of
    a rare option). Cramér's V is bias-corrected by the bootstrap on φ² (2·φ² − the
    resamples' mean) and its interval taken on φ²: a sample's plain V is biased upward, most
    near independence (0.04 for independent 5 × 5 items and 3,000 respondents), so a
    simulation with people's true joint would read as "lower"."""
    kept_rows, kept_columns = _kept(table, rows, columns)
    if len(kept_rows) < 2 or len(kept_columns) < 2:
        return float("nan"), float("nan"), float("nan")
    point = _shares(table[np.ix_(kept_rows, kept_columns)])
    parts = _shares(resampled[:, kept_rows][:, :, kept_columns])
    statistic = phi_squared if measure == "cramers_v" else partial(association, measure)
    value = float(statistic(point))
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.asarray(statistic(parts))
    values = values[np.isfinite(values)]
    high, low = interval_of(values, interval)[::-1]
    estimate, lower, upper = value, 2 * value - high, 2 * value - low
    if measure == "cramers_v":
        estimate = 2 * value - float(values.mean())
        return tuple(  # type: ignore[return-value]
            float(cramers_v_of(max(0.0, bound), point.shape)) for bound in (estimate, lower, upper)
        )
    return estimate, max(-1.0, lower), min(1.0, upper)
