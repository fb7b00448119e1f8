"""Don't know and refusal as answers: the model's probability of a question's
non-substantive options (``substantive: false``) against how often people gave them.

A model that answers "don't know" 20% of the time where people do 4% is wrong in a way the
substantive distribution does not show, and a substantive comparison that counts "don't
know" as one more option mixes the two. :func:`compare_nonresponse` sets the shares side by
side, per non-substantive option and in total; the substantive answers are compared over
the substantive options alone with ``compare(result, human.substantive())``.

People's share is a weighted share of the respondents who answered the question, with a
percentile bootstrap interval over those respondents (their weights kept). The model's
share is exact (its population distribution), so the interval is people's sampling
uncertainty alone: the model is ``higher`` or ``lower`` when its share lies outside it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

from survey_sim.data.aligned import option_probs, shared_questions, simulated_distribution
from survey_sim.data.responses import HumanResponses
from survey_sim.errors import InputError
from survey_sim.evaluate.paired import bootstrap_weight_chunks, interval_of
from survey_sim.questionnaire import OptionsQuestion, Question
from survey_sim.runs.results import SimulationResult

NONRESPONSE_SCHEMA = {
    "question_id": pl.String,
    "option_code": pl.String,
    "option_text": pl.String,
    "model": pl.Float64,
    "people": pl.Float64,
    "lower": pl.Float64,
    "upper": pl.Float64,
    "difference": pl.Float64,
    "verdict": pl.String,
    "n": pl.Int64,
    "n_effective": pl.Float64,
}
"""Columns of :func:`compare_nonresponse`."""


def compare_nonresponse(
    simulated: pl.DataFrame | SimulationResult,
    human: HumanResponses,
    *,
    resamples: int = 1000,
    interval: float = 0.9,
    seed: int = 0,
) -> pl.DataFrame:
    """The model's probability of each non-substantive option against people's share.

    Args:
        simulated: A :class:`~survey_sim.runs.results.SimulationResult` or per question ×
            option probabilities (``question_id``, ``option_code``, ``prob``).
        human: The human answers (weighted if they carry weights); the questionnaire's
            options marked ``substantive: false`` are the ones compared.
        resamples: Bootstrap resamples of the respondents for people's interval.
        interval: Coverage of that interval.
        seed: Seed of the resampling.

    Returns:
        One row per question × non-substantive option, and for a question with several a
        row for them together (``option_code`` null, ``option_text`` naming them):
        ``model`` and ``people`` shares, people's interval (``lower``, ``upper``),
        ``difference`` (model − people), ``verdict`` (``model higher``, ``model lower``,
        ``within people's interval``), ``n`` and ``n_effective`` (respondents who answered,
        and their Kish effective number).

    Raises:
        InputError: no question the simulation and people share has a non-substantive
            option.
    """
    population = simulated.population if isinstance(simulated, SimulationResult) else simulated
    model = simulated_distribution(population)
    people = human.distribution()
    questions = with_nonresponse(shared_questions(model, people, human))
    if not questions:
        raise InputError(
            human.source,
            "no question both cover has a non-substantive option (an option marked "
            "'substantive: false', such as don't know or refused), so there is no item "
            "nonresponse to compare",
        )
    rows = [
        row
        for question in questions
        for row in _question_rows(
            question,
            option_probs(model, question),
            option_probs(people, question),
            people.filter(pl.col("question_id") == question.id).row(0, named=True),
            human,
            (resamples, interval, seed),
        )
    ]
    return pl.DataFrame(rows, schema=NONRESPONSE_SCHEMA)


def with_nonresponse(questions: Iterable[Question | OptionsQuestion]) -> list[OptionsQuestion]:
    """The questions with a non-substantive option (don't know, refused...)."""
    return [
        question
        for question in questions
        if isinstance(question, OptionsQuestion) and question.non_substantive
    ]


def _outcomes(question: OptionsQuestion) -> list[tuple[str | None, str, list[int]]]:
    """What is compared for ``question``: each non-substantive option (code, text, its
    index), and all of them together when there are several (no code)."""
    off = [index for index, option in enumerate(question.options) if not option.substantive]
    outcomes: list[tuple[str | None, str, list[int]]] = [
        (question.options[index].code, question.options[index].text, [index]) for index in off
    ]
    if len(off) > 1:
        together = " or ".join(question.options[index].text for index in off)
        outcomes.append((None, f"any: {together}", off))
    return outcomes


def _question_rows(
    question: OptionsQuestion,
    model: list[float],
    people: list[float],
    answered: dict[str, object],
    human: HumanResponses,
    resampling: tuple[int, float, int],
) -> list[dict[str, object]]:
    """The rows of one question: both shares of each outcome, and people's interval from
    resampling the respondents who answered it."""
    resamples, interval, seed = resampling
    answers = human.frame.filter(pl.col("question_id") == question.id)
    weights = answers["weight"].to_numpy().astype(float)
    outcomes = _outcomes(question)
    chose = np.column_stack(
        [
            answers["option_code"].is_in([question.options[i].code for i in indices]).to_numpy()
            for _, _, indices in outcomes
        ]
    ).astype(float)
    resampled = np.vstack(
        [
            ((counts * weights) @ chose) / (counts @ weights)[:, None]
            for counts in bootstrap_weight_chunks(answers.height, resamples, seed)
        ]
    )
    rows: list[dict[str, object]] = []
    for column, (code, text, indices) in enumerate(outcomes):
        lower, upper = interval_of(resampled[:, column], interval)
        share = sum(model[index] for index in indices)
        observed = sum(people[index] for index in indices)
        verdict = (
            "model higher"
            if share > upper
            else "model lower"
            if share < lower
            else "within people's interval"
        )
        rows.append(
            {
                "question_id": question.id,
                "option_code": code,
                "option_text": text,
                "model": share,
                "people": observed,
                "lower": lower,
                "upper": upper,
                "difference": share - observed,
                "verdict": verdict,
                "n": answered["n"],
                "n_effective": answered["n_effective"],
            }
        )
    return rows
