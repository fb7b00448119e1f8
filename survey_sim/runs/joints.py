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

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from survey_sim._distribution import persona_weighted
from survey_sim.engines.base import Engine
from survey_sim.errors import InputError
from survey_sim.population import Population
from survey_sim.questionnaire import ChoiceQuestion, Questionnaire
from survey_sim.runs.manifest import RunManifest
from survey_sim.runs.paths import AnswerPaths, choice_questions
from survey_sim.runs.results import ResultFiles, read_results, write_with_population
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
    checked = _checked_pairs(questionnaire, pairs)
    paths = AnswerPaths(
        questionnaire, population, engine, SimulationSettings.of(settings, **changes), "joints"
    )
    asked = []
    for persona in population:
        for a, b in checked:
            for first, second in ((a, b), (b, a)):
                marginal = paths.key(persona, first, ())
                conditionals = [
                    paths.key(persona, second, ((first, o.code),)) for o in first.options
                ]
                asked.append((persona, a, first, second, marginal, conditionals))
    reading = paths.read(cache=cache, progress=progress, description="Joints")
    read = reading.probs
    run = {"model": engine.model_id, "format": paths.prompt_format.name}
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
    return JointResult(pl.concat([frame, average]), reading.manifest)


CHAIN_LIMIT = 1_000
"""Most cells (the product of its questions' option counts) a chain's joint may have; beyond,
simulated respondents with ``memory: full`` sample the same interview."""

CHAIN_SCHEMA: dict[str, pl.DataType] = {
    "persona_id": pl.String(),
    "weight": pl.Float64(),
    "chain": pl.String(),
    "codes": pl.List(pl.String()),
    "prob": pl.Float64(),
    "model": pl.String(),
    "format": pl.String(),
}
"""One row per persona × chain × answer path: ``chain`` names the questions in asking order
("a → b → c"), ``codes`` the answers in the same order, ``prob`` the path's probability."""


def chain(
    questionnaire: Questionnaire,
    population: Population,
    engine: Engine,
    questions: Sequence[str],
    settings: SimulationSettings | None = None,
    *,
    progress: bool = True,
    cache: ResultsCache | bool = True,
    **changes: Any,
) -> ChainResult:
    """The exact joint distribution of a chain of questions asked in this order, back to
    back (a → b → c): P(a, b, c | persona) = P(a) · P(b | a) · P(c | a, b), one prompt per
    question and answer path before it, per persona.

    Args:
        questions: Question ids in asking order (single-choice or ordinal, each once).
        settings, progress, cache: As for :func:`joint`.

    Raises:
        InputError: fewer than two questions, an unknown or repeated question, another kind,
            a joint of more than :data:`CHAIN_LIMIT` cells, or a persona attribute the
            questionnaire names that the personas lack; before any model work.
    """
    asked = choice_questions(questionnaire, questions, "chain")
    if len(asked) < 2 or len(set(questions)) != len(questions):
        raise InputError("chain", "a chain asks two or more different questions")
    size = math.prod(len(question.options) for question in asked)
    if size > CHAIN_LIMIT:
        raise InputError(
            "chain",
            f"the joint of {' → '.join(questions)} has {size:,} cells, over the limit of "
            f"{CHAIN_LIMIT:,}: read shorter chains or pairs, or sample the interview with "
            "simulated respondents (memory: full)",
        )
    paths = AnswerPaths(
        questionnaire, population, engine, SimulationSettings.of(settings, **changes), "a chain"
    )
    every = [
        tuple(zip(asked, codes, strict=True))
        for codes in itertools.product(*([o.code for o in q.options] for q in asked))
    ]
    for persona in population:
        for path in every:
            for step, question in enumerate(asked):
                paths.key(persona, question, path[:step])
    reading = paths.read(cache=cache, progress=progress, description="Chain")
    name = " → ".join(questions)
    rows = [
        {
            "persona_id": persona.id,
            "weight": persona.weight,
            "chain": name,
            "codes": [code for _, code in path],
            "prob": reading.probability(paths, persona, path),
            "model": engine.model_id,
            "format": paths.prompt_format.name,
        }
        for persona in population
        for path in every
    ]
    return ChainResult(pl.DataFrame(rows, schema=CHAIN_SCHEMA), reading.manifest)


@dataclass(frozen=True)
class ChainResult:
    """The exact joint of a chain of questions.

    Attributes:
        joints: The tidy per-persona table (:data:`CHAIN_SCHEMA`).
        manifest: How it was made.
    """

    joints: pl.DataFrame
    manifest: RunManifest | None = None

    @cached_property
    def population(self) -> pl.DataFrame:
        """Per chain and answer path: the persona-weighted probability."""
        return persona_weighted(self.joints, ["chain", "codes"])

    def table(self) -> pl.DataFrame:
        """The population joint with one column per question (its answer code) and
        ``prob``, most likely paths first."""
        (name,) = self.joints["chain"].unique()
        questions = name.split(" → ")
        return self.population.select(
            *(pl.col("codes").list.get(i).alias(q) for i, q in enumerate(questions)), "prob"
        ).sort("prob", descending=True, maintain_order=True)

    def write_parquet(self, path: str | Path) -> list[Path]:
        """Write the joint to ``path`` and the population table and manifest beside it."""
        return write_with_population(path, self.joints, self.population, self.manifest)

    @classmethod
    def read_parquet(cls, path: str | Path) -> ChainResult:
        """Read what :meth:`write_parquet` wrote."""
        joints, manifest = read_results(ResultFiles.at(Path(path)), CHAIN_SCHEMA)
        return cls(joints, manifest)


def _checked_pairs(
    questionnaire: Questionnaire, pairs: Sequence[tuple[str, str]]
) -> list[tuple[ChoiceQuestion, ChoiceQuestion]]:
    """The pairs' questions, each pair once, checked."""
    if not pairs:
        raise InputError("joint", "name at least one pair of questions")
    checked: list[tuple[ChoiceQuestion, ChoiceQuestion]] = []
    for a, b in dict.fromkeys(tuple(pair) for pair in pairs):
        first, second = choice_questions(questionnaire, [a, b], "joint")
        if a == b:
            raise InputError("joint", f"{a!r} is paired with itself")
        checked.append((first, second))
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
        return persona_weighted(self.joints, keys)

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
            InputError: no joint of the pair asked that way, one read for other codes than
                the questions have, or a persona's joint that is incomplete or does not sum
                to one.
        """
        rows = self.joints.filter(
            pl.col("first") == first.id, pl.col("second") == second.id, pl.col("asked") == asked
        )
        if rows.is_empty():
            raise InputError("joint", f"no joint of {first.id!r} and {second.id!r} asked {asked!r}")
        personas = rows.unique("persona_id", maintain_order=True)
        index = {persona: i for i, persona in enumerate(personas["persona_id"])}
        codes = [{o.code: i for i, o in enumerate(q.options)} for q in (first, second)]
        cells = rows.select("persona_id", "first_code", "second_code", "prob")
        for position, (question, known) in enumerate(zip((first, second), codes, strict=True)):
            found = set(cells[("first_code", "second_code")[position]])
            if found != set(known):
                raise InputError(
                    "joint",
                    f"the joint of {first.id!r} and {second.id!r} was read for the codes "
                    f"{', '.join(sorted(found))} of {question.id!r}, but the questionnaire has "
                    f"{', '.join(known)}: read the joints with this questionnaire",
                )
        if cells.height != len(index) * len(codes[0]) * len(codes[1]):
            raise InputError(
                "joint",
                f"the joint of {first.id!r} and {second.id!r} asked {asked!r} has "
                f"{cells.height} cells, not one per persona and pair of codes "
                f"({len(index)} x {len(codes[0])} x {len(codes[1])})",
            )
        tables = np.zeros((len(index), len(codes[0]), len(codes[1])))
        for persona, a, b, prob in cells.iter_rows():
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
        return write_with_population(path, self.joints, self.population, self.manifest)

    @classmethod
    def read_parquet(cls, path: str | Path) -> JointResult:
        """Read what :meth:`write_parquet` wrote."""
        joints, manifest = read_results(ResultFiles.at(Path(path)), JOINT_SCHEMA)
        return cls(joints, manifest)
