"""The engines survey-sim can build from a name: ``embedded`` (the in-process
:class:`~survey_sim.engines.transformers.TransformersEngine`), ``sglang``
(:class:`~survey_sim.engines.sglang.SGLangEngine`), and any engine a package installs under
the ``survey_sim.engines`` entry-point group. The CLI's ``--engine`` choices come from here.

An entry point names an :data:`EngineLoader`: given the user's :class:`EngineOptions`, it
checks them (quickly, before anything heavy is imported; options it cannot use are refused
with :meth:`EngineOptions.refuse`) and returns what builds the engine::

    # pyproject.toml of a package "my-engine"
    [project.entry-points."survey_sim.engines"]
    mine = "my_engine:loader"

    # my_engine/__init__.py
    def loader(options: EngineOptions) -> Callable[[], Engine]:
        options.refuse("url", "threads", "dtype", engine="mine")
        return lambda: MyEngine(options.model)
"""

from __future__ import annotations

import difflib
import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Literal, cast

from survey_sim.engines.base import Engine
from survey_sim.engines.records import Record
from survey_sim.engines.registry import locate_adapter, locate_model
from survey_sim.errors import SurveySimError

ENTRY_POINT_GROUP = "survey_sim.engines"
"""The entry-point group third-party engines join."""


class EngineOptions(Record):
    """What a user asked of an engine (``None``: not given).

    Attributes:
        model: A model name or local path (embedded), or the model the server must run.
        adapter: A LoRA adapter folder.
        url: A server's address.
        threads: CPU threads.
        dtype: The weights' dtype.
    """

    model: str | None = None
    adapter: Path | None = None
    url: str | None = None
    threads: int | None = None
    dtype: Literal["float32", "bfloat16", "float16"] | None = None

    def refuse(self, *names: str, engine: str, why: str = "") -> None:
        """Refuse options ``engine`` would ignore, rather than ignore them silently.

        Raises:
            SurveySimError: naming the options given and the engine.
        """
        given = [f"--{name}" for name in names if getattr(self, name) is not None]
        if given:
            reason = f": {why}" if why else ""
            raise SurveySimError(
                f"{' and '.join(given)} cannot apply to --engine {engine}{reason}; leave "
                f"{'them' if len(given) > 1 else 'it'} out"
            )


EngineLoader = Callable[[EngineOptions], Callable[[], Engine]]
"""Checks the options and returns what builds the engine (called once every other input
was checked, so no mistake waits for a model to load)."""


def _embedded(options: EngineOptions) -> Callable[[], Engine]:
    options.refuse("url", engine="embedded", why="it runs the model in this process")
    if options.adapter is not None:
        locate_adapter(options.adapter)
    locate_model(options.model)

    def load() -> Engine:
        from survey_sim.engines.transformers import EngineSettings, TransformersEngine

        settings = EngineSettings(threads=options.threads, dtype=options.dtype or "float32")
        return TransformersEngine.from_pretrained(
            options.model, settings=settings, adapter=options.adapter
        )

    return load


def _sglang(options: EngineOptions) -> Callable[[], Engine]:
    if options.url is None:
        raise SurveySimError("--engine sglang needs --url (start a server: survey-sim serve)")
    options.refuse(
        "threads",
        "dtype",
        engine="sglang",
        why="the server decides them (survey-sim serve MODEL -- --dtype ...)",
    )
    if options.adapter is not None:
        locate_adapter(options.adapter)

    def connect() -> Engine:
        from survey_sim.engines.sglang import SGLangEngine

        return SGLangEngine.connect(options.url or "", model=options.model, adapter=options.adapter)

    return connect


BUILT_IN: dict[str, EngineLoader] = {"embedded": _embedded, "sglang": _sglang}
"""The engines survey-sim ships."""


def _installed() -> dict[str, importlib.metadata.EntryPoint]:
    return {point.name: point for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def engine_names() -> list[str]:
    """Every engine name: the built-in ones, then those installed packages add."""
    return [*BUILT_IN, *sorted(set(_installed()) - set(BUILT_IN))]


def engine_loader(name: str, options: EngineOptions) -> Callable[[], Engine]:
    """What builds engine ``name`` with ``options``, once they are checked.

    Raises:
        SurveySimError: an unknown name (with the closest one), an entry point that cannot
            be loaded, or options the engine refuses.
    """
    if name in BUILT_IN:
        return BUILT_IN[name](options)
    installed = _installed()
    if name not in installed:
        close = difflib.get_close_matches(name, engine_names(), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SurveySimError(
            f"no engine named {name!r}{hint}; engines: {', '.join(engine_names())}"
        )
    try:
        loader = cast(EngineLoader, installed[name].load())
    except Exception as error:
        raise SurveySimError(
            f"engine {name!r} ({installed[name].value}) cannot be loaded: {error}"
        ) from error
    return loader(options)
