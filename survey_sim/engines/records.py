"""Typed records of engines and adapters: what an engine says about itself in a run's
manifest (:class:`EngineDescription`), and what ``survey-sim tune`` writes beside an
adapter's weights (:class:`AdapterRecord`, the adapter's ``survey_sim.json``).

Every reader goes through these types, never through string keys of a dict, so a record
that lacks a field is an error when it is read, not a silent default somewhere later.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class Record(BaseModel):
    """A frozen record that refuses fields it does not declare."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TrainedOn(Record):
    """The survey data an adapter was trained on.

    Attributes:
        source: Where the data came from (a bundled name or a file).
        questionnaire: The questionnaire's id.
        data_hash: SHA-256 of the answers as read
            (:func:`survey_sim.runs.held_out.data_hash`).
        questions: Questions whose answers the training saw (training and validation).
        respondents: Respondents whose own answers the training saw one by one (the
            individual objective; the population objective sees people only through the
            cells' distributions, and records none).
    """

    source: str
    questionnaire: str
    data_hash: str
    questions: tuple[str, ...] = ()
    respondents: tuple[str, ...] = ()


class BaseModelRef(Record):
    """The base model an adapter was trained on: its name and its weight files' hash
    (``None`` when it was not loaded from files)."""

    model_id: str
    fingerprint: str | None = None


class BestCheckpoint(Record):
    """The training step whose adapter was kept (early stopping) and its validation loss."""

    step: int | None = None
    validation_loss: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_checkpoint_name(cls, data: Any) -> Any:
        """Adapters written before the step was a field recorded the checkpoint folder's
        name (``checkpoint-120``)."""
        if isinstance(data, dict) and "checkpoint" in data:
            data = dict(data)
            name = data.pop("checkpoint")
            found = re.fullmatch(r"checkpoint-(\d+)", name or "")
            data["step"] = int(found.group(1)) if found else None
        return data


class TrainingWork(Record):
    """One tuning process's work: steps, tokens trained, seconds (all, and in training
    steps), throughput over the training steps, peak memory (the resident set; on GPUs
    also the most GPU memory allocated), the device, the batches it ran (examples at a
    time, batches per optimiser step) and, on CPUs, the memory budget, the resident memory
    before training (model and examples) and the peak estimated then (``None`` in records
    written before they were kept)."""

    steps: int
    trained_tokens: int
    seconds: float
    step_seconds: float
    tokens_per_second: float | None
    peak_memory_mib: int
    device: str
    peak_gpu_memory_mib: int | None = None
    batch_size: int | None = None
    gradient_accumulation: int | None = None
    memory_budget_mib: int | None = None
    memory_before_training_mib: int | None = None
    estimated_peak_mib: int | None = None


class AdapterRecord(Record):
    """What ``survey-sim tune`` writes beside an adapter (``survey_sim.json``).

    Attributes:
        base: The base model it was trained on.
        settings: The tuning settings, as :class:`~survey_sim.tune.TuningSettings` dumps them.
        split: The questions or respondents trained, validated and held out
            (:class:`~survey_sim.tune.TuningSplit`'s record).
        trained_on: What the held-out guard reads.
        best: The step kept and its validation loss.
        history: The loss history, one row per logged step and split.
        work: What training cost.
        files: SHA-256 of each adapter file the record describes.
    """

    base: BaseModelRef
    settings: dict[str, Any]
    split: dict[str, Any]
    trained_on: TrainedOn
    best: BestCheckpoint
    history: list[dict[str, Any]]
    work: TrainingWork
    files: dict[str, str] = {}


class AdapterDescription(Record):
    """What an engine records about the LoRA adapter it runs: its folder and files' hash,
    and, for adapters survey-sim made, the base model, settings and what it was trained on
    (``None`` for an adapter made elsewhere)."""

    path: str
    fingerprint: str
    base: BaseModelRef | None = None
    settings: dict[str, Any] | None = None
    trained_on: TrainedOn | None = None


class EngineDescription(Record):
    """What a run manifest records about the engine.

    Attributes:
        engine: The engine's class name.
        model_id: The model's readable name.
        fingerprint: The hash the results store keys on.
        settings: The engine's settings.
        strategy: How it reuses prompt prefixes, where it has a choice.
        adapter: The LoRA adapter it runs, if any; runs read ``adapter.trained_on`` to
            refuse scoring an adapter where it was trained.
        details: Engine-specific facts (the architecture read, the server's settings...).
    """

    engine: str
    model_id: str
    fingerprint: str
    settings: dict[str, Any] = {}
    strategy: str | None = None
    adapter: AdapterDescription | None = None
    details: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _details_from_top_level(cls, data: Any) -> Any:
        """Manifests written before this record (version 0) kept engine-specific facts
        beside the common ones: they become ``details``."""
        if isinstance(data, dict):
            known = set(cls.model_fields)
            extra = {key: value for key, value in data.items() if key not in known}
            if extra:
                data = {key: value for key, value in data.items() if key in known}
                data["details"] = {**data.get("details", {}), **extra}
        return data
