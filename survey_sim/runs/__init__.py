"""Runs: a simulation planned into engine requests (:mod:`~survey_sim.runs.plan`), run
through the results store (:mod:`~survey_sim.runs.store`) and the engine
(:mod:`~survey_sim.runs.run`), into results (:mod:`~survey_sim.runs.results`: tidy frames,
the Parquet set and its manifest)."""

from survey_sim.runs.results import SimulationResult, position_bias, subgroup_distributions
from survey_sim.runs.run import simulate
from survey_sim.runs.settings import SimulationSettings
from survey_sim.runs.store import ResultsCache

__all__ = [
    "ResultsCache",
    "SimulationResult",
    "SimulationSettings",
    "position_bias",
    "simulate",
    "subgroup_distributions",
]
