"""Engines: language models that score answer options exactly and sample under a schema.

:class:`~survey_sim.engines.base.Engine` is the protocol; the embedded
:class:`~survey_sim.engines.transformers.TransformersEngine` implements it in-process.
"""

from typing import TYPE_CHECKING

from survey_sim._lazy import lazy_getattr
from survey_sim.engines._hf import split_shared_tokens
from survey_sim.engines.base import (
    ChatMessage,
    Engine,
    EngineStats,
    ResultsCallback,
    SampleRequest,
    SampleResult,
    ScoreRequest,
    ScoreResult,
)

if TYPE_CHECKING:
    from survey_sim.engines.registry import DEFAULT_MODEL, resolve_model
    from survey_sim.engines.transformers import EngineSettings, TransformersEngine

__getattr__ = lazy_getattr(
    __name__,
    {
        "DEFAULT_MODEL": "survey_sim.engines.registry",
        "resolve_model": "survey_sim.engines.registry",
        "EngineSettings": "survey_sim.engines.transformers",
        "TransformersEngine": "survey_sim.engines.transformers",
    },
)

__all__ = [
    "DEFAULT_MODEL",
    "ChatMessage",
    "Engine",
    "EngineSettings",
    "EngineStats",
    "ResultsCallback",
    "SampleRequest",
    "SampleResult",
    "ScoreRequest",
    "ScoreResult",
    "TransformersEngine",
    "resolve_model",
    "split_shared_tokens",
]
