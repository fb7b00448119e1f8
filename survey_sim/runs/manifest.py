"""The run manifest: how a results file was made, written beside it as JSON."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import sys
import time
from typing import Any

from survey_sim.engines.base import Engine
from survey_sim.population import Population
from survey_sim.questionnaire import Questionnaire

PACKAGES = ("survey-sim", "torch", "transformers", "xgrammar", "polars", "pydantic", "numpy")
"""Packages whose versions every manifest records (those installed)."""


def run_manifest(
    questionnaire: Questionnaire,
    population: Population,
    engine: Engine,
    settings: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    """Versions, model identity, inputs' hashes, settings, timing and cache use of one run."""
    cache_stats = getattr(engine, "cache_stats", None)
    cache = getattr(engine, "cache", None)
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime()),
        "seconds": round(time.time() - started, 3),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": sys.argv,
        "packages": _versions(),
        "model": {
            "id": engine.model_id,
            "fingerprint": getattr(engine, "fingerprint", None),
            "settings": _settings_of(engine),
        },
        "questionnaire": {
            "id": questionnaire.id,
            "questions": len(questionnaire),
            "sha256": _sha256(questionnaire.model_dump_json()),
        },
        "population": {
            "id": population.id,
            "personas": len(population),
            "sha256": _sha256(population.frame.write_csv()),
        },
        "settings": settings,
        "cache": None
        if cache_stats is None
        else {"path": str(cache.path), "hits": cache_stats.hits, "misses": cache_stats.misses},
    }


def _versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def _settings_of(engine: Engine) -> Any:
    settings = getattr(engine, "settings", None)
    return settings.model_dump() if hasattr(settings, "model_dump") else None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
