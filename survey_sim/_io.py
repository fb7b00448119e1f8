"""File writing that never leaves a partial file behind.

Every file is written to a temporary file in its target's folder and renamed into place.
Temporary names carry the writing process's id (``.NAME.PID.RANDOM.tmp``), so a later write
of the same file removes the temporaries of writers that were killed, and never those of a
writer that is still running.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import polars as pl

Writer = Callable[[str], object]
"""Writes a file's content to the path it is given."""


def write_atomic(path: Path, write: Writer) -> Path:
    """Call ``write(temporary path)`` in the same folder as ``path``, then rename it there.

    The file gets the permissions a plain ``open(path, "w")`` would give it (0666 less the
    umask), so collaborators sharing a project folder can read it.
    """
    return write_set({path: write})[0]


def write_set(writers: Mapping[Path, Writer], *, remove: Iterable[Path] = ()) -> list[Path]:
    """Write files that belong together: all of them, or none.

    Every file is written to its temporary first; only when all are written are the files in
    ``remove`` deleted and the temporaries renamed into place, in the order given (so name
    the file readers open first last). Ctrl-C or SIGTERM during the renames takes effect after
    them. A failed write changes no target. Only SIGKILL (or power loss) during the renames,
    which take microseconds, can leave a mix of old and new files; readers of a set that
    matters should check that its files belong together (results sets carry a set id).

    Returns:
        The paths written, in the order of ``writers``.
    """
    staged: dict[Path, str] = {}
    try:
        for path, write in writers.items():
            staged[path] = _staged(path, write)
        with _signals_held():
            for path in remove:
                path.unlink(missing_ok=True)
            for path, temporary in staged.items():
                os.replace(temporary, path)
    except BaseException:
        for temporary in staged.values():
            Path(temporary).unlink(missing_ok=True)
        raise
    return list(writers)


def _staged(path: Path, write: Writer) -> str:
    """``path``'s content written to a fresh temporary beside it (with the permissions the
    file should have); leftovers of killed writers of ``path`` are removed first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_temporaries(path)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return temporary


def sweep_temporaries(path: Path) -> list[Path]:
    """Remove the temporaries of ``path`` left by writers that no longer run (killed ones).

    Returns:
        The files removed.
    """
    removed: list[Path] = []
    for temporary in path.parent.glob(f".{path.name}.*.tmp"):
        owner = temporary.name[len(path.name) + 2 :].split(".", 1)[0]
        if owner.isdigit() and not running(int(owner)):
            temporary.unlink(missing_ok=True)
            removed.append(temporary)
    return removed


def running(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then deliver them to the handlers they
    had. Python runs signal handlers on the main thread only, so elsewhere this holds
    nothing and need not."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {
        number: signal.signal(number, lambda number, _frame: received.append(number))
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for pending in received:
            signal.raise_signal(pending)


def _umask() -> int:
    """The process's umask: from ``/proc/self/status`` where there is one (Linux), since
    elsewhere reading it means setting it and setting it straight back, which races with
    any other thread that does the same."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` as Parquet, atomically."""
    return write_atomic(path, frame.write_parquet)
