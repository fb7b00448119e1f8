import os
import signal
import subprocess
import sys
import warnings

import numpy as np
import polars as pl
import pytest

from survey_sim import (
    CoverageWarning,
    InputError,
    Population,
    ScoringError,
    SimulationResult,
    simulate,
)
from survey_sim.engines import ScoreRequest
from survey_sim.runs import results
from survey_sim.runs.results import CELL_COLUMNS, DRAW_SCHEMA, RESPONSE_SCHEMA


@pytest.fixture(scope="module")
def small_result(tiny_engine, gss, demo_population) -> SimulationResult:
    questionnaire = gss.select(["natspac", "natfare", "natsoc"])
    return simulate(questionnaire, demo_population, tiny_engine, format="chat", progress=False)


def test_responses_frame_is_tidy_and_complete(small_result, demo_population):
    responses = small_result.responses
    assert dict(responses.schema) == RESPONSE_SCHEMA
    assert responses.height == len(demo_population) * 3 * 3
    sums = responses.group_by("persona_id", "question_id").agg(pl.col("prob").sum())
    assert sums["prob"].to_list() == pytest.approx([1.0] * sums.height)
    assert (responses["coverage"] <= 1).all() and (responses["coverage"] > 0).all()
    assert responses["model"].unique().to_list() == [small_result.responses["model"][0]]
    assert responses["format"].unique().to_list() == ["chat"]


def test_population_distribution_is_the_weighted_mean(small_result, demo_population):
    weights = dict(
        zip(demo_population.frame["persona_id"], demo_population.frame["weight"], strict=True)
    )
    population = small_result.population
    assert population.height == 9
    row = population.filter(pl.col("question_id") == "natfare", pl.col("option_code") == "1")
    per_persona = small_result.responses.filter(
        pl.col("question_id") == "natfare", pl.col("option_code") == "1"
    )
    expected = sum(
        weights[p] * prob
        for p, prob in zip(per_persona["persona_id"], per_persona["prob"], strict=True)
    )
    assert row["prob"][0] == pytest.approx(expected / sum(weights.values()))
    assert row["personas"][0] == len(demo_population)
    sums = population.group_by("question_id").agg(pl.col("prob").sum())
    assert sums["prob"].to_list() == pytest.approx([1.0] * 3)


def test_weights_change_the_population_distribution(tiny_engine, gss):
    personas = [
        {"id": "a", "description": "You are a farmer.", "weight": 1.0},
        {"id": "b", "description": "You are an astronaut who loves rockets.", "weight": 1.0},
    ]
    questionnaire = gss.select(["natspac"])
    even = simulate(questionnaire, Population.from_records(personas), tiny_engine, progress=False)
    personas[1]["weight"] = 9.0
    skewed = simulate(questionnaire, Population.from_records(personas), tiny_engine, progress=False)
    b_probs = even.responses.filter(pl.col("persona_id") == "b")["prob"].to_list()
    a_probs = even.responses.filter(pl.col("persona_id") == "a")["prob"].to_list()
    expected = [(pa + 9 * pb) / 10 for pa, pb in zip(a_probs, b_probs, strict=True)]
    assert skewed.population["prob"].to_list() == pytest.approx(expected)


def test_sampling_method_reports_frequencies_and_counts(tiny_engine, gss, demo_population):
    questionnaire = gss.select(["natfare", "natsoc"])
    result = simulate(
        questionnaire, demo_population, tiny_engine, method="sample", samples=40, progress=False
    )
    responses = result.responses
    assert responses["method"].unique().to_list() == ["sample"]
    assert responses["logprob"].is_null().all() and responses["coverage"].is_null().all()
    cells = responses.group_by("persona_id", "question_id").agg(
        pl.col("prob").sum(), pl.col("samples").first(), pl.col("truncated").first()
    )
    assert (cells["samples"] + cells["truncated"] == 40).all()
    assert cells["prob"].to_list() == pytest.approx([1.0] * cells.height)
    counts = responses["prob"] * responses["samples"]
    assert ((counts - counts.round()).abs() < 1e-9).all()  # frequencies of whole draws
    population = result.population
    assert population["coverage"].is_null().all()
    assert population["method"].unique().to_list() == ["sample"]
    again = simulate(
        questionnaire, demo_population, tiny_engine, method="sample", samples=40, progress=False
    )
    assert again.responses.equals(responses)  # seeded: reproducible


def test_unknown_method_is_a_clear_error(tiny_engine, gss, demo_population):
    with pytest.raises(ValueError, match="method must be 'exact' or 'sample'"):
        simulate(gss.select(["natfare"]), demo_population, tiny_engine, method="guess")


def test_parquet_round_trip(small_result, tmp_path):
    responses_path, population_path, manifest_path = small_result.write_parquet(
        tmp_path / "run.parquet"
    )
    assert population_path.name == "run.population.parquet"
    assert manifest_path.name == "run.manifest.json"
    again = SimulationResult.read_parquet(responses_path)
    assert again.responses.equals(small_result.responses)
    assert again.manifest == small_result.manifest
    assert pl.read_parquet(population_path).equals(small_result.population)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "run.manifest.json",
        "run.parquet",
        "run.population.parquet",
    ]


def test_a_broken_manifest_is_named(small_result, tmp_path):
    small_result.write_parquet(tmp_path / "run.parquet")
    (tmp_path / "run.manifest.json").write_text("{not json")
    with pytest.raises(InputError, match=r"run\.manifest\.json:1: not a run manifest"):
        SimulationResult.read_parquet(tmp_path / "run.parquet")


def test_a_kill_between_the_renames_is_detected_and_its_leftovers_swept(small_result, tmp_path):
    """SIGKILL right after the first file of a new set is renamed into place: the old and new
    files side by side are refused, and the next write removes the dead writer's temporaries."""
    source, target = tmp_path / "source.parquet", tmp_path / "run.parquet"
    small_result.write_parquet(source)
    SimulationResult(small_result.responses.head(9)).write_parquet(target)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER.format(source=source, target=target)], check=False
    )
    assert killed.returncode == -signal.SIGKILL
    with pytest.raises(InputError, match="not a complete results set"):
        SimulationResult.read_parquet(target)
    leftovers = sorted(p.name for p in tmp_path.glob(".run.*.tmp"))
    assert [name.split(".")[2] for name in leftovers] == ["manifest", "parquet"]
    small_result.write_parquet(target)
    assert not list(tmp_path.glob(".run.*.tmp"))
    assert SimulationResult.read_parquet(target).responses.equals(small_result.responses)


KILLED_WRITER = """
import os, signal
from survey_sim import SimulationResult
rename = os.replace
def rename_then_die(source, target):
    rename(source, target)
    os.kill(os.getpid(), signal.SIGKILL)
os.replace = rename_then_die
SimulationResult.read_parquet("{source}").write_parquet("{target}")
"""


def test_ctrl_c_while_a_set_is_renamed_takes_effect_after_the_last_file(
    small_result, tmp_path, monkeypatch
):
    SimulationResult(small_result.responses.head(9)).write_parquet(tmp_path / "run.parquet")
    rename = os.replace

    def rename_and_interrupt(source: str, target: str) -> None:
        rename(source, target)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "replace", rename_and_interrupt)
    with pytest.raises(KeyboardInterrupt):
        small_result.write_parquet(tmp_path / "run.parquet")
    monkeypatch.undo()
    again = SimulationResult.read_parquet(tmp_path / "run.parquet")
    assert again.responses.equals(small_result.responses)
    assert again.manifest == small_result.manifest


def test_a_set_without_draws_removes_the_earlier_sets_draws(small_result, tmp_path):
    draw = {
        **small_result.responses.select(*CELL_COLUMNS).row(0, named=True),
        "draw": 0,
        "answer": '"1"',
        "text": '{"answer": "1"}',
        "truncated": False,
        "invalid": False,
        "seed": 1,
        "model": "m",
        "format": "chat",
    }
    sampled = SimulationResult(small_result.responses, pl.DataFrame([draw], schema=DRAW_SCHEMA))
    sampled.write_parquet(tmp_path / "run.parquet")
    assert (tmp_path / "run.draws.parquet").exists()
    small_result.write_parquet(tmp_path / "run.parquet")
    assert not (tmp_path / "run.draws.parquet").exists()
    assert SimulationResult.read_parquet(tmp_path / "run.parquet").draws.is_empty()


def test_sampling_seeds_come_from_content(tiny_engine, gss, demo_population):
    """Adding a persona changes no other persona's draws (and misses no stored result)."""
    questionnaire = gss.select(["natfare"])
    personas = list(demo_population)
    options = {"method": "sample", "samples": 6, "progress": False, "cache": False}
    fewer = simulate(questionnaire, Population(personas[1:3]), tiny_engine, **options)
    more = simulate(questionnaire, Population(personas[:3]), tiny_engine, **options)
    kept = more.draws.filter(pl.col("persona_id") != personas[0].id)
    assert kept.equals(fewer.draws)
    assert more.draws["seed"].n_unique() == 3


def test_prompts_longer_than_the_context_are_refused_before_any_model_work(tiny_engine, gss):
    long_story = "I have lived in many towns and worked many jobs. " * 1000
    population = Population.from_records(
        [
            {"id": "short", "description": "A nurse from Maine."},
            {"id": "long", "description": long_story},
        ]
    )
    work_before = tiny_engine.stats.forward_passes
    with pytest.raises(InputError, match=r"persona 'long', question 'natspac': [\d,]+ tokens"):
        simulate(gss, population, tiny_engine, progress=False, cache=False)
    with pytest.raises(InputError, match=r"do not fit the context .* \(4,096 tokens\)"):
        simulate(gss, population, tiny_engine, method="sample", progress=False, cache=False)
    assert tiny_engine.stats.forward_passes == work_before
    request = ScoreRequest(long_story, ("Yes", "No"))
    with pytest.raises(ScoringError, match=r"tokens is longer than the context"):
        tiny_engine.score([request])
    assert tiny_engine.stats.forward_passes == work_before


def test_low_coverage_is_named_question_by_question(small_result, monkeypatch):
    coverage = dict(
        small_result.population.group_by("question_id", maintain_order=True)
        .agg(pl.col("coverage").mean())
        .iter_rows()
    )
    threshold = float(np.median(list(coverage.values())))
    monkeypatch.setattr(results, "LOW_COVERAGE", threshold)
    with pytest.warns(CoverageWarning) as caught:
        small_result.warn_if_low_coverage()
    message = str(caught[0].message)
    for question, value in coverage.items():
        assert (f"{question} {value:.2f}" in message) == (value < threshold)
    monkeypatch.setattr(results, "LOW_COVERAGE", min(coverage.values()))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoverageWarning)
        small_result.warn_if_low_coverage()
