"""Engines are built by name through one catalog, which an installed package joins through
an entry point; its engine, written on :class:`EngineBase`, runs like a built-in one."""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from survey_sim import MethodError, ResultsCache, simulate
from survey_sim.data.bundled import bundled_file
from survey_sim.engines import EngineBase, EngineOptions, engine_loader, engine_names
from survey_sim.errors import SurveySimError

SCRIPT = str(Path(sys.executable).with_name("survey-sim"))

ENGINE_PACKAGE = '''
"""A third-party engine: scores only, with log-probabilities planted by the option text."""
import math
from survey_sim.engines import EngineBase, ScoreResult


def planted_logprob(continuation):
    return -0.3 * len(continuation) - (ord(continuation[0]) % 5) / 4


class PlantedEngine(EngineBase):
    def __init__(self, model):
        self.name = model or "planted"
        self.calls = 0

    @property
    def model_id(self):
        return self.name

    def fingerprint_parts(self):
        yield f"planted:{self.name}"

    def render_chat(self, messages, *, add_generation_prompt):
        text = "".join(f"<{m['role']}>{m['content']}\\n" for m in messages)
        return text + ("<assistant>" if add_generation_prompt else "")

    def score(self, requests, *, on_results=None):
        self.calls += len(requests)
        results = [
            ScoreResult(
                logprobs=tuple(planted_logprob(c) for c in request.continuations),
                continuation_tokens=tuple(len(c) for c in request.continuations),
                prompt_tokens=len(request.prefix),
                reused_tokens=0,
                computed_tokens=len(request.prefix),
            )
            for request in requests
        ]
        self.count(results)
        return results


def loader(options):
    options.refuse("url", "threads", "dtype", "adapter", engine="planted")
    return lambda: PlantedEngine(options.model)
'''


def planted_logprob(continuation: str) -> float:
    return -0.3 * len(continuation) - (ord(continuation[0]) % 5) / 4


@pytest.fixture
def installed_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The package ``planted_engine`` installed in ``tmp_path`` (a distribution with an entry
    point in ``survey_sim.engines``), on this process's path."""
    site = tmp_path / "site"
    (site / "planted_engine").mkdir(parents=True)
    (site / "planted_engine" / "__init__.py").write_text(ENGINE_PACKAGE)
    info = site / "planted_engine-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: planted-engine\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[survey_sim.engines]\nplanted = planted_engine:loader\n"
    )
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return site


def test_an_installed_engine_joins_the_catalog_and_runs_like_a_built_in(
    installed_engine, gss, demo_population, tmp_path
):
    assert engine_names()[:2] == ["embedded", "sglang"] and "planted" in engine_names()
    engine = engine_loader("planted", EngineOptions(model="toy"))()
    assert isinstance(engine, EngineBase)
    store = ResultsCache(tmp_path / "store.sqlite")
    questionnaire = gss.select(["natfare", "natsoc"])
    first = simulate(questionnaire, demo_population, engine, cache=store, progress=False)
    weights = [math.exp(planted_logprob(label)) for label in ("A", "B", "C")]
    for _, cell in first.responses.group_by("persona_id", "question_id"):
        assert cell.sort("shown_position")["prob"].to_list() == pytest.approx(
            [w / sum(weights) for w in weights]
        )
    assert first.manifest is not None and first.manifest.model == engine.describe()
    assert first.manifest.model.engine == "PlantedEngine"
    assert first.manifest.work.requests == engine.stats.requests == len(demo_population) * 2
    calls = engine.calls
    simulate(questionnaire, demo_population, engine, cache=store, progress=False)
    assert engine.calls == calls  # answered from the store, keyed on its fingerprint
    with pytest.raises(SurveySimError, match="--dtype cannot apply to --engine planted"):
        engine_loader("planted", EngineOptions(dtype="bfloat16"))


def test_the_console_script_offers_and_runs_an_installed_engine(installed_engine, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(installed_engine))
    out = tmp_path / "planted.parquet"
    ran = subprocess.run(
        [
            SCRIPT,
            "run",
            str(bundled_file("questionnaires", "gss_spending_2018.yaml")),
            "--personas",
            str(bundled_file("personas", "us_adults_demo.yaml")),
            "--engine",
            "planted",
            "--no-cache",
            "--quiet",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    manifest = json.loads((tmp_path / "planted.manifest.json").read_text())
    assert manifest["model"]["engine"] == "PlantedEngine" and manifest["version"] == 1
    assert pl.read_parquet(out)["model"].unique().to_list() == ["planted"]
    helped = subprocess.run(
        [SCRIPT, "run", "--help"], capture_output=True, text=True, env=env, timeout=300
    )
    assert "{embedded,sglang,planted}" in helped.stdout
    unknown = subprocess.run(
        [SCRIPT, "run", "q.yaml", "--personas", "p.csv", "--engine", "plant"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert unknown.returncode == 2 and "invalid choice: 'plant'" in unknown.stderr


def test_a_scoring_only_engine_refuses_sampled_questions_before_any_work(
    installed_engine, gss, demo_population
):
    engine = engine_loader("planted", EngineOptions())()
    with pytest.raises(MethodError, match="PlantedEngine scores answers exactly but cannot"):
        simulate(gss, demo_population, engine, method="sample", cache=False, progress=False)
    assert engine.stats.requests == 0
