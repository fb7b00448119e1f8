"""Scoring a tuned model where it was never trained: the held-out questions, before and
after tuning, beside the references of the population comparison."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from survey_sim.data.responses import HumanResponses
from survey_sim.errors import InputError
from survey_sim.evaluate.metrics import BASELINES, compare, paired_differences, summarise
from survey_sim.runs.results import SimulationResult
from survey_sim.runs.run import simulate
from survey_sim.tune._train import TuningResult, TuningSettings

if TYPE_CHECKING:
    from survey_sim.engines.transformers import EngineSettings


def held_out_simulations(
    human: HumanResponses,
    result: TuningResult,
    model: str | Path | None = None,
    *,
    engine_settings: EngineSettings | None = None,
    progress: bool = True,
) -> dict[str, SimulationResult]:
    """The population objective's held-out questions asked of the tuning's persona cells, in
    the format trained, by the base model (``"before"``) and the tuned one (``"after"``).

    Raises:
        InputError: ``result`` is not a population-objective run.
    """
    from survey_sim.engines.transformers import TransformersEngine

    split = result.split
    if split.objective != "population":
        raise InputError(result.adapter, "held-out questions exist for the population objective")
    settings = TuningSettings.model_validate(result.record.settings)
    questionnaire = human.questionnaire.select(split.held_out)
    population = human.population(list(settings.by) if settings.by else None)
    simulations = {}
    for label, adapter in (("before", None), ("after", result.adapter)):
        engine = TransformersEngine.from_pretrained(model, engine_settings, adapter=adapter)
        simulations[label] = simulate(
            questionnaire, population, engine, format=settings.format, progress=progress
        )
    return simulations


@dataclass(frozen=True)
class HeldOutReport:
    """A tuned model scored where it never trained, beside its base model and the
    references of :func:`~survey_sim.evaluate.metrics.compare`.

    Attributes:
        questions: One row per held-out question × source: ``before`` (the base model),
            ``after`` (the tuned one), the baselines (``fitted_marginal`` is the mean
            human distribution of the questions the tuning saw: what the same data gives
            without a model) and ``noise_floor``.
        summary: Each source's mean over the held-out questions.
        paired: ``after`` against ``before`` and every baseline, and ``before`` against
            every baseline, paired over the held-out questions
            (:func:`~survey_sim.evaluate.metrics.paired_differences`).
    """

    questions: pl.DataFrame
    summary: pl.DataFrame
    paired: pl.DataFrame


def held_out_report(
    human: HumanResponses, simulations: Mapping[str, SimulationResult], result: TuningResult
) -> HeldOutReport:
    """:func:`held_out_simulations` scored against people (:class:`HeldOutReport`)."""
    split = result.split
    fitted_on = (*split.train, *split.validation)
    parts = []
    for label, simulated in simulations.items():
        comparison = compare(simulated.population, human, fitted_on=fitted_on)
        is_model = pl.col("source") == "model"
        parts.append(comparison.filter(is_model).with_columns(source=pl.lit(label)))
        references = comparison.filter(~is_model)
    questions = pl.concat([*parts, references])
    paired = pl.concat(
        [
            paired_differences(questions, "after", ("before", *BASELINES)),
            paired_differences(questions, "before", BASELINES),
        ]
    )
    return HeldOutReport(questions=questions, summary=summarise(questions), paired=paired)
