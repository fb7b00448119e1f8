"""The one weighted aggregation of answer distributions.

Every answer distribution survey-sim reports is an aggregate of *units*: personas (each with
a simulated distribution over a question's outcomes) or respondents (each with one answer: a
distribution that puts 1 on the chosen option). A group's distribution is the weighted mean
of its units' distributions,

    P(outcome | question, group) = Σ_units w · p_unit(outcome) / Σ_units w,

over the units that answered the question. A unit's several rows for one outcome (the same
question asked in several option orders) are averaged first, with equal weight. The
population distribution, subgroup distributions, human answer shares and persona-cell shares
all come from :func:`weighted_distribution`.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

PROBABILITY_FLOOR = 1e-6
"""Predicted probabilities are floored here before log-losses and log-odds (then
renormalised), so that a zero never becomes an infinite loss."""


def weighted_distribution(
    frame: pl.DataFrame,
    *,
    unit: str,
    outcome: Sequence[str],
    by: Sequence[str] = (),
    values: Sequence[str] = (),
    outcomes: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Weighted mean of units' distributions per ``by`` group, question and outcome.

    Args:
        frame: One row per unit × question × outcome the unit gives probability to, with
            columns ``unit``, ``weight``, ``question_id``, the ``outcome`` columns, ``prob``,
            ``by`` and ``values``.
        unit: The column naming the unit (``persona_id``, ``respondent_id``).
        outcome: Columns that identify an outcome within a question (``option_code``, and
            any descriptive columns carried along with it).
        by: Grouping columns (demographic attributes).
        values: Other per-row numbers averaged like ``prob`` (null if any unit lacks them).
        outcomes: Every outcome of every question (``question_id``, ``outcome``...), to
            report outcomes no unit chose with probability 0, in this frame's order.

    Returns:
        ``by``..., ``question_id``, ``outcome``..., ``prob``, ``values``..., ``units``
        (units that answered the question) and ``n_effective`` (Kish effective sample size
        of the units, (Σw)² / Σw²).
    """
    question = [*by, "question_id"]
    per_unit = frame.group_by(unit, "weight", *question, *outcome, maintain_order=True).agg(
        pl.col("prob", *values).mean()
    )
    totals = (
        per_unit.unique([*question, unit], maintain_order=True)
        .group_by(question, maintain_order=True)
        .agg(
            total=pl.col("weight").sum(),
            units=pl.len(),
            n_effective=kish_effective_n(pl.col("weight")),
        )
    )
    averaged = [
        pl.when(pl.col(name).is_null().any())
        .then(None)
        .otherwise((pl.col(name) * pl.col("weight")).sum())
        .alias(name)
        for name in values
    ]
    mass = per_unit.group_by(*question, *outcome, maintain_order=True).agg(
        (pl.col("prob") * pl.col("weight")).sum(), *averaged
    )
    if outcomes is not None:
        order = outcomes.with_row_index("_order")
        groups = totals.select(question).join(order, on="question_id")
        mass = (
            groups.join(mass, on=[*question, *outcome], how="left")
            .with_columns(pl.col("prob").fill_null(0.0))
            .sort(*by, "_order")
            .drop("_order")
        )
    return (
        mass.join(totals, on=question, maintain_order="left")
        .with_columns((pl.col(name) / pl.col("total")).alias(name) for name in ["prob", *values])
        .select(*question, *outcome, "prob", *values, "units", "n_effective")
    )


def persona_weighted(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Per ``keys`` group, the mean of ``prob`` over the personas' rows weighted by their
    ``weight`` (a joint's or an arm's population table: every persona has every outcome),
    with ``model`` and ``format`` carried where the frame has them."""
    carried = [c for c in ("model", "format") if c in frame.columns]
    return frame.group_by(keys, maintain_order=True).agg(
        ((pl.col("prob") * pl.col("weight")).sum() / pl.col("weight").sum()).alias("prob"),
        *(pl.col(c).first() for c in carried),
    )


def kish_effective_n(weights: pl.Expr) -> pl.Expr:
    """Kish's effective sample size of ``weights``: (Σw)² / Σw² (n without weights)."""
    return weights.sum() ** 2 / (weights**2).sum()
