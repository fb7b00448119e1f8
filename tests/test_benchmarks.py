"""Every benchmark runs: each script in ``benchmarks/`` on its smallest setting (the tiny
test model where the script takes one), so that a rename cannot orphan a published table.
The numbers are not checked here; the scripts' own comparisons are (they raise on a
mismatch between strategies)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
BENCHMARKS = ROOT / "benchmarks"


def run_benchmark(script: str, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_every_benchmark_has_a_smoke_run():
    scripts = {path.name for path in BENCHMARKS.glob("*.py") if not path.name.startswith("_")}
    assert scripts == set(SMOKE) | set(SMOKE_WITH_RESULTS) | {
        "fit_times.py",
        "fidelity.py",
        "tuning.py",
        "planted.py",
    }


SMOKE = {
    "prefix_reuse.py": ["--personas", "2", "--questions", "2", "--demo-personas", "1"],
    "resume.py": ["--personas", "2", "--questions", "2", "--stops", "1"],
    "architectures.py": ["--personas", "1"],
    "exact_vs_sampling.py": ["--answers", "label", "--replicates", "1", "--max-draws", "100"],
    "fingerprint.py": ["{tiny}"],
    "tuning_speed.py": ["--model", "{tiny}", "--steps", "2", "--batch-size", "2"],
    "sglang_client.py": ["--personas", "2"],
    "respondents.py": ["--model", "{tiny}", "--n", "20", "40", "--memory-n", "10"],
    "joints.py": ["--model", "{tiny}", "--questions", "3", "--personas", "2"],
    "rank_and_grid.py": ["--model", "{tiny}", "--personas", "2", "--samples", "10"],
    "dtype.py": ["--model", "{tiny}", "--rounds", "1", "--agreement-personas", "1"],
    "peers.py": ["--model", "{tiny}", "--personas", "2", "--draws", "3", "--grid-personas", "2"],
}
SMOKE_WITH_RESULTS = {
    "joints_vs_people.py": ["--model", "{tiny}", "--questions", "3", "--resamples", "20"],
}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SMOKE))
def test_benchmark_runs(script, tiny_model_dir, tmp_path):
    args = [arg.format(tiny=tiny_model_dir) for arg in SMOKE[script]]
    run_benchmark(script, *args, cwd=tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SMOKE_WITH_RESULTS))
def test_benchmark_with_results_runs(script, tiny_model_dir, tmp_path):
    args = [arg.format(tiny=tiny_model_dir) for arg in SMOKE_WITH_RESULTS[script]]
    run_benchmark(script, *args, "--results", str(tmp_path / "results"), cwd=tmp_path)
    assert (tmp_path / "results" / "joints.md").read_text().count("## ") == 2


@pytest.mark.slow
def test_fidelity_benchmark_runs(tiny_model_dir, tmp_path):
    out = tmp_path / "results"
    args = ["--model", str(tiny_model_dir), "--train", "8", "--test", "8", "--results", str(out)]
    run_benchmark("fidelity.py", *args, "--datasets", "gss_spending_2018", cwd=tmp_path)
    text = (out / "fidelity.md").read_text()
    assert "fitted_marginal" in text and "noise_floor" in text and "verdict" in text
    assert {p.name for p in out.iterdir()} >= {"fidelity.population.csv", "fidelity.paired.csv"}


@pytest.mark.slow
def test_tuning_benchmark_runs(tiny_model_dir, tmp_path):
    out = tmp_path / "results"
    args = ["--model", str(tiny_model_dir), "--epochs", "0.2", "--train-respondents", "6"]
    run_benchmark("tuning.py", *args, "--results", str(out), cwd=tmp_path)
    text = (out / "tuning.md").read_text()
    assert "fitted_marginal" in text and "after - before" in text


@pytest.mark.slow
def test_fit_times_benchmark_runs(tiny_model_dir, tmp_path):
    cli = Path(sys.executable).with_name("survey-sim")
    for command in (
        ["population", "--human", "gss_spending_2018", "--out", "cells.csv"],
        [
            "run",
            str(ROOT / "questionnaires" / "gss_spending_2018.yaml"),
            "--personas",
            "cells.csv",
            "--model",
            str(tiny_model_dir),
            "--quiet",
            "--out",
            "cells.parquet",
        ],
    ):
        done = subprocess.run([cli, *command], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    args = ["cells.parquet", "cells.csv", "--draws", "30", "--samplers", "pymc"]
    printed = run_benchmark("fit_times.py", *args, cwd=tmp_path)
    assert "calibration" in printed


@pytest.mark.slow
def test_planted_benchmark_runs(tmp_path):
    out = tmp_path / "results"
    args = ["--steps", "2", "--respondents", "200", "--bootstrap", "10", "--draws", "50"]
    args += ["--interviews", "1", "--trait-interviews", "1", "--null-pairs", "1"]
    args += ["--gap-interviews", "1", "--warm-up-steps", "60"]
    args += ["--train", "20", "--test", "40", "--coverage-samples", "2"]
    args += ["--simulated-respondents", "30"]
    run_benchmark("planted.py", *args, "--results", str(out), cwd=tmp_path)
    text = (out / "planted.md").read_text()
    assert "Planted quantities" in text and "Calibration alpha" in text
    assert "perfect simulator (model-free" in text and "model+regression − regression" in text
    assert "Exact joints: the latent trait between items" in text
    assert "Simulated respondents: a synthetic sample" in text and "memory: full" in text
