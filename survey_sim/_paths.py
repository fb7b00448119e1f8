"""Where survey-sim keeps its caches (converted weights, the results store, file hashes)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def cache_dir() -> Path:
    """``SURVEY_SIM_CACHE_DIR``, else the user cache folder of survey-sim."""
    override = os.environ.get("SURVEY_SIM_CACHE_DIR")
    return Path(override) if override else Path(platformdirs.user_cache_dir("survey-sim"))
