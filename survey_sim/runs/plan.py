"""Planning a run: inputs into engine requests, before any model work.

A :class:`Plan` is a list of *cells*: one persona or respondent asked one question, in one
option order, with one method, in one :class:`~survey_sim.asking.formats.PromptContext`
(the description, and the history of the respondent's earlier answers). Each cell becomes
exact score requests or one sample request. :meth:`Plan.build` asks every persona every
question zero-shot, once per option order shown, with the method its kind uses; the
individual mode (:mod:`survey_sim.runs.individuals`) plans cells whose contexts hold each
respondent's own earlier answers, and :meth:`Plan.of` turns any cells into requests.
A questionnaire's flow (:mod:`survey_sim.flow`) decides what a population run asks: a
persona is not asked what its own attributes rule out, pipes of persona attributes are
filled, and questions whose answers depend on the interview's path are left to simulated
respondents. Everything that can be wrong with the inputs (a method that cannot apply, a
schema too large to sample, a condition on an attribute no persona has) fails here, so a
long run never stops halfway for a reason known at the start.

Cells run persona-major (a persona's questions one after another), so consecutive prompts
share the persona and preamble tokens and the engines reuse them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import psutil

from survey_sim.asking.formats import ChatRenderer, PromptContext, PromptFormat
from survey_sim.asking.kinds import Asking, ask
from survey_sim.asking.orders import displays
from survey_sim.engines.base import Engine, SampleRequest, ScoreRequest
from survey_sim.errors import FlowWarning, InputError, MethodError
from survey_sim.flow import can_be_asked, check_population, path_dependent, personalised
from survey_sim.population import Persona, Population
from survey_sim.questionnaire import Question, Questionnaire
from survey_sim.runs.settings import Method, SimulationSettings


@dataclass(frozen=True)
class Cell:
    """One persona (or real respondent) asked one question, as shown in one option order,
    with one method, in one prompt context (its description, and the respondent's history
    of earlier answers, if any).

    Attributes:
        shots: How many of the respondent's own answers the history shows (``None`` in
            the population mode, where the context holds no history).
        samples, draw_seed: For a sampled cell, the answers to draw and their seed when not
            the settings' ``samples`` and :meth:`seed` (simulated respondents draw one
            answer per respondent reading the prompt).
    """

    persona: Persona
    question: Question
    asking: Asking
    order: str | None
    method: Method
    context: PromptContext
    shots: int | None = None
    samples: int | None = None
    draw_seed: int | None = None

    def columns(self) -> dict[str, object]:
        """What identifies this cell in the responses and draws frames."""
        return {
            "persona_id": self.persona.id,
            "weight": self.persona.weight,
            "question_id": self.question.id,
            "kind": self.question.kind,
            "order": self.order,
        }

    def row(self, run: dict[str, str]) -> dict[str, object]:
        """What every responses row of this cell carries: :meth:`columns`, the method, and
        ``run`` (model and format)."""
        return {**self.columns(), "method": self.method, **run}

    def label(self) -> str:
        """What the cell asks, in words (for errors)."""
        if self.shots is None:
            return f"persona {self.persona.id!r}, question {self.question.id!r}"
        return f"respondent {self.persona.id!r}, {self.shots} shots, {self.question.id!r}"

    def seed(self, seed: int) -> int:
        """The seed of this cell's draws: derived from ``seed`` and what the cell asks, so it
        does not depend on where in a run the cell falls."""
        asked: list[object] = [seed, self.persona.id, self.question.id, self.order]
        if self.shots is not None:
            asked.append(self.shots)
        content = json.dumps(asked)
        return int.from_bytes(hashlib.sha256(content.encode()).digest()[:7], "big")


PROMPT_BYTES = 8192
"""A generous estimate of the memory one prompt takes until its run ends: its cell's context
(measured: about 2 KiB of Python objects for a GSS joint's cell) and its tokens."""


def most_prompts(available: int | None = None) -> int:
    """How many prompts fit in 80% of ``available`` memory (default: what is available now)."""
    free = psutil.virtual_memory().available if available is None else available
    return int(0.8 * free // PROMPT_BYTES)


def too_many_prompts(what: str, most: int, advice: str) -> InputError:
    """The refusal of a run that would hold more than ``most`` prompts, with ``advice``."""
    return InputError(
        what,
        f"{what} needs more than {most:,} prompts, about {most * PROMPT_BYTES / 2**30:.1f} GiB "
        f"while the run holds them, over 80% of the memory available now: {advice}",
    )


@dataclass(frozen=True)
class Plan:
    """Every request of a run, and which cell each belongs to.

    Attributes:
        questionnaire, population: What is asked of whom (the population: personas, or
            the real respondents of the individual mode described by their attributes).
        settings, prompt_format: How.
        exact, sampled: Each cell with its score requests, or its one sample request.
        what, remedy: The run, and what to shorten, for the error of a prompt too long
            for the model's context (:func:`check_fits`).
        respondents: Real respondents whose own answers the prompts show (the held-out
            guard refuses a tuned model trained on them).
    """

    questionnaire: Questionnaire
    population: Population
    settings: SimulationSettings
    prompt_format: PromptFormat
    exact: tuple[tuple[Cell, tuple[ScoreRequest, ...]], ...]
    sampled: tuple[tuple[Cell, SampleRequest], ...]
    what: str
    remedy: str
    respondents: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        questionnaire: Questionnaire,
        population: Population,
        settings: SimulationSettings,
        chat: ChatRenderer,
    ) -> Plan:
        """Plan ``population`` answering ``questionnaire`` zero-shot (``chat`` renders chat
        prompts): every persona, every question, every option order shown.

        Raises:
            MethodError: a method that cannot apply to a question, or an answer space too
                large to sample under a grammar.
        """
        prompt_format = settings.prompt_format()
        methods = settings.methods()
        check_population(questionnaire, population)
        asked = _path_free(questionnaire)
        cells = []
        for persona in population:
            context = PromptContext(
                prompt_format.describe(persona), chat, questionnaire.instructions
            )
            shown_orders = [
                displays(
                    personalised(question, persona),
                    permute=settings.permute,
                    relabel=settings.relabel,
                    balance=settings.balance,
                )
                for question in asked
                if can_be_asked(questionnaire, question.id, persona.attributes)
            ]
            # Every question in its first order, then every question in its second...: the
            # requests that follow each other share the persona, so an engine scores a
            # persona's questions in a few large passes (the orders of one question next to
            # each other share more, and would make one small pass each: 1.4x slower on
            # the permuted demo study).
            for round_ in itertools.zip_longest(*shown_orders):
                for shown, order in filter(None, round_):
                    asking = ask(shown, prompt_format)
                    cells.append(Cell(persona, shown, asking, order, methods[shown.kind], context))
        return cls.of(
            cells,
            questionnaire,
            population,
            settings,
            prompt_format,
            what=f"population {population.id!r} answering {questionnaire.id!r}",
            remedy="Shorten the persona descriptions or the questions",
        )

    @classmethod
    def of(
        cls,
        cells: Iterable[Cell],
        questionnaire: Questionnaire,
        population: Population,
        settings: SimulationSettings,
        prompt_format: PromptFormat,
        *,
        what: str,
        remedy: str,
        respondents: tuple[str, ...] = (),
    ) -> Plan:
        """The requests of ``cells`` (asked in ``prompt_format``, the one ``settings``
        name), each in its own context with its method.

        Raises:
            MethodError: as for :meth:`build`.
        """
        exact: list[tuple[Cell, tuple[ScoreRequest, ...]]] = []
        sampled: list[tuple[Cell, SampleRequest]] = []
        most = most_prompts()
        held = 0
        for cell in cells:
            if cell.method == "exact":
                requests = tuple(cell.asking.exact_requests(cell.context))
                held += len(requests)
                if held > most:
                    raise too_many_prompts(
                        what,
                        most,
                        "ask fewer personas at a time, or rank fewer places (rank: k; a rank "
                        "question takes one prompt per ranking begun)",
                    )
                exact.append((cell, requests))
                continue
            try:
                schema = cell.asking.schema()
            except ValueError as error:
                raise MethodError(str(error)) from error
            request = SampleRequest(
                cell.asking.sample_prompt(cell.context),
                schema,
                n=cell.samples or settings.samples,
                temperature=settings.temperature,
                seed=cell.seed(settings.seed) if cell.draw_seed is None else cell.draw_seed,
                max_new_tokens=settings.max_new_tokens or cell.asking.token_limit(),
            )
            sampled.append((cell, request))
        return cls(
            questionnaire,
            population,
            settings,
            prompt_format,
            tuple(exact),
            tuple(sampled),
            what,
            remedy,
            respondents,
        )

    def check_fits(self, engine: Engine) -> None:
        """Refuse, before any model work, prompts longer than the engine's context (see
        :func:`check_fits`)."""
        cells: list[tuple[Cell, tuple[ScoreRequest | SampleRequest, ...]]] = [
            *self.exact,
            *((cell, (request,)) for cell, request in self.sampled),
        ]
        check_fits(
            engine,
            ((cell.label(), request) for cell, requests in cells for request in requests),
            what=self.what,
            remedy=self.remedy,
        )

    @property
    def questions(self) -> set[str]:
        """The questions whose answers the run reads."""
        return {cell.question.id for cell, _ in (*self.exact, *self.sampled)}

    @cached_property
    def score_requests(self) -> list[ScoreRequest]:
        """Every score request, in cell order."""
        return [request for _, requests in self.exact for request in requests]

    @cached_property
    def sample_requests(self) -> list[SampleRequest]:
        """Every sample request, in cell order."""
        return [request for _, request in self.sampled]


def _path_free(questionnaire: Questionnaire) -> list[Question]:
    """The questions a population run asks (in listed order): all but those whose answers
    depend on the interview's path, which a warning names."""
    dependent = path_dependent(questionnaire)
    if dependent:
        warnings.warn(
            f"questionnaire {questionnaire.id!r}: {', '.join(dependent)} depend(s) on earlier "
            f"answers (memory: {_memory(questionnaire)}, or piped answers), so their "
            "distributions are not read per persona here; simulate respondents "
            "(survey-sim respondents, simulate_respondents) for them",
            FlowWarning,
            stacklevel=3,
        )
    return [
        questionnaire.question(qid) for qid in questionnaire.listed_order if qid not in dependent
    ]


def _memory(questionnaire: Questionnaire) -> str:
    memory = questionnaire.memory
    return memory if isinstance(memory, str) else f"last {memory.last}"


def check_fits(
    engine: Engine,
    requests: Iterable[tuple[str, ScoreRequest | SampleRequest]],
    *,
    what: str,
    remedy: str,
) -> None:
    """Refuse, before any model work, requests longer than the engine's context: a model
    reading past its context gives probabilities that mean nothing.

    Args:
        requests: Each request with what it asks (e.g. "persona 'p1', question 'q1'").
        what: The run, for the error's source.
        remedy: What to shorten, first words of the error's last sentence.

    Raises:
        InputError: naming each labelled request that does not fit, with its token count.
    """
    limit = engine.context_length
    if limit is None:
        return
    too_long: dict[str, int] = {}
    for label, request in requests:
        tokens = engine.sequence_tokens(request)
        if tokens > limit and tokens > too_long.get(label, 0):
            too_long[label] = tokens
    if not too_long:
        return
    shown = [f"{label}: {tokens:,} tokens" for label, tokens in list(too_long.items())[:5]]
    more = f"; and {len(too_long) - 5} more" if len(too_long) > 5 else ""
    raise InputError(
        what,
        f"{len(too_long)} prompt(s) do not fit the context of model {engine.model_id!r} "
        f"({limit:,} tokens): {'; '.join(shown)}{more}. {remedy}, or use a model with a "
        "longer context",
    )
