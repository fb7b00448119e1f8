"""Question order as an experiment: a split-ballot design read exactly.

Each *arm* asks questions in an order of its own, back to back, with the interview in
context (memory ``full``: every earlier question and its answer is a turn before the next).
A question's distribution in an arm is exact: the sum over every answer path to the
questions before it of P(path) · P(question | path), each factor read from the model (one
prompt per path and question; paths shared between arms are asked once). The effect of the
order on a question is the difference between its distributions in two arms.

Designs ready to use: :func:`early_late` (an item first or last among others) and
:func:`after_related` (an item after a related question or after an unrelated one:
assimilation and contrast). Response-option order effects are measured by runs with
``permute`` (:func:`~survey_sim.runs.results.SimulationResult.position_bias`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from survey_sim._distribution import persona_weighted
from survey_sim.data.splits import seeded_rng
from survey_sim.engines.base import Engine
from survey_sim.errors import InputError
from survey_sim.population import Population
from survey_sim.questionnaire import ChoiceQuestion, Questionnaire
from survey_sim.runs.manifest import RunManifest
from survey_sim.runs.paths import AnswerPaths, choice_questions
from survey_sim.runs.results import ResultFiles, read_results, write_with_population
from survey_sim.runs.settings import SimulationSettings
from survey_sim.runs.store import ResultsCache

PROMPT_LIMIT = 5_000
"""Most prompts one arm may need per persona (one per question and answer path before it);
beyond, simulated respondents with ``memory: full`` sample the same design."""

EXPERIMENT_SCHEMA: dict[str, pl.DataType] = {
    "arm": pl.String(),
    "persona_id": pl.String(),
    "weight": pl.Float64(),
    "question_id": pl.String(),
    "position": pl.Int64(),
    "option_code": pl.String(),
    "prob": pl.Float64(),
    "model": pl.String(),
    "format": pl.String(),
}
"""One row per arm × persona × question × option: the question's exact distribution when
asked at ``position`` (1 = first) of the arm."""


def early_late(item: str, others: Sequence[str]) -> dict[str, list[str]]:
    """Arms asking ``item`` first (``early``) or last (``late``) among ``others``."""
    return {"early": [item, *others], "late": [*others, item]}


def after_related(item: str, related: str, unrelated: str) -> dict[str, list[str]]:
    """Arms asking ``item`` right after a ``related`` question or an ``unrelated`` one."""
    return {"after_related": [related, item], "after_unrelated": [unrelated, item]}


def experiment(
    questionnaire: Questionnaire,
    population: Population,
    engine: Engine,
    arms: Mapping[str, Sequence[str]],
    settings: SimulationSettings | None = None,
    *,
    progress: bool = True,
    cache: ResultsCache | bool = True,
    **changes: Any,
) -> ExperimentResult:
    """Every question's exact distribution in every arm (module docstring).

    Args:
        arms: Arm name → question ids in the order the arm asks them (single-choice and
            ordinal questions).
        settings: How to ask (format, answer mode); keyword arguments change single settings.
        progress, cache: As for :func:`~survey_sim.runs.run.simulate`.

    Raises:
        InputError: fewer than two arms, an unknown or repeated question, a kind without an
            exact distribution here, an arm needing more than :data:`PROMPT_LIMIT` prompts per
            persona, or a persona attribute the questionnaire names that the personas lack;
            before any model work.
    """
    checked = _checked_arms(questionnaire, arms)
    paths = AnswerPaths(
        questionnaire,
        population,
        engine,
        SimulationSettings.of(settings, **changes),
        "an order experiment",
    )
    walks = []
    for persona in population:
        for arm, questions in checked.items():
            for position, question in enumerate(questions):
                before = itertools.product(
                    *([(q, o.code) for o in q.options] for q in questions[:position])
                )
                keys = [(path, paths.key(persona, question, path)) for path in before]
                walks.append((persona, arm, position, question, keys))
    reading = paths.read(cache=cache, progress=progress, description="Arms")
    run = {"model": engine.model_id, "format": paths.prompt_format.name}
    rows: list[dict[str, object]] = []
    for persona, arm, position, question, keys in walks:
        distribution = dict.fromkeys((o.code for o in question.options), 0.0)
        for path, key in keys:
            reached = reading.probability(paths, persona, path)
            for code, prob in reading.probs[key].items():
                distribution[code] += reached * prob
        rows += [
            {
                "arm": arm,
                "persona_id": persona.id,
                "weight": persona.weight,
                "question_id": question.id,
                "position": position + 1,
                "option_code": code,
                "prob": prob,
                **run,
            }
            for code, prob in distribution.items()
        ]
    return ExperimentResult(pl.DataFrame(rows, schema=EXPERIMENT_SCHEMA), reading.manifest)


def _checked_arms(
    questionnaire: Questionnaire, arms: Mapping[str, Sequence[str]]
) -> dict[str, list[ChoiceQuestion]]:
    """Each arm's questions, checked, and its prompt count per persona within the limit."""
    if len(arms) < 2:
        raise InputError("experiment", "an experiment needs at least two arms")
    checked: dict[str, list[ChoiceQuestion]] = {}
    for arm, ids in arms.items():
        if not ids:
            raise InputError("experiment", f"arm {arm!r} asks no question")
        repeated = sorted({name for name in ids if list(ids).count(name) > 1})
        if repeated:
            raise InputError("experiment", f"arm {arm!r} asks {', '.join(repeated)} twice")
        questions = choice_questions(questionnaire, ids, "experiment", f"arm {arm!r}: ")
        options = [len(q.options) for q in questions]
        prompts = sum(math.prod(options[:position]) for position in range(len(options)))
        if prompts > PROMPT_LIMIT:
            raise InputError(
                "experiment",
                f"arm {arm!r} needs {prompts:,} prompts per persona (one per question and "
                f"answer path before it), over the limit of {PROMPT_LIMIT:,}: shorten the arm, "
                "or sample the design with simulated respondents (memory: full)",
            )
        checked[arm] = questions
    return checked


@dataclass(frozen=True)
class ExperimentResult:
    """Exact distributions per arm.

    Attributes:
        responses: The tidy per-persona table (:data:`EXPERIMENT_SCHEMA`).
        manifest: How it was made.
    """

    responses: pl.DataFrame
    manifest: RunManifest | None = None

    @cached_property
    def population(self) -> pl.DataFrame:
        """Per arm, question and option: the persona-weighted probability."""
        keys = ["arm", "question_id", "position", "option_code"]
        return persona_weighted(self.responses, keys)

    def effects(
        self,
        reference: str | None = None,
        *,
        resamples: int = 1000,
        interval: float = 0.9,
        seed: int = 0,
    ) -> pl.DataFrame:
        """The order effect on every question two arms share: per option, the population
        probability in each other arm minus in ``reference`` (default: the first arm), and
        the total variation between the two distributions, each with a bootstrap interval
        over the personas (resampled with their weights: how much the effect depends on who
        is in the population; each persona's numbers are exact).

        Returns:
            ``arm``, ``reference``, ``question_id``, ``position``, ``reference_position``,
            ``option_code`` (null on the total-variation row), ``measure``
            (``difference`` or ``total_variation``), ``effect``, ``lower``, ``upper``.
        """
        arms = list(self.responses["arm"].unique(maintain_order=True))
        reference = reference or arms[0]
        if reference not in arms:
            raise InputError("experiment", f"no arm {reference!r} (arms: {', '.join(arms)})")
        personas = self.responses.unique("persona_id", maintain_order=True)
        weights = personas["weight"].to_numpy().astype(float)
        order = {persona: i for i, persona in enumerate(personas["persona_id"])}
        counts = seeded_rng(seed, "experiment bootstrap").multinomial(
            len(weights), np.full(len(weights), 1 / len(weights)), size=resamples
        )
        drawn = np.vstack([weights, counts * weights])
        drawn = drawn / drawn.sum(axis=1, keepdims=True)
        tail = (1 - interval) / 2
        rows: list[dict[str, object]] = []

        def tables(arm: str, question: str) -> tuple[int, list[str], np.ndarray]:
            part = self.responses.filter(pl.col("arm") == arm, pl.col("question_id") == question)
            codes = list(part["option_code"].unique(maintain_order=True))
            probs = np.zeros((len(weights), len(codes)))
            for persona, code, prob in part.select("persona_id", "option_code", "prob").iter_rows():
                probs[order[persona], codes.index(code)] = prob
            return int(part["position"][0]), codes, drawn @ probs

        for arm in arms:
            if arm == reference:
                continue
            shared = set(self.responses.filter(pl.col("arm") == reference)["question_id"]) & set(
                self.responses.filter(pl.col("arm") == arm)["question_id"]
            )
            for question in self.responses["question_id"].unique(maintain_order=True):
                if question not in shared:
                    continue
                position, codes, treated = tables(arm, question)
                reference_position, _, control = tables(reference, question)
                difference = treated - control
                measures: list[tuple[str | None, str, np.ndarray]] = [
                    (code, "difference", difference[:, i]) for i, code in enumerate(codes)
                ]
                measures.append((None, "total_variation", np.abs(difference).sum(axis=1) / 2))
                for code, measure, values in measures:
                    lower, upper = np.quantile(values[1:], [tail, 1 - tail])
                    rows.append(
                        {
                            "arm": arm,
                            "reference": reference,
                            "question_id": question,
                            "position": position,
                            "reference_position": reference_position,
                            "option_code": code,
                            "measure": measure,
                            "effect": float(values[0]),
                            "lower": float(lower),
                            "upper": float(upper),
                        }
                    )
        return pl.DataFrame(
            rows,
            schema={
                "arm": pl.String,
                "reference": pl.String,
                "question_id": pl.String,
                "position": pl.Int64,
                "reference_position": pl.Int64,
                "option_code": pl.String,
                "measure": pl.String,
                "effect": pl.Float64,
                "lower": pl.Float64,
                "upper": pl.Float64,
            },
        )

    def write_parquet(self, path: str | Path) -> list[Path]:
        """Write the distributions to ``path`` and the population table and manifest beside
        it."""
        return write_with_population(path, self.responses, self.population, self.manifest)

    @classmethod
    def read_parquet(cls, path: str | Path) -> ExperimentResult:
        """Read what :meth:`write_parquet` wrote."""
        responses, manifest = read_results(ResultFiles.at(Path(path)), EXPERIMENT_SCHEMA)
        return cls(responses, manifest)
