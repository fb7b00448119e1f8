"""Engines: language models that score answer options exactly."""

from survey_sim.engines.base import (
    ChatMessage,
    Engine,
    ScoreRequest,
    ScoreResult,
    split_shared_tokens,
)
from survey_sim.engines.registry import DEFAULT_MODEL, resolve_model
from survey_sim.engines.transformers import EngineSettings, EngineStats, TransformersEngine

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
