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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"questionnaire": "folder"}, "folder: a folder, not a file"),
        ({"model": "broken"}, "broken: cannot load a model from it (OSError: It looks like"),
        ({"model": "fake.gguf"}, "fake.gguf: cannot load a model from it"),
        ({"threads": "0"}, "argument --threads: must be at least 1, got 0"),
        ({"cache": "personas.csv/results.sqlite"}, "cannot create the results cache's folder"),
    ],
)
def test_broken_inputs_are_one_line_errors(tmp_path, change, message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{")
    (tmp_path / "fake.gguf").write_bytes(b"GGUF\x03\x00")
    (tmp_path / "personas.csv").write_text("id,description\np1,You are a voter.\n")
    (tmp_path / "q.yaml").write_text(
        "id: q\nquestions:\n  - {id: a, kind: single_choice, text: T, "
        "options: [{code: y, text: 'Yes'}, {code: n, text: 'No'}]}\n"
    )
    before = set(tmp_path.iterdir())
    arguments = [change.get("questionnaire", "q.yaml"), "--personas", "personas.csv"]
    for option in ("model", "threads"):
        if option in change:
            arguments += [f"--{option}", change[option]]
    environment = dict(os.environ)
    if "cache" in change:
        environment["SURVEY_SIM_RESULTS_CACHE"] = str(tmp_path / change["cache"])
    refused = subprocess.run(
        [SCRIPT, "run", *arguments, "--out", "r.parquet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert set(tmp_path.iterdir()) == before
