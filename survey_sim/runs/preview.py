"""What the model reads: the exact prompt of a persona and a question, the continuations
scored, their tokens, and whether the end-of-answer marker is scored.

:func:`preview` builds the very requests :func:`~survey_sim.simulate` sends (same plan:
prompt format, answer mode, option orders, method per question kind), without any model
work; ``survey-sim preview`` prints them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass

from survey_sim.asking.kinds import ask
from survey_sim.engines._hf import HFTokenizer
from survey_sim.engines.base import Engine, SampleRequest, ScoreRequest
from survey_sim.errors import InputError
from survey_sim.population import Persona, Population
from survey_sim.questionnaire import Questionnaire
from survey_sim.runs.plan import Cell, Plan
from survey_sim.runs.settings import SimulationSettings


@dataclass(frozen=True)
class ScoredContinuation:
    """One continuation of a score request: its text, its tokens as the model reads them
    (``None`` when the engine's tokenizer is not at hand), and the end-of-answer marker it
    ends with (``""``: none scored)."""

    text: str
    tokens: tuple[str, ...] | None
    end_marker: str


@dataclass(frozen=True)
class PromptPreview:
    """One request of a persona × question (× option order): the prompt, what is scored
    after it (exact) or the schema draws follow (sampled), and token counts.

    Attributes:
        persona_id, question_id: Who is asked what.
        order: The options' codes as shown (``None`` for questions without options).
        format: The prompt format's name.
        method: ``"exact"`` or ``"sample"``.
        prompt: The exact text the model reads before its answer.
        prompt_tokens: Its tokens.
        continuations: Exact: each scored continuation, in the order of ``outcomes``.
        outcomes: What each continuation's probability is reported as (option code and
            text, or the request's own words for multi-part questions).
        longest_tokens: Tokens of the longest sequence the request makes the model read.
        schema: Sampled: the JSON schema every draw follows.
    """

    persona_id: str
    question_id: str
    order: str | None
    format: str
    method: str
    prompt: str
    prompt_tokens: int
    continuations: tuple[ScoredContinuation, ...]
    outcomes: tuple[str, ...]
    longest_tokens: int
    schema: str | None = None

    def render(self) -> str:
        """The preview as text for a terminal."""
        order = f", options shown as {self.order}" if self.order else ""
        lines = [
            f"=== {self.question_id} asked of {self.persona_id} ({self.format} format, "
            f"{self.method}{order}) ===",
            f"Prompt: the exact text the model reads ({self.prompt_tokens:,} tokens), "
            "between the rules:",
            "-" * 72,
            self.prompt,
            "-" * 72,
        ]
        if self.method == "sample":
            lines.append(f"Draws follow this JSON schema: {self.schema}")
        else:
            lines.append(
                "Scored continuations: each outcome's probability is that of its tokens "
                "right after the prompt:"
            )
            for outcome, continuation in zip(self.outcomes, self.continuations, strict=True):
                tokens = (
                    ""
                    if continuation.tokens is None
                    else f" = {len(continuation.tokens)} token(s) "
                    + " ".join(repr(token) for token in continuation.tokens)
                )
                lines.append(f"  {outcome}: {continuation.text!r}{tokens}")
            lines.append(_end_marker_rule(self.continuations))
        lines.append(f"Longest sequence read: {self.longest_tokens:,} tokens.")
        return "\n".join(lines)


def _end_marker_rule(continuations: Sequence[ScoredContinuation]) -> str:
    markers = {continuation.end_marker for continuation in continuations}
    if markers == {""}:
        return (
            "End-of-answer marker: not scored (no answer is the beginning of another), so "
            "an answer's probability counts every reply that begins with it; coverage in "
            "the results is how much of the model's probability the answers take."
        )
    (marker, *_) = markers - {""}
    return (
        f"End-of-answer marker: scored ({marker!r} after each answer), because some answer "
        "is the beginning of another (as 1 and 10): only the marker tells them apart."
    )


def preview(
    questionnaire: Questionnaire,
    population: Population | Sequence[Persona],
    engine: Engine,
    settings: SimulationSettings | None = None,
    *,
    questions: Sequence[str] | None = None,
) -> list[PromptPreview]:
    """The requests :func:`~survey_sim.simulate` would send for ``population`` ×
    ``questions`` (default: every question), one :class:`PromptPreview` each; no model work.

    Raises:
        InputError: a question id the questionnaire does not have.
    """
    settings = settings or SimulationSettings()
    known = {question.id for question in questionnaire}
    unknown = [question_id for question_id in questions or () if question_id not in known]
    if unknown:
        raise InputError(
            "preview",
            f"no question {', '.join(map(repr, unknown))} in questionnaire "
            f"{questionnaire.id!r} (questions: {', '.join(sorted(known))})",
        )
    plan = Plan.build(
        questionnaire if questions is None else questionnaire.select(questions),
        population if isinstance(population, Population) else Population(list(population)),
        settings,
        engine,
    )
    bare_format = SimulationSettings.of(settings, terminated=False).prompt_format()
    name = plan.prompt_format.name
    previews = []
    for cell, requests in plan.exact:
        made = _maker(cell, name)
        bare = ask(cell.question, bare_format).exact_requests(cell.context)
        for index, (request, answers) in enumerate(zip(requests, bare, strict=True)):
            outcomes = (
                [f"{o.code} {o.text!r}" for o in cell.asking.outcomes]
                if len(requests) == 1
                else [f"request {index + 1}, {text!r}" for text in answers.continuations]
            )
            previews.append(
                made(
                    prompt=request.prefix,
                    prompt_tokens=_prompt_tokens(engine, request.prefix),
                    continuations=_continuations(engine, request, answers),
                    outcomes=tuple(outcomes),
                    longest_tokens=engine.sequence_tokens(request),
                )
            )
    for cell, sample in plan.sampled:
        previews.append(
            _maker(cell, name)(
                prompt=sample.prefix,
                prompt_tokens=_prompt_tokens(engine, sample.prefix),
                continuations=(),
                outcomes=(),
                longest_tokens=engine.sequence_tokens(sample),
                schema=json.dumps(sample.json_schema),
            )
        )
    return previews


def _maker(cell: Cell, format_name: str) -> functools.partial[PromptPreview]:
    """:class:`PromptPreview` with what ``cell`` says of itself filled in."""
    return functools.partial(
        PromptPreview,
        persona_id=cell.persona.id,
        question_id=cell.question.id,
        order=cell.order,
        format=format_name,
        method=cell.method,
    )


def _prompt_tokens(engine: Engine, prompt: str) -> int:
    """Tokens of ``prompt`` as the engine reads it."""
    return engine.sequence_tokens(SampleRequest(prompt, {}, max_new_tokens=1)) - 1


def _continuations(
    engine: Engine, request: ScoreRequest, answers: ScoreRequest
) -> tuple[ScoredContinuation, ...]:
    """Each continuation of ``request`` with its tokens (when the engine's tokenizer is at
    hand) and the end marker it has beyond the bare answer of ``answers``."""
    text = getattr(engine, "text", None)
    tokenized = text.tokenize_request(request) if isinstance(text, HFTokenizer) else None
    return tuple(
        ScoredContinuation(
            continuation,
            None
            if tokenized is None or not isinstance(text, HFTokenizer)
            else tuple(text.decode([token]) for token in tokenized.continuations[index]),
            continuation[len(answer) :],
        )
        for index, (continuation, answer) in enumerate(
            zip(request.continuations, answers.continuations, strict=True)
        )
    )
