"""The run manifest: how a results set was made, written beside it as JSON.

:class:`RunManifest` is typed and versioned: every reader goes through it, and a manifest
from another version of survey-sim is read by its version (those written before versions
existed are version 0 and load; newer ones are refused with the version named).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import sys
import time
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_serializer, field_validator

from survey_sim.data.splits import IndividualSplit
from survey_sim.engines.base import EngineStats
from survey_sim.engines.records import EngineDescription, Record
from survey_sim.population import Population
from survey_sim.questionnaire import Questionnaire
from survey_sim.runs.settings import SimulationSettings

MANIFEST_VERSION = 1
"""The manifest schema this survey-sim writes (0: manifests written before versions)."""

PACKAGES = ("survey-sim", "torch", "transformers", "xgrammar", "polars", "pydantic", "numpy")
"""Packages whose versions every manifest records (those installed)."""


class QuestionnaireRecord(Record):
    """The questionnaire asked: its id, number of questions and content hash."""

    id: str
    questions: int
    sha256: str


class PopulationRecord(Record):
    """Who answered: the population's id, size, content hash and every persona's id, weight
    and attributes (``table``; empty in manifests of survey-sim before 0.2)."""

    id: str
    personas: int
    sha256: str
    table: list[dict[str, Any]] = Field(default_factory=list)


class WorkRecord(Record):
    """The engine's work during the run (:class:`EngineStats`) and its prefix hit rate."""

    requests: int
    prompt_tokens: int
    reused_tokens: int
    computed_tokens: int
    decode_tokens: int
    retries: int
    forward_passes: int
    hit_rate: float | None

    @classmethod
    def of(cls, stats: EngineStats) -> WorkRecord:
        return cls.model_validate(stats.as_dict())


class StoreRecord(Record):
    """The results store of a run: its path, requests answered from it (``hits``) and
    computed (``misses``)."""

    path: str
    hits: int
    misses: int


class HumanRecord(Record):
    """The human data an individual run asked about: its source and respondents."""

    source: str
    respondents: int


class RespondentsRecord(Record):
    """A run of simulated respondents: how many, how they were allocated to personas, and
    how many distinct prompts their interviews needed."""

    respondents: int
    allocation: str
    distinct_prompts: int


class RunManifest(Record):
    """How a results set was made.

    Attributes:
        version: The manifest schema (:data:`MANIFEST_VERSION`).
        created, seconds: When the run finished and how long it took.
        python, platform, command, packages: Where and with what it ran.
        model: The engine's own description (:class:`EngineDescription`).
        questionnaire, population: What was asked of whom (with content hashes).
        settings: The :class:`SimulationSettings` as used (recorded with the format's full
            name and the method of every question kind; read back, they rebuild the run's
            settings).
        work: The engine's work during the run.
        cache: The results store's hits and misses (``None``: no store).
        human, split: For individual runs, the human data and who was shown what.
        respondents: For simulated respondents, their number and allocation.
    """

    version: int = MANIFEST_VERSION
    created: str
    seconds: float
    python: str
    platform: str
    command: list[str]
    packages: dict[str, str]
    model: EngineDescription
    questionnaire: QuestionnaireRecord
    population: PopulationRecord
    settings: SimulationSettings
    work: WorkRecord
    cache: StoreRecord | None
    human: HumanRecord | None = None
    split: IndividualSplit | None = None
    respondents: RespondentsRecord | None = None

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> RunManifest:
        """The manifest a results set's JSON holds, read by its version (none: version 0,
        written before manifests had one).

        Raises:
            ValueError: a version newer than this survey-sim reads.
            pydantic.ValidationError: a record that is not a manifest of its version.
        """
        version = data.get("version", 0)
        if not isinstance(version, int) or version > MANIFEST_VERSION:
            raise ValueError(
                f"manifest version {version!r} was written by a newer survey-sim (this one "
                f"reads versions 0 to {MANIFEST_VERSION}): upgrade survey-sim to read it"
            )
        if version == 0:  # derived figures were kept beside the record; now computed
            data = {key: value for key, value in data.items() if key != "seconds_per_respondent"}
        return cls.model_validate({**data, "version": version})

    @field_validator("settings", mode="before")
    @classmethod
    def _settings_without_methods(cls, value: Any) -> Any:
        """The recorded methods per kind are derived from ``method``."""
        if isinstance(value, dict):
            return {key: item for key, item in value.items() if key != "methods"}
        return value

    @field_serializer("settings")
    def _settings_record(self, settings: SimulationSettings) -> dict[str, Any]:
        return settings.record()

    @property
    def seconds_per_respondent(self) -> float | None:
        """Seconds per respondent of an individual run (``None`` for a population run)."""
        if self.human is None or not self.human.respondents:
            return None
        return self.seconds / self.human.respondents


def run_manifest(
    questionnaire: Questionnaire,
    population: Population,
    engine: EngineDescription,
    settings: SimulationSettings,
    *,
    started: float,
    work: EngineStats,
    store: StoreRecord | None,
    human: HumanRecord | None = None,
    split: IndividualSplit | None = None,
    respondents: RespondentsRecord | None = None,
) -> RunManifest:
    """Versions, engine (its own description), inputs' hashes, settings, timing, the
    engine's work during the run (tokens, prefix-cache hit rate) and the results store's
    hits and misses."""
    return RunManifest(
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime()),
        seconds=round(time.time() - started, 3),
        python=platform.python_version(),
        platform=platform.platform(),
        command=sys.argv,
        packages=_versions(),
        model=engine,
        questionnaire=QuestionnaireRecord(
            id=questionnaire.id,
            questions=len(questionnaire),
            sha256=questionnaire_sha256(questionnaire),
        ),
        population=PopulationRecord(
            id=population.id,
            personas=len(population),
            sha256=_sha256(population.frame.write_csv()),
            table=population.frame.drop("description").to_dicts(),
        ),
        settings=settings,
        work=WorkRecord.of(work),
        cache=store,
        human=human,
        split=split,
        respondents=respondents,
    )


def _versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def questionnaire_sha256(questionnaire: Questionnaire) -> str:
    """The content hash a manifest records for a questionnaire."""
    return _sha256(questionnaire.model_dump_json())


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
