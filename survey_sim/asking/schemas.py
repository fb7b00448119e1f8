"""What a valid answer is, per question kind: answer texts and JSON schemas for sampling.

Constrained sampling asks for a JSON value that matches the question:

* single choice / ordinal: one of the option labels (letters as strings, numbers as JSON
  integers) or option texts, as an ``enum``;
* multi-select: an array of distinct labels (or texts), between ``min_selected`` and
  ``max_selected`` long. The schema says ``uniqueItems``, which grammar engines do not
  enforce, so it also lists every allowed selection in ``enum``, each in the order the
  options are shown: distinct by construction;
* rank: an array of ``rank`` distinct labels (or texts) in rank order, every allowed
  ranking listed in ``enum`` as for multi-select;
* numeric: an ``integer`` (or ``number``) within the question's bounds;
* free text: a string of at most ``max_chars`` characters.

By default the schema is an object ``{"answer": ...}``; an optional bounded ``reason``
string can be asked for too, after the answer by default so that the reason cannot steer
the choice (``reason_first=True`` asks for it before, chain-of-thought style).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from survey_sim.asking.formats import AnswerMode
from survey_sim.questionnaire import (
    ChoiceQuestion,
    FreeTextQuestion,
    MultiSelectQuestion,
    NumericQuestion,
    Option,
    OptionsQuestion,
    Question,
    RankQuestion,
)

JsonSchema = dict[str, Any]

MAX_SELECTIONS = 4096
"""Most selections a sampled multi-select schema may list (larger grammars compile slowly)."""


def answer_texts(question: OptionsQuestion, answer: AnswerMode) -> list[str]:
    """What answering with each option looks like, in option order."""
    return [o.label if answer == "label" else o.text for o in question.options]  # type: ignore[misc]


def answer_values(question: OptionsQuestion, answer: AnswerMode = "label") -> list[str | int]:
    """The JSON value of each option's answer, in option order.

    Labels that are all whole numbers become JSON integers, so a model answers ``2``, not
    ``"2"``: exactly the text exact scoring reads after the prompt.
    """
    texts = answer_texts(question, answer)
    if answer == "label" and all(text.isdecimal() for text in texts):
        return [int(text) for text in texts]
    return list(texts)


def value_schema(question: Question, answer: AnswerMode = "label") -> JsonSchema:
    """The JSON schema of the answer value alone (see the module docstring)."""
    match question:
        case ChoiceQuestion():
            return {"enum": answer_values(question, answer)}
        case MultiSelectQuestion():
            return _selection_schema(question, answer_values(question, answer))
        case RankQuestion():
            values = answer_values(question, answer)
            orders = [[values[index] for index in order] for order in question.rankings()]
            return _distinct_lists(values, question.ranked, question.ranked, orders)
        case NumericQuestion():
            return {
                "type": "integer" if question.integer else "number",
                "minimum": _json_number(question.minimum),
                "maximum": _json_number(question.maximum),
            }
        case FreeTextQuestion():
            return {"type": "string", "minLength": 1, "maxLength": question.max_chars}


def answer_schema(
    question: Question,
    *,
    answer: AnswerMode = "label",
    wrap: bool = True,
    reason_chars: int | None = None,
    reason_first: bool = False,
) -> JsonSchema:
    """The JSON schema of a valid answer to ``question``.

    Args:
        question: Any question.
        answer: Answer listed options with their ``"label"`` or ``"text"`` (as prompted).
        wrap: ``False`` gives the bare value schema (the answer alone).
        reason_chars: If set, also ask for a ``reason`` string of at most this many chars.
        reason_first: Put ``reason`` before ``answer`` (the default keeps the answer first).
    """
    value = value_schema(question, answer)
    if not wrap:
        if reason_chars is not None:
            raise ValueError("a reason needs the wrapped (object) schema")
        return value
    fields: list[tuple[str, JsonSchema]] = [("answer", value)]
    if reason_chars is not None:
        reason = ("reason", {"type": "string", "minLength": 1, "maxLength": reason_chars})
        fields.insert(0 if reason_first else 1, reason)
    return {
        "type": "object",
        "properties": dict(fields),
        "required": [name for name, _ in fields],
        "additionalProperties": False,
    }


def option_for_value(question: OptionsQuestion, value: Any, answer: AnswerMode = "label") -> Option:
    """The option a sampled answer value stands for (a wrapped object or a bare value)."""
    if isinstance(value, dict):
        value = value["answer"]
    for option, expected in zip(question.options, answer_values(question, answer), strict=True):
        if value == expected:
            return option
    raise KeyError(f"{value!r} is not an answer to question {question.id!r}")


def _selection_schema(question: MultiSelectQuestion, values: list[str | int]) -> JsonSchema:
    sizes = range(question.min_selected, question.most_selected + 1)
    count = sum(math.comb(len(values), size) for size in sizes)
    if count > MAX_SELECTIONS:
        raise ValueError(
            f"question {question.id!r}: {count} possible selections is too many to sample "
            f"under a grammar (at most {MAX_SELECTIONS}); set max_selected, or use the exact "
            "method"
        )
    selections = [list(chosen) for size in sizes for chosen in itertools.combinations(values, size)]
    return _distinct_lists(values, question.min_selected, question.most_selected, selections)


def _distinct_lists(
    values: list[str | int], shortest: int, longest: int, allowed: list[list[str | int]]
) -> JsonSchema:
    """Lists of distinct ``values``: ``uniqueItems``, which grammar engines do not enforce,
    and every ``allowed`` list in ``enum``, which they do."""
    return {
        "type": "array",
        "items": {"enum": values},
        "uniqueItems": True,
        "minItems": shortest,
        "maxItems": longest,
        "enum": allowed,
    }


def _json_number(value: float) -> int | float:
    return int(value) if value.is_integer() else value
