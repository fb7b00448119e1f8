"""Running a simulation: the plan's requests through the results store and the engine, with
a progress bar, into :class:`~survey_sim.runs.results.SimulationResult`.

:func:`simulate` is the one entry point. Requests found in the store are not computed again;
the engine hands over every other result as soon as it is finished, and the run stores it
then, so a run that is killed loses only what was in flight.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from tqdm.auto import tqdm

from survey_sim.engines.base import Engine, ResultsCallback, SampleResult, ScoreResult
from survey_sim.errors import SurveySimError
from survey_sim.population import Population
from survey_sim.questionnaire import Questionnaire
from survey_sim.runs.manifest import run_manifest
from survey_sim.runs.plan import Plan
from survey_sim.runs.results import SimulationResult
from survey_sim.runs.settings import SimulationSettings
from survey_sim.runs.store import ResultsCache, decode, encode, request_key

ResultT = TypeVar("ResultT", ScoreResult, SampleResult)


def simulate(
    questionnaire: Questionnaire,
    population: Population,
    engine: Engine,
    settings: SimulationSettings | None = None,
    *,
    progress: bool = True,
    cache: ResultsCache | bool = True,
    **changes: Any,
) -> SimulationResult:
    """Answer distributions of every persona for every question (zero-shot).

    Args:
        questionnaire: The questions to ask.
        population: Who answers; weights make the population distribution.
        engine: The model (e.g. ``TransformersEngine.from_pretrained()``, or any
            :class:`~survey_sim.engines.base.Engine`).
        settings: How to ask and read (:class:`SimulationSettings`); keyword arguments
            change single settings, e.g. ``simulate(q, p, engine, format="spectrum",
            permute=True)``.
        progress: Show a progress bar.
        cache: Answer from and store into the results store (:mod:`survey_sim.runs.store`):
            the default store (``True``), another :class:`ResultsCache`, or none
            (``False``). With it, a rerun of an unchanged study does no model work, and a
            run that was killed recomputes only what it had not stored.

    Returns:
        The per-persona responses frame, the sampled draws, the run's manifest, and, via
        ``.population``, the weighted distribution.

    Raises:
        InputError: a setting that is not valid, or, before any model work, a prompt
            longer than the model's context.
        MethodError: before any model work, when a method cannot apply to a question.
    """
    started = time.time()
    settings = SimulationSettings.of(settings, **changes)
    plan = Plan.build(questionnaire, population, settings, chat=engine)
    plan.check_fits(engine)
    store = open_store(cache)
    work_before = dataclasses.replace(engine.stats)
    total = len(plan.score_requests) + len(plan.sample_requests)
    with tqdm(
        total=total, desc="Simulating", unit="prompt", disable=not progress, leave=False
    ) as bar:
        scores = through_store(engine.score, plan.score_requests, ScoreResult, engine, store, bar)
        samples = through_store(
            engine.sample, plan.sample_requests, SampleResult, engine, store, bar
        )
    manifest = run_manifest(
        questionnaire,
        population,
        engine.describe(),
        settings.record(),
        started=started,
        work=engine.stats.since(work_before),
        store=store_record(store, scores, samples),
    )
    return SimulationResult.assemble(
        plan, scores.results, samples.results, model=engine.model_id, manifest=manifest
    )


def open_store(cache: ResultsCache | bool) -> ResultsCache | None:
    """The results store a run's ``cache`` argument names (``True``: the default one)."""
    if cache is False:
        return None
    return cache if isinstance(cache, ResultsCache) else ResultsCache()


@dataclasses.dataclass(frozen=True)
class Finished(Generic[ResultT]):
    """A run's results in request order, and how many came from the store (``hits``)."""

    results: list[ResultT]
    hits: int
    misses: int


def store_record(store: ResultsCache | None, *finished: Finished[Any]) -> dict[str, Any] | None:
    """What the manifest records of the store: its path, and the requests answered from it
    (``hits``) and computed (``misses``) over ``finished``."""
    if store is None:
        return None
    return {
        "path": str(store.path),
        "hits": sum(part.hits for part in finished),
        "misses": sum(part.misses for part in finished),
    }


def through_store(
    compute: Callable[..., list[ResultT]],
    requests: Sequence[Any],
    kind: type[ResultT],
    engine: Engine,
    store: ResultsCache | None,
    bar: tqdm,
) -> Finished[ResultT]:
    """Results of ``requests``: stored ones from ``store``, the rest from ``compute`` (the
    engine's score or sample), stored as soon as the engine hands them over."""
    if not requests:
        return Finished([], 0, 0)
    results: list[ResultT | None] = [None] * len(requests)
    keys: list[str] = []
    if store is not None:
        keys = [request_key(engine.fingerprint, request) for request in requests]
        found = store.get(keys)
        results = [decode(kind, found[key]) if key in found else None for key in keys]
    todo = [index for index, result in enumerate(results) if result is None]
    bar.update(len(requests) - len(todo))

    def finished(batch: list[tuple[int, ResultT]]) -> None:
        fresh = [(todo[position], result) for position, result in batch]
        fresh = [(index, result) for index, result in fresh if results[index] is None]
        for index, result in fresh:
            results[index] = result
        if store is not None and fresh:  # one transaction: a kill never splits a batch
            store.put({keys[index]: encode(result) for index, result in fresh})
        bar.update(len(fresh))

    on_results: ResultsCallback[ResultT] = finished
    if todo:
        returned = compute([requests[index] for index in todo], on_results=on_results)
        if len(returned) != len(todo):
            raise SurveySimError(
                f"{type(engine).__name__} returned {len(returned)} results for {len(todo)} requests"
            )
        finished(list(enumerate(returned)))  # what an engine did not hand over as it went
    complete = [result for result in results if result is not None]
    return Finished(complete, len(requests) - len(todo), len(todo))
