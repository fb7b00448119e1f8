"""Engines: language models that score answer options exactly and sample under a schema.

:class:`~survey_sim.engines.base.Engine` is the protocol and
:class:`~survey_sim.engines.base.EngineBase` a base class with its defaults; the embedded
:class:`~survey_sim.engines.transformers.TransformersEngine` runs in-process and
:class:`~survey_sim.engines.sglang.SGLangEngine` on an SGLang server. Engines are built by
name through :mod:`survey_sim.engines.catalog`, which installed packages can join.
"""

from typing import TYPE_CHECKING

from survey_sim._lazy import lazy_getattr
from survey_sim.engines._hf import split_shared_tokens
from survey_sim.engines.base import (
    ChatMessage,
    Engine,
    EngineBase,
    EngineStats,
    ResultsCallback,
    SampleRequest,
    SampleResult,
    ScoreRequest,
    ScoreResult,
)
from survey_sim.engines.catalog import EngineOptions, engine_loader, engine_names
from survey_sim.engines.records import (
    AdapterDescription,
    AdapterRecord,
    EngineDescription,
    TrainedOn,
)

if TYPE_CHECKING:
    from survey_sim.engines.registry import DEFAULT_MODEL, resolve_model
    from survey_sim.engines.sglang import SGLangEngine, SGLangSettings
    from survey_sim.engines.transformers import EngineSettings, TransformersEngine

__getattr__ = lazy_getattr(
    __name__,
    {
        "DEFAULT_MODEL": "survey_sim.engines.registry",
        "resolve_model": "survey_sim.engines.registry",
        "EngineSettings": "survey_sim.engines.transformers",
        "TransformersEngine": "survey_sim.engines.transformers",
        "SGLangEngine": "survey_sim.engines.sglang",
        "SGLangSettings": "survey_sim.engines.sglang",
    },
)

__all__ = [
    "DEFAULT_MODEL",
    "AdapterDescription",
    "AdapterRecord",
    "ChatMessage",
    "Engine",
    "EngineBase",
    "EngineDescription",
    "EngineOptions",
    "EngineSettings",
    "EngineStats",
    "ResultsCallback",
    "SGLangEngine",
    "SGLangSettings",
    "SampleRequest",
    "SampleResult",
    "ScoreRequest",
    "ScoreResult",
    "TrainedOn",
    "TransformersEngine",
    "engine_loader",
    "engine_names",
    "resolve_model",
    "split_shared_tokens",
]
