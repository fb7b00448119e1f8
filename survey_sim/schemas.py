"""JSON schemas for answers, derived from questions, for constrained sampling.

A choice question's answer is an enum of what the prompt asks the respondent to give: the
option labels (letters as strings, numbers as JSON integers) or the option texts. By default
the schema is an object ``{"answer": ...}``; an optional bounded ``reason`` string can be
asked for too, after the answer by default so that the reason cannot steer the choice
(``reason_first=True`` asks for it before, chain-of-thought style).
"""

from __future__ import annotations

from typing import Any

from survey_sim.prompts import AnswerMode, answers
from survey_sim.questionnaire import ChoiceQuestion, Option

JsonSchema = dict[str, Any]


def answer_values(question: ChoiceQuestion, answer: AnswerMode = "label") -> list[str | int]:
    """The JSON value of each option's answer, in option order.

    Labels that are all whole numbers become JSON integers, so a model answers ``2``, not
    ``"2"``: exactly the text exact scoring reads after the prompt.
    """
    texts = answers(question, answer)
    if answer == "label" and all(text.isdecimal() for text in texts):
        return [int(text) for text in texts]
    return list(texts)


def answer_schema(
    question: ChoiceQuestion,
    *,
    answer: AnswerMode = "label",
    wrap: bool = True,
    reason_chars: int | None = None,
    reason_first: bool = False,
) -> JsonSchema:
    """The JSON schema of a valid answer to ``question``.

    Args:
        question: A single-choice or ordinal question.
        answer: Answer with option ``"label"`` or ``"text"`` (as in the prompt format).
        wrap: ``False`` gives the bare enum (the answer value alone).
        reason_chars: If set, also ask for a ``reason`` string of at most this many chars.
        reason_first: Put ``reason`` before ``answer`` (the default keeps the answer first).
    """
    enum: JsonSchema = {"enum": answer_values(question, answer)}
    if not wrap:
        if reason_chars is not None:
            raise ValueError("a reason needs the wrapped (object) schema")
        return enum
    fields: list[tuple[str, JsonSchema]] = [("answer", enum)]
    if reason_chars is not None:
        reason = ("reason", {"type": "string", "minLength": 1, "maxLength": reason_chars})
        fields.insert(0 if reason_first else 1, reason)
    return {
        "type": "object",
        "properties": dict(fields),
        "required": [name for name, _ in fields],
        "additionalProperties": False,
    }


def option_for_value(question: ChoiceQuestion, value: Any, answer: AnswerMode = "label") -> Option:
    """The option a sampled answer value stands for (a wrapped object or a bare value)."""
    if isinstance(value, dict):
        value = value["answer"]
    for option, expected in zip(question.options, answer_values(question, answer), strict=True):
        if value == expected:
            return option
    raise KeyError(f"{value!r} is not an answer to question {question.id!r}")
