"""Summaries of rank questions: from the probability of every ranking to each option's
place in them."""

from __future__ import annotations

import polars as pl

from survey_sim.errors import InputError
from survey_sim.questionnaire import RANK_SEPARATOR, Questionnaire, RankQuestion
from survey_sim.runs.results import SimulationResult

RANK_SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "question_id": pl.String(),
    "option_code": pl.String(),
    "option_text": pl.String(),
    "first": pl.Float64(),
    "ranked": pl.Float64(),
    "mean_rank": pl.Float64(),
    "by_rank": pl.List(pl.Float64()),
}
"""Columns of :func:`rank_summary`."""


def rank_summary(
    simulated: pl.DataFrame | SimulationResult, questionnaire: Questionnaire
) -> pl.DataFrame:
    """Each option of each rank question: where the rankings put it.

    Args:
        simulated: A :class:`~survey_sim.runs.results.SimulationResult`, or its population
            table (``question_id``, ``option_code``: a ranking's code, ``prob``).
        questionnaire: The questionnaire asked (its rank questions are summarised).

    Returns:
        One row per rank question × option: ``first`` (probability it is ranked first),
        ``ranked`` (probability a ranking places it: 1 when every option is ranked),
        ``mean_rank`` (its expected rank, 1 = first; null unless every option is ranked),
        ``by_rank`` (probability of each rank, first to last ranked).

    Raises:
        InputError: a rank question's rankings in ``simulated`` are not the questionnaire's
            (results of another version of it).
    """
    population = simulated.population if isinstance(simulated, SimulationResult) else simulated
    rows = []
    for question in questionnaire:
        if not isinstance(question, RankQuestion):
            continue
        probs = dict(
            population.filter(pl.col("question_id") == question.id)
            .select("option_code", "prob")
            .iter_rows()
        )
        if not probs:
            continue
        expected = {outcome.code for outcome in question.outcomes}
        if set(probs) != expected:
            raise InputError(
                "rank summary",
                f"question {question.id!r}: the rankings in the results are not the "
                f"questionnaire's ({len(probs)} against {len(expected)}); summarise results "
                "with the questionnaire they were made from",
            )
        complete = question.ranked == len(question.options)
        for option in question.options:
            by_rank = [0.0] * question.ranked
            for code, prob in probs.items():
                placed = code.split(RANK_SEPARATOR)
                if option.code in placed:
                    by_rank[placed.index(option.code)] += prob
            rows.append(
                {
                    "question_id": question.id,
                    "option_code": option.code,
                    "option_text": option.text,
                    "first": by_rank[0],
                    "ranked": sum(by_rank),
                    "mean_rank": (
                        sum(place * p for place, p in enumerate(by_rank, 1)) if complete else None
                    ),
                    "by_rank": by_rank,
                }
            )
    return pl.DataFrame(rows, schema=RANK_SUMMARY_SCHEMA)
