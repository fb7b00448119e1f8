"""The run manifest: how a results file was made, written beside it as JSON."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import sys
import time
from typing import Any

from survey_sim.engines.base import EngineStats
from survey_sim.population import Population
from survey_sim.questionnaire import Questionnaire

PACKAGES = ("survey-sim", "torch", "transformers", "xgrammar", "polars", "pydantic", "numpy")
"""Packages whose versions every manifest records (those installed)."""


def run_manifest(
    questionnaire: Questionnaire,
    population: Population,
    engine: dict[str, Any],
    settings: dict[str, Any],
    *,
    started: float,
    work: EngineStats,
    store: dict[str, Any] | None,
) -> dict[str, Any]:
    """Versions, engine (its own description), inputs' hashes, settings, timing, the
    engine's work during the run (tokens, prefix-cache hit rate) and the results store's
    hits and misses."""
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime()),
        "seconds": round(time.time() - started, 3),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": sys.argv,
        "packages": _versions(),
        "model": engine,
        "questionnaire": {
            "id": questionnaire.id,
            "questions": len(questionnaire),
            "sha256": _sha256(questionnaire.model_dump_json()),
        },
        "population": {
            "id": population.id,
            "personas": len(population),
            "sha256": _sha256(population.frame.write_csv()),
            "table": population.frame.drop("description").to_dicts(),
        },
        "settings": settings,
        "work": work.as_dict(),
        "cache": store,
    }


def _versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
