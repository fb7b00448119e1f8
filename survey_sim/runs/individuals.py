"""Few-shot individuals: a real respondent's own earlier answers condition the exact
distribution of their next answer.

For each respondent of an :class:`~survey_sim.data.splits.IndividualSplit` and each k
of its learning curve, the first k of the respondent's shown answers become real turns of
the prompt format (:class:`~survey_sim.asking.formats.Turn`), and every held-out question is
asked after them. The description comes first (the respondent's demographics, or nothing
about them), then the history, then the question: all of a respondent's held-out questions
at one k share the whole history as one prefix, and the history at k is the beginning of
the history at the next k, so engines compute it once (``manifest.work.hit_rate`` is
the share of prompt tokens reused). As in an interview, a battery's shared preamble is read
with its first question only, not again before each later one.

Runs go through the results store like :func:`~survey_sim.runs.run.simulate`: a rerun does
no model work and a killed run resumes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import polars as pl

from survey_sim._distribution import PROBABILITY_FLOOR
from survey_sim.asking.formats import ChatRenderer, PromptContext
from survey_sim.asking.kinds import answered_turn, ask
from survey_sim.data.responses import HumanResponses
from survey_sim.data.splits import IndividualSplit
from survey_sim.engines.base import Engine
from survey_sim.errors import InputError
from survey_sim.questionnaire import ChoiceQuestion, Question
from survey_sim.runs.manifest import HumanRecord, RunManifest
from survey_sim.runs.plan import Cell, Plan
from survey_sim.runs.results import (
    OUTCOME_COLUMNS,
    RUN_COLUMNS,
    ResultFiles,
    read_results,
    response_rows,
    write_results,
)
from survey_sim.runs.run import execute
from survey_sim.runs.settings import SimulationSettings
from survey_sim.runs.store import ResultsCache

INDIVIDUAL_SCHEMA: dict[str, pl.DataType] = {
    "respondent_id": pl.String(),
    "role": pl.String(),
    "shots": pl.Int32(),
    "question_id": pl.String(),
    **OUTCOME_COLUMNS,
    "option_label": pl.String(),
    "logprob": pl.Float64(),
    "prob": pl.Float64(),
    "coverage": pl.Float64(),
    "answer": pl.String(),
    **RUN_COLUMNS,
}
"""One row per respondent × k × held-out question × option."""


@dataclass(frozen=True)
class IndividualResult:
    """What a few-shot individual simulation produced.

    Attributes:
        responses: One row per respondent × k (``shots``) × held-out question × option:
            ``respondent_id``, ``role`` (train/test), ``shots``, ``question_id``, the option
            columns, ``logprob`` (exact), ``prob`` (renormalised over the options),
            ``coverage``, ``answer`` (the option code the respondent really gave), ``method``,
            ``model``, ``format``.
        split: Who was shown what (:class:`IndividualSplit`), also in the manifest.
        manifest: How the results were made (as for ``simulate``), with the human data's
            source and the split.
    """

    responses: pl.DataFrame
    split: IndividualSplit
    manifest: RunManifest

    def write_parquet(self, path: str | Path) -> list[Path]:
        """Write ``responses`` to ``path`` and the manifest (with the split) beside it
        (``*.manifest.json``), as one set (:func:`~survey_sim.runs.results.write_results`)."""
        return write_results(ResultFiles.at(Path(path)), self.responses, {}, self.manifest)

    @classmethod
    def read_parquet(cls, path: str | Path) -> IndividualResult:
        """Read what :meth:`write_parquet` wrote.

        Raises:
            InputError: not an individual simulation's files, or files of different runs.
        """
        files = ResultFiles.at(Path(path))
        if not files.manifest.exists():
            raise InputError(
                path, f"no manifest beside it ({files.manifest.name}): the split is there"
            )
        responses, manifest = read_results(files, INDIVIDUAL_SCHEMA)
        if manifest is None or manifest.split is None:
            raise InputError(
                files.manifest, "not the manifest of an individual simulation (no split)"
            )
        return cls(responses, manifest.split, manifest)


@dataclass(frozen=True)
class HeldOutRows:
    """Prediction targets of one kind (train or test): respondent × k × held-out question,
    with each question's options in questionnaire order and the index of the real answer."""

    respondents: list[str]
    shots: np.ndarray
    questions: list[str]
    answers: np.ndarray
    model_logprobs: list[np.ndarray]

    @classmethod
    def of(cls, result: IndividualResult, role: str, human: HumanResponses) -> HeldOutRows:
        frame = result.responses.filter(pl.col("role") == role)
        if frame.is_empty():
            raise InputError(
                "individual simulation", f"no {role} respondents in the results to evaluate with"
            )
        respondents, shots, questions, answers, logprobs = [], [], [], [], []
        keys = ["respondent_id", "shots", "question_id"]
        for (respondent, k, question_id), rows in frame.group_by(keys, maintain_order=True):
            question = human.questionnaire.question(str(question_id))
            assert isinstance(question, ChoiceQuestion)
            codes = [o.code for o in question.options]
            by_code = dict(zip(rows["option_code"], rows["prob"], strict=True))
            probs = np.maximum([by_code[c] for c in codes], PROBABILITY_FLOOR)
            respondents.append(str(respondent))
            shots.append(int(k))
            questions.append(str(question_id))
            answers.append(codes.index(rows["answer"][0]))
            logprobs.append(np.log(probs / probs.sum()))
        return cls(respondents, np.array(shots), questions, np.array(answers), logprobs)


def simulate_individuals(
    human: HumanResponses,
    engine: Engine,
    split: IndividualSplit | None = None,
    settings: SimulationSettings | None = None,
    *,
    progress: bool = True,
    cache: ResultsCache | bool = True,
    **changes: Any,
) -> IndividualResult:
    """Exact distributions of real respondents' held-out answers, given k of their own
    answers, for every k of the split's learning curve.

    Args:
        human: The respondents and their answers.
        engine: The model.
        split: Who is shown what (default: :meth:`IndividualSplit.draw` with its defaults:
            200 training and 200 test respondents, 2 held-out questions each).
        settings: The prompt format and answer mode (:class:`SimulationSettings`); keyword
            arguments change single settings. The individual mode reads exact distributions
            of choice questions in their questionnaire order.
        progress: Show a progress bar.
        cache: The results store, as for :func:`~survey_sim.runs.run.simulate`.

    Raises:
        InputError: settings the individual mode cannot take, or, before any model work,
            a prompt longer than the model's context, or respondents or predicted questions
            a tuned model was trained on (:mod:`survey_sim.runs.held_out`).
    """
    started = time.time()
    settings = SimulationSettings.of(settings, **changes)
    if settings.permute or settings.methods()["single_choice"] != "exact":
        raise InputError(
            "simulation settings",
            "the individual mode reads exact distributions in the questionnaire's option "
            "order: leave permute off and method exact",
        )
    split = split or IndividualSplit.draw(human)
    plan = _plan(human, split, settings, engine)
    done = execute(
        plan,
        engine,
        started=started,
        cache=cache,
        progress=progress,
        description="Individuals",
        human=HumanRecord(source=human.source, respondents=len(split.respondents)),
        split=split,
    )
    answers = human.answers
    run = {"method": "exact", "model": engine.model_id, "format": plan.prompt_format.name}
    rows: list[dict[str, object]] = []
    for (cell, _), result in zip(plan.exact, done.scores, strict=True):
        respondent = cell.persona.id
        columns: dict[str, object] = {
            "respondent_id": respondent,
            "role": split.role(respondent),
            "shots": cell.shots,
            "question_id": cell.question.id,
            "answer": answers[(respondent, cell.question.id)],
            **run,
        }
        rows.extend(response_rows(columns, cell.asking.outcomes, cell.asking.read_scores([result])))
    return IndividualResult(pl.DataFrame(rows, schema=INDIVIDUAL_SCHEMA), split, done.manifest)


def _plan(
    human: HumanResponses, split: IndividualSplit, settings: SimulationSettings, chat: ChatRenderer
) -> Plan:
    """Every cell, respondent by respondent and k by k (so histories are prefixes of the
    next ones), each held-out question asked after the first k of the respondent's shown
    answers."""
    prompt_format = settings.prompt_format()
    instructions = human.questionnaire.instructions
    population = human.respondents(split.respondents, split.demographics)
    personas = {persona.id: persona for persona in population}
    answers = human.answers
    cells = []
    for respondent in split.respondents:
        persona = personas[respondent]
        description = prompt_format.describe(persona)
        shown = [choice_question(human, question) for question in split.shown[respondent]]
        history = [
            answered_turn(
                as_read(question, shown[position - 1] if position else None),
                prompt_format,
                answers[(respondent, question.id)],
                instructions=instructions if position == 0 else None,
            )
            for position, question in enumerate(shown[: split.shots[-1]])
        ]
        for shots in split.shots:
            context = PromptContext(
                description,
                chat,
                instructions=instructions if shots == 0 else None,
                history=tuple(history[:shots]),
            )
            for question_id in split.held_out[respondent]:
                question = as_read(
                    choice_question(human, question_id), shown[shots - 1] if shots else None
                )
                asking = ask(question, prompt_format)
                cells.append(Cell(persona, question, asking, None, "exact", context, shots))
    return Plan.of(
        cells,
        human.questionnaire,
        population,
        settings,
        prompt_format,
        what=f"respondents of {human.source}",
        remedy="Show fewer answers (shots)",
        respondents=split.respondents,
    )


QuestionT = TypeVar("QuestionT", bound=Question)


def as_read(question: QuestionT, previous: Question | None) -> QuestionT:
    """The question as read after ``previous`` in one interview: a preamble read just
    before (a battery's introduction) is not read again."""
    if previous is not None and question.preamble and question.preamble == previous.preamble:
        return cast(QuestionT, question.model_copy(update={"preamble": None}))
    return question


def choice_question(human: HumanResponses, question_id: str) -> ChoiceQuestion:
    """The human data's question ``question_id`` (human data map choice questions only)."""
    question = human.questionnaire.question(question_id)
    assert isinstance(question, ChoiceQuestion)
    return question
