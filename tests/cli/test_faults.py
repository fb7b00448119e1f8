"""Runs stopped from outside: one line, the conventional exit status, no files left."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from test_cli import SCRIPT  # the sibling module: the console script as a user runs it

from survey_sim.runs import ResultsCache


@pytest.mark.parametrize(("stop", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_run_says_so_in_one_line_and_leaves_no_files(
    tmp_path, tmp_path_factory, stop, status
):
    store = tmp_path_factory.mktemp("store") / "results.sqlite"
    running = subprocess.Popen(
        [SCRIPT, "demo", "--out", "demo.parquet"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ, SURVEY_SIM_RESULTS_CACHE=str(store)),
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
    what = "interrupted" if status == 130 else r"stopped \(SIGTERM\)"
    said = re.fullmatch(
        rf"survey-sim: {what}: (\d+) of 144 requests saved in the results cache; "
        "rerun the same command to resume",
        last,
    )
    assert said is not None, last
    assert int(said.group(1)) == ResultsCache(store).info()["entries"]
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


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["broken.yaml", "--personas", "personas.csv"], "broken.yaml:3: invalid YAML"),
        (["q.yaml", "--personas", "absent.csv"], "absent.csv: file not found"),
        (["q.yaml", "--personas", "personas.csv", "--model", "absent"], "unknown model 'absent'"),
        (
            ["q.yaml", "--personas", "personas.csv", "--method", "sample", "--samples", "0"],
            "samples: Input should be greater than or equal to 1",
        ),
        (["q.yaml", "--personas", "personas.csv", "--engine", "sglang"], "needs --url"),
        (
            [
                *("q.yaml", "--personas", "personas.csv", "--engine", "sglang"),
                *("--url", "http://x", "--dtype", "bfloat16", "--threads", "2"),
            ],
            "--threads and --dtype cannot apply to --engine sglang: the server decides them",
        ),
        (
            ["q.yaml", "--personas", "personas.csv", "--url", "http://x"],
            "--url cannot apply to --engine embedded",
        ),
        (["q.yaml", "--personas", "personas.csv", "--out", "/proc/r.parquet"], "cannot write in"),
        (["q.yaml", "--personas", "personas.csv", "--adapter", "."], "not a LoRA adapter folder"),
        (
            ["tune", "--human", "gss_spending_2018", "--epochs", "0", "--out", "a"],
            "epochs: Input should be greater than 0",
        ),
        (
            ["tune", "--human", "gss_spending_2018", "--model", "absent", "--out", "a"],
            "unknown model 'absent'",
        ),
    ],
)
def test_input_mistakes_are_reported_before_torch_is_imported(tmp_path, arguments, message):
    refused = run_with_tripwire(tmp_path, arguments)
    assert refused.returncode == 2, refused.stderr
    assert message in refused.stderr and "torch was imported" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr


def test_the_torch_tripwire_trips(tmp_path):
    loading = run_with_tripwire(tmp_path, ["q.yaml", "--personas", "personas.csv"])
    assert loading.returncode != 0 and "torch was imported" in loading.stderr


def run_with_tripwire(tmp_path: Path, arguments: list[str]) -> subprocess.CompletedProcess[str]:
    """``survey-sim run`` (or the command ``arguments`` start with) with a tripwire ``torch``
    first on the path, which fails a command that imports torch: mistakes caught before it
    are caught before the model loads."""
    tripwire = tmp_path / "tripwire" / "torch"
    tripwire.mkdir(parents=True)
    (tripwire / "__init__.py").write_text("raise ImportError('torch was imported')\n")
    (tmp_path / "broken.yaml").write_text("id: q\nquestions: [\n")
    (tmp_path / "personas.csv").write_text("id,description\np1,You are a voter.\n")
    (tmp_path / "q.yaml").write_text(
        "id: q\nquestions:\n  - {id: a, kind: single_choice, text: T, "
        "options: [{code: y, text: 'Yes'}, {code: n, text: 'No'}]}\n"
    )
    if "--out" not in arguments:
        arguments = [*arguments, "--out", "r.parquet"]
    command = arguments if arguments[0] == "tune" else ["run", *arguments]
    return subprocess.run(
        [SCRIPT, *command],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(tripwire.parent)),
        timeout=120,
    )
