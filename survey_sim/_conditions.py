"""The condition language of ``ask_if``: parsing, checking and evaluating.

A condition is an expression over earlier answers and persona attributes::

    children == "yes"
    age >= 18 and vote16 in ["1", "2"]
    not (persona.party == "Democrat" or vote16 is skipped)

* A bare name is a question id; ``persona.NAME`` is a persona attribute.
* Tests: ``==``, ``!=`` (any value); ``<``, ``<=``, ``>``, ``>=`` (numbers: numeric questions
  and numeric attributes); ``in [v, ...]`` and ``not in [v, ...]``; ``q is answered`` and
  ``q is skipped``.
* Values: option codes as quoted text (``"1"``: codes are text even when they look like
  numbers), numbers for numeric questions and attributes, ``true`` / ``false``.
* ``and``, ``or``, ``not`` and parentheses, with the usual precedence (``not`` binds
  tightest, then ``and``, then ``or``).

A test on a question that was skipped (or an attribute the persona lacks) is false, whatever
its operator (``!=`` included); only ``is skipped`` / ``is answered`` test for that.
Nothing is evaluated as Python.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

Literal_ = str | float | bool
"""A value written in a condition."""
Operator = Literal["==", "!=", "<", "<=", ">", ">="]
ORDERING: tuple[Operator, ...] = ("<", "<=", ">", ">=")
KEYWORDS = frozenset({"and", "or", "not", "in", "is", "answered", "skipped", "true", "false"})
PERSONA = "persona."


class ConditionError(ValueError):
    """A condition that cannot be parsed or does not fit the questionnaire."""


@dataclass(frozen=True)
class Reference:
    """What a test reads: a question's answer, or (``persona``) a persona attribute."""

    name: str
    persona: bool = False

    def __str__(self) -> str:
        return f"{PERSONA}{self.name}" if self.persona else self.name


@dataclass(frozen=True)
class Comparison:
    """``reference OPERATOR value``."""

    reference: Reference
    operator: Operator
    value: Literal_

    def __str__(self) -> str:
        return f"{self.reference} {self.operator} {_written(self.value)}"


@dataclass(frozen=True)
class Membership:
    """``reference in [values]`` (``not in`` when ``negated``)."""

    reference: Reference
    values: tuple[Literal_, ...]
    negated: bool = False

    def __str__(self) -> str:
        listed = ", ".join(_written(value) for value in self.values)
        return f"{self.reference} {'not in' if self.negated else 'in'} [{listed}]"


@dataclass(frozen=True)
class AnswerTest:
    """``question is answered`` (or ``is skipped``)."""

    reference: Reference
    answered: bool

    def __str__(self) -> str:
        return f"{self.reference} is {'answered' if self.answered else 'skipped'}"


@dataclass(frozen=True)
class Not:
    operand: Condition

    def __str__(self) -> str:
        return f"not ({self.operand})"


@dataclass(frozen=True)
class All:
    """Every operand holds (``and``)."""

    operands: tuple[Condition, ...]

    def __str__(self) -> str:
        return " and ".join(f"({operand})" for operand in self.operands)


@dataclass(frozen=True)
class AnyOf:
    """Some operand holds (``or``)."""

    operands: tuple[Condition, ...]

    def __str__(self) -> str:
        return " or ".join(f"({operand})" for operand in self.operands)


Test = Comparison | Membership | AnswerTest
Condition = Test | Not | All | AnyOf


def tests(condition: Condition) -> Iterator[Test]:
    """Every test in ``condition``, in written order."""
    match condition:
        case Not(operand):
            yield from tests(operand)
        case All(operands) | AnyOf(operands):
            for operand in operands:
                yield from tests(operand)
        case _:
            yield condition


def references(condition: Condition) -> set[str]:
    """The question ids ``condition`` reads (not persona attributes)."""
    return {test.reference.name for test in tests(condition) if not test.reference.persona}


Value = str | float | int | bool | None
"""An answer (an outcome code, or a numeric question's value) or a persona attribute."""


def evaluate(
    condition: Condition,
    value_of: Callable[[Reference], Value],
    decided: Mapping[Test, bool] | None = None,
) -> bool:
    """Whether ``condition`` holds when each reference has ``value_of(reference)`` (``None``:
    skipped, not asked, or an attribute the persona lacks). ``decided`` fixes the outcome of
    some tests whatever the values."""
    match condition:
        case Not(operand):
            return not evaluate(operand, value_of, decided)
        case All(operands):
            return all(evaluate(operand, value_of, decided) for operand in operands)
        case AnyOf(operands):
            return any(evaluate(operand, value_of, decided) for operand in operands)
    if decided is not None and condition in decided:
        return decided[condition]
    value = value_of(condition.reference)
    match condition:
        case AnswerTest(answered=answered):
            return (value is not None) == answered
        case _ if value is None:
            return False
        case Membership(values=values, negated=negated):
            return any(_equal(value, listed) for listed in values) != negated
        case Comparison(operator=operator, value=written):
            return _compare(value, operator, written)
    raise TypeError(f"not a condition: {condition!r}")


def _equal(value: Value, written: Literal_) -> bool:
    if isinstance(value, bool) or isinstance(written, bool):
        return isinstance(value, bool) and isinstance(written, bool) and value == written
    if isinstance(value, int | float) and isinstance(written, int | float):
        return float(value) == float(written)
    return value == written


def _compare(value: Value, operator: Operator, written: Literal_) -> bool:
    if operator == "==":
        return _equal(value, written)
    if operator == "!=":
        return not _equal(value, written)
    if not _is_number(value) or not _is_number(written):
        return False
    left, right = float(value), float(written)  # type: ignore[arg-type]
    return {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[operator]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _written(value: Literal_) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{value:g}"


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<number>-?\d+(?:\.\d+)?(?![A-Za-z0-9_.\-]))
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<operator>==|!=|<=|>=|<|>)
    | (?P<punctuation>[()\[\],])
    | (?P<name>[A-Za-z0-9_][A-Za-z0-9_.\-]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    column: int


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ConditionError(
                f"cannot read {text[position : position + 10]!r} at column {position + 1} of "
                f"{text!r}"
            )
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position + 1))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0

    def fail(self, expected: str) -> ConditionError:
        if self.index < len(self.tokens):
            token = self.tokens[self.index]
            found = f"{token.text!r} at column {token.column}"
        else:
            found = "the end"
        return ConditionError(f"expected {expected}, found {found} in {self.text!r}")

    def peek(self, *texts: str) -> bool:
        return self.index < len(self.tokens) and self.tokens[self.index].text in texts

    def take(self, text: str) -> None:
        if not self.peek(text):
            raise self.fail(repr(text))
        self.index += 1

    def condition(self) -> Condition:
        if not self.tokens:
            raise ConditionError("the condition is empty")
        parsed = self.either()
        if self.index < len(self.tokens):
            raise self.fail("'and', 'or' or the end")
        return parsed

    def either(self) -> Condition:
        operands = [self.both()]
        while self.peek("or"):
            self.index += 1
            operands.append(self.both())
        return operands[0] if len(operands) == 1 else AnyOf(tuple(operands))

    def both(self) -> Condition:
        operands = [self.negation()]
        while self.peek("and"):
            self.index += 1
            operands.append(self.negation())
        return operands[0] if len(operands) == 1 else All(tuple(operands))

    def negation(self) -> Condition:
        if self.peek("not"):
            self.index += 1
            return Not(self.negation())
        if self.peek("("):
            self.index += 1
            inner = self.either()
            self.take(")")
            return inner
        return self.test()

    def test(self) -> Test:
        reference = self.reference()
        if self.peek("is"):
            self.index += 1
            negated = self.peek("not")
            if negated:
                self.index += 1
            if not self.peek("answered", "skipped"):
                raise self.fail("'answered' or 'skipped'")
            answered = self.tokens[self.index].text == "answered"
            self.index += 1
            return AnswerTest(reference, answered != negated)
        negated = self.peek("not")
        if negated:
            self.index += 1
            if not self.peek("in"):
                raise self.fail("'in' after 'not'")
        if self.peek("in"):
            self.index += 1
            return Membership(reference, self.listing(), negated)
        if self.index < len(self.tokens) and self.tokens[self.index].kind == "operator":
            operator: Operator = self.tokens[self.index].text  # type: ignore[assignment]
            self.index += 1
            return Comparison(reference, operator, self.value())
        raise self.fail("a test (==, !=, <, <=, >, >=, in, not in, is answered, is skipped)")

    def reference(self) -> Reference:
        if self.index >= len(self.tokens) or self.tokens[self.index].kind != "name":
            raise self.fail("a question id or persona.ATTRIBUTE")
        name = self.tokens[self.index].text
        if name in KEYWORDS:
            raise self.fail("a question id or persona.ATTRIBUTE")
        self.index += 1
        if name.startswith(PERSONA):
            attribute = name.removeprefix(PERSONA)
            if not attribute:
                raise ConditionError(f"'persona.' needs an attribute name in {self.text!r}")
            return Reference(attribute, persona=True)
        return Reference(name)

    def listing(self) -> tuple[Literal_, ...]:
        self.take("[")
        values = [self.value()]
        while self.peek(","):
            self.index += 1
            values.append(self.value())
        self.take("]")
        return tuple(values)

    def value(self) -> Literal_:
        if self.index >= len(self.tokens):
            raise self.fail("a value")
        token = self.tokens[self.index]
        self.index += 1
        if token.kind == "string":
            return re.sub(r"\\(.)", r"\1", token.text[1:-1])
        if token.kind == "number":
            number = float(token.text)
            return int(number) if number.is_integer() and "." not in token.text else number
        if token.text in ("true", "false"):
            return token.text == "true"
        self.index -= 1
        raise self.fail('a value ("text", a number, true or false)')


@functools.lru_cache(maxsize=4096)
def parse_condition(text: str) -> Condition:
    """Parse a condition (see the module docstring). Parsed once per text: conditions are
    immutable, and a run reads each one for every respondent and every answer path.

    Raises:
        ConditionError: saying what was expected, where (column), in the text.
    """
    return _Parser(text).condition()
