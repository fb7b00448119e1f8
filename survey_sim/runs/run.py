"""Simulation: a questionnaire answered by every persona of a population.

:func:`simulate` renders one prompt per (persona, question) with a prompt format, reads
every outcome's probability exactly from the engine (or draws answers under the answer's
JSON schema), and returns a :class:`SimulationResult`: a tidy per-persona frame, the
population distribution (persona weights applied), and the sampled draws.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import polars as pl
from tqdm.auto import tqdm

from survey_sim._io import write_atomic, write_parquet_atomic
from survey_sim._yaml import read_text
from survey_sim.asking.formats import AnswerMode, PromptFormat, Termination, get_format
from survey_sim.asking.kinds import Asking, Distribution, ask
from survey_sim.asking.orders import option_orders, order_name, reorder
from survey_sim.engines.base import Engine, SampleRequest, SampleResult, ScoreRequest
from survey_sim.errors import InputError, MethodError
from survey_sim.population import Persona, Population
from survey_sim.questionnaire import QUESTION_KINDS, OptionsQuestion, Question, Questionnaire
from survey_sim.runs.manifest import run_manifest
from survey_sim.runs.store import CachedEngine, ResultsCache

# What identifies an option whatever order it was shown in (its label may follow the order).
OPTION_COLUMNS = ["option_code", "option_text", "position", "substantive"]
RESPONSE_SCHEMA = {
    "persona_id": pl.String,
    "weight": pl.Float64,
    "question_id": pl.String,
    "kind": pl.String,
    "option_code": pl.String,
    "option_label": pl.String,
    "option_text": pl.String,
    "position": pl.Int32,
    "substantive": pl.Boolean,
    "logprob": pl.Float64,
    "prob": pl.Float64,
    "coverage": pl.Float64,
    "order": pl.String,
    "shown_position": pl.Int32,
    "method": pl.String,
    "samples": pl.Int64,
    "truncated": pl.Int64,
    "invalid": pl.Int64,
    "model": pl.String,
    "format": pl.String,
}
DRAW_SCHEMA = {
    "persona_id": pl.String,
    "weight": pl.Float64,
    "question_id": pl.String,
    "kind": pl.String,
    "order": pl.String,
    "draw": pl.Int32,
    "answer": pl.String,
    "text": pl.String,
    "truncated": pl.Boolean,
    "invalid": pl.Boolean,
    "seed": pl.Int64,
    "model": pl.String,
    "format": pl.String,
}
CHOICE_KINDS = ("single_choice", "ordinal")
Method = Literal["exact", "sample"]
METHODS: tuple[Method, ...] = ("exact", "sample")


@dataclass(frozen=True)
class SimulationResult:
    """What a simulation produced.

    Attributes:
        responses: One row per persona × question × option: ``persona_id``, ``weight``,
            ``question_id``, option columns (``option_code``, ``option_label``,
            ``option_text``, ``position``, ``substantive``), ``logprob`` (exact, natural log),
            ``prob`` (renormalised over the question's options), ``coverage`` (probability
            mass the options held), ``order`` (option codes in the order shown, e.g.
            ``"1|0|-1"``), ``shown_position`` (1 = shown first), ``method`` (``exact`` or
            ``sample``), ``samples``, ``truncated`` and ``invalid`` (sampling: valid draws
            behind ``prob``, draws cut off by the token limit, and complete draws that broke
            the schema; null for exact rows; ``logprob`` and ``coverage`` are null for
            sampled rows), ``model`` and ``format``.
            With option-order permutations there is one row per order; ``population``
            averages over orders. ``kind`` is the question kind; for ``multi_select``
            ``prob`` is the probability the option is selected (rows do not sum to one);
            numeric questions have one row per bin. Free-text questions have no rows here.
        draws: One row per sampled answer (``method="sample"``): ``persona_id``,
            ``weight``, ``question_id``, ``kind``, ``order``, ``draw`` (index), ``answer``
            (the parsed value as JSON, null when truncated or invalid), ``text`` (what the
            model wrote), ``truncated``, ``invalid``, ``seed``, ``model``, ``format``.
        manifest: How the results were made (:func:`survey_sim.runs.manifest.run_manifest`):
            package versions, model identity and weights fingerprint, questionnaire and
            population hashes, settings and seeds, timing, cache hits and misses.
    """

    responses: pl.DataFrame
    draws: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=DRAW_SCHEMA))
    manifest: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def population(self) -> pl.DataFrame:
        """The population distribution: per question × option, persona-weight averages.

        ``prob`` is the weighted mean of the personas' renormalised distributions (a
        post-stratified estimate when the weights are population shares), averaged over
        option orders when there are several; ``coverage`` is the weighted mean coverage;
        ``personas`` counts the personas averaged.
        """
        return population_distribution(self.responses)

    def write_parquet(self, path: str | Path) -> list[Path]:
        """Write ``responses`` to ``path``, ``population`` beside it (``*.population.parquet``),
        ``draws`` when answers were sampled (``*.draws.parquet``) and the manifest
        (``*.manifest.json``).

        Files appear complete or not at all (written to a temporary file, then renamed).
        Returns the paths written.
        """
        path = Path(path)
        frames = {path: self.responses, _beside(path, "population"): self.population}
        if not self.draws.is_empty():
            frames[_beside(path, "draws")] = self.draws
        written = [write_parquet_atomic(frame, target) for target, frame in frames.items()]
        if self.manifest:
            text = json.dumps(self.manifest, indent=2, default=str)
            manifest = _beside(path, "manifest", ".json")
            written.append(
                write_atomic(manifest, lambda temporary: Path(temporary).write_text(text))
            )
        return written

    @classmethod
    def read_parquet(cls, path: str | Path) -> SimulationResult:
        """Read the files written by :meth:`write_parquet` (``path`` is the responses file)."""
        path = Path(path)
        draws_path = _beside(path, "draws")
        responses = _read_checked(path, RESPONSE_SCHEMA)
        draws = _read_checked(draws_path, DRAW_SCHEMA) if draws_path.exists() else None
        manifest_path = _beside(path, "manifest", ".json")
        manifest = _read_manifest(manifest_path) if manifest_path.exists() else {}
        return cls(
            responses, pl.DataFrame(schema=DRAW_SCHEMA) if draws is None else draws, manifest
        )


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise InputError(
            path, f"not a run manifest: invalid JSON ({error.msg})", line=error.lineno
        ) from None
    if not isinstance(manifest, dict):
        raise InputError(path, "not a run manifest: expected a JSON object")
    return manifest


def _read_checked(path: Path, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """A results file, with a clear error when it is not one (or from another version)."""
    try:
        frame = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise InputError(path, f"cannot read as Parquet: {error}") from None
    absent = [column for column in schema if column not in frame.columns]
    if absent:
        raise InputError(
            path,
            f"not a survey-sim results file of this version: no column {', '.join(absent)} "
            "(rerun the simulation)",
        )
    return frame


def _beside(path: Path, part: str, suffix: str | None = None) -> Path:
    """``results.parquet`` -> ``results.PART.parquet`` (or ``results.PART.SUFFIX``)."""
    return path.with_name(f"{path.stem}.{part}{suffix or path.suffix or '.parquet'}")


def position_bias(responses: pl.DataFrame) -> pl.DataFrame:
    """How much option order moved the answers, per question (needs ``permute=True``).

    Columns: ``options`` (k), ``orders``, ``first_shown`` (mean probability of whichever
    option was shown first), ``first_position_bias`` (``first_shown`` − 1/k: 0 means no
    primacy effect, positive favours the first option), and ``order_tv`` (mean total
    variation distance between each order's distribution and the order-averaged one).
    All are averaged over personas with equal weight. Only single-choice and ordinal
    questions are measured (multi-select probabilities do not sum to one).
    """
    cell = ["persona_id", "question_id"]
    responses = responses.filter(pl.col("kind").is_in(CHOICE_KINDS))
    averaged = responses.group_by(*cell, "option_code", maintain_order=True).agg(
        mean_prob=pl.col("prob").mean()
    )
    per_order = (
        responses.join(averaged, on=[*cell, "option_code"])
        .group_by(*cell, "order", maintain_order=True)
        .agg(
            first=pl.col("prob").filter(pl.col("shown_position") == 1).first(),
            tv=0.5 * (pl.col("prob") - pl.col("mean_prob")).abs().sum(),
            options=pl.len(),
        )
    )
    return (
        per_order.group_by("question_id", maintain_order=True)
        .agg(
            options=pl.col("options").first(),
            orders=pl.col("order").n_unique(),
            first_shown=pl.col("first").mean(),
            order_tv=pl.col("tv").mean(),
        )
        .with_columns(first_position_bias=pl.col("first_shown") - 1 / pl.col("options"))
        .select(
            "question_id", "options", "orders", "first_shown", "first_position_bias", "order_tv"
        )
    )


def population_distribution(responses: pl.DataFrame) -> pl.DataFrame:
    """Weight-averaged option probabilities per question (see SimulationResult.population)."""
    keys = ["question_id", "kind", *OPTION_COLUMNS, "method", "model", "format"]
    share = pl.col("weight") / pl.col("weight").sum().over(keys)
    coverage = pl.when(pl.col("coverage").is_not_null().all()).then(
        (pl.col("coverage") * share).sum()
    )  # null for sampled rows, which have no coverage
    return (
        responses.group_by(keys, maintain_order=True)
        .agg(
            prob=(pl.col("prob") * share).sum(),
            coverage=coverage,
            personas=pl.col("persona_id").n_unique(),
        )
        .select(
            "question_id",
            "kind",
            *OPTION_COLUMNS,
            "prob",
            "coverage",
            "personas",
            "method",
            "model",
            "format",
        )
    )


@dataclass(frozen=True)
class _Cell:
    """One persona asked one question in one option order."""

    persona: Persona
    question: Question
    asking: Asking
    order: str | None
    method: Method

    def columns(self) -> dict[str, object]:
        """What identifies this cell in the responses and draws frames."""
        return {
            "persona_id": self.persona.id,
            "weight": self.persona.weight,
            "question_id": self.question.id,
            "kind": self.question.kind,
            "order": self.order,
        }


def simulate(
    questionnaire: Questionnaire,
    population: Population,
    engine: Engine,
    *,
    format: str | PromptFormat = "chat",
    answer: AnswerMode = "label",
    terminated: Termination = "auto",
    permute: bool = False,
    relabel: bool = True,
    method: Method | Mapping[str, Method] = "exact",
    samples: int = 100,
    temperature: float = 1.0,
    seed: int = 0,
    max_new_tokens: int | None = None,
    progress: bool = True,
    cache: ResultsCache | bool = True,
) -> SimulationResult:
    """Answer distributions of every persona for every question (zero-shot).

    Args:
        questionnaire: The questions to ask.
        population: Who answers; weights make the population distribution.
        engine: The model (e.g. ``TransformersEngine.from_pretrained()``).
        format: ``"chat"``, ``"spectrum"``, ``"plain"`` or a PromptFormat instance.
        answer: Answer with the option ``"label"`` (letter/number) or its ``"text"``.
        terminated: Score the end-of-answer marker (see :mod:`survey_sim.asking.formats`).
        permute: Ask every question with options in balanced option orders (all orders up
            to 4 options, cyclic shifts above; see :mod:`survey_sim.asking.orders`). Each
            order is a row set of its own; ``population`` averages over them,
            :func:`position_bias` measures how much order mattered.
        relabel: With ``permute``, labels follow screen position (the first shown is "A").
        method: ``"exact"`` reads every outcome's probability from log-probabilities;
            ``"sample"`` draws ``samples`` answers per prompt under the answer's JSON schema
            and reports frequencies (see :mod:`survey_sim.asking` for each question kind).
            A mapping sets it per question kind, e.g. ``{"free_text": "sample"}`` (kinds
            left out are exact). Free text can only be sampled; any number that is not an
            integer too.
        samples, temperature, seed: Sampling settings. Each prompt's draws use ``seed``
            plus the prompt's index, so a run is reproducible.
        max_new_tokens: Token limit per sampled answer; by default the most a valid
            answer can need (draws that hit it are counted as truncated, never dropped).
        progress: Show a progress bar.
        cache: Answer from and store into the results cache (:mod:`survey_sim.runs.store`): the
            default store (``True``), another :class:`ResultsCache`, or none (``False``).
            With it, a rerun of an unchanged study does no model work, and a run that was
            killed recomputes only what it had not stored.

    Returns:
        The per-persona responses frame, the sampled draws, the run's manifest, and, via
        ``.population``, the weighted distribution.

    Raises:
        MethodError: before any model work, when a method cannot apply to a question.
    """
    started = time.time()
    prompt_format = get_format(format, answer=answer, terminated=terminated)
    methods = _methods_by_kind(method)
    if cache is not False:
        engine = CachedEngine(engine, cache if isinstance(cache, ResultsCache) else ResultsCache())
    # Persona-major order: consecutive prompts share the persona and preamble tokens.
    cells = [
        _Cell(persona, shown, ask(shown, prompt_format), order, methods[question.kind])
        for persona in population
        for question in questionnaire
        for shown, order in _displays(question, permute=permute, relabel=relabel)
    ]
    context = {"instructions": questionnaire.instructions, "chat": engine}
    exact = [
        (cell, cell.asking.exact_requests(description=cell.persona.description, **context))
        for cell in cells
        if cell.method == "exact"
    ]
    sampled = [
        (cell, cell.asking.sample_prompt(description=cell.persona.description, **context))
        for cell in cells
        if cell.method == "sample"
    ]
    responses: list[dict[str, object]] = []
    draws: list[dict[str, object]] = []
    common = {"model": engine.model_id, "format": prompt_format.name}
    with tqdm(
        total=sum(len(requests) for _, requests in exact) + len(sampled),
        desc="Simulating",
        unit="prompt",
        disable=not progress,
        leave=False,
    ) as bar:
        flat: list[ScoreRequest] = [request for _, requests in exact for request in requests]
        results = iter(engine.score(flat, progress=bar.update))
        for cell, requests in exact:
            distribution = cell.asking.read_scores([next(results) for _ in requests])
            responses.extend(_response_rows(cell, distribution, common))
        for index, (cell, prompt) in enumerate(sampled):
            request = SampleRequest(
                prompt,
                cell.asking.schema(),
                n=samples,
                temperature=temperature,
                seed=seed + index,
                max_new_tokens=max_new_tokens or cell.asking.token_limit(),
            )
            result = engine.sample(request)
            draws.extend(_draw_rows(cell, result, request.seed, common))
            distribution = cell.asking.read_draws(result)
            if distribution is not None:
                responses.extend(_response_rows(cell, distribution, common))
            bar.update(1)
    settings = {
        "format": prompt_format.name,
        "answer": answer,
        "terminated": terminated,
        "permute": permute,
        "relabel": relabel,
        "methods": methods,
        "samples": samples,
        "temperature": temperature,
        "seed": seed,
        "max_new_tokens": max_new_tokens,
    }
    return SimulationResult(
        pl.DataFrame(responses, schema=RESPONSE_SCHEMA),
        pl.DataFrame(draws, schema=DRAW_SCHEMA),
        run_manifest(questionnaire, population, engine, settings, started),
    )


def _methods_by_kind(method: Method | Mapping[str, Method]) -> dict[str, Method]:
    """The method for every question kind."""
    chosen = {"default": method} if isinstance(method, str) else dict(method)
    for kind, value in chosen.items():
        if kind != "default" and kind not in QUESTION_KINDS:
            raise MethodError(f"unknown question kind {kind!r} in method (kinds: {QUESTION_KINDS})")
        if value not in METHODS:
            raise MethodError(f"method must be 'exact' or 'sample', got {value!r}")
    default = chosen.pop("default", "exact")
    return {kind: chosen.get(kind, default) for kind in QUESTION_KINDS}


def _displays(
    question: Question, *, permute: bool, relabel: bool
) -> list[tuple[Question, str | None]]:
    """The question as shown, once per option order (options in their order when not permuting)."""
    if not isinstance(question, OptionsQuestion):
        return [(question, None)]
    orders = (
        option_orders(len(question.options)) if permute else [tuple(range(len(question.options)))]
    )
    return [
        (
            reorder(question, order, relabel=relabel) if permute else question,
            order_name(question, order),
        )
        for order in orders
    ]


def _response_rows(
    cell: _Cell, distribution: Distribution, common: dict[str, str]
) -> list[dict[str, object]]:
    return [
        {
            **cell.columns(),
            "option_code": outcome.code,
            "option_label": outcome.label,
            "option_text": outcome.text,
            "position": outcome.position,
            "substantive": outcome.substantive,
            "logprob": logprob,
            "prob": prob,
            "coverage": coverage,
            "shown_position": shown_position,
            "method": cell.method,
            "samples": distribution.samples,
            "truncated": distribution.truncated,
            "invalid": distribution.invalid,
            **common,
        }
        for shown_position, (outcome, logprob, prob, coverage) in enumerate(
            zip(
                cell.asking.outcomes,
                distribution.logprobs,
                distribution.probs,
                distribution.coverage,
                strict=True,
            ),
            start=1,
        )
    ]


def _draw_rows(
    cell: _Cell, result: SampleResult, seed: int, common: dict[str, str]
) -> list[dict[str, object]]:
    return [
        {
            **cell.columns(),
            "draw": draw,
            "answer": None if value is None else json.dumps(value),
            "text": text,
            "truncated": truncated,
            "invalid": invalid,
            "seed": seed,
            **common,
        }
        for draw, (text, value, truncated, invalid) in enumerate(
            zip(result.texts, result.values, result.truncated, result.invalid, strict=True)
        )
    ]
