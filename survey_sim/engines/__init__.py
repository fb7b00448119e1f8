"""Engines: language models that score answer options exactly."""

from typing import TYPE_CHECKING

from survey_sim._lazy import lazy_getattr
from survey_sim.engines.base import (
    ChatMessage,
    Engine,
    ScoreRequest,
    ScoreResult,
    split_shared_tokens,
)

if TYPE_CHECKING:
    from survey_sim.engines.registry import DEFAULT_MODEL, resolve_model
    from survey_sim.engines.transformers import EngineSettings, EngineStats, TransformersEngine

__getattr__ = lazy_getattr(
    __name__,
    {
        "DEFAULT_MODEL": "survey_sim.engines.registry",
        "resolve_model": "survey_sim.engines.registry",
        "EngineSettings": "survey_sim.engines.transformers",
        "EngineStats": "survey_sim.engines.transformers",
        "TransformersEngine": "survey_sim.engines.transformers",
    },
)

__all__ = [
    "DEFAULT_MODEL",
    "ChatMessage",
    "Engine",
    "EngineSettings",
    "EngineStats",
    "ScoreRequest",
    "ScoreResult",
    "TransformersEngine",
    "resolve_model",
    "split_shared_tokens",
]
