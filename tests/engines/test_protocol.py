"""A user's own engine, written from the Engine protocol alone, is treated like a built-in:
simulate runs it with the results store on, reruns answer from the store, and the manifest
records what the engine says about itself."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence

import polars as pl
import pytest

from survey_sim import Engine, EngineStats, ResultsCache, simulate
from survey_sim.engines import (
    ChatMessage,
    EngineDescription,
    ResultsCallback,
    SampleRequest,
    SampleResult,
    ScoreRequest,
    ScoreResult,
)


def toy_logprob(continuation: str) -> float:
    """The toy model's log-probability of a continuation: fixed by its characters."""
    return -0.5 * len(continuation) - (ord(continuation[0]) % 7) / 10


class ToyEngine:
    """Only the members the Engine protocol declares (plus a call counter for the test)."""

    def __init__(self, *, reports: bool = True) -> None:
        self.reports = reports  # False: an engine that never calls on_results
        self.calls = 0
        self._stats = EngineStats()

    @property
    def model_id(self) -> str:
        return "toy"

    @property
    def fingerprint(self) -> str:
        return "toy-model-v1"

    @property
    def stats(self) -> EngineStats:
        return self._stats

    @property
    def context_length(self) -> int | None:
        return None

    def sequence_tokens(self, request: ScoreRequest | SampleRequest) -> int:
        return len(request.prefix)

    def describe(self) -> EngineDescription:
        return EngineDescription(engine="ToyEngine", model_id="toy", fingerprint="toy-model-v1")

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool) -> str:
        text = "".join(f"<{m['role']}>{m['content']}\n" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")

    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_results: ResultsCallback[ScoreResult] | None = None,
    ) -> list[ScoreResult]:
        results = []
        for index, request in enumerate(requests):
            self.calls += 1
            self._stats.requests += 1
            result = ScoreResult(
                logprobs=tuple(toy_logprob(c) for c in request.continuations),
                continuation_tokens=tuple(len(c) for c in request.continuations),
                prompt_tokens=len(request.prefix),
                reused_tokens=0,
                computed_tokens=len(request.prefix),
            )
            if on_results is not None and self.reports:
                on_results([(index, result)])
            results.append(result)
        return results

    def sample(
        self,
        requests: Sequence[SampleRequest],
        *,
        on_results: ResultsCallback[SampleResult] | None = None,
    ) -> list[SampleResult]:
        results = []
        for index, request in enumerate(requests):
            self.calls += 1
            rng = random.Random(request.seed)
            values = tuple(rng.choice(request.json_schema["enum"]) for _ in range(request.n))
            result = SampleResult(
                texts=tuple(json.dumps(v) for v in values),
                values=values,
                truncated=(False,) * request.n,
                invalid=(False,) * request.n,
                generated_tokens=request.n,
                prompt_tokens=len(request.prefix),
                reused_tokens=0,
            )
            if on_results is not None and self.reports:
                on_results([(index, result)])
            results.append(result)
        return results


@pytest.mark.parametrize("reports", [True, False])
def test_a_user_engine_runs_with_the_store(tmp_path, gss, demo_population, reports):
    engine = ToyEngine(reports=reports)
    assert isinstance(engine, Engine)
    questionnaire = gss.select(["natfare", "natsoc"])
    store = ResultsCache(tmp_path / "store.sqlite")
    options = {"cache": store, "progress": False}
    first = simulate(questionnaire, demo_population, engine, **options)
    computed = engine.calls
    assert computed == len(demo_population) * 2
    weights = [math.exp(toy_logprob(label)) for label in ("A", "B", "C")]
    expected = [w / sum(weights) for w in weights]
    for _, cell in first.responses.group_by("persona_id", "question_id"):
        assert cell.sort("shown_position")["prob"].to_list() == pytest.approx(expected)
    assert first.manifest.model == engine.describe()
    assert first.manifest.cache.misses == computed

    again = simulate(questionnaire, demo_population, engine, **options)
    assert engine.calls == computed  # every result came from the store
    assert again.responses.equals(first.responses)

    sampled = simulate(
        questionnaire, demo_population, engine, cache=store, progress=False, method="sample"
    )
    assert sampled.draws.height == len(demo_population) * 2 * 100
    assert sampled.responses.group_by("persona_id", "question_id").agg(pl.col("prob").sum())[
        "prob"
    ].to_list() == pytest.approx([1.0] * len(demo_population) * 2)
