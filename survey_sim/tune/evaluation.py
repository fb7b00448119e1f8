"""Scoring a tuned model where it was never trained: the held-out questions, before and
after tuning, beside the references of the population comparison."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from survey_sim.data.responses import HumanResponses
from survey_sim.errors import InputError
from survey_sim.evaluate.metrics import compare, summarise
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


def held_out_report(
    human: HumanResponses, simulations: Mapping[str, SimulationResult]
) -> pl.DataFrame:
    """:func:`held_out_simulations` scored against people beside ``uniform``,
    ``human_marginal`` and ``split_half`` (:func:`survey_sim.compare`): one row per source
    (``before``, ``after``, then the references), each metric's mean over the held-out
    questions."""
    rows = []
    for label, simulated in simulations.items():
        summary = summarise(compare(simulated.population, human))
        is_model = pl.col("source") == "model"
        rows.append(summary.filter(is_model).with_columns(source=pl.lit(label)))
        references = summary.filter(~is_model)
    return pl.concat([*rows, references])
