"""The results store: a content-addressed cache of engine results, so reruns do no model
work and killed runs resume where they stopped.

Every score or sample request is keyed by a hash of everything that determines its result:
the store's format version, the engine's fingerprint (model weights, tokenizer and the
settings that change numbers), the request's prompt text and continuations (which the
fingerprinted tokenizer turns into exact token sequences), and for sampling the schema,
``n``, temperature, token limit and seed. Changing any of them misses the store; sampling
with a new seed is a new key, never a stale hit. A stored value that does not decode as a
result of this version counts as a miss and is computed again.

The store is one SQLite file in write-ahead-log mode (``results.sqlite`` in the cache
directory; ``SURVEY_SIM_RESULTS_CACHE`` names another file). Several processes may read and
write it at once. A run stores each result as soon as the engine hands it over.
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
from pathlib import Path
from typing import Any, TypeVar

from survey_sim._paths import cache_dir
from survey_sim.engines.base import SampleRequest, SampleResult, ScoreRequest, ScoreResult
from survey_sim.errors import SurveySimError

ResultT = TypeVar("ResultT", ScoreResult, SampleResult)

STORE_VERSION = 2
"""Part of every key: results stored by an older layout are never read as current ones."""


def default_cache_path() -> Path:
    """``SURVEY_SIM_RESULTS_CACHE``, else ``results.sqlite`` in survey-sim's cache folder."""
    override = os.environ.get("SURVEY_SIM_RESULTS_CACHE")
    if override:
        return Path(override)
    return cache_dir() / "results.sqlite"


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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SurveySimError(
                f"{self.path}: cannot create the results cache's folder ({error.strerror}); set "
                "SURVEY_SIM_RESULTS_CACHE to a writable place"
            ) from None
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
            # Each result is committed as it arrives; in WAL mode NORMAL keeps every commit
            # through a killed process without an fsync per commit.
            connection.execute("PRAGMA synchronous=NORMAL")
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
    payload = {
        "version": STORE_VERSION,
        "engine": fingerprint,
        "kind": type(request).__name__,
        **dataclasses.asdict(request),
    }
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def encode(result: ScoreResult | SampleResult) -> dict[str, Any]:
    """A result as the JSON value stored under its key."""
    return dataclasses.asdict(result)


def decode(kind: type[ResultT], value: Any) -> ResultT | None:
    """A stored value as a result of ``kind``; ``None`` when it is not one (a miss)."""
    if not isinstance(value, dict) or set(value) != {f.name for f in dataclasses.fields(kind)}:
        return None
    arguments: dict[str, Any] = {
        name: tuple(item) if isinstance(item, list) else item for name, item in value.items()
    }
    try:
        return kind(**arguments)
    except (TypeError, ValueError):
        return None
