"""Piped text: ``{question_id}`` and ``{persona.attribute}`` in questions' wording.

``{vote16}`` becomes the respondent's earlier answer to ``vote16`` (the option's text; a
numeric question's value, or its bin's label); ``{persona.age}`` the persona's attribute;
``{vote16|the candidate you chose}`` gives the text used when there is no answer (the
question was skipped) or no attribute. ``{{`` and ``}}`` write literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from survey_sim._conditions import PERSONA, Reference

_PIECE = re.compile(r"\{\{|\}\}|\{([^{}|]*)(?:\|([^{}]*))?\}|[{}]")


class PipeError(ValueError):
    """Wording whose pipes cannot be read."""


@dataclass(frozen=True)
class Pipe:
    """One ``{...}`` in a text: what it shows, and the text used without it."""

    reference: Reference
    fallback: str | None = None


def pipes(text: str) -> list[Pipe]:
    """The pipes in ``text``, in order.

    Raises:
        PipeError: an empty pipe, or a brace that opens or closes nothing (write ``{{`` or
            ``}}`` for a literal brace).
    """
    found = []
    for match in _PIECE.finditer(text):
        piece = match.group()
        if piece in ("{{", "}}"):
            continue
        if piece in ("{", "}"):
            raise PipeError(
                f"a lone {piece!r} at character {match.start() + 1} of {text!r}: write "
                f"{piece * 2!r} for a literal brace"
            )
        name = match.group(1).strip()
        if not name or name == PERSONA.rstrip("."):
            raise PipeError(f"{piece!r} in {text!r} names no question or persona.ATTRIBUTE")
        reference = (
            Reference(name.removeprefix(PERSONA), persona=True)
            if name.startswith(PERSONA)
            else Reference(name)
        )
        found.append(Pipe(reference, match.group(2)))
    return found


def fill(text: str, shown: Callable[[Pipe], str | None]) -> str:
    """``text`` with each pipe replaced by ``shown(pipe)``, or by its fallback where that is
    ``None``.

    Raises:
        PipeError: a pipe with nothing to show and no fallback.
    """

    def replace(match: re.Match[str]) -> str:
        piece = match.group()
        if piece in ("{{", "}}"):
            return piece[0]
        (pipe,) = pipes(piece)
        value = shown(pipe)
        if value is not None:
            return value
        if pipe.fallback is None:
            raise PipeError(f"nothing to show for {piece} and no fallback ({{name|fallback}})")
        return pipe.fallback

    return _PIECE.sub(replace, text)
