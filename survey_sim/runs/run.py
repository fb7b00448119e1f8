"""Running a plan: its requests through the results store and the engine, with a progress
bar, into results and a manifest.

:func:`execute` is the one executor every run kind goes through (the population mode's
:func:`simulate`, and :func:`~survey_sim.runs.individuals.simulate_individuals`): the
held-out guard and the context check before any model work, then the store and the engine.
Requests found in the store are not computed again; the engine hands over every other
result as soon as it is finished, and the run stores it then, so a run that is killed loses
only what was in flight. A history built from earlier answers of the same run is a plan per
step, each executed in turn.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from survey_sim._progress import tqdm
from survey_sim.data.splits import IndividualSplit
from survey_sim.engines.base import (
    CoreSharing,
    Engine,
    ResultsCallback,
    SampleResult,
    ScoreResult,
    cannot_sample,
)
from survey_sim.errors import SurveySimError
from survey_sim.population import Population
from survey_sim.questionnaire import Questionnaire
from survey_sim.runs.held_out import refuse_trained
from survey_sim.runs.manifest import HumanRecord, RunManifest, StoreRecord, run_manifest
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
            longer than the model's context, or questions a tuned model was trained on
            (:mod:`survey_sim.runs.held_out`).
        MethodError: before any model work, when a method cannot apply to a question.
    """
    started = time.time()
    settings = SimulationSettings.of(settings, **changes)
    plan = Plan.build(questionnaire, population, settings, chat=engine)
    done = execute(plan, engine, started=started, cache=cache, progress=progress)
    return SimulationResult.assemble(
        plan, done.scores, done.samples, model=engine.model_id, manifest=done.manifest
    )


@dataclasses.dataclass(frozen=True)
class Executed:
    """A plan's results, in the plan's request order, and the run's manifest."""

    scores: list[ScoreResult]
    samples: list[SampleResult]
    manifest: RunManifest


def execute(
    plan: Plan,
    engine: Engine,
    *,
    started: float,
    cache: ResultsCache | bool,
    progress: bool,
    description: str = "Simulating",
    human: HumanRecord | None = None,
    split: IndividualSplit | None = None,
) -> Executed:
    """Run ``plan`` on ``engine``: the one executor of every run kind.

    Before any model work: the held-out guard (a tuned model is never read where it was
    trained, :mod:`survey_sim.runs.held_out`), the context check (every prompt fits the
    model), and a scoring-only engine refused for sampled cells. Then every request goes
    through the results store (answered from it, or computed and stored as the engine hands
    results over) under a progress bar, and the manifest records the run (``human`` and
    ``split`` for runs on real respondents).

    Raises:
        InputError: a prompt longer than the model's context, or questions or respondents
            a tuned model was trained on.
        MethodError: sampled cells on an engine that only scores.
    """
    engine_record = engine.describe()
    refuse_trained(
        engine_record,
        plan.questionnaire.id,
        questions=plan.questions,
        respondents=plan.respondents,
    )
    plan.check_fits(engine)
    if plan.sample_requests and not getattr(engine, "can_sample", True):
        raise cannot_sample(engine)
    store = open_store(cache)
    work_before = dataclasses.replace(engine.stats)
    total = len(plan.score_requests) + len(plan.sample_requests)
    with Progress(total, description, store, shown=progress) as answered:
        scores = through_store(
            engine.score, plan.score_requests, ScoreResult, engine, store, answered
        )
        samples = through_store(
            engine.sample, plan.sample_requests, SampleResult, engine, store, answered
        )
    manifest = run_manifest(
        plan.questionnaire,
        plan.population,
        engine_record,
        plan.settings,
        started=started,
        work=engine.stats.since(work_before),
        store=store_record(store, scores, samples),
        human=human,
        split=split,
    )
    return Executed(scores.results, samples.results, manifest)


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


def store_record(store: ResultsCache | None, *finished: Finished[Any]) -> StoreRecord | None:
    """What the manifest records of the store: its path, and the requests answered from it
    (``hits``) and computed (``misses``) over ``finished``."""
    if store is None:
        return None
    return StoreRecord(
        path=str(store.path),
        hits=sum(part.hits for part in finished),
        misses=sum(part.misses for part in finished),
    )


def through_store(
    compute: Callable[..., list[ResultT]],
    requests: Sequence[Any],
    kind: type[ResultT],
    engine: Engine,
    store: ResultsCache | None,
    answered: Progress,
) -> Finished[ResultT]:
    """Results of ``requests``: stored ones from ``store``, the rest from ``compute`` (the
    engine's score or sample), stored as soon as the engine hands them over.

    With a store (not ``fresh``), the work is claimed :data:`CLAIM_CHUNK` requests at a time,
    so that two runs of one study sharing the store split it: each computes what it claimed
    and takes the other's results from the store, waiting for them if need be (a claim of a
    run that stopped lapses, and its work is taken over).
    """
    if not requests:
        return Finished([], 0, 0)
    results: list[ResultT | None] = [None] * len(requests)
    keys = [] if store is None else [request_key(engine.fingerprint, r) for r in requests]
    computed = 0

    def take_stored(indices: Sequence[int]) -> None:
        assert store is not None
        found = store.get([keys[index] for index in indices])
        taken = 0
        for index in indices:
            if keys[index] in found and results[index] is None:
                results[index] = decode(kind, found[keys[index]])
                taken += results[index] is not None
        answered.advance(taken)

    def compute_these(indices: list[int]) -> None:
        nonlocal computed

        def finished(batch: list[tuple[int, ResultT]]) -> None:
            fresh = [(indices[position], result) for position, result in batch]
            fresh = [(index, result) for index, result in fresh if results[index] is None]
            for index, result in fresh:
                results[index] = result
            if store is not None and fresh:  # one transaction: a kill never splits a batch
                store.put({keys[index]: encode(result) for index, result in fresh})
            answered.advance(len(fresh))

        on_results: ResultsCallback[ResultT] = finished
        returned = compute([requests[index] for index in indices], on_results=on_results)
        if len(returned) != len(indices):
            raise SurveySimError(
                f"{type(engine).__name__} returned {len(returned)} results for "
                f"{len(indices)} requests"
            )
        finished(list(enumerate(returned)))  # what an engine did not hand over as it went
        computed += len(indices)

    if store is None or store.fresh:
        compute_these(list(range(len(requests))))
    else:
        _share_work(store, keys, results, take_stored, compute_these, engine)
    complete = [result for result in results if result is not None]
    return Finished(complete, len(requests) - computed, computed)


CLAIM_CHUNK = 64
"""Requests claimed at a time: the unit two runs sharing a store split the work by."""
WAIT_SECONDS = 0.5
"""How often a run waiting for another run's results looks for them."""


def _share_work(
    store: ResultsCache,
    keys: list[str],
    results: Sequence[object | None],
    take_stored: Callable[[Sequence[int]], None],
    compute_these: Callable[[list[int]], None],
    engine: Engine,
) -> None:
    """Compute what no other run has claimed, chunk by chunk; then take the other runs'
    results from the store as they come, claiming (and computing) what they give up."""
    pending = [index for index, result in enumerate(results) if result is None]
    waiting: list[int] = []
    while pending or waiting:
        if pending:
            chunk, pending = pending[:CLAIM_CHUNK], pending[CLAIM_CHUNK:]
        else:
            chunk, waiting = waiting, []
        take_stored(chunk)  # what another run stored since we last looked
        chunk = [index for index in chunk if results[index] is None]
        if not chunk:
            continue
        claimed = store.claim([keys[index] for index in chunk])
        mine = [index for index in chunk if keys[index] in claimed]
        waiting += [index for index in chunk if keys[index] not in claimed]
        if not mine:
            if not pending:
                time.sleep(WAIT_SECONDS)
            continue
        if isinstance(engine, CoreSharing):
            engine.share_cores(store.runs())
        try:
            compute_these(mine)
        except BaseException:
            store.release([keys[index] for index in mine])
            raise


class Progress:
    """Requests answered so far (from the store or computed), on a progress bar if
    ``shown``. As a context manager it closes the bar, and notes on an exception that stops
    the run (Ctrl-C, SIGTERM, an engine error) how many answers ``store`` keeps."""

    def __init__(
        self, total: int, description: str, store: ResultsCache | None, *, shown: bool
    ) -> None:
        self.total, self.answered, self.store = total, 0, store
        self._description, self._shown = description, shown
        self._bar: Any = None

    def __enter__(self) -> Progress:
        # The bar is made here, where a stop is noted even while it is being drawn: a
        # signal right after it showed must still say what the run kept.
        try:
            self._bar = tqdm(
                total=self.total,
                desc=self._description,
                unit="prompt",
                disable=not self._shown,
                leave=False,
            )
        except BaseException as stopped:
            stopped.add_note(self.kept())
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, stopped: BaseException | None, _: object
    ) -> None:
        self._bar.close()
        if stopped is not None:
            stopped.add_note(self.kept())

    def advance(self, count: int) -> None:
        self.answered += count
        self._bar.update(count)

    def kept(self) -> str:
        """What a run stopped now keeps (each answer was stored as it was handed over)."""
        answered = f"{self.answered:,} of {self.total:,} requests"
        if self.store is None or not self.store.storing:
            return f"{answered} answered, none kept (no results cache)"
        return f"{answered} saved in the results cache; rerun the same command to resume"
