"""Simulation results: tidy frames whose columns are declared here once, the Parquet file
set with its manifest, and every distribution derived from them through the one weighted
aggregation (:func:`survey_sim._distribution.weighted_distribution`)."""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl
from pydantic import ValidationError

from survey_sim._distribution import weighted_distribution
from survey_sim._io import Writer, write_set
from survey_sim._yaml import read_text
from survey_sim.asking.kinds import Distribution
from survey_sim.engines.base import SampleResult, ScoreResult
from survey_sim.errors import CoverageWarning, InputError, OptionOrderWarning, input_error
from survey_sim.flow import asked_probability
from survey_sim.population import Population
from survey_sim.questionnaire import Option
from survey_sim.runs.manifest import RunManifest
from survey_sim.runs.plan import Cell, Plan

CELL_COLUMNS: dict[str, pl.DataType] = {
    "persona_id": pl.String(),
    "weight": pl.Float64(),
    "question_id": pl.String(),
    "kind": pl.String(),
    "order": pl.String(),
}
"""What identifies a cell (persona × question × option order) in the responses and draws."""
OUTCOME_COLUMNS: dict[str, pl.DataType] = {
    "option_code": pl.String(),
    "option_text": pl.String(),
    "position": pl.Int32(),
    "substantive": pl.Boolean(),
}
"""What identifies an option whatever order it was shown in (its label may follow the order)."""
RUN_COLUMNS: dict[str, pl.DataType] = {
    "method": pl.String(),
    "model": pl.String(),
    "format": pl.String(),
}
"""How a row was made."""
RESPONSE_SCHEMA: dict[str, pl.DataType] = {
    **CELL_COLUMNS,
    "p_asked": pl.Float64(),
    **OUTCOME_COLUMNS,
    "option_label": pl.String(),
    "shown_position": pl.Int32(),
    "logprob": pl.Float64(),
    "prob": pl.Float64(),
    "coverage": pl.Float64(),
    "samples": pl.Int64(),
    "truncated": pl.Int64(),
    "invalid": pl.Int64(),
    **RUN_COLUMNS,
}
DRAW_SCHEMA: dict[str, pl.DataType] = {
    **CELL_COLUMNS,
    "draw": pl.Int32(),
    "answer": pl.String(),
    "text": pl.String(),
    "truncated": pl.Boolean(),
    "invalid": pl.Boolean(),
    "seed": pl.Int64(),
    **{name: RUN_COLUMNS[name] for name in ("model", "format")},
}
POPULATION_SCHEMA: dict[str, pl.DataType] = {
    "question_id": pl.String(),
    "kind": pl.String(),
    **OUTCOME_COLUMNS,
    "prob": pl.Float64(),
    "coverage": pl.Float64(),
    "personas": pl.UInt32(),
    "p_asked": pl.Float64(),
    **RUN_COLUMNS,
}
CHOICE_KINDS = ("single_choice", "ordinal")
LOW_COVERAGE = 0.2
"""Coverage below which runs and comparisons warn: the listed answers took less than a fifth
of the model's probability (the default model gives 0.5-0.6 on the demo's lettered
options)."""


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
        manifest: How the results were made (:class:`~survey_sim.runs.manifest.RunManifest`):
            package versions, model identity and weights fingerprint, questionnaire and
            population hashes, settings and seeds, timing, cache hits and misses.
    """

    responses: pl.DataFrame
    draws: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=DRAW_SCHEMA))
    manifest: RunManifest | None = None

    @classmethod
    def assemble(
        cls,
        plan: Plan,
        scores: Sequence[ScoreResult],
        samples: Sequence[SampleResult],
        *,
        model: str,
        manifest: RunManifest,
    ) -> SimulationResult:
        """The frames of a run: each cell's distribution read from its engine results
        (``scores`` and ``samples`` in the plan's request order)."""
        run = {"model": model, "format": plan.prompt_format.name}
        responses: list[dict[str, object]] = []
        draws: list[dict[str, object]] = []
        results = iter(scores)
        for cell, requests in plan.exact:
            distribution = cell.asking.read_scores([next(results) for _ in requests])
            responses.extend(response_rows(cell.row(run), cell.asking.outcomes, distribution))
        for (cell, request), result in zip(plan.sampled, samples, strict=True):
            draws.extend(draw_rows(cell, result, request.seed, run))
            sampled = cell.asking.read_draws(result)
            if sampled is not None:
                responses.extend(response_rows(cell.row(run), cell.asking.outcomes, sampled))
        return cls(
            with_asked(pl.DataFrame(responses, schema=RESPONSE_SCHEMA), plan),
            pl.DataFrame(draws, schema=DRAW_SCHEMA),
            manifest,
        )

    @cached_property
    def population(self) -> pl.DataFrame:
        """The population distribution: per question × option, persona-weight averages.

        ``prob`` is the weighted mean of the personas' renormalised distributions (a
        post-stratified estimate when the weights are population shares), each persona's
        option orders averaged first; ``coverage`` is the weighted mean coverage (null for
        sampled rows); ``personas`` counts the personas averaged.
        """
        return distribution(self.responses)

    @property
    def personas(self) -> pl.DataFrame:
        """The personas that answered: ``persona_id``, ``weight`` and their attributes (as
        the manifest records them).

        Raises:
            InputError: results without that record (written by survey-sim before 0.2).
        """
        table = self.manifest.population.table if self.manifest else None
        if not table:
            raise InputError(
                "results",
                "the manifest does not record the personas' attributes (results written "
                "by an earlier survey-sim, or without their manifest); run the study again",
            )
        return pl.from_dicts(table, infer_schema_length=None, strict=False)

    def warn_if_one_order(self) -> None:
        """Warn (:class:`~survey_sim.errors.OptionOrderWarning`) when these results were
        asked in one option order: compared with people, a model's preference for the first
        (or last) option it reads then shows as opinion."""
        if self.manifest is not None and not self.manifest.settings.permute:
            warnings.warn(
                "these results were asked in one option order (without permute): a model "
                "that favours the first (or last) option it reads shows that as opinion here. "
                "Rerun with permute (--permute) to average balanced orders and measure the "
                "position bias.",
                OptionOrderWarning,
                stacklevel=2,
            )

    def warn_if_low_coverage(self) -> None:
        """Warn (:class:`~survey_sim.errors.CoverageWarning`) naming the questions whose
        coverage (the model's probability of the listed answers, before they are
        renormalised) is below :data:`LOW_COVERAGE`."""
        low = (
            self.population.drop_nulls("coverage")
            .group_by("question_id", maintain_order=True)
            .agg(pl.col("coverage").mean())
            .filter(pl.col("coverage") < LOW_COVERAGE)
        )
        if low.is_empty():
            return
        listed = ", ".join(f"{q} {c:.2f}" for q, c in low.iter_rows())
        warnings.warn(
            f"low coverage (below {LOW_COVERAGE}) on {low.height} question(s): {listed}. The "
            "listed answers took that share of the model's probability; the rest went to "
            "replies that are none of them, so the distribution over the answers (renormalised) "
            "says little about what the model would answer. See the prompt with survey-sim "
            "preview; try --answer text, another --format, or a larger model.",
            CoverageWarning,
            stacklevel=2,
        )

    def subgroups(self, by: Sequence[str], population: Population | None = None) -> pl.DataFrame:
        """The distribution within each combination of the personas' ``by`` attributes
        (from ``population``, the personas that answered, else from the manifest)."""
        personas = self.personas if population is None else population.frame
        return subgroup_distributions(self.responses, personas, by)

    def write_parquet(self, path: str | Path) -> list[Path]:
        """Write ``responses`` to ``path``, ``population`` beside it (``*.population.parquet``),
        ``draws`` when answers were sampled (``*.draws.parquet``) and the manifest
        (``*.manifest.json``).

        The files are written as one set (:func:`write_results`): complete, or not at all.
        Returns the paths written, the responses file first.
        """
        files = ResultFiles.at(Path(path))
        companions = {files.population: self.population}
        if not self.draws.is_empty():
            companions[files.draws] = self.draws
        stale = [] if files.draws in companions else [files.draws]
        return write_results(files, self.responses, companions, self.manifest, stale=stale)

    @classmethod
    def read_parquet(cls, path: str | Path) -> SimulationResult:
        """Read the files written by :meth:`write_parquet` (``path`` is the responses file).

        Raises:
            InputError: not a results file, or files of different runs side by side.
        """
        files = ResultFiles.at(Path(path))
        responses, manifest = read_results(files, RESPONSE_SCHEMA)
        draws = read_checked(files.draws, DRAW_SCHEMA) if files.draws.exists() else None
        return cls(
            responses, pl.DataFrame(schema=DRAW_SCHEMA) if draws is None else draws, manifest
        )


SET_KEY = "survey_sim.results_set"
"""The Parquet metadata key (and the manifest's) of the id shared by one results set."""


def write_results(
    files: ResultFiles,
    responses: pl.DataFrame,
    companions: Mapping[Path, pl.DataFrame],
    manifest: RunManifest | None,
    *,
    stale: Iterable[Path] = (),
) -> list[Path]:
    """Write a results set: ``responses``, its ``companions`` and the manifest, all or none
    (:func:`survey_sim._io.write_set`), removing ``stale`` files of an earlier set.

    Every Parquet file of the set carries one new set id in its metadata, and the manifest
    records the id and the set's files, so :func:`read_results` can tell a complete set from
    files of different runs (which only a SIGKILL during the final renames can leave). The
    responses file, the one readers open, is renamed into place last.
    """
    set_id = uuid.uuid4().hex
    record = {
        **({} if manifest is None else manifest.model_dump(mode="json")),
        "results_set": {"id": set_id, "files": sorted(path.name for path in companions)},
    }
    text = json.dumps(record, indent=2)
    writers: dict[Path, Writer] = {
        path: partial(frame.write_parquet, metadata={SET_KEY: set_id})
        for path, frame in companions.items()
    }
    writers[files.manifest] = lambda temporary: Path(temporary).write_text(text)
    writers[files.responses] = partial(responses.write_parquet, metadata={SET_KEY: set_id})
    written = write_set(writers, remove=stale)
    return [written[-1], *written[:-1]]


def read_results(
    files: ResultFiles, schema: dict[str, pl.DataType]
) -> tuple[pl.DataFrame, RunManifest | None]:
    """A results set's responses and manifest, checked to belong together (``None``: a set
    written without a manifest).

    Raises:
        InputError: not a results file; or the manifest, or a file it lists, missing or
            from another run (a run killed while it wrote its files).
    """
    responses = read_checked(files.responses, schema)
    set_id = _set_id(files.responses)
    if not files.manifest.exists():
        if set_id is None:  # written before results sets had ids
            return responses, None
        raise InputError(files.responses, f"{_INCOMPLETE}: {files.manifest.name} is missing")
    data = read_manifest(files.manifest)
    recorded = data.pop("results_set", {})
    manifest = _typed_manifest(files.manifest, data)
    if set_id is None:
        return responses, manifest
    if recorded.get("id") != set_id:
        raise InputError(
            files.manifest, f"{_INCOMPLETE}: it describes another run than {files.responses.name}"
        )
    for name in recorded.get("files", []):
        companion = files.responses.with_name(name)
        if not companion.exists():
            raise InputError(files.responses, f"{_INCOMPLETE}: {name} is missing")
        if _set_id(companion) != set_id:
            raise InputError(
                companion,
                f"{_INCOMPLETE}: it holds another run's results than {files.responses.name}",
            )
    return responses, manifest


def _set_id(path: Path) -> str | None:
    try:
        return pl.read_parquet_metadata(path).get(SET_KEY)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise InputError(path, f"cannot read as Parquet: {error}") from error


_INCOMPLETE = (
    "not a complete results set (a run stopped while writing its files?); rerun the command "
    "to write them again"
)


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise InputError(
            path, f"not a run manifest: invalid JSON ({error.msg})", line=error.lineno
        ) from error
    if not isinstance(manifest, dict):
        raise InputError(path, "not a run manifest: expected a JSON object")
    return manifest


def _typed_manifest(path: Path, data: dict[str, Any]) -> RunManifest | None:
    """``data`` as a :class:`RunManifest` (``None`` when a set was written without one)."""
    if not data:
        return None
    try:
        return RunManifest.from_record(data)
    except ValidationError as error:
        raise input_error(path, error, "a survey-sim run manifest") from error
    except ValueError as error:
        raise InputError(path, str(error)) from error


ADDED_COLUMNS: dict[str, object] = {"p_asked": 1.0}
"""Columns results gained after they were first written, with the value every row of an
earlier file has (questionnaires had no flow then: everyone was asked everything)."""


def with_added_columns(frame: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """``frame`` with the :data:`ADDED_COLUMNS` of ``schema`` it lacks, at their values."""
    return frame.with_columns(
        pl.lit(value, dtype=schema[name]).alias(name)
        for name, value in ADDED_COLUMNS.items()
        if name in schema and name not in frame.columns
    )


def read_checked(path: Path, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """A results file, with a clear error when it is not one (or from another version)."""
    try:
        frame = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise InputError(path, f"cannot read as Parquet: {error}") from error
    frame = with_added_columns(frame, schema)
    absent = [column for column in schema if column not in frame.columns]
    if absent:
        raise InputError(
            path,
            f"not a survey-sim results file of this version: no column {', '.join(absent)} "
            "(rerun the simulation)",
        )
    return frame


def write_with_population(
    path: str | Path, table: pl.DataFrame, population: pl.DataFrame, manifest: RunManifest | None
) -> list[Path]:
    """Write a results set of one tidy table: ``table`` to ``path``, its ``population``
    table (``*.population.parquet``) and the manifest beside it."""
    files = ResultFiles.at(Path(path))
    return write_results(
        files, table, {beside(files.responses, "population"): population}, manifest
    )


class ResultFiles(NamedTuple):
    """The files of one results set: the responses file and those written beside it."""

    responses: Path
    population: Path
    draws: Path
    manifest: Path

    @classmethod
    def at(cls, path: Path) -> ResultFiles:
        """The set whose responses file is ``path``."""
        return cls(
            path,
            beside(path, "population"),
            beside(path, "draws"),
            beside(path, "manifest", ".json"),
        )


def beside(path: Path, part: str, suffix: str | None = None) -> Path:
    """``results.parquet`` -> ``results.PART.parquet`` (or ``results.PART.SUFFIX``)."""
    return path.with_name(f"{path.stem}.{part}{suffix or path.suffix or '.parquet'}")


def distribution(responses: pl.DataFrame, by: Sequence[str] = ()) -> pl.DataFrame:
    """Weight-averaged option probabilities per question (and ``by`` group); see
    :attr:`SimulationResult.population`. ``by`` columns must be in ``responses``; without
    ``p_asked`` (a frame made by hand) every persona counts as asked."""
    responses = with_added_columns(responses, RESPONSE_SCHEMA)
    among_asked = responses.with_columns(pl.col("weight") * pl.col("p_asked")).filter(
        pl.col("weight") > 0
    )
    aggregated = weighted_distribution(
        among_asked,
        unit="persona_id",
        outcome=["kind", *OUTCOME_COLUMNS, *RUN_COLUMNS],
        by=by,
        values=["coverage"],
    )
    return (
        aggregated.rename({"units": "personas"})
        .join(asked_share(responses, by), on=[*by, "question_id"], maintain_order="left")
        .select(*by, *(name for name in POPULATION_SCHEMA))
    )


def asked_share(responses: pl.DataFrame, by: Sequence[str] = ()) -> pl.DataFrame:
    """Per question (and ``by`` group), the weighted share of the personas in ``responses``
    who are asked it: Σ weight · p_asked / Σ weight."""
    groups = list(by) or ["_everyone"]
    frame = responses if by else responses.with_columns(_everyone=pl.lit(0))
    totals = frame.unique("persona_id").group_by(groups).agg(total=pl.col("weight").sum())
    return (
        frame.unique(["persona_id", "question_id"], maintain_order=True)
        .group_by(*groups, "question_id", maintain_order=True)
        .agg(mass=(pl.col("weight") * pl.col("p_asked")).sum())
        .join(totals, on=groups)
        .select(*by, "question_id", p_asked=pl.col("mass") / pl.col("total"))
    )


def with_asked(responses: pl.DataFrame, plan: Plan) -> pl.DataFrame:
    """``responses`` with ``p_asked``: the probability that each persona is asked each
    question, computed from the persona's own answer distributions (its option orders
    averaged) by :func:`survey_sim.flow.asked_probability`; 1 for unconditional questions."""
    questionnaire = plan.questionnaire
    conditional = [
        qid for qid in questionnaire.listed_order if questionnaire.condition(qid) is not None
    ]
    if not conditional:
        return responses.with_columns(p_asked=pl.lit(1.0))
    means = responses.group_by("persona_id", "question_id", "option_code").agg(
        pl.col("prob").mean()
    )
    answers: dict[str, dict[str, dict[str, float]]] = {}
    for persona_id, question_id, code, prob in means.iter_rows():
        answers.setdefault(persona_id, {}).setdefault(question_id, {})[code] = prob
    asked = pl.DataFrame(
        [
            (
                persona.id,
                qid,
                asked_probability(
                    questionnaire, qid, persona.attributes, answers.get(persona.id, {})
                ),
            )
            for persona in plan.population
            for qid in conditional
        ],
        schema={"persona_id": pl.String(), "question_id": pl.String(), "asked": pl.Float64()},
        orient="row",
    )
    return (
        responses.join(asked, on=["persona_id", "question_id"], how="left", maintain_order="left")
        .with_columns(p_asked=pl.col("asked").fill_null(1.0))
        .select(list(RESPONSE_SCHEMA))
    )


def subgroup_distributions(
    responses: pl.DataFrame, personas: pl.DataFrame, by: Sequence[str]
) -> pl.DataFrame:
    """Simulated distributions per subgroup: persona probabilities averaged with the
    personas' weights within each combination of the ``by`` attributes.

    Args:
        responses: Per-persona results (``SimulationResult.responses``).
        personas: The personas that answered: ``persona_id`` and their attributes.

    Raises:
        InputError: an attribute the personas do not have.
    """
    absent = [name for name in by if name not in personas.columns]
    if absent:
        known = [c for c in personas.columns if c not in ("persona_id", "weight", "description")]
        raise InputError(
            "personas",
            f"the personas have no attribute {', '.join(absent)} "
            f"(their attributes: {', '.join(known) or 'none'})",
        )
    attributes = personas.select("persona_id", *(pl.col(name).cast(pl.String) for name in by))
    return distribution(responses.join(attributes, on="persona_id"), by)


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


def response_rows(
    columns: dict[str, object], outcomes: Sequence[Option], distribution: Distribution
) -> list[dict[str, object]]:
    """Rows of a responses frame for one distribution: ``columns`` (what was asked, how)
    and, per outcome in shown order, its identity and probabilities."""
    return [
        {
            **columns,
            "option_code": outcome.code,
            "option_text": outcome.text,
            "position": outcome.position,
            "substantive": outcome.substantive,
            "option_label": outcome.label,
            "shown_position": shown_position,
            "logprob": logprob,
            "prob": prob,
            "coverage": coverage,
            "samples": distribution.samples,
            "truncated": distribution.truncated,
            "invalid": distribution.invalid,
        }
        for shown_position, (outcome, logprob, prob, coverage) in enumerate(
            zip(
                outcomes,
                distribution.logprobs,
                distribution.probs,
                distribution.coverage,
                strict=True,
            ),
            start=1,
        )
    ]


def draw_rows(
    cell: Cell, result: SampleResult, seed: int, run: dict[str, str]
) -> list[dict[str, object]]:
    """Rows of the draws frame for one cell's sampled answers."""
    return [
        {
            **cell.columns(),
            "draw": draw,
            "answer": None if value is None else json.dumps(value),
            "text": text,
            "truncated": truncated,
            "invalid": invalid,
            "seed": seed,
            **run,
        }
        for draw, (text, value, truncated, invalid) in enumerate(
            zip(result.texts, result.values, result.truncated, result.invalid, strict=True)
        )
    ]
