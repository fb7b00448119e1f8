"""Questionnaires: questions, their answer options, and loading them from YAML.

A questionnaire file looks like this (see ``questionnaires/gss_spending_2018.yaml``)::

    id: gss_spending_2018
    title: GSS 2018 national spending priorities
    option_sets:
      spending:
        - {code: "1", text: Too little}
        - {code: "0", text: About right}
        - {code: "-1", text: Too much}
    questions:
      - id: natfare
        kind: ordinal
        preamble: We are faced with many problems in this country, ...
        text: Welfare
        options: spending          # a named option set, or a list written in place

Option ``code`` is the value stored in data files; ``text`` is what respondents read;
``label`` is the short tag shown before it in a prompt (letters by default, see
``label_style``). Top-level keys starting with ``x-`` are ignored, so they can hold YAML
anchors shared by many questions. Options marked ``substantive: false`` (refusal, don't
know) are scored like any other option but kept out of ordinal positions.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from survey_sim._yaml import load_yaml, validate_yaml
from survey_sim.errors import InputError

LabelStyle = Literal["letter", "number"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Strict):
    """One answer option.

    Attributes:
        code: Value used in data files and results (``"1"``, ``"-1"``, ``"dk"``...).
        text: The wording respondents read (``"Too little"``).
        label: Short tag shown before the text (``"A"``, ``"1"``); assigned from the
            question's ``label_style`` when left out.
        position: Ordinal position (1 = first end of the scale) for substantive options of
            ordinal questions; ``None`` otherwise.
        substantive: False for refusal / don't know style options.
    """

    code: str
    text: str = Field(min_length=1)
    label: str | None = None
    position: int | None = None
    substantive: bool = True

    @field_validator("code", mode="before")
    @classmethod
    def _code_as_text(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("option code must be a string or a number, not true/false")
        if isinstance(value, int | float):
            return str(value)
        return value

    @field_validator("code", "label")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value


class _QuestionBase(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    text: str = Field(min_length=1)
    preamble: str | None = None


class ChoiceQuestion(_QuestionBase):
    """A question answered by picking exactly one of its options.

    ``kind`` is ``"single_choice"`` (nominal options) or ``"ordinal"`` (a scale such as
    Likert items; substantive options get ordinal positions in their listed order unless
    positions are given).
    """

    kind: Literal["single_choice", "ordinal"]
    options: tuple[Option, ...] = Field(min_length=2)
    label_style: LabelStyle = "letter"

    @model_validator(mode="after")
    def _complete_options(self) -> ChoiceQuestion:
        _check_unique([o.code for o in self.options], "option code")
        labels = _default_labels(self.label_style, len(self.options))
        completed = []
        next_position = 1
        for option, default_label in zip(self.options, labels, strict=True):
            updates: dict[str, Any] = {}
            if option.label is None:
                updates["label"] = default_label
            if self.kind == "ordinal" and option.substantive and option.position is None:
                updates["position"] = next_position
            if self.kind == "ordinal" and option.substantive:
                next_position += 1
            completed.append(option.model_copy(update=updates) if updates else option)
        _check_unique([o.label for o in completed], "option label")
        object.__setattr__(self, "options", tuple(completed))
        return self

    def option(self, code: str) -> Option:
        """The option with this code (KeyError naming the known codes otherwise)."""
        for option in self.options:
            if option.code == code:
                return option
        known = ", ".join(o.code for o in self.options)
        raise KeyError(f"question {self.id!r} has no option {code!r} (known: {known})")


# Multi-select, numeric and free-text questions join this union as further members
# discriminated by ``kind``; every consumer dispatches on the member type.
Question = Annotated[ChoiceQuestion, Field(discriminator="kind")]


class Questionnaire(_Strict):
    """An ordered set of questions, with optional shared instructions.

    Attributes:
        id: Short identifier, recorded in results.
        title: Human-readable name.
        source: Where the wording comes from (codebook, year).
        instructions: Text shown before every question (after the persona).
        questions: The questions, in the order they are asked.
    """

    id: str = Field(min_length=1)
    title: str | None = None
    source: str | None = None
    instructions: str | None = None
    questions: tuple[Question, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Questionnaire:
        _check_unique([q.id for q in self.questions], "question id")
        return self

    def __iter__(self) -> Iterator[Question]:  # type: ignore[override]
        return iter(self.questions)

    def __len__(self) -> int:
        return len(self.questions)

    def question(self, question_id: str) -> Question:
        """The question with this id."""
        for question in self.questions:
            if question.id == question_id:
                return question
        raise KeyError(f"questionnaire {self.id!r} has no question {question_id!r}")

    def select(self, question_ids: Sequence[str]) -> Questionnaire:
        """A questionnaire holding only the given questions, in the given order."""
        return self.model_copy(update={"questions": tuple(self.question(q) for q in question_ids)})

    @classmethod
    def from_yaml(cls, path: str | Path) -> Questionnaire:
        """Load and validate a questionnaire YAML file (see the module docstring)."""
        return load_questionnaire(path)


def load_questionnaire(path: str | Path) -> Questionnaire:
    """Load a questionnaire from YAML, resolving named ``option_sets``.

    Raises:
        InputError: naming the file, line, question and field of the first problem.
    """
    path = Path(path)
    data, node = load_yaml(path)
    if not isinstance(data, dict):
        raise InputError(path, "expected a mapping with 'id' and 'questions' at the top level")
    data = {key: value for key, value in data.items() if not str(key).startswith("x-")}
    option_sets = data.pop("option_sets", None) or {}
    if not isinstance(option_sets, dict):
        raise InputError(path, "'option_sets' must map names to lists of options")
    questions = data.get("questions")
    if isinstance(questions, list):
        data["questions"] = [
            _resolve_option_set(question, option_sets, path, index)
            for index, question in enumerate(questions)
        ]

    def describe(loc: tuple[Any, ...]) -> str | None:
        if len(loc) >= 2 and loc[0] == "questions" and isinstance(loc[1], int):
            name = _question_name(questions, loc[1])
            rest = [str(part) for part in loc[2:] if part not in ("single_choice", "ordinal")]
            field = f", field '{'.'.join(rest)}'" if rest else ""
            return f"{name}{field}"
        return "field " + ".".join(str(part) for part in loc) if loc else None

    return validate_yaml(Questionnaire, data, path, node, describe)


def _resolve_option_set(question: Any, option_sets: dict[str, Any], path: Path, index: int) -> Any:
    if not isinstance(question, dict) or not isinstance(question.get("options"), str):
        return question
    name = question["options"]
    if name not in option_sets:
        known = ", ".join(sorted(option_sets)) or "none defined"
        raise InputError(
            path,
            f"unknown option set {name!r} (option_sets: {known})",
            location=f"{_question_name([question], 0)}, field 'options'",
        )
    return {**question, "options": option_sets[name]}


def _question_name(questions: Any, index: int) -> str:
    try:
        return f"question {questions[index]['id']!r}"
    except (TypeError, KeyError, IndexError):
        return f"question #{index + 1}"


def _default_labels(style: LabelStyle, count: int) -> list[str]:
    if style == "number":
        return [str(i + 1) for i in range(count)]
    if count > len(string.ascii_uppercase):
        raise ValueError(f"{count} options is too many for letter labels; use label_style: number")
    return list(string.ascii_uppercase[:count])


def _check_unique(values: Sequence[Any], what: str) -> None:
    duplicates = sorted(str(value) for value, count in Counter(values).items() if count > 1)
    if duplicates:
        raise ValueError(f"duplicate {what}: {', '.join(duplicates)}")
