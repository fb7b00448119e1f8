"""Runs: a study planned into cells and engine requests (:mod:`~survey_sim.runs.plan`), run
by the one executor through the results store (:mod:`~survey_sim.runs.store`) and the
engine (:mod:`~survey_sim.runs.run`), into results (:mod:`~survey_sim.runs.results`: tidy
frames, the Parquet set) and a typed, versioned manifest (:mod:`~survey_sim.runs.manifest`)."""

from survey_sim.runs.manifest import MANIFEST_VERSION, RunManifest
from survey_sim.runs.plan import Cell, Plan
from survey_sim.runs.preview import PromptPreview, preview
from survey_sim.runs.rankings import rank_summary
from survey_sim.runs.results import SimulationResult, position_bias, subgroup_distributions
from survey_sim.runs.run import Executed, execute, simulate
from survey_sim.runs.settings import SimulationSettings
from survey_sim.runs.store import ResultsCache

__all__ = [
    "MANIFEST_VERSION",
    "Cell",
    "Executed",
    "Plan",
    "PromptPreview",
    "ResultsCache",
    "RunManifest",
    "SimulationResult",
    "SimulationSettings",
    "execute",
    "position_bias",
    "preview",
    "rank_summary",
    "simulate",
    "subgroup_distributions",
]
