"""Bayesian analysis of simulated against human distributions (PyMC, ArviZ), and plots.

Model objects: :class:`Alignment`, :class:`Calibration`, :class:`Subgroups`
(:mod:`~survey_sim.analysis.models`), :class:`IndividualCalibration` (respondent level,
:mod:`~survey_sim.analysis.individuals`), :class:`Association` (question pairs,
:mod:`~survey_sim.analysis.association`), with the PyMC construction in
:mod:`~survey_sim.analysis.backend`; plots in :mod:`~survey_sim.analysis.plots`.
"""

from survey_sim.analysis.association import Association
from survey_sim.analysis.backend import DiagnosticWarning, SamplingOptions
from survey_sim.analysis.individuals import IndividualCalibration
from survey_sim.analysis.models import (
    AlignedData,
    Alignment,
    Calibration,
    Subgroups,
    coverage_by_question,
)
from survey_sim.analysis.plots import (
    plot_associations,
    plot_calibration,
    plot_distributions,
    plot_gaps,
    plot_learning_curve,
    plot_loss_history,
)

__all__ = [
    "AlignedData",
    "Alignment",
    "Association",
    "Calibration",
    "DiagnosticWarning",
    "IndividualCalibration",
    "SamplingOptions",
    "Subgroups",
    "coverage_by_question",
    "plot_associations",
    "plot_calibration",
    "plot_distributions",
    "plot_gaps",
    "plot_learning_curve",
    "plot_loss_history",
]
