"""A content-addressed cache of engine results, so reruns do no model work and killed runs
resume where they stopped.

Every score or sample request is keyed by a hash of everything that determines its result:
the engine's fingerprint (model weights, tokenizer and the settings that change numbers),
the request's prompt text and continuations (which the fingerprinted tokenizer turns into
exact token sequences), and for sampling the schema, ``n``, temperature, token limit and
seed. Changing any of them misses the cache; sampling with a new seed is a new key, never a
stale hit.

The store is one SQLite file in write-ahead-log mode (``results.sqlite`` in the cache
directory; ``SURVEY_SIM_RESULTS_CACHE`` names another file). Several processes may read and
write it at once. :class:`CachedEngine` stores finished work in small chunks as it goes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from survey_sim._paths import cache_dir
from survey_sim.engines.base import (
    ChatMessage,
    Engine,
    ProgressCallback,
    SampleRequest,
    SampleResult,
    ScoreRequest,
    ScoreResult,
)
from survey_sim.errors import SurveySimError

CHUNK = 32
"""Score requests computed between two writes to the store (what a kill can lose)."""


def default_cache_path() -> Path:
    """``SURVEY_SIM_RESULTS_CACHE``, else ``results.sqlite`` in survey-sim's cache folder."""
    override = os.environ.get("SURVEY_SIM_RESULTS_CACHE")
    if override:
        return Path(override)
    return cache_dir() / "results.sqlite"


@dataclass
class CacheStats:
    """Requests answered from the store (hits) and computed (misses) by one engine."""

    hits: int = 0
    misses: int = 0


class ResultsCache:
    """The SQLite store: JSON results under content keys.

    Args:
        path: The database file (default: :func:`default_cache_path`).
        fresh: Never answer from the store (recompute everything), but still store what is
            computed, replacing older entries.
    """

    def __init__(self, path: str | Path | None = None, *, fresh: bool = False) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.fresh = fresh
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connection() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS results "
                "(key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
            )

    def __repr__(self) -> str:
        return f"ResultsCache({str(self.path)!r}, fresh={self.fresh})"

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            connection = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        except sqlite3.Error as error:
            raise SurveySimError(f"{self.path}: cannot open the results cache: {error}") from None
        try:
            yield connection
        except sqlite3.DatabaseError as error:
            raise SurveySimError(
                f"{self.path}: the results cache is unreadable ({error}); "
                "clear it with: survey-sim cache clear"
            ) from None
        finally:
            connection.close()

    def get(self, keys: Sequence[str]) -> dict[str, Any]:
        """The stored values of those ``keys`` that are present (none when ``fresh``)."""
        found: dict[str, Any] = {}
        if self.fresh:
            return found
        with self._connection() as connection:
            for start in range(0, len(keys), 500):
                part = list(keys[start : start + 500])
                marks = ",".join("?" * len(part))
                rows = connection.execute(
                    f"SELECT key, value FROM results WHERE key IN ({marks})", part
                )
                found.update((key, json.loads(value)) for key, value in rows)
        return found

    def put(self, items: Mapping[str, Any]) -> None:
        """Store values (JSON-serialisable) under their keys, in one transaction."""
        now = time.time()
        rows = [(key, json.dumps(value), now) for key, value in items.items()]
        with self._connection() as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?)", rows)
            connection.execute("COMMIT")

    def info(self) -> dict[str, Any]:
        """Entries, size on disk (database and write-ahead log) and location."""
        with self._connection() as connection:
            entries = connection.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        files = [self.path, Path(f"{self.path}-wal")]
        size = sum(path.stat().st_size for path in files if path.exists())
        return {"path": str(self.path), "entries": entries, "bytes": size}

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        with self._connection() as connection:
            entries = connection.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            connection.execute("DELETE FROM results")
            connection.execute("VACUUM")
        return entries


def request_key(fingerprint: str, request: ScoreRequest | SampleRequest) -> str:
    """The content key of one request on the engine with ``fingerprint``."""
    fields = dataclasses.asdict(request)
    payload = {"engine": fingerprint, "kind": type(request).__name__, **fields}
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class CachedEngine:
    """An :class:`~survey_sim.engines.base.Engine` that answers from a :class:`ResultsCache`
    where it can and stores what it computes, ``CHUNK`` score requests at a time."""

    def __init__(self, engine: Engine, cache: ResultsCache) -> None:
        fingerprint = getattr(engine, "fingerprint", None)
        if not isinstance(fingerprint, str):
            raise SurveySimError(
                f"{type(engine).__name__} has no 'fingerprint', so its results cannot be "
                "cached safely; pass cache=False"
            )
        self.engine = engine
        self.cache = cache
        self.fingerprint = fingerprint
        self.cache_stats = CacheStats()

    @property
    def model_id(self) -> str:
        return self.engine.model_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)  # stats, settings, tokenizer... of the wrapped engine

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool) -> str:
        return self.engine.render_chat(messages, add_generation_prompt=add_generation_prompt)

    def score(
        self, requests: Sequence[ScoreRequest], *, progress: ProgressCallback | None = None
    ) -> list[ScoreResult]:
        keys = [request_key(self.fingerprint, request) for request in requests]
        stored = self.cache.get(keys)
        results = [_score_result(stored[key]) if key in stored else None for key in keys]
        hits = sum(result is not None for result in results)
        self.cache_stats.hits += hits
        self.cache_stats.misses += len(requests) - hits
        if progress is not None and hits:
            progress(hits)
        # Chunks are fixed slices of the request list, so a resumed run recomputes exactly
        # the chunks an uninterrupted run would have, in the same grouping.
        for start in range(0, len(requests), CHUNK):
            chunk = range(start, min(start + CHUNK, len(requests)))
            todo = [i for i in chunk if results[i] is None]
            if not todo:
                continue
            computed = self.engine.score([requests[i] for i in todo], progress=progress)
            self.cache.put(
                {keys[i]: dataclasses.asdict(r) for i, r in zip(todo, computed, strict=True)}
            )
            for index, result in zip(todo, computed, strict=True):
                results[index] = result
        return [result for result in results if result is not None]

    def sample(self, request: SampleRequest) -> SampleResult:
        key = request_key(self.fingerprint, request)
        stored = self.cache.get([key])
        if key in stored:
            self.cache_stats.hits += 1
            return _sample_result(stored[key])
        self.cache_stats.misses += 1
        result = self.engine.sample(request)
        self.cache.put({key: dataclasses.asdict(result)})
        return result


def _score_result(value: Mapping[str, Any]) -> ScoreResult:
    return ScoreResult(
        logprobs=tuple(value["logprobs"]),
        continuation_tokens=tuple(value["continuation_tokens"]),
        prompt_tokens=value["prompt_tokens"],
        reused_tokens=value["reused_tokens"],
        computed_tokens=value["computed_tokens"],
    )


def _sample_result(value: Mapping[str, Any]) -> SampleResult:
    return SampleResult(
        texts=tuple(value["texts"]),
        values=tuple(value["values"]),
        truncated=tuple(value["truncated"]),
        invalid=tuple(value["invalid"]),
        generated_tokens=value["generated_tokens"],
        prompt_tokens=value["prompt_tokens"],
        reused_tokens=value["reused_tokens"],
    )
