"""The results store: a content-addressed cache of engine results, so reruns do no model
work and killed runs resume where they stopped.

Every score or sample request is keyed by a hash of everything that determines its result:
the store's format version, the engine's fingerprint (model weights, tokenizer and the
settings that change numbers), the request's prompt text and continuations (which the
fingerprinted tokenizer turns into exact token sequences), and for sampling the schema,
``n``, temperature, token limit and seed. Changing any of them misses the store; sampling
with a new seed is a new key, never a stale hit. A stored value that fails its checksum, or
does not decode as a result of this version, counts as a miss and is computed again.

The store is one SQLite file in write-ahead-log mode (``results.sqlite`` in the cache
directory; ``SURVEY_SIM_RESULTS_CACHE`` names another file). Several processes may read and
write it at once. A run stores each result as soon as the engine hands it over.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import sqlite3
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from survey_sim._io import running
from survey_sim._paths import cache_dir
from survey_sim.engines.base import SampleRequest, SampleResult, ScoreRequest, ScoreResult
from survey_sim.errors import SurveySimError

ResultT = TypeVar("ResultT", ScoreResult, SampleResult)

STORE_VERSION = 3
"""Part of every key: results stored by an older layout are never read as current ones."""


def default_cache_path() -> Path:
    """``SURVEY_SIM_RESULTS_CACHE``, else ``results.sqlite`` in survey-sim's cache folder."""
    override = os.environ.get("SURVEY_SIM_RESULTS_CACHE")
    if override:
        return Path(override)
    return cache_dir() / "results.sqlite"


class ResultsCache:
    """The SQLite store: JSON results under content keys, each with a checksum.

    A store that cannot be opened is an error before any work, saying why (damaged,
    read-only, disk full, locked) and what to do. Once a run is under way, the store never
    ends it: if the file is deleted, a new one is started; if a result cannot be stored (disk
    full, folder made read-only), the run carries on without storing, with one warning. A
    stored value that fails its checksum (damaged on disk) is computed again, with a warning.

    Args:
        path: The database file (default: :func:`default_cache_path`).
        fresh: Never answer from the store (recompute everything), but still store what is
            computed, replacing older entries. A damaged store is replaced by an empty one.

    Raises:
        SurveySimError: the store cannot be opened or created.
    """

    def __init__(self, path: str | Path | None = None, *, fresh: bool = False) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.fresh = fresh
        self._storing_failed: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SurveySimError(
                f"{self.path}: cannot create the results cache's folder ({error.strerror}); set "
                "SURVEY_SIM_RESULTS_CACHE to a writable place, or run with --no-cache"
            ) from error
        try:
            self._create()
        except sqlite3.Error as error:
            if not (fresh and _damaged(error)):
                raise self._failure(error) from error
            self._remove_files()
            warnings.warn(
                f"results cache {self.path} was damaged ({error}); replaced it with an empty one",
                stacklevel=2,
            )
            self._create()

    def __repr__(self) -> str:
        return f"ResultsCache({str(self.path)!r}, fresh={self.fresh})"

    @property
    def storing(self) -> bool:
        """Whether results are still stored (``False`` once storing failed, e.g. disk full)."""
        return self._storing_failed is None

    def _create(self) -> None:
        """Open (creating when absent) the database and its table; remember which file it is,
        so that a deleted one is noticed."""
        with self._connection() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            if self.fresh:  # replacing a damaged store needs to know: check every page
                verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
                if verdict != "ok":
                    raise sqlite3.DatabaseError(f"database disk image is malformed: {verdict}")
            connection.execute("DROP TABLE IF EXISTS results")  # layout 2; its keys are dead
            connection.execute(
                "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                "checksum TEXT NOT NULL, created REAL NOT NULL)"
            )
            connection.execute(
                "CREATE TABLE IF NOT EXISTS claims "
                "(key TEXT PRIMARY KEY, owner TEXT NOT NULL, claimed REAL NOT NULL)"
            )
        self._identity = _identity(self.path)

    def _current(self) -> None:
        """Go on in a new store if the file was deleted (or replaced) since it was opened."""
        if _identity(self.path) == self._identity:
            return
        if not self.path.exists():
            self._remove_files()  # a write-ahead log without its database would be misread
        warnings.warn(
            f"results cache {self.path} was deleted or replaced during the run; storing "
            "into a new one (results stored before are gone)",
            stacklevel=4,
        )
        self._create()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            # Each result is committed as it arrives; in WAL mode NORMAL keeps every commit
            # through a killed process without an fsync per commit.
            connection.execute("PRAGMA synchronous=NORMAL")
            yield connection
        finally:
            connection.close()

    def _failure(self, error: sqlite3.Error) -> SurveySimError:
        """An error saying what went wrong with the store and what the user can do."""
        return SurveySimError(
            f"{self._problem(error)}, or run without it (--no-cache; Python: cache=False)"
        )

    def _problem(self, error: sqlite3.Error) -> str:
        """What went wrong with the store (and the remedy for that cause)."""
        name = getattr(error, "sqlite_errorname", "")
        if _damaged(error):
            problem = (
                f"is damaged, not a readable SQLite database ({error}); delete it with "
                "'survey-sim cache clear', or replace it with an empty one with --fresh"
            )
        elif name.startswith("SQLITE_READONLY") or (
            name.startswith("SQLITE_CANTOPEN") and not os.access(self.path.parent, os.W_OK)
        ):
            problem = (
                "is read-only (the file or its folder cannot be written); set "
                "SURVEY_SIM_RESULTS_CACHE to a writable file"
            )
        elif name == "SQLITE_FULL" or name.startswith("SQLITE_IOERR"):
            problem = (
                f"cannot be written ({error}: a full disk, a file size limit or a failing "
                "disk); free space"
            )
        elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            problem = f"stayed locked by another process for 60 s ({error})"
        else:
            problem = f"cannot be used ({error})"
        return f"results cache {self.path} {problem}"

    def get(self, keys: Sequence[str]) -> dict[str, Any]:
        """The stored values of those ``keys`` that are present and intact (none when
        ``fresh``). A value that fails its checksum is left out (so it is computed again),
        with a warning."""
        found: dict[str, Any] = {}
        if self.fresh:
            return found
        damaged = 0
        try:
            self._current()
            with self._connection() as connection:
                for start in range(0, len(keys), 500):
                    part = list(keys[start : start + 500])
                    marks = ",".join("?" * len(part))
                    rows = connection.execute(
                        f"SELECT key, value, checksum FROM entries WHERE key IN ({marks})", part
                    )
                    for key, value, checksum in rows:
                        if checksum == _checksum(key, value):
                            found[key] = json.loads(value)
                        else:
                            damaged += 1
        except sqlite3.Error as error:
            raise self._failure(error) from error
        if damaged:
            warnings.warn(
                f"results cache {self.path}: {damaged} stored result"
                f"{'s' if damaged > 1 else ''} failed the integrity check (damaged on disk); "
                "computing them again",
                stacklevel=2,
            )
        return found

    def put(self, items: Mapping[str, Any]) -> None:
        """Store values (JSON-serialisable) under their keys, in one transaction.

        Never raises for the store's sake: when the file was deleted a new one is started;
        when storing fails (disk full, read-only), this and later calls store nothing, with
        one warning.
        """
        if self._storing_failed is not None:
            return
        now = time.time()
        rows = []
        for key, value in items.items():
            text = json.dumps(value)
            rows.append((key, text, _checksum(key, text), now))
        try:
            try:
                self._insert(rows)
            except sqlite3.Error:
                if _identity(self.path) == self._identity:
                    raise
                self._insert(rows)  # deleted while being opened: once more, in a new store
        except sqlite3.Error as error:
            self._storing_failed = self._problem(error)
            warnings.warn(
                f"{self._storing_failed}: carrying on without storing results (what this run "
                "computes from now on is not kept for reruns)",
                stacklevel=2,
            )

    def _insert(self, rows: list[tuple[str, str, str, float]]) -> None:
        self._current()
        with self._connection() as connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)", rows)
            connection.executemany("DELETE FROM claims WHERE key = ?", [row[:1] for row in rows])
            connection.execute("COMMIT")

    def claim(self, keys: Sequence[str]) -> set[str]:
        """Claim the computing of ``keys`` for this process, so that another run of the same
        study (sharing this store) leaves them to it: returns the keys now this process's,
        those no other run that is still going has claimed. A claim lapses
        when its process is gone (on this machine) or after :data:`CLAIM_LAPSES` seconds;
        storing a result ends its claim. Where claiming fails (a read-only store), every key
        is this process's.
        """
        if not keys:
            return set()
        now = time.time()
        try:
            self._current()
            with self._connection() as connection:
                connection.execute("BEGIN IMMEDIATE")
                marks = ",".join("?" * len(keys))
                held = {
                    key
                    for key, owner, claimed in connection.execute(
                        f"SELECT key, owner, claimed FROM claims WHERE key IN ({marks})", list(keys)
                    )
                    if owner != _owner() and _going(owner, now - claimed)
                }
                mine = [key for key in keys if key not in held]
                connection.executemany(
                    "INSERT OR REPLACE INTO claims VALUES (?, ?, ?)",
                    [(key, _owner(), now) for key in mine],
                )
                connection.execute("COMMIT")
        except sqlite3.Error:
            return set(keys)
        return set(mine)

    def release(self, keys: Sequence[str]) -> None:
        """Give up this process's claims on ``keys`` (a run stopped by an error it survives)."""
        try:
            with self._connection() as connection:
                connection.executemany(
                    "DELETE FROM claims WHERE key = ? AND owner = ?",
                    [(key, _owner()) for key in keys],
                )
        except sqlite3.Error:
            pass  # unreleased claims lapse

    def runs(self) -> int:
        """Runs on this machine computing into this store now (this process included)."""
        try:
            with self._connection() as connection:
                owners = [row[0] for row in connection.execute("SELECT DISTINCT owner FROM claims")]
        except sqlite3.Error:
            return 1
        local = {owner for owner in owners if owner.startswith(f"{_HOST}:") and _going(owner, 0)}
        return len(local | {_owner()})

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def info(self) -> dict[str, Any]:
        """Entries, size on disk (database and write-ahead log) and location."""
        try:
            with self._connection() as connection:
                entries = connection.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
        except sqlite3.Error as error:
            raise self._failure(error) from error
        files = [self.path, Path(f"{self.path}-wal")]
        size = sum(path.stat().st_size for path in files if path.exists())
        return {"path": str(self.path), "entries": entries, "bytes": size}

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        try:
            with self._connection() as connection:
                entries = connection.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
                connection.execute("DELETE FROM entries")
                connection.execute("VACUUM")
        except sqlite3.Error as error:
            raise self._failure(error) from error
        return int(entries)


CLAIM_LAPSES = 1800.0
"""Seconds after which a claim lapses, even if its process still runs."""
_HOST = socket.gethostname()


def _owner() -> str:
    """Who claims work: this machine and process (``host:pid``)."""
    return f"{_HOST}:{os.getpid()}"


def _going(owner: str, age: float) -> bool:
    """Whether the run that claimed work as ``owner`` ``age`` seconds ago may still be at it
    (a process id can be reused, so even a running process's claim lapses)."""
    host, _, pid = owner.rpartition(":")
    here = host == _HOST and pid.isdigit()
    return age < CLAIM_LAPSES and (running(int(pid)) if here else True)


def _damaged(error: sqlite3.Error) -> bool:
    name = getattr(error, "sqlite_errorname", "")
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file ``path`` is (device and inode), or ``None`` when there is none."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


def _checksum(key: str, value: str) -> str:
    return hashlib.sha256(f"{key}\0{value}".encode()).hexdigest()[:32]


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
