"""The results store under faults, injected without root: damaged files, a read-only folder,
the store deleted during a run, a full disk (a file size limit), values damaged on disk.
The run carries on where it can, and says what happened in one line where it cannot."""

from __future__ import annotations

import ctypes
import os
import resource
import sqlite3
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from test_store import SCRIPT, stored  # the sibling module

from survey_sim import Population, simulate
from survey_sim.data.bundled import bundled_file
from survey_sim.runs import ResultsCache, SimulationResult
from survey_sim.testing import assert_same_results

PERSONAS = 40
QUESTIONS = 18  # the bundled GSS spending questionnaire


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> list[str]:
    """``survey-sim run`` of the GSS spending items for 40 personas on the tiny model."""
    folder = tmp_path_factory.mktemp("study")
    Population.from_records(
        {"id": f"p{i:03d}", "age": 20 + i, "job": ["nurse", "farmer", "clerk"][i % 3]}
        for i in range(PERSONAS)
    ).write_csv(folder / "people.csv")
    questionnaire = bundled_file("questionnaires", "gss_spending_2018.yaml")
    people, model = str(folder / "people.csv"), str(tiny_model_dir)
    return [SCRIPT, "run", str(questionnaire), "--personas", people, "--model", model, "--quiet"]


def run(study: list[str], store: Path, out: Path, *extra: str, **options: object):
    environment = dict(os.environ, SURVEY_SIM_RESULTS_CACHE=str(store))
    return subprocess.Popen(
        [*study, "--out", str(out), *extra],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


def finish(process: subprocess.Popen) -> str:
    """The process's stderr, once it exited 0 without a traceback."""
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    return stderr


@pytest.fixture(scope="module")
def uninterrupted(study: list[str], tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """The study's responses from a run without the store (which leaves the store alone)."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    store = folder / "untouched.sqlite"
    ResultsCache(store).put({"k": 1})
    before = store.read_bytes()
    finish(run(study, store, folder / "r.parquet", "--no-cache"))
    assert store.read_bytes() == before
    return SimulationResult.read_parquet(folder / "r.parquet").responses


def damaged_store(path: Path, damage: str) -> None:
    if damage == "garbage":
        path.write_bytes(b"not a database " * 1000)
        return
    ResultsCache(path).put({f"k{i}": {"pad": "x" * 200} for i in range(2000)})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_store_is_refused_before_the_model_loads_with_the_ways_out(
    study, tmp_path, damage
):
    store = tmp_path / "results.sqlite"
    damaged_store(store, damage)
    refused = run(study, store, tmp_path / "r.parquet")
    _, stderr = refused.communicate(timeout=300)
    assert refused.returncode == 2, stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith(f"survey-sim: error: results cache {store} is damaged")
    for way_out in ("survey-sim cache clear", "--fresh", "--no-cache"):
        assert way_out in line
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results.sqlite"]


def test_fresh_and_cache_clear_replace_a_damaged_store(study, tmp_path, uninterrupted):
    store = tmp_path / "results.sqlite"
    damaged_store(store, "garbage")
    stderr = finish(run(study, store, tmp_path / "r.parquet", "--fresh"))
    assert "was damaged (file is not a database); replaced it with an empty one" in stderr
    assert stored(store) == PERSONAS * QUESTIONS
    assert_same_results(
        SimulationResult.read_parquet(tmp_path / "r.parquet").responses, uninterrupted
    )

    damaged_store(store, "garbage")
    environment = dict(os.environ, SURVEY_SIM_RESULTS_CACHE=str(store))
    cleared = subprocess.run(
        [SCRIPT, "cache", "clear"], env=environment, capture_output=True, text=True, check=False
    )
    assert cleared.returncode == 0, cleared.stderr
    assert "replaced it with an empty one" in cleared.stderr
    assert f"Deleted 0 entries from {store}" in cleared.stdout
    assert stored(store) == 0


def test_a_store_deleted_during_the_run_is_started_again(study, tmp_path, uninterrupted):
    store = tmp_path / "results.sqlite"
    running = run(study, store, tmp_path / "r.parquet")
    while stored(store) == 0 and running.poll() is None:
        pass
    for suffix in ("", "-wal", "-shm"):  # as `rm results.sqlite*` would
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    stderr = finish(running)
    assert f"results cache {store} was deleted or replaced during the run" in stderr
    assert 0 < stored(store) < PERSONAS * QUESTIONS  # what was computed after the deletion
    assert_same_results(
        SimulationResult.read_parquet(tmp_path / "r.parquet").responses, uninterrupted
    )


def test_a_full_disk_stops_the_storing_not_the_run(study, tmp_path, uninterrupted):
    """A file size limit makes every write past it fail as on a full disk; the results
    files are smaller than the limit, the store outgrows it."""
    limit = 96 * 1024

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    store = tmp_path / "results.sqlite"
    stderr = finish(run(study, store, tmp_path / "r.parquet", preexec_fn=limited))
    assert f"results cache {store} cannot be written" in stderr
    assert "carrying on without storing results" in stderr
    assert 0 < stored(store) < PERSONAS * QUESTIONS
    assert_same_results(
        SimulationResult.read_parquet(tmp_path / "r.parquet").responses, uninterrupted
    )


def test_a_read_only_store_is_named_as_such(tmp_path):
    store = tmp_path / "readonly" / "results.sqlite"
    ResultsCache(store).put({"k": 1})
    store.parent.chmod(0o555)
    try:
        opening = subprocess.run(
            [sys.executable, "-c", OPEN_STORE, str(store)],
            preexec_fn=bound_by_file_permissions,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        store.parent.chmod(0o755)
    message = opening.stderr.strip().splitlines()[-1]
    assert "is read-only (the file or its folder cannot be written)" in message, message
    assert "--no-cache" in message


OPEN_STORE = """
import sys
from survey_sim.errors import SurveySimError
from survey_sim.runs import ResultsCache
try:
    ResultsCache(sys.argv[1]).put({"more": 2})
except SurveySimError as error:
    sys.exit(str(error))
"""


def bound_by_file_permissions() -> None:
    """Run as root without the capabilities that let root ignore file permissions (dropped
    from the bounding set, so the program started next does not have them); nothing to do
    for other users."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 24, 1, 2, 3
"""From linux/prctl.h and linux/capability.h."""


@pytest.mark.parametrize(
    "damage",
    [
        "replace(value, '.', '0')",  # digits changed: still JSON, still the right shape
        "substr(value, 1, 10)",  # cut short: not JSON
    ],
)
def test_a_value_damaged_on_disk_is_computed_again(tiny_engine, gss, tmp_path, damage):
    personas = Population.from_records({"id": f"p{i}", "age": 30 + i} for i in range(3))
    store = ResultsCache(tmp_path / "results.sqlite")
    first = simulate(gss, personas, tiny_engine, cache=store, progress=False)
    with sqlite3.connect(store.path) as connection:
        (key,) = connection.execute("SELECT key FROM entries LIMIT 1").fetchone()
        connection.execute(f"UPDATE entries SET value = {damage} WHERE key = ?", (key,))
    with pytest.warns(UserWarning, match="1 stored result failed the integrity check"):
        again = simulate(gss, personas, tiny_engine, cache=store, progress=False)
    assert again.manifest.cache.misses == 1
    assert_same_results(again.responses, first.responses)  # computed alone, not in its pass


def test_two_runs_of_one_study_split_the_work(study, tmp_path, uninterrupted):
    store = tmp_path / "results.sqlite"
    runs = [run(study, store, tmp_path / f"{name}.parquet") for name in ("a", "b")]
    for process in runs:
        finish(process)
    results = [SimulationResult.read_parquet(tmp_path / f"{name}.parquet") for name in "ab"]
    computed = [result.manifest.cache.misses for result in results]
    assert all(count > 0 for count in computed), computed  # both took part
    assert sum(computed) <= PERSONAS * QUESTIONS * 1.1, computed  # hardly anything twice
    for result in results:
        assert_same_results(result.responses, uninterrupted)
    assert stored(store) == PERSONAS * QUESTIONS
