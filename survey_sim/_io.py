"""File writing that never leaves a partial file behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl


def write_atomic(path: Path, write: Callable[[str], object]) -> Path:
    """Call ``write(temporary path)`` in the same folder as ``path``, then rename it there.

    The file gets the permissions a plain ``open(path, "w")`` would give it (0666 less the
    umask), so collaborators sharing a project folder can read it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_parquet_atomic(frame: pl.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` as Parquet, atomically."""
    return write_atomic(path, frame.write_parquet)
