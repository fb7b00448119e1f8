"""Atomic file writing: whole files only, with the permissions the umask gives."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from survey_sim._io import write_atomic


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_respect_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        path = write_atomic(tmp_path / "out.txt", lambda temporary: open(temporary, "w").close())
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_a_failed_write_leaves_nothing(tmp_path):
    def fail(temporary: str) -> None:
        with open(temporary, "w") as handle:
            handle.write("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_atomic(tmp_path / "out.txt", fail)
    assert list(tmp_path.iterdir()) == []


def test_only_temporaries_of_writers_no_longer_running_are_swept(tmp_path):
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = tmp_path / f".out.txt.{finished.stdout.strip()}.abc.tmp"
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as writer:
        live = tmp_path / f".out.txt.{writer.pid}.def.tmp"
        other = tmp_path / f".other.txt.{finished.stdout.strip()}.ghi.tmp"
        for leftover in (dead, live, other):
            leftover.write_text("half")
        write_atomic(tmp_path / "out.txt", lambda temporary: Path(temporary).write_text("whole"))
        writer.kill()
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        ["out.txt", live.name, other.name]
    )
