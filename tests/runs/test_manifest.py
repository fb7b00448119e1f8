"""The run manifest is a typed, versioned record: results written before it had a version
still load, a manifest from a newer survey-sim is refused by name, and a manifest rebuilds
the settings that made it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from survey_sim import (
    IndividualResult,
    InputError,
    Population,
    SimulationResult,
    SimulationSettings,
    simulate,
)
from survey_sim.engines.records import EngineDescription
from survey_sim.runs.manifest import MANIFEST_VERSION, RunManifest

WRITTEN_BEFORE = Path(__file__).parent / "data"
"""Results sets written by survey-sim at commit b0ea1e2, before the manifest had a type or
a version (tiny model; two GSS items x eight personas in the spectrum format answering with
option text and permuted orders; individuals: 2 + 2 respondents, k = 0, 1)."""


def test_results_written_before_versions_load_through_the_types():
    result = SimulationResult.read_parquet(WRITTEN_BEFORE / "population.parquet")
    manifest = result.manifest
    assert manifest is not None and manifest.version == 0
    assert manifest.model.engine == "TransformersEngine" and manifest.model.strategy == "cache"
    assert manifest.model.details["architecture"]["model_type"] == "llama"
    assert manifest.questionnaire.id == "gss_spending_2018" and manifest.population.personas == 8
    assert manifest.settings.prompt_format().name == "spectrum:text"
    assert manifest.settings.permute
    assert result.personas.height == 8

    individuals = IndividualResult.read_parquet(WRITTEN_BEFORE / "individuals.parquet")
    assert individuals.manifest.human is not None and individuals.manifest.human.respondents == 4
    assert individuals.split.shots == (0, 1) and len(individuals.split.respondents) == 4
    recorded = json.loads((WRITTEN_BEFORE / "individuals.manifest.json").read_text())
    assert individuals.manifest.seconds_per_respondent == pytest.approx(
        recorded["seconds_per_respondent"], abs=1e-4
    )


def test_a_manifest_from_a_newer_survey_sim_is_refused_by_version(tmp_path):
    for name in ("population.parquet", "population.population.parquet"):
        shutil.copy(WRITTEN_BEFORE / name, tmp_path / name)
    manifest = json.loads((WRITTEN_BEFORE / "population.manifest.json").read_text())
    manifest["version"] = MANIFEST_VERSION + 1
    (tmp_path / "population.manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=rf"manifest version {MANIFEST_VERSION + 1} was written"):
        SimulationResult.read_parquet(tmp_path / "population.parquet")
    manifest["version"] = MANIFEST_VERSION
    del manifest["questionnaire"]
    (tmp_path / "population.manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=r"field questionnaire: Field required \(expected a"):
        SimulationResult.read_parquet(tmp_path / "population.parquet")


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"format": "spectrum", "answer": "text", "permute": True},
        {"format": "plain:open", "method": {"default": "sample", "numeric": "exact"}, "seed": 3},
        {"format": "xml", "terminated": True, "relabel": False, "samples": 7},
    ],
)
def test_a_manifest_rebuilds_the_settings_that_made_it(
    changes, tmp_path, tiny_engine, gss, demo_population
):
    settings = SimulationSettings.of(**changes)
    result = simulate(
        gss.select(["natfare"]),
        Population(list(demo_population)[:2]),
        tiny_engine,
        settings,
        progress=False,
        cache=False,
    )
    result.write_parquet(tmp_path / "run.parquet")
    manifest = SimulationResult.read_parquet(tmp_path / "run.parquet").manifest
    assert manifest is not None and manifest.version == MANIFEST_VERSION
    rebuilt = manifest.settings
    assert rebuilt.prompt_format() == settings.prompt_format()
    assert rebuilt.record() == settings.record()
    assert RunManifest.model_validate_json(manifest.model_dump_json()) == manifest
    assert manifest.model == tiny_engine.describe()


def test_the_engine_description_keeps_facts_it_does_not_declare_as_details():
    old = {"engine": "E", "model_id": "m", "fingerprint": "f", "url": "http://x", "strategy": None}
    description = EngineDescription.model_validate(old)
    assert description.details == {"url": "http://x"}
