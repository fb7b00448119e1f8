"""Exceptions raised by survey-sim.

Every error a user can cause by bad input is an :class:`InputError` that names the file, the
place inside it (line and field) and what was expected, so that a long study fails once, early
and clearly instead of deep inside a model call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError


class SurveySimError(Exception):
    """Base class of every error survey-sim raises on purpose."""


class InputError(SurveySimError, ValueError):
    """A questionnaire, persona table or other input file is malformed.

    Attributes:
        source: The file (or a short description of an in-memory source).
        location: Where inside it, e.g. ``"question 'natfare', field 'options'"``.
        line: 1-based line number when known.
        problem: What was wrong and what was expected.
    """

    def __init__(
        self,
        source: str | Path,
        problem: str,
        *,
        location: str | None = None,
        line: int | None = None,
    ) -> None:
        self.source = str(source)
        self.problem = problem
        self.location = location
        self.line = line
        where = self.source if line is None else f"{self.source}:{line}"
        if location:
            where = f"{where}: {location}"
        super().__init__(f"{where}: {problem}")


class ModelNotFoundError(SurveySimError, LookupError):
    """The requested model is neither a known bundled model nor a local path.

    survey-sim never downloads weights from a model hub; the message says how to provide them.
    """


class ScoringError(SurveySimError, RuntimeError):
    """A prompt could not be scored (e.g. an empty continuation or a context that is too long)."""


class MethodError(SurveySimError, ValueError):
    """A simulation method that cannot apply to a question (e.g. exact for free text)."""


class FieldError(ValueError):
    """A validator's problem with a field below the one it validates: ``location`` continues
    the validated object's location (e.g. ``("questions", 3, "ask_if")`` for a check made on
    the whole questionnaire), so the error names that field and its line."""

    def __init__(self, message: str, location: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.location = location


def error_location(problem: Mapping[str, Any]) -> tuple[Any, ...]:
    """Where a pydantic error ``problem`` (one of ``ValidationError.errors()``) is: its
    ``loc``, continued by a :class:`FieldError`'s location."""
    cause = problem.get("ctx", {}).get("error")
    return (*problem["loc"], *(cause.location if isinstance(cause, FieldError) else ()))


class FlowWarning(UserWarning):
    """A questionnaire's flow asks for attention: a condition that can never hold, or
    questions a run leaves out because their answers depend on the interview's path."""


class PrecisionWarning(UserWarning):
    """An engine computes in a dtype whose probabilities are not exact (bfloat16, float16)."""


class OptionOrderWarning(UserWarning):
    """Results asked in one option order: a model's position bias reads as opinion there."""


class CoverageWarning(UserWarning):
    """The listed answers took little of the model's probability on some question: its
    distribution over them says little about what the model would answer."""


class ServerError(SurveySimError, ConnectionError):
    """A model server cannot be reached, is not the kind expected, runs another model than
    asked for, or stopped answering (after retries)."""


def input_error(
    source: str | Path,
    error: ValidationError,
    what: str | None = None,
    *,
    describe: Callable[[tuple[Any, ...]], str | None] | None = None,
    line: int | None = None,
) -> InputError:
    """The first problem of a pydantic validation ``error`` as an :class:`InputError` from
    ``source`` (the one conversion every reader of typed input uses).

    Args:
        what: What ``source`` should have been, added to the problem ("expected ...").
        describe: Turns the problem's location into words (default: ``field a.b``).
        line: The line of ``source`` the problem is on, when known.
    """
    first = error.errors()[0]
    loc = error_location(first)
    where = describe(loc) if describe else None
    if where is None and loc:
        where = "field " + ".".join(str(part) for part in loc)
    problem = first["msg"]
    if first["type"] == "value_error":  # our own validators' messages, without "Value error, "
        problem = str(first["ctx"]["error"])
    if what:
        problem = f"{problem} (expected {what})"
    return InputError(source, problem, location=where, line=line)
