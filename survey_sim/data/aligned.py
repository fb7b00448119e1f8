"""Simulated and human answer distributions side by side: the per-question probabilities
every comparison reads (metrics, calibration models, plots), aligned on the questions and
options both cover."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from survey_sim.data.responses import HumanResponses
from survey_sim.errors import InputError
from survey_sim.questionnaire import OptionsQuestion


def simulated_distribution(simulated: pl.DataFrame, by: Sequence[str] = ()) -> pl.DataFrame:
    """One probability (and coverage) per question × option code (and ``by`` group), from a
    distribution frame (e.g. ``SimulationResult.population``).

    Raises:
        InputError: the frame lacks a column, or holds several rows for one question and
            option (several models, formats or methods): compare one simulation at a time.
    """
    keys = [*by, "question_id", "option_code"]
    absent = [name for name in [*keys, "prob"] if name not in simulated.columns]
    if absent:
        raise InputError(
            "simulated distribution",
            f"no column {', '.join(absent)} (columns: {', '.join(simulated.columns)})",
        )
    repeated = simulated.filter(pl.struct(keys).is_duplicated())
    if not repeated.is_empty():
        first = repeated.row(0, named=True)
        raise InputError(
            "simulated distribution",
            f"several rows for question {first['question_id']!r}, option "
            f"{first['option_code']!r}: compare one simulation (model, format, method) at a time",
        )
    coverage = pl.col("coverage") if "coverage" in simulated.columns else pl.lit(None)
    return simulated.select(*keys, "prob", coverage.cast(pl.Float64).alias("coverage"))


def shared_questions(
    model: pl.DataFrame, people: pl.DataFrame, human: HumanResponses
) -> list[OptionsQuestion]:
    """The questions with options that both distributions cover, in questionnaire order.

    Raises:
        InputError: no question in common (e.g. a simulation of another survey).
    """
    simulated_ids, human_ids = set(model["question_id"]), set(people["question_id"])
    shared: list[OptionsQuestion] = [
        q
        for q in human.questionnaire
        if isinstance(q, OptionsQuestion) and q.id in simulated_ids and q.id in human_ids
    ]
    if not shared:
        raise InputError(
            human.source,
            f"the simulation and the human data (questionnaire {human.questionnaire.id!r}) have "
            f"no question in common; simulated: {', '.join(sorted(simulated_ids)) or 'none'}",
        )
    return shared


def answered_option_questions(people: pl.DataFrame, human: HumanResponses) -> list[OptionsQuestion]:
    """Every question with options that the human distribution ``people`` has answers to,
    in questionnaire order (the pool the ``human_marginal`` reference averages over)."""
    answered = set(people["question_id"])
    return [q for q in human.questionnaire if isinstance(q, OptionsQuestion) and q.id in answered]


def option_probs(frame: pl.DataFrame, question: OptionsQuestion) -> list[float]:
    """A question's probabilities in option order (renormalised), from a distribution frame.

    Raises:
        InputError: an option of the question has no probability in ``frame``.
    """
    by_code = dict(
        frame.filter(pl.col("question_id") == question.id).select("option_code", "prob").iter_rows()
    )
    missing = [o.code for o in question.options if o.code not in by_code]
    if missing:
        raise InputError(
            "simulated distribution",
            f"question {question.id!r}: no probability for options {', '.join(missing)} "
            "(a simulation of another version of the questionnaire?)",
        )
    return renormalised([by_code[o.code] for o in question.options])


def leave_one_out_marginal(
    question: OptionsQuestion, questions: Sequence[OptionsQuestion], probs: dict[str, list[float]]
) -> list[float] | None:
    """The ``human_marginal`` reference of ``question``: the mean of ``probs`` (per question
    id, in option order) over the other ``questions`` with the same options; ``None`` when
    no other question has them."""
    codes = [o.code for o in question.options]
    others = [
        probs[q.id]
        for q in questions
        if q.id != question.id and [o.code for o in q.options] == codes
    ]
    if not others:
        return None
    return [sum(column) / len(others) for column in zip(*others, strict=True)]


def renormalised(values: Sequence[float]) -> list[float]:
    """``values`` scaled to sum to one (uniform when they sum to zero)."""
    total = sum(values)
    return [v / total for v in values] if total > 0 else [1 / len(values)] * len(values)
