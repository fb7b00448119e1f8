"""Planning a simulation: inputs into engine requests, before any model work.

A :class:`Plan` asks every persona every question, once per option order shown, with the
method its kind uses. Each such *cell* becomes exact score requests or one sample request.
Everything that can be wrong with the inputs (a method that cannot apply, a schema too large
to sample) fails here, so a long run never stops halfway for a reason known at the start.

Cells run persona-major (a persona's questions one after another), so consecutive prompts
share the persona and preamble tokens and the engines reuse them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from survey_sim.asking.formats import ChatRenderer, PromptFormat
from survey_sim.asking.kinds import Asking, ask
from survey_sim.asking.orders import displays
from survey_sim.engines.base import Engine, SampleRequest, ScoreRequest
from survey_sim.errors import InputError, MethodError
from survey_sim.population import Persona, Population
from survey_sim.questionnaire import Question, Questionnaire
from survey_sim.runs.settings import Method, SimulationSettings


@dataclass(frozen=True)
class Cell:
    """One persona asked one question, as shown in one option order, with one method."""

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

    def row(self, run: dict[str, str]) -> dict[str, object]:
        """What every responses row of this cell carries: :meth:`columns`, the method, and
        ``run`` (model and format)."""
        return {**self.columns(), "method": self.method, **run}

    def seed(self, seed: int) -> int:
        """The seed of this cell's draws: derived from ``seed`` and what the cell asks, so it
        does not depend on where in a run the cell falls."""
        content = json.dumps([seed, self.persona.id, self.question.id, self.order])
        return int.from_bytes(hashlib.sha256(content.encode()).digest()[:7], "big")


@dataclass(frozen=True)
class Plan:
    """Every request of a simulation, and which cell each belongs to."""

    questionnaire: Questionnaire
    population: Population
    settings: SimulationSettings
    prompt_format: PromptFormat
    exact: tuple[tuple[Cell, tuple[ScoreRequest, ...]], ...]
    sampled: tuple[tuple[Cell, SampleRequest], ...]

    @classmethod
    def build(
        cls,
        questionnaire: Questionnaire,
        population: Population,
        settings: SimulationSettings,
        chat: ChatRenderer,
    ) -> Plan:
        """Plan ``population`` answering ``questionnaire`` (``chat`` renders chat prompts).

        Raises:
            MethodError: a method that cannot apply to a question, or an answer space too
                large to sample under a grammar.
        """
        prompt_format = settings.prompt_format()
        methods = settings.methods()
        exact: list[tuple[Cell, tuple[ScoreRequest, ...]]] = []
        sampled: list[tuple[Cell, SampleRequest]] = []
        for persona in population:
            for question in questionnaire:
                for shown, order in displays(
                    question, permute=settings.permute, relabel=settings.relabel
                ):
                    asking = ask(shown, prompt_format)
                    cell = Cell(persona, shown, asking, order, methods[question.kind])
                    description = prompt_format.describe(persona)
                    instructions = questionnaire.instructions
                    if cell.method == "exact":
                        requests = asking.exact_requests(
                            description=description, instructions=instructions, chat=chat
                        )
                        exact.append((cell, tuple(requests)))
                        continue
                    try:
                        schema = asking.schema()
                    except ValueError as error:
                        raise MethodError(str(error)) from None
                    request = SampleRequest(
                        asking.sample_prompt(
                            description=description, instructions=instructions, chat=chat
                        ),
                        schema,
                        n=settings.samples,
                        temperature=settings.temperature,
                        seed=cell.seed(settings.seed),
                        max_new_tokens=settings.max_new_tokens or asking.token_limit(),
                    )
                    sampled.append((cell, request))
        return cls(questionnaire, population, settings, prompt_format, tuple(exact), tuple(sampled))

    def check_fits(self, engine: Engine) -> None:
        """Refuse, before any model work, prompts longer than the engine's context (see
        :func:`check_fits`)."""
        cells: list[tuple[Cell, tuple[ScoreRequest | SampleRequest, ...]]] = [
            *self.exact,
            *((cell, (request,)) for cell, request in self.sampled),
        ]
        check_fits(
            engine,
            (
                (f"persona {cell.persona.id!r}, question {cell.question.id!r}", request)
                for cell, requests in cells
                for request in requests
            ),
            what=f"population {self.population.id!r} answering {self.questionnaire.id!r}",
            remedy="Shorten the persona descriptions or the questions",
        )

    @cached_property
    def score_requests(self) -> list[ScoreRequest]:
        """Every score request, in cell order."""
        return [request for _, requests in self.exact for request in requests]

    @cached_property
    def sample_requests(self) -> list[SampleRequest]:
        """Every sample request, in cell order."""
        return [request for _, request in self.sampled]


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
