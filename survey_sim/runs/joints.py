"""Exact joint distributions of question pairs: P(a, b | persona), read from the model.

For a pair (a, b) asked one after the other, P(a = i, b = j | persona) = P(a = i | persona) ·
P(b = j | persona, answered a = i): the first factor is a's exact distribution (the prompt of
a population run), the second b's exact distribution asked after a turn in which the persona
answered i (one prompt per option of a, all sharing the persona and a's question, so the
engines compute that prefix once). :func:`joint` reads every pair in both asking orders (a
then b, b then a) and reports each order's joint table, the conditional tables, and their
average; per persona and weighted over the population.

The pair is asked back to back, as an interview with memory of the first answer would ask
it: pipes in the second question show the first answer; the questionnaire's conditions,
blocks and memory setting are not applied. Options are shown in their listed order.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from survey_sim.asking.formats import ChatRenderer, PromptFormat
from survey_sim.asking.schemas import answer_texts
from survey_sim.engines.base import Engine
from survey_sim.errors import InputError
from survey_sim.flow import check_population, personalised
from survey_sim.population import Persona, Population
from survey_sim.questionnaire import ChoiceQuestion, Question, Questionnaire
from survey_sim.runs.manifest import RunManifest
from survey_sim.runs.plan import Cell, Plan
from survey_sim.runs.respondents import interview_cell
from survey_sim.runs.results import ResultFiles, beside, read_results, write_results
from survey_sim.runs.run import execute
from survey_sim.runs.settings import SimulationSettings
from survey_sim.runs.store import ResultsCache

JOINT_SCHEMA: dict[str, pl.DataType] = {
    "persona_id": pl.String(),
    "weight": pl.Float64(),
    "first": pl.String(),
    "second": pl.String(),
    "asked": pl.String(),
    "first_code": pl.String(),
    "second_code": pl.String(),
    "prob": pl.Float64(),
    "first_prob": pl.Float64(),
    "conditional_prob": pl.Float64(),
    "model": pl.String(),
    "format": pl.String(),
}
"""One row per persona × pair × asking order × cell. ``first`` and ``second`` name the pair as
given; ``asked`` is ``"first, second"``, ``"second, first"`` or ``"average"``;
``first_prob`` and ``conditional_prob`` are the factors of ``prob`` in that asking order (null
for the average)."""
ASKED_ORDERS = ("first, second", "second, first", "average")


def joint(
    questionnaire: Questionnaire,
    population: Population,
    engine: Engine,
    pairs: Sequence[tuple[str, str]],
    settings: SimulationSettings | None = None,
    *,
    progress: bool = True,
    cache: ResultsCache | bool = True,
    **changes: Any,
) -> JointResult:
    """The exact joint distribution of each pair of questions, per persona, in both asking
    orders and their average (module docstring).

    Args:
        pairs: Question id pairs (single-choice or ordinal questions).
        settings: How to ask (format, answer mode); keyword arguments change single settings.
        progress, cache: As for :func:`~survey_sim.runs.run.simulate`.

    Raises:
        InputError: an unknown question, a question paired with itself, a kind that has no
            exact distribution here, or a persona attribute the questionnaire names that
            the personas lack; before any model work.
    """
    started = time.time()
    settings = SimulationSettings.of(settings, **changes)
    if settings.permute:
        raise InputError(
            "joint", "joints are read in the listed option order; drop permute (--permute)"
        )
    checked = _checked_pairs(questionnaire, pairs)
    check_population(questionnaire, population)
    prompt_format = settings.prompt_format()
    cells: dict[tuple[str, ...], Cell] = {}

    def cell(
        persona: Persona, question: ChoiceQuestion, after: tuple[ChoiceQuestion, str] | None
    ) -> tuple[str, ...]:
        """The key of ``question``'s cell for ``persona``, asked first or ``after`` the
        other question answered with a code (made once)."""
        path = () if after is None else (after,)
        key = (persona.id, question.id, *(part for q, code in path for part in (q.id, code)))
        if key not in cells:
            cells[key] = path_cell(
                persona,
                question,
                path,
                prompt_format=prompt_format,
                chat=engine,
                instructions=questionnaire.instructions,
            )
        return key

    asked = []
    for persona in population:
        for a, b in checked:
            for first, second in ((a, b), (b, a)):
                marginal = cell(persona, first, None)
                conditionals = [cell(persona, second, (first, o.code)) for o in first.options]
                asked.append((persona, a, first, second, marginal, conditionals))
    read, manifest = read_cells(
        cells,
        questionnaire,
        population,
        engine,
        settings,
        prompt_format,
        what=f"joints of {questionnaire.id!r}",
        started=started,
        cache=cache,
        progress=progress,
        description="Joints",
    )
    run = {"model": engine.model_id, "format": prompt_format.name}
    rows: list[dict[str, object]] = []
    for persona, a, first, second, marginal, conditionals in asked:
        forward = first is a
        pair = (first.id, second.id) if forward else (second.id, first.id)
        for option, conditional in zip(first.options, conditionals, strict=True):
            for other in second.options:
                first_prob = read[marginal][option.code]
                then = read[conditional][other.code]
                codes = (option.code, other.code) if forward else (other.code, option.code)
                rows.append(
                    {
                        "persona_id": persona.id,
                        "weight": persona.weight,
                        "first": pair[0],
                        "second": pair[1],
                        "asked": ASKED_ORDERS[0] if forward else ASKED_ORDERS[1],
                        "first_code": codes[0],
                        "second_code": codes[1],
                        "prob": first_prob * then,
                        "first_prob": first_prob,
                        "conditional_prob": then,
                        **run,
                    }
                )
    frame = pl.DataFrame(rows, schema=JOINT_SCHEMA)
    keys = ["persona_id", "weight", "first", "second", "first_code", "second_code"]
    average = (
        frame.group_by(keys, maintain_order=True)
        .agg(pl.col("prob").mean(), pl.col("model", "format").first())
        .with_columns(asked=pl.lit(ASKED_ORDERS[2]), first_prob=None, conditional_prob=None)
        .select(list(JOINT_SCHEMA))
        .cast(JOINT_SCHEMA)  # type: ignore[arg-type]
    )
    return JointResult(pl.concat([frame, average]), manifest)


def read_cells(
    cells: dict[tuple[str, ...], Cell],
    questionnaire: Questionnaire,
    population: Population,
    engine: Engine,
    settings: SimulationSettings,
    prompt_format: PromptFormat,
    *,
    what: str,
    started: float,
    cache: ResultsCache | bool,
    progress: bool,
    description: str,
) -> tuple[dict[tuple[str, ...], dict[str, float]], RunManifest]:
    """Ask every cell once (a plan run like any other: context checks, results cache,
    progress) and read each one's option probabilities by code; with the run's manifest."""
    plan = Plan.of(
        cells.values(),
        questionnaire,
        population,
        settings,
        prompt_format,
        what=what,
        remedy="Shorten the persona descriptions or the questions",
    )
    done = execute(
        plan, engine, started=started, cache=cache, progress=progress, description=description
    )
    read = {
        key: dict(
            zip(
                (o.code for o in c.asking.outcomes),
                c.asking.read_scores([result]).probs,
                strict=True,
            )
        )
        for (key, c), result in zip(cells.items(), done.scores, strict=True)
    }
    return read, done.manifest


def path_cell(
    persona: Persona,
    question: ChoiceQuestion,
    path: Sequence[tuple[ChoiceQuestion, str]],
    *,
    prompt_format: PromptFormat,
    chat: ChatRenderer,
    instructions: str | None,
) -> Cell:
    """``persona`` asked ``question`` right after the questions of ``path``, each answered
    with its code (shown as the persona sees it, pipes showing the earlier answers), in the
    listed option order; read exactly."""
    earlier: list[tuple[Question, str]] = []
    answers: dict[str, str] = {}
    for asked, code in path:
        shown = personalised(asked, persona, answers)
        assert isinstance(shown, ChoiceQuestion)
        labels = answer_texts(shown, prompt_format.answer)
        earlier.append((shown, labels[[o.code for o in shown.options].index(code)]))
        answers[asked.id] = asked.option(code).text
    return interview_cell(
        persona,
        personalised(question, persona, answers),
        None,
        earlier,
        prompt_format=prompt_format,
        chat=chat,
        instructions=instructions,
    )


def _checked_pairs(
    questionnaire: Questionnaire, pairs: Sequence[tuple[str, str]]
) -> list[tuple[ChoiceQuestion, ChoiceQuestion]]:
    """The pairs' questions, each pair once, checked."""
    if not pairs:
        raise InputError("joint", "name at least one pair of questions")
    known = questionnaire.listed_order
    checked: list[tuple[ChoiceQuestion, ChoiceQuestion]] = []
    for a, b in dict.fromkeys(tuple(pair) for pair in pairs):
        for name in (a, b):
            if name not in known:
                raise InputError("joint", f"{name!r} is not a question of {questionnaire.id!r}")
        if a == b:
            raise InputError("joint", f"{a!r} is paired with itself")
        first, second = questionnaire.question(a), questionnaire.question(b)
        for question in (first, second):
            if not isinstance(question, ChoiceQuestion):
                raise InputError(
                    "joint",
                    f"{question.id!r} is a {question.kind} question; joints are read for "
                    "single-choice and ordinal questions (use simulated respondents for the rest)",
                )
        checked.append((first, second))  # type: ignore[arg-type]
    return checked


@dataclass(frozen=True)
class JointResult:
    """Exact joints of question pairs.

    Attributes:
        joints: The tidy per-persona table (:data:`JOINT_SCHEMA`).
        manifest: How it was made.
    """

    joints: pl.DataFrame
    manifest: RunManifest | None = None

    @cached_property
    def population(self) -> pl.DataFrame:
        """Per pair, asking order and cell: the persona-weighted joint probability."""
        keys = ["first", "second", "asked", "first_code", "second_code"]
        return self.joints.group_by(keys, maintain_order=True).agg(
            ((pl.col("prob") * pl.col("weight")).sum() / pl.col("weight").sum()).alias("prob"),
            pl.col("model", "format").first(),
        )

    def table(self, first: str, second: str, asked: str = "average") -> pl.DataFrame:
        """The population joint of one pair as a cross-tab: one row per ``first`` code, one
        column per ``second`` code."""
        rows = self.population.filter(
            pl.col("first") == first, pl.col("second") == second, pl.col("asked") == asked
        )
        if rows.is_empty():
            raise InputError("joint", f"no joint of {first!r} and {second!r} asked {asked!r}")
        return rows.pivot(on="second_code", index="first_code", values="prob")

    def tables(
        self, first: ChoiceQuestion, second: ChoiceQuestion, asked: str = "average"
    ) -> tuple[np.ndarray, np.ndarray]:
        """The personas' weights (summing to one) and joint tables of one pair asked
        ``asked`` (personas × ``first``'s options × ``second``'s, in questionnaire order).

        Raises:
            InputError: no joint of the pair asked that way, or a persona's joint that does
                not sum to one.
        """
        rows = self.joints.filter(
            pl.col("first") == first.id, pl.col("second") == second.id, pl.col("asked") == asked
        )
        if rows.is_empty():
            raise InputError("joint", f"no joint of {first.id!r} and {second.id!r} asked {asked!r}")
        personas = rows.unique("persona_id", maintain_order=True)
        index = {persona: i for i, persona in enumerate(personas["persona_id"])}
        codes = [{o.code: i for i, o in enumerate(q.options)} for q in (first, second)]
        tables = np.zeros((len(index), len(codes[0]), len(codes[1])))
        for persona, a, b, prob in rows.select(
            "persona_id", "first_code", "second_code", "prob"
        ).iter_rows():
            tables[index[persona], codes[0][a], codes[1][b]] = prob
        totals = tables.sum(axis=(1, 2))
        for persona, total in zip(index, totals, strict=True):
            if abs(total - 1) > 1e-6:
                raise InputError(
                    "joint",
                    f"the joint of {first.id!r} and {second.id!r} asked {asked!r} for persona "
                    f"{persona!r} sums to {total:.6g}, not 1: not a joint distribution (were "
                    "rows removed from the joints file?)",
                )
        weights = personas["weight"].to_numpy().astype(float)
        return weights / weights.sum(), tables

    def write_parquet(self, path: str | Path) -> list[Path]:
        """Write the joints to ``path`` and the population table and manifest beside it."""
        files = ResultFiles.at(Path(path))
        return write_results(
            files,
            self.joints,
            {beside(files.responses, "population"): self.population},
            self.manifest,
        )

    @classmethod
    def read_parquet(cls, path: str | Path) -> JointResult:
        """Read what :meth:`write_parquet` wrote."""
        joints, manifest = read_results(ResultFiles.at(Path(path)), JOINT_SCHEMA)
        return cls(joints, manifest)
