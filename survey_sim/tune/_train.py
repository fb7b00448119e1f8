"""``tune``: a LoRA adapter that moves a respondent model toward real survey answers.

The training loop is transformers' :class:`~transformers.Trainer` (LoRA through peft), so
what users know of it holds: it runs on one CPU or GPU as it is, and on several GPUs under
``accelerate launch`` or ``torchrun`` unchanged. survey-sim adds the examples and objectives
(:mod:`survey_sim.tune._examples`, :mod:`survey_sim.tune._objectives`), the held-out split
(:class:`~survey_sim.tune._split.TuningSplit`), and the adapter's record.

A run writes checkpoints to ``OUT/checkpoints/`` (with what the run is, ``run.json``); the
same command started again resumes from the last one. The finished adapter is written as
one set (peft's ``adapter_config.json`` and ``adapter_model.safetensors``, then survey-sim's
``survey_sim.json``: base model, settings, split, what it was trained on, the loss history
and the run's throughput and memory), and the checkpoints are removed.
"""

from __future__ import annotations

import json
import math
import resource
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from survey_sim._io import write_set
from survey_sim.data.responses import HumanResponses
from survey_sim.data.splits import described_by
from survey_sim.engines._hf import HFTokenizer
from survey_sim.engines.records import AdapterRecord, BestCheckpoint
from survey_sim.engines.registry import (
    ADAPTER_FILES,
    ADAPTER_RECORD,
    LocalModel,
    file_hash,
    load_local_model,
    locate_model,
    quiet_transformers,
)
from survey_sim.errors import InputError
from survey_sim.runs.settings import SimulationSettings, validated
from survey_sim.tune._examples import (
    Example,
    individual_examples,
    population_examples,
    scale_ranks,
)
from survey_sim.tune._memory import MemoryPlan, default_budget_mib, plan_memory
from survey_sim.tune._split import Objective, TuningSplit

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

    from survey_sim.tune._objectives import Loss

CHECKPOINTS = "checkpoints"
RUN_RECORD = "run.json"


class TuningSettings(BaseModel):
    """What a tuning run does. Every field is recorded in the adapter.

    Attributes:
        objective: ``"population"`` (persona cells' distributions, SubPOP) or
            ``"individual"`` (respondents' own answer sequences, Spectrum Tuning).
        loss: Population: ``"kl"`` (forward KL, human ‖ model) or ``"emd"`` (earth-mover's
            distance along an ordinal scale). The individual objective is always ``"nll"``.
        format: The prompt format trained (and to simulate with afterwards).
        by: Population: the attributes of the persona cells (default: the mapping's
            recipe).
        demographics: Individual: attributes in each respondent's description (``True``:
            the mapping's recipe, ``False``: none).
        held_out: Share of questions (population) or respondents (individual) never seen.
        validation: Share that chooses when to stop, at most ``validation_at_most`` items.
        train: Most training items (``None``: all the rest; subsample respondents on CPUs).
        rank, alpha, dropout, target_modules: The LoRA adapter (peft's ``r``,
            ``lora_alpha``, ``lora_dropout``, ``target_modules``).
        epochs: Passes over the training examples (early stopping may end sooner).
        learning_rate, batch_size, gradient_accumulation, warmup: The optimiser (AdamW, a
            linear schedule after ``warmup`` of the steps).
        evaluate_every: Steps between validation losses and checkpoints (default: twice
            an epoch).
        patience: Validation losses without improvement before stopping.
        seed: Seed of the split, the adapter's initial weights and the example order.
        bf16: Train in bfloat16 mixed precision (GPUs and recent CPUs).
        gradient_checkpointing: Recompute each layer's activations in the backward pass
            instead of keeping them: much less memory for long sequences (the individual
            objective's interviews), about a third more time.
        threads: CPU threads for torch (``None``: torch's default).
        max_memory: Training on CPUs: the most memory (GiB) the process may reach; a batch
            that would need more is split into smaller ones whose gradients are accumulated
            (:mod:`survey_sim.tune._memory`). ``None``: 80% of the memory free for it
            when tuning starts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    objective: Objective = "population"
    loss: Literal["kl", "emd"] = "kl"
    format: str = "chat"
    by: tuple[str, ...] | None = None
    demographics: bool | tuple[str, ...] = True
    held_out: float = Field(default=1 / 3, gt=0, lt=1)
    validation: float = Field(default=1 / 6, gt=0, lt=1)
    validation_at_most: int | None = Field(default=100, ge=1)
    train: int | None = Field(default=None, ge=1)
    rank: int = Field(default=8, ge=1)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: str | tuple[str, ...] = "all-linear"
    epochs: float = Field(default=3, gt=0)
    learning_rate: float = Field(default=2e-4, gt=0)
    batch_size: int = Field(default=8, ge=1)
    gradient_accumulation: int = Field(default=1, ge=1)
    warmup: float = Field(default=0.05, ge=0, lt=1)
    evaluate_every: int | None = Field(default=None, ge=1)
    patience: int = Field(default=2, ge=1)
    seed: int = 0
    bf16: bool = False
    gradient_checkpointing: bool = False
    threads: int | None = Field(default=None, ge=1)
    max_memory: float | None = Field(default=None, gt=0)

    @classmethod
    def of(cls, settings: TuningSettings | None = None, **changes: Any) -> TuningSettings:
        """``settings`` (or the defaults) with ``changes``, checked.

        Raises:
            InputError: naming the setting and what it takes.
        """
        base = (settings or cls()).model_dump()
        return validated(cls, {**base, **changes}, "tuning settings")

    @property
    def objective_loss(self) -> Loss:
        """The loss trained: ``loss`` for the population objective, ``"nll"`` else."""
        return self.loss if self.objective == "population" else "nll"

    def prompt_settings(self) -> SimulationSettings:
        """The simulation settings whose prompts training reads (its format)."""
        return SimulationSettings.of(format=self.format)


@dataclass(frozen=True)
class TuningResult:
    """A finished tuning run.

    Attributes:
        adapter: The adapter's folder (standard peft layout, plus ``survey_sim.json``).
        record: What ``survey_sim.json`` holds (:class:`AdapterRecord`).
        history: The loss history: ``step``, ``epoch``, ``split`` (train/validation),
            ``loss``.
    """

    adapter: Path
    record: AdapterRecord
    history: pl.DataFrame

    @property
    def split(self) -> TuningSplit:
        """The questions or respondents trained, validated and held out."""
        return TuningSplit.from_record(self.record.split)


def tune(
    human: HumanResponses,
    model: str | Path | None = None,
    *,
    out: str | Path,
    settings: TuningSettings | None = None,
    progress: bool = True,
    **changes: Any,
) -> TuningResult:
    """Train a LoRA adapter on ``human``'s answers, held out by construction.

    Args:
        human: The survey data (e.g. :func:`survey_sim.gss_spending_2018`).
        model: The base model: a name or local path, as for
            :meth:`TransformersEngine.from_pretrained` (default: SmolLM2-135M-Instruct).
        out: The adapter's folder. Started again with the same arguments, a run resumes
            from its last checkpoint.
        settings: :class:`TuningSettings`; keyword arguments change single settings.
        progress: Show a progress bar with the loss.

    Returns:
        The adapter, its record and the loss history. Use it with
        ``TransformersEngine.from_pretrained(model, adapter=result.adapter)``.

    Raises:
        InputError: bad settings, data the objective cannot use, ``out`` holding a finished
            adapter or another run's checkpoints: all before the model loads.
    """
    settings = TuningSettings.of(settings, **changes)
    settings.prompt_settings().prompt_format()  # an unknown format fails here, not later
    out = Path(out)
    _check_out(out)
    locate_model(model)
    split = TuningSplit.draw(
        human,
        settings.objective,
        held_out=settings.held_out,
        validation=settings.validation,
        validation_at_most=settings.validation_at_most,
        train=settings.train,
        seed=settings.seed,
        among=_eligible(human, settings),
    )
    if settings.objective_loss == "emd":
        _check_ordinal(human, split.train)

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import set_seed

    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    loaded = load_local_model(model)
    run = {
        "base": {"model_id": loaded.model_id, "fingerprint": loaded.weights_fingerprint},
        "settings": settings.model_dump(mode="json"),
        "split": split.record(),
    }
    resume_from = _resume_point(out, run)
    text = _chat_renderer(loaded)
    train_examples, validation_examples = (
        _examples(human, part, settings, text) for part in (split.train, split.validation)
    )
    _check_context(loaded.model, [*train_examples, *validation_examples])

    set_seed(settings.seed)
    lora = LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules)
        if isinstance(settings.target_modules, tuple)
        else settings.target_modules,
        task_type="CAUSAL_LM",
    )
    with quiet_transformers():
        peft_model = get_peft_model(loaded.model, lora)
    plan = None if torch.cuda.is_available() else _memory_plan(peft_model, train_examples, settings)
    trainer = _trainer(
        peft_model,
        settings,
        plan,
        out / CHECKPOINTS,
        train_examples,
        validation_examples,
        progress,
    )
    if trainer.is_world_process_zero():
        checkpoints = out / CHECKPOINTS
        checkpoints.mkdir(parents=True, exist_ok=True)
        (checkpoints / RUN_RECORD).write_text(json.dumps(run, indent=1))
    started = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    except BaseException as stop:
        stop.add_note(_resumable(out, trainer.state.global_step))
        raise
    seconds = time.perf_counter() - started
    history = _history(trainer.state.log_history)
    record = AdapterRecord.model_validate(
        {
            **run,
            "trained_on": split.trained_on,
            "best": BestCheckpoint(
                step=_checkpoint_step(trainer.state.best_model_checkpoint),
                validation_loss=trainer.state.best_metric,
            ),
            "history": history.to_dicts(),
            "work": _work(trainer, seconds, plan, torch),
        }
    )
    if trainer.is_world_process_zero():
        record = _write_adapter(peft_model, out, record)
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)
    return TuningResult(out, record, history)


def _check_out(out: Path) -> None:
    if (out / ADAPTER_RECORD).exists():
        raise InputError(
            out,
            "already holds a finished adapter: choose another folder, or delete it to train again",
        )
    if out.exists() and not out.is_dir():
        raise InputError(out, "is a file; the adapter needs a folder")


def _eligible(human: HumanResponses, settings: TuningSettings) -> list[str] | None:
    """Individual objective: respondents with every demographic their description needs."""
    if settings.objective == "population":
        return None
    attributes = _demographics(human, settings)
    people = human.frame.unique("respondent_id")
    if attributes:
        people = people.drop_nulls(list(attributes))
    return sorted(people["respondent_id"])


def _demographics(human: HumanResponses, settings: TuningSettings) -> tuple[str, ...]:
    return described_by(human, settings.demographics)


def _check_ordinal(human: HumanResponses, questions: Sequence[str]) -> None:
    flat = [q for q in questions if scale_ranks(human.questionnaire.question(q)) is None]
    if flat:
        raise InputError(
            "tuning settings",
            f"loss 'emd' needs ordinal questions whose options all lie on the scale; not: "
            f"{', '.join(flat)} (use loss 'kl')",
            location="loss",
        )


def _resume_point(out: Path, run: dict[str, Any]) -> str | None:
    """The last checkpoint of this same run in ``out`` (``None``: start afresh).

    Raises:
        InputError: ``out`` holds checkpoints of a different run.
    """
    from transformers.trainer_utils import get_last_checkpoint

    recorded = out / CHECKPOINTS / RUN_RECORD
    if not recorded.exists():
        return None
    earlier = json.loads(recorded.read_text())
    if earlier != json.loads(json.dumps(run)):
        differing = sorted(
            key for key in run if earlier.get(key) != json.loads(json.dumps(run[key]))
        )
        raise InputError(
            out,
            f"holds checkpoints of a different tuning run ({', '.join(differing)} differ): "
            "rerun with that run's arguments to resume it, or choose another folder",
        )
    last: str | None = get_last_checkpoint(str(out / CHECKPOINTS))
    return last


def _resumable(out: Path, step: int) -> str:
    """What a stopped run kept, in words."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = out / CHECKPOINTS
    last = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    if last is None:
        return f"tuning stopped at step {step}, before its first checkpoint"
    return (
        f"tuning stopped at step {step}; its last checkpoint ({Path(last).name}) is in "
        f"{folder}: rerun the same command to resume"
    )


def _chat_renderer(loaded: LocalModel) -> HFTokenizer:
    return HFTokenizer(loaded.tokenizer, model_id=loaded.model_id)


def _examples(
    human: HumanResponses,
    part: Sequence[str],
    settings: TuningSettings,
    text: HFTokenizer,
) -> list[Example]:
    prompt_format = settings.prompt_settings().prompt_format()
    if settings.objective == "population":
        cells = list(human.population(list(settings.by) if settings.by else None))
        by = list(cells[0].attributes)
        return population_examples(human, part, cells, by, prompt_format, text, text)
    attributes = _demographics(human, settings)
    personas = {p.id: p for p in human.respondents(part, attributes)}
    return individual_examples(human, part, personas, prompt_format, text, text, seed=settings.seed)


def _check_context(model: PreTrainedModel, examples: Sequence[Example]) -> None:
    limit = getattr(model.config, "max_position_embeddings", None)
    longest = max(examples, key=lambda example: example.longest)
    if limit is not None and longest.longest > limit:
        raise InputError(
            longest.label,
            f"needs {longest.longest:,} tokens; the model reads at most {limit:,}. Use fewer "
            "questions per respondent or a model with a longer context",
        )


def _memory_plan(model: Any, train: Sequence[Example], settings: TuningSettings) -> MemoryPlan:
    """The batch that fits ``settings.max_memory`` (:func:`plan_memory`), said in a warning
    when it is smaller than the one asked for."""
    budget = default_budget_mib() if settings.max_memory is None else settings.max_memory * 1024
    model.train()
    plan = plan_memory(
        model,
        train,
        batch_size=settings.batch_size,
        gradient_accumulation=settings.gradient_accumulation,
        budget_mib=round(budget),
        checkpointing=settings.gradient_checkpointing,
    )
    if plan.batch_size < settings.batch_size:
        warnings.warn(
            f"a batch of {settings.batch_size} examples needs about "
            f"{plan.estimate_mib(settings.batch_size):,} MiB, over the memory budget of "
            f"{plan.budget_mib:,} MiB: training {plan.batch_size} at a time, gradients "
            f"accumulated over {plan.gradient_accumulation} batches "
            f"({plan.batch_size * plan.gradient_accumulation} examples per optimiser step; "
            f"about {plan.estimate_mib():,} MiB)",
            stacklevel=3,
        )
    return plan


def _trainer(
    model: Any,
    settings: TuningSettings,
    plan: MemoryPlan | None,
    folder: Path,
    train: list[Example],
    validation: list[Example],
    progress: bool,
) -> Any:
    import torch
    from transformers import EarlyStoppingCallback, PrinterCallback, TrainingArguments

    from survey_sim.tune._objectives import collate

    batch_size = settings.batch_size if plan is None else plan.batch_size
    accumulation = settings.gradient_accumulation if plan is None else plan.gradient_accumulation
    per_step = batch_size * accumulation
    steps_per_epoch = max(1, math.ceil(len(train) / per_step))
    every = settings.evaluate_every or max(1, steps_per_epoch // 2)
    arguments = TrainingArguments(
        output_dir=str(folder),
        num_train_epochs=settings.epochs,
        learning_rate=settings.learning_rate,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        gradient_accumulation_steps=accumulation,
        warmup_steps=round(settings.warmup * steps_per_epoch * settings.epochs),
        lr_scheduler_type="linear",
        weight_decay=0.0,
        eval_strategy="steps",
        eval_steps=every,
        save_strategy="steps",
        save_steps=every,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_loss",
        greater_is_better=False,
        logging_steps=max(1, min(every, 10)),
        seed=settings.seed,
        data_seed=settings.seed,
        bf16=settings.bf16,
        **_checkpointing(settings.gradient_checkpointing),
        label_names=["targets"],
        prediction_loss_only=True,
        remove_unused_columns=False,
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    clock = _step_clock()
    callbacks: list[Any] = [EarlyStoppingCallback(early_stopping_patience=settings.patience), clock]
    if progress:
        callbacks.append(_progress_bar())
    trainer = _objective_trainer(settings.objective_loss)(
        model=model,
        args=arguments,
        train_dataset=train,
        eval_dataset=validation,
        data_collator=collate,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # the loss is on the bar, not printed per step
    trainer.step_clock = clock
    return trainer


def _checkpointing(enabled: bool) -> dict[str, Any]:
    """Activation checkpointing arguments (non-reentrant, which LoRA's frozen base needs),
    under the name this transformers reads (``activation_checkpointing`` since 5.x, before
    it ``gradient_checkpointing``); none when it is off."""
    from transformers import TrainingArguments

    if not enabled:
        return {}
    name = (
        "activation_checkpointing"
        if "activation_checkpointing" in TrainingArguments.__dataclass_fields__
        else "gradient_checkpointing"
    )
    return {name: True, f"{name}_kwargs": {"use_reentrant": False}}


def _objective_trainer(kind: Loss) -> type:
    """A :class:`~transformers.Trainer` whose loss is the objective's, and which counts the
    tokens it trains on."""
    from transformers import Trainer

    from survey_sim.tune._objectives import loss, model_slot_logprobs

    class ObjectiveTrainer(Trainer):
        trained_tokens = 0
        step_clock: Any = None

        def compute_loss(
            self,
            model: torch.nn.Module,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            value = loss(kind, model_slot_logprobs(model, inputs), inputs)
            if model.training:
                self.trained_tokens += int(inputs["attention_mask"].sum())
            return (value, {"loss": value}) if return_outputs else value

    return ObjectiveTrainer


def _step_clock() -> Any:
    """Seconds spent in training steps (forward, backward, optimiser), without the
    validation losses and checkpoints between them: what throughput is measured over."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.seconds = 0.0
            self.began = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.began = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.seconds += time.perf_counter() - self.began

    return StepClock()


def _progress_bar() -> Any:
    from transformers import TrainerCallback

    from survey_sim._progress import tqdm

    class LossBar(TrainerCallback):
        """One bar over the training steps, with the latest training and validation loss."""

        def __init__(self) -> None:
            self.bar: Any = None
            self.shown: dict[str, str] = {}

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="Tuning")

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar.update(state.global_step - self.bar.n)

        def on_log(
            self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
        ) -> None:
            for key, name in (("loss", "loss"), ("eval_loss", "validation")):
                if logs and key in logs:
                    self.shown[name] = f"{logs[key]:.4f}"
            self.bar.set_postfix(self.shown)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar.close()

    return LossBar()


def _history(log: Sequence[dict[str, Any]]) -> pl.DataFrame:
    rows = [
        {"step": entry["step"], "epoch": entry.get("epoch"), "split": split, "loss": entry[key]}
        for entry in log
        for key, split in (("loss", "train"), ("eval_loss", "validation"))
        if key in entry
    ]
    return pl.DataFrame(
        rows,
        schema={"step": pl.Int64, "epoch": pl.Float64, "split": pl.String, "loss": pl.Float64},
    )


def _work(trainer: Any, seconds: float, plan: MemoryPlan | None, torch: Any) -> dict[str, Any]:
    """This process's part of the run: steps, tokens trained, seconds (all, and in training
    steps), throughput over the training steps, peak memory (the process's resident set;
    on GPUs also the most GPU memory allocated), and on CPUs the memory plan."""
    tokens = trainer.trained_tokens
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    work: dict[str, Any] = {
        "steps": trainer.state.global_step,
        "trained_tokens": tokens,
        "seconds": round(seconds, 2),
        "step_seconds": round(trainer.step_clock.seconds, 2),
        "tokens_per_second": round(tokens / trainer.step_clock.seconds, 1)
        if trainer.step_clock.seconds
        else None,
        "peak_memory_mib": round(peak_kib / 1024 if sys.platform != "darwin" else peak_kib / 2**20),
        "device": str(trainer.args.device),
        "batch_size": trainer.args.per_device_train_batch_size,
        "gradient_accumulation": trainer.args.gradient_accumulation_steps,
    }
    if plan is not None:
        work["memory_budget_mib"] = plan.budget_mib
        work["memory_before_training_mib"] = plan.resident_mib
        work["estimated_peak_mib"] = plan.estimate_mib()
    if torch.cuda.is_available():
        work["peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return work


def _checkpoint_step(folder: str | None) -> int | None:
    """The step of a Trainer checkpoint folder (``.../checkpoint-120``: 120)."""
    return BestCheckpoint.model_validate({"checkpoint": Path(folder or "").name}).step


def _write_adapter(model: Any, out: Path, record: AdapterRecord) -> AdapterRecord:
    """peft's adapter files, then the record naming their hash, as one set; returns the
    record as written."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".adapter-", dir=out) as staging:
        model.save_pretrained(staging)
        saved = {name: Path(staging) / name for name in ADAPTER_FILES}
        files = {name: file_hash(path) for name, path in saved.items()}
        record = record.model_copy(update={"files": files})
        text = record.model_dump_json(indent=1)
        write_set(
            {
                **{out / name: _copier(path) for name, path in saved.items()},
                out / ADAPTER_RECORD: lambda temporary: Path(temporary).write_text(text),
            }
        )
    return record


def _copier(source: Path) -> Any:
    return lambda temporary: shutil.copyfile(source, temporary)
