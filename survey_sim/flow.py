"""A questionnaire as an instrument: who is asked what, in which order, seeing what.

The questionnaire file declares the flow (see ``docs/questionnaires.md``):

* ``ask_if`` on a question or a block: a condition on earlier answers and persona
  attributes (:mod:`survey_sim._conditions`);
* pipes, ``{question_id}`` and ``{persona.attribute}`` in the wording
  (:mod:`survey_sim._pipes`);
* ``blocks`` in a ``fixed`` or ``random`` order, and questions within a block likewise;
* ``memory``: what a respondent sees of its interview so far.

This module computes with that flow: the order each respondent is asked in
(:func:`interview_order`, seeded per respondent), the probability that a persona is asked a
question (:func:`asked_probability`, exact by enumerating the answers its condition depends
on), which questions' answers depend on the interview's path (:func:`path_dependent`), and
each question's wording for one respondent (:func:`personalised`).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Mapping, Sequence

from survey_sim._conditions import (
    ORDERING,
    Comparison,
    Condition,
    Membership,
    Reference,
    Test,
    evaluate,
    references,
    tests,
)
from survey_sim._pipes import Pipe, fill, pipes
from survey_sim.errors import InputError
from survey_sim.population import AttributeValue, Persona, Population
from survey_sim.questionnaire import (
    OptionsQuestion,
    Question,
    Questionnaire,
    answer_value,
)

PATH_LIMIT = 1_000_000
"""Answer paths :func:`asked_probability` enumerates at most for one question."""

Distributions = Mapping[str, Mapping[str, float]]
"""Per question id, each outcome code's probability (for one persona)."""


def interview_order(questionnaire: Questionnaire, seed: int, respondent: str) -> tuple[str, ...]:
    """The question ids in the order ``respondent`` is asked them: blocks in the
    questionnaire's block order, questions in their block's order; each random order drawn
    from ``seed`` and the respondent's id, so a rerun asks in the same orders."""
    digest = hashlib.sha256(json.dumps([seed, respondent]).encode()).digest()
    shuffler = random.Random(int.from_bytes(digest[:8], "big"))
    blocks = list(questionnaire.flow_blocks)
    if questionnaire.block_order == "random":
        shuffler.shuffle(blocks)
    order: list[str] = []
    for block in blocks:
        questions = list(block.questions)
        if block.order == "random":
            shuffler.shuffle(questions)
        order.extend(questions)
    return tuple(order)


def is_random(questionnaire: Questionnaire) -> bool:
    """Whether respondents may be asked in different orders."""
    return questionnaire.block_order == "random" or any(
        block.order == "random" for block in questionnaire.flow_blocks
    )


def pipes_in(question: Question) -> list[Pipe]:
    """The pipes in a question's wording."""
    return [pipe for text in question.wording().values() for pipe in pipes(text)]


def answer_pipes(question: Question) -> list[Pipe]:
    """The pipes in a question's wording that show earlier answers."""
    return [pipe for pipe in pipes_in(question) if not pipe.reference.persona]


def path_dependent(questionnaire: Questionnaire) -> list[str]:
    """The questions whose distribution, or whose chance of being asked, depends on the
    answers a respondent gave before (in listed order): with memory, every question a
    respondent may be asked after another; without, the questions showing earlier answers
    (pipes), and those whose conditions use such questions."""
    if questionnaire.memory != "none":
        first = (
            {interview_order(questionnaire, 0, "")[0]} if not is_random(questionnaire) else set()
        )
        return [qid for qid in questionnaire.listed_order if qid not in first]
    dependent: list[str] = []
    for qid in questionnaire.listed_order:
        condition = questionnaire.condition(qid)
        uses = references(condition) if condition is not None else set()
        if answer_pipes(questionnaire.question(qid)) or uses & set(dependent):
            dependent.append(qid)
    return dependent


def check_population(questionnaire: Questionnaire, population: Population) -> None:
    """Refuse, before any model work, conditions and pipes that name an attribute no persona
    has, or compare an attribute with a value of another type.

    Raises:
        InputError: naming the question, the attribute and the personas' attributes.
    """
    attributes: dict[str, set[type]] = {}
    for persona in population:
        for name, value in persona.attributes.items():
            if value is not None:
                attributes.setdefault(name, set()).add(_kind(value))
    for question in questionnaire.questions:
        condition = questionnaire.condition(question.id)
        named: list[Reference] = [t.reference for t in tests(condition)] if condition else []
        named += [pipe.reference for pipe in pipes_in(question)]
        for reference in named:
            if reference.persona and reference.name not in attributes:
                raise InputError(
                    f"questionnaire {questionnaire.id!r}",
                    f"{reference} is not an attribute of population {population.id!r} (its "
                    f"attributes: {', '.join(sorted(attributes)) or 'none'})",
                    location=f"question {question.id!r}",
                )
        for test in tests(condition) if condition else ():
            problem = _attribute_type_problem(test, attributes)
            if problem:
                raise InputError(
                    f"questionnaire {questionnaire.id!r}",
                    f"{test}: {problem}",
                    location=f"question {question.id!r}",
                )


def _attribute_type_problem(test: Test, attributes: Mapping[str, set[type]]) -> str | None:
    """What is wrong with a test of a persona attribute, given the types the personas'
    values of it have (``None``: nothing, or not an attribute test)."""
    match test:
        case Comparison(reference=reference, operator=operator, value=value) if reference.persona:
            written, ordered = [value], operator in ORDERING
        case Membership(reference=reference, values=values) if reference.persona:
            written, ordered = list(values), False
        case _:
            return None
    kinds = attributes.get(reference.name, set())
    for value in written:
        if kinds and _kind(value) not in kinds:
            have = " and ".join(sorted("number" if k is float else k.__name__ for k in kinds))
            return f"the personas' {reference.name} is {have}, not like {value!r}"
    if ordered and kinds != {float}:
        return f"{reference} is not a number for every persona, so it cannot be ordered"
    return None


def _kind(value: object) -> type:
    """A value's type, with every number one kind."""
    return float if isinstance(value, int | float) and not isinstance(value, bool) else type(value)


def asked_probability(
    questionnaire: Questionnaire,
    question_id: str,
    attributes: Mapping[str, AttributeValue],
    distributions: Distributions,
) -> float:
    """The probability that a persona with ``attributes`` is asked ``question_id`` when it
    answers each question independently with ``distributions`` (the exact answer
    distributions without memory or piped answers): the total probability of the answer
    paths through the questions its condition depends on (and theirs) on which it holds.

    Raises:
        InputError: more than :data:`PATH_LIMIT` paths to enumerate.
    """
    condition = questionnaire.condition(question_id)
    if condition is None:
        return 1.0
    needed = _ancestors(questionnaire, condition)
    outcomes = [list(distributions.get(qid, {}).items()) for qid in needed]
    paths = math.prod(len(options) for options in outcomes)
    if paths > PATH_LIMIT:
        raise InputError(
            f"questionnaire {questionnaire.id!r}",
            f"whether {question_id!r} is asked depends on {len(needed)} questions with "
            f"{paths:,} answer combinations (limit {PATH_LIMIT:,}); simplify its condition, "
            "or simulate respondents",
            location=f"question {question_id!r}",
        )
    return _probability(questionnaire, condition, needed, outcomes, attributes, {}, 0)


def can_be_asked(
    questionnaire: Questionnaire, question_id: str, attributes: Mapping[str, AttributeValue]
) -> bool:
    """Whether some answers to the earlier questions lead a persona with ``attributes`` to
    ``question_id`` (``False``: its persona conditions rule it out whatever it answers)."""
    condition = questionnaire.condition(question_id)
    if condition is None:
        return True
    everything = {
        qid: {o.code: 1.0 for o in questionnaire.question(qid).outcomes}
        for qid in _ancestors(questionnaire, condition)
    }
    return asked_probability(questionnaire, question_id, attributes, everything) > 0


def _ancestors(questionnaire: Questionnaire, condition: Condition) -> list[str]:
    """The questions ``condition`` depends on, and those their conditions depend on, in
    listed order (each after every question its own condition uses)."""
    found: set[str] = set()
    waiting = list(references(condition))
    while waiting:
        qid = waiting.pop()
        if qid in found:
            continue
        found.add(qid)
        own = questionnaire.condition(qid)
        if own is not None:
            waiting.extend(references(own))
    return [qid for qid in questionnaire.listed_order if qid in found]


def _probability(
    questionnaire: Questionnaire,
    condition: Condition,
    needed: Sequence[str],
    outcomes: Sequence[Sequence[tuple[str, float]]],
    attributes: Mapping[str, AttributeValue],
    answers: dict[str, str | float],
    depth: int,
) -> float:
    def value_of(reference: Reference) -> str | float | AttributeValue:
        return attributes.get(reference.name) if reference.persona else answers.get(reference.name)

    if depth == len(needed):
        return 1.0 if evaluate(condition, value_of) else 0.0
    qid = needed[depth]
    own = questionnaire.condition(qid)
    if own is not None and not evaluate(own, value_of):
        return _probability(
            questionnaire, condition, needed, outcomes, attributes, answers, depth + 1
        )
    question = questionnaire.question(qid)
    total = 0.0
    for code, probability in outcomes[depth]:
        if probability == 0:
            continue
        answers[qid] = answer_value(question, code)
        total += probability * _probability(
            questionnaire, condition, needed, outcomes, attributes, answers, depth + 1
        )
    answers.pop(qid, None)
    return total


def personalised(
    question: Question, persona: Persona, answers: Mapping[str, str] | None = None
) -> Question:
    """``question`` as ``persona`` reads it: pipes filled with its attributes and, given
    ``answers`` (question id to the text its answer shows: the option's text, the number),
    its earlier answers; a pipe with nothing to show takes its fallback."""
    if not pipes_in(question):
        return question

    def shown(pipe: Pipe) -> str | None:
        name = pipe.reference.name
        if pipe.reference.persona:
            value = persona.attributes.get(name)
            return None if value is None else str(value)
        return None if answers is None else answers.get(name)

    filled = {where: fill(text, shown) for where, text in question.wording().items()}
    update: dict[str, object] = {
        field: filled[(field,)] for field in ("text", "preamble") if (field,) in filled
    }
    if isinstance(question, OptionsQuestion):
        update["options"] = tuple(
            option.model_copy(update={"text": filled[("options", index, "text")]})
            for index, option in enumerate(question.options)
        )
    return question.model_copy(update=update)
