"""Runs stopped from outside: one line, the conventional exit status, no files left."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from test_cli import SCRIPT  # the sibling module: the console script as a user runs it


@pytest.mark.parametrize(("stop", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_run_says_so_in_one_line_and_leaves_no_files(tmp_path, stop, status):
    running = subprocess.Popen(
        [SCRIPT, "demo", "--fresh", "--out", "demo.parquet"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert running.stderr is not None
    seen = b""
    while b"Simulating" not in seen:  # the model is loaded and requests are being answered
        chunk = os.read(running.stderr.fileno(), 4096)
        assert chunk, seen.decode()
        seen += chunk
    running.send_signal(stop)
    _, rest = running.communicate(timeout=120)
    stderr = (seen + rest).decode()
    assert running.returncode == status, stderr
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1].split("\r")[-1]
    assert last.startswith("survey-sim: interrupted" if status == 130 else "survey-sim: stopped")
    assert "rerun the same command to resume" in last
    assert list(tmp_path.iterdir()) == []
