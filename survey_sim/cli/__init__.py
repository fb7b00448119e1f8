"""The ``survey-sim`` command line."""

from survey_sim.cli.main import main

__all__ = ["main"]
