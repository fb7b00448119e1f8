"""Training examples: survey data as the token sequences the engines score.

Every example is built from the same score requests :func:`~survey_sim.simulate` and
:func:`~survey_sim.simulate_individuals` send (same prompt format, same tokenisation, same
split of prompt and answer tokens), so the distribution training moves is exactly the one
the engines read afterwards.

* **Population** (SubPOP): one persona cell asked one training question in one option
  order; the target is the cell's human distribution over the options as shown. Each
  question is asked in every cyclic shift of its options (a Latin square: every option once
  in every position), so the model cannot meet the targets by learning positions.
* **Individual** (Spectrum Tuning): one training respondent's whole interview, their
  answers in a seeded order of their own, each asked after all the earlier ones; every
  answer's tokens are scored (the loss is on outputs only). The interview is one sequence
  whenever each earlier prompt and answer is the beginning of it as tokens (as in the chat,
  spectrum and xml formats); an answer whose tokens merge with what follows it is scored in
  a sequence of its own, so every scored probability is the one the engine would read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from survey_sim.asking.formats import ChatRenderer, PromptContext, PromptFormat, Turn
from survey_sim.asking.kinds import Asking, answered_turn, ask
from survey_sim.asking.orders import cyclic_orders, reorder
from survey_sim.data.responses import HumanResponses
from survey_sim.data.splits import answered_questions, seeded_rng
from survey_sim.engines._hf import HFTokenizer, TokenizedRequest
from survey_sim.engines.base import ScoreRequest
from survey_sim.errors import InputError
from survey_sim.population import Persona
from survey_sim.questionnaire import ChoiceQuestion, Question
from survey_sim.runs.individuals import as_read, choice_question


@dataclass(frozen=True)
class Span:
    """Scored tokens of one answer: ``tokens`` at positions ``start``, ``start + 1``, ... of
    ``row``, each predicted from what comes before it. They add up into ``slot``."""

    row: int
    start: int
    tokens: tuple[int, ...]
    slot: int


@dataclass(frozen=True)
class Example:
    """One training example: the token rows run through the model and the answers scored.

    Attributes:
        rows: Token sequences (an answer's last token is scored, never read, so rows stop
            before it).
        spans: The scored answers.
        target: Population: the human probability of each slot's option. Individual: empty
            (every slot is an answer the respondent gave).
        ranks: Population, ordinal questions: each slot's option's rank on the scale (for
            the earth-mover's loss); empty otherwise.
        label: What the example is, for messages.
    """

    rows: tuple[tuple[int, ...], ...]
    spans: tuple[Span, ...]
    target: tuple[float, ...]
    ranks: tuple[int, ...]
    label: str

    @property
    def slots(self) -> int:
        """Scored answers (options, or a respondent's answers)."""
        return len({span.slot for span in self.spans})

    @property
    def tokens(self) -> int:
        """Tokens read by the model for this example."""
        return sum(len(row) for row in self.rows)

    @property
    def longest(self) -> int:
        """Tokens of the longest sequence the model reads (rows and their scored ends)."""
        return max(span.start + len(span.tokens) for span in self.spans)


def population_examples(
    human: HumanResponses,
    questions: Sequence[str],
    personas: Sequence[Persona],
    by: Sequence[str],
    prompt_format: PromptFormat,
    text: HFTokenizer,
    chat: ChatRenderer,
    *,
    permute: bool = True,
) -> list[Example]:
    """Persona cell × question × cyclic option order, with the cell's human distribution
    (``permute=False``: the options in their listed order only).

    Raises:
        InputError: a cell without human answers to a question (the cells must come from
            the same data).
    """
    people = human.distribution(by)
    targets = _cell_targets(people, by)
    instructions = human.questionnaire.instructions
    examples = []
    for persona in personas:
        cell = tuple(str(persona.attributes[name]) for name in by)
        context = PromptContext(prompt_format.describe(persona), chat, instructions)
        for question_id in questions:
            question = choice_question(human, question_id)
            shares = targets.get((cell, question_id))
            if shares is None:
                raise InputError(
                    human.source,
                    f"persona cell {persona.id!r} has no answers to {question_id!r}",
                )
            ranks = scale_ranks(question)
            listed = [tuple(range(len(question.options)))]
            for order in cyclic_orders(len(question.options)) if permute else listed:
                shown = reorder(question, order)
                asking = ask(shown, prompt_format)
                (request,) = asking.exact_requests(context)
                item = text.tokenize_request(request)
                codes = [option.code for option in asking.outcomes]
                examples.append(
                    _options_example(
                        item,
                        target=tuple(shares.get(code, 0.0) for code in codes),
                        ranks=tuple(ranks[code] for code in codes) if ranks else (),
                        label=f"{persona.id} × {question_id} × {'|'.join(codes)}",
                    )
                )
    return examples


def individual_examples(
    human: HumanResponses,
    respondents: Sequence[str],
    personas: Mapping[str, Persona],
    prompt_format: PromptFormat,
    text: HFTokenizer,
    chat: ChatRenderer,
    *,
    seed: int,
) -> list[Example]:
    """Each respondent's interview: every answer asked after the earlier ones."""
    answers = human.answers
    answered = answered_questions(human)
    instructions = human.questionnaire.instructions
    examples = []
    for respondent in respondents:
        order = seeded_rng(seed, respondent).permutation(answered[respondent]).tolist()
        questions = [choice_question(human, question_id) for question_id in order]
        codes = [answers[(respondent, question.id)] for question in questions]
        description = prompt_format.describe(personas[respondent])
        asked = [
            (text.tokenize_request(request), [o.code for o in asking.outcomes].index(code))
            for (asking, request), code in zip(
                interview(questions, codes, description, prompt_format, chat, instructions),
                codes,
                strict=True,
            )
        ]
        examples.append(_interview_example(asked, label=f"respondent {respondent}"))
    return examples


def conditional_examples(
    questions: Sequence[ChoiceQuestion],
    codes: Sequence[str],
    targets: Sequence[Sequence[float]],
    description: str,
    prompt_format: PromptFormat,
    text: HFTokenizer,
    chat: ChatRenderer,
    instructions: str | None,
) -> list[Example]:
    """One interview as population-style examples: each question asked after the earlier
    ones answered with ``codes``, its target the distribution over its options (listed
    order) given those answers (``targets``, one per question)."""
    return [
        _options_example(
            text.tokenize_request(request),
            target=tuple(target),
            ranks=(),
            label=f"{question.id} after {', '.join(codes[:position]) or 'nothing'}",
        )
        for position, ((_, request), question, target) in enumerate(
            zip(
                interview(questions, codes, description, prompt_format, chat, instructions),
                questions,
                targets,
                strict=True,
            )
        )
    ]


def interview(
    questions: Sequence[ChoiceQuestion],
    codes: Sequence[str],
    description: str,
    prompt_format: PromptFormat,
    chat: ChatRenderer,
    instructions: str | None,
) -> list[tuple[Asking, ScoreRequest]]:
    """Each question asked (exact request) after the earlier ones answered with ``codes``,
    as :func:`~survey_sim.simulate_individuals` writes histories (``instructions`` read
    with the first)."""
    asked: list[tuple[Asking, ScoreRequest]] = []
    history: list[Turn] = []
    for position, (question, code) in enumerate(zip(questions, codes, strict=True)):
        shown = as_read(question, questions[position - 1] if position else None)
        first = instructions if position == 0 else None
        asking = ask(shown, prompt_format)
        (request,) = asking.exact_requests(PromptContext(description, chat, first, tuple(history)))
        asked.append((asking, request))
        history.append(answered_turn(shown, prompt_format, code, instructions=first))
    return asked


def _options_example(
    item: TokenizedRequest, *, target: tuple[float, ...], ranks: tuple[int, ...], label: str
) -> Example:
    """Every option of one request; options that share their read tokens share a row."""
    rows: list[tuple[int, ...]] = []
    spans = []
    for slot, tokens in enumerate(item.continuations):
        row = (*item.shared, *tokens[:-1])
        if row not in rows:
            rows.append(row)
        spans.append(Span(rows.index(row), len(item.shared), tuple(tokens), slot))
    return Example(tuple(rows), tuple(spans), target, ranks, label)


def _interview_example(asked: Sequence[tuple[TokenizedRequest, int]], *, label: str) -> Example:
    """One row for the whole interview; an answer whose tokens are not the beginning of it
    gets a row of its own."""
    last, chosen = asked[-1]
    interview = (*last.shared, *last.continuations[chosen])
    rows: list[tuple[int, ...]] = [interview[:-1]]
    spans = []
    for slot, (item, chosen) in enumerate(asked):
        scored = tuple(item.continuations[chosen])
        sequence = (*item.shared, *scored)
        if interview[: len(sequence)] != sequence:
            rows.append(sequence[:-1])
        row = 0 if interview[: len(sequence)] == sequence else len(rows) - 1
        spans.append(Span(row, len(item.shared), scored, slot))
    return Example(tuple(rows), tuple(spans), (), (), label)


def _cell_targets(
    people: pl.DataFrame, by: Sequence[str]
) -> dict[tuple[tuple[str, ...], str], dict[str, float]]:
    """Each cell's human distribution per question: option code → share."""
    targets: dict[tuple[tuple[str, ...], str], dict[str, float]] = {}
    for row in people.iter_rows(named=True):
        cell = tuple(str(row[name]) for name in by)
        targets.setdefault((cell, row["question_id"]), {})[row["option_code"]] = row["prob"]
    return targets


def scale_ranks(question: Question) -> dict[str, int] | None:
    """Each option's rank on the question's ordinal scale (:meth:`ChoiceQuestion.scale`),
    when every option lies on it (``None`` for any other question: the loss needs them all)."""
    if not isinstance(question, ChoiceQuestion):
        return None
    scale = question.scale()
    if scale is None or len(scale) != len(question.options):
        return None
    return {question.options[index].code: rank for rank, index in enumerate(scale)}
