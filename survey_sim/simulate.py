"""Simulation: a questionnaire answered by every persona of a population, exactly.

:func:`simulate` renders one prompt per (persona, question) with a prompt format, asks the
engine for the exact probability of every option, and returns a :class:`SimulationResult`:
a tidy per-persona frame and the population distribution (persona weights applied).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import polars as pl
from tqdm.auto import tqdm

from survey_sim._io import write_parquet_atomic
from survey_sim.engines.base import Engine, SampleRequest, SampleResult, ScoreRequest
from survey_sim.errors import ScoringError
from survey_sim.permutations import option_orders, reorder
from survey_sim.population import Population
from survey_sim.prompts import AnswerMode, PromptFormat, Termination, get_format
from survey_sim.questionnaire import ChoiceQuestion, Questionnaire
from survey_sim.schemas import answer_schema, option_for_value

# What identifies an option whatever order it was shown in (its label may follow the order).
OPTION_COLUMNS = ["option_code", "option_text", "position", "substantive"]
RESPONSE_SCHEMA = {
    "persona_id": pl.String,
    "weight": pl.Float64,
    "question_id": pl.String,
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
    "model": pl.String,
    "format": pl.String,
}
Method = Literal["exact", "sample"]


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
            ``sample``), ``samples`` and ``truncated`` (sampling: valid draws behind
            ``prob`` and draws cut off by the token limit; null for exact rows; ``logprob``
            and ``coverage`` are null for sampled rows), ``model`` and ``format``.
            With option-order permutations there is one row per order; ``population``
            averages over orders.
    """

    responses: pl.DataFrame

    @cached_property
    def population(self) -> pl.DataFrame:
        """The population distribution: per question × option, persona-weight averages.

        ``prob`` is the weighted mean of the personas' renormalised distributions (a
        post-stratified estimate when the weights are population shares), averaged over
        option orders when there are several; ``coverage`` is the weighted mean coverage;
        ``personas`` counts the personas averaged.
        """
        return population_distribution(self.responses)

    def write_parquet(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``responses`` to ``path`` and ``population`` beside it (``*.population.parquet``).

        Files appear complete or not at all (written to a temporary file, then renamed).
        """
        path = Path(path)
        population_path = path.with_name(f"{path.stem}.population{path.suffix or '.parquet'}")
        write_parquet_atomic(self.responses, path)
        write_parquet_atomic(self.population, population_path)
        return path, population_path

    @classmethod
    def read_parquet(cls, path: str | Path) -> SimulationResult:
        """Read the ``responses`` file written by :meth:`write_parquet`."""
        return cls(pl.read_parquet(path))


@dataclass(frozen=True)
class _Distribution:
    """One prompt's answer distribution, from exact scoring or from sampled frequencies."""

    logprobs: Sequence[float | None]
    probs: Sequence[float]
    coverage: float | None
    samples: int | None
    truncated: int | None


def _frequencies(
    question: ChoiceQuestion, draws: SampleResult, answer: AnswerMode
) -> _Distribution:
    """Option frequencies among the valid draws (truncated draws are counted, not used)."""
    counts = Counter(
        option_for_value(question, value, answer).code
        for value, cut in zip(draws.values, draws.truncated, strict=True)
        if not cut
    )
    valid = sum(counts.values())
    if valid == 0:
        raise ScoringError(
            f"question {question.id!r}: every sampled answer hit the token limit; "
            "raise max_new_tokens"
        )
    return _Distribution(
        logprobs=[None] * len(question.options),
        probs=[counts[option.code] / valid for option in question.options],
        coverage=None,
        samples=valid,
        truncated=len(draws.values) - valid,
    )


def position_bias(responses: pl.DataFrame) -> pl.DataFrame:
    """How much option order moved the answers, per question (needs ``permute=True``).

    Columns: ``options`` (k), ``orders``, ``first_shown`` (mean probability of whichever
    option was shown first), ``first_position_bias`` (``first_shown`` − 1/k: 0 means no
    primacy effect, positive favours the first option), and ``order_tv`` (mean total
    variation distance between each order's distribution and the order-averaged one).
    All are averaged over personas with equal weight.
    """
    cell = ["persona_id", "question_id"]
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
    keys = ["question_id", *OPTION_COLUMNS, "method", "model", "format"]
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
            *OPTION_COLUMNS,
            "prob",
            "coverage",
            "personas",
            "method",
            "model",
            "format",
        )
    )


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
    method: Method = "exact",
    samples: int = 100,
    temperature: float = 1.0,
    seed: int = 0,
    max_new_tokens: int = 16,
    progress: bool = True,
) -> SimulationResult:
    """Exact answer distributions of every persona for every question (zero-shot).

    Args:
        questionnaire: The questions to ask.
        population: Who answers; weights make the population distribution.
        engine: The model (e.g. ``TransformersEngine.from_pretrained()``).
        format: ``"chat"``, ``"spectrum"``, ``"plain"`` or a PromptFormat instance.
        answer: Answer with the option ``"label"`` (letter/number) or its ``"text"``.
        terminated: Score the end-of-answer marker (see :mod:`survey_sim.prompts`).
        permute: Ask every question in balanced option orders (all orders up to 4 options,
            cyclic shifts above; see :mod:`survey_sim.permutations`). Each order is a row
            set of its own; ``population`` averages over them, :func:`position_bias`
            measures how much order mattered.
        relabel: With ``permute``, labels follow screen position (the first shown is "A").
        method: ``"exact"`` reads every option's probability from log-probabilities;
            ``"sample"`` draws ``samples`` answers per prompt under the answer's JSON schema
            (:func:`survey_sim.schemas.answer_schema`, bare enum) and reports frequencies.
        samples, temperature, seed, max_new_tokens: Sampling settings. Each prompt's draws
            use ``seed`` plus the prompt's index, so a run is reproducible.
        progress: Show a progress bar.

    Returns:
        The per-persona responses frame and, via ``.population``, the weighted distribution.
    """
    prompt_format = get_format(format, answer=answer, terminated=terminated)
    personas = list(population)
    # Persona-major order: consecutive prompts share the persona and preamble tokens.
    cells = [
        (persona, question, order)
        for persona in personas
        for question in questionnaire
        for order in (option_orders(len(question.options)) if permute else [None])
    ]
    shown = [
        question if order is None else reorder(question, order, relabel=relabel)
        for _, question, order in cells
    ]
    requests: list[ScoreRequest] = [
        prompt_format.render(
            displayed,
            description=persona.description,
            instructions=questionnaire.instructions,
            chat=engine,
        )
        for (persona, _, _), displayed in zip(cells, shown, strict=True)
    ]
    if method not in ("exact", "sample"):
        raise ValueError(f"method must be 'exact' or 'sample', got {method!r}")
    with tqdm(
        total=len(requests),
        desc="Scoring" if method == "exact" else "Sampling",
        unit="prompt",
        disable=not progress,
        leave=False,
    ) as bar:
        if method == "exact":
            distributions = [
                _Distribution(r.logprobs, r.probs, r.coverage, None, None)
                for r in engine.score(requests, progress=bar.update)
            ]
        else:
            distributions = []
            for index, (request, displayed) in enumerate(zip(requests, shown, strict=True)):
                draws = engine.sample(
                    SampleRequest(
                        request.prefix,
                        answer_schema(displayed, answer=answer, wrap=False),
                        n=samples,
                        temperature=temperature,
                        seed=seed + index,
                        max_new_tokens=max_new_tokens,
                    )
                )
                distributions.append(_frequencies(displayed, draws, answer))
                bar.update(1)
    rows = []
    for (persona, question, _), displayed, result in zip(cells, shown, distributions, strict=True):
        coverage = result.coverage
        order = "|".join(option.code for option in displayed.options)
        for shown_position, (option, logprob, prob) in enumerate(
            zip(displayed.options, result.logprobs, result.probs, strict=True), start=1
        ):
            rows.append(
                {
                    "persona_id": persona.id,
                    "weight": persona.weight,
                    "question_id": question.id,
                    "option_code": option.code,
                    "option_label": option.label,
                    "option_text": option.text,
                    "position": option.position,
                    "substantive": option.substantive,
                    "logprob": logprob,
                    "prob": prob,
                    "coverage": coverage,
                    "order": order,
                    "shown_position": shown_position,
                    "method": method,
                    "samples": result.samples,
                    "truncated": result.truncated,
                    "model": engine.model_id,
                    "format": prompt_format.name,
                }
            )
    return SimulationResult(pl.DataFrame(rows, schema=RESPONSE_SCHEMA))
