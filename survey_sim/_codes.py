"""Answer and attribute codes as text: the one normalisation every loader uses.

A code may be written as text or a number in a questionnaire, a mapping or a data file;
``1``, ``1.0`` and ``"1"`` are the same code, ``"1"``.
"""

from __future__ import annotations

from typing import Any


def code_text(value: Any) -> str:
    """A code as text: whole floats lose their ``.0`` (``1.0`` and ``1`` are both ``"1"``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def declared_code(value: Any) -> Any:
    """A code (or option text, or label) written in a YAML file, as text.

    Unquoted YAML words such as ``Yes``, ``No``, ``ON`` read as booleans; they are refused
    with a message saying to quote them. Values other than text and numbers are passed on
    for validation to reject.
    """
    if isinstance(value, bool):
        raise ValueError(
            f"this value reads as the YAML boolean {str(value).lower()}: quote words such as "
            '"Yes", "No", "ON" or "off" (write text: "Yes", not text: Yes)'
        )
    if isinstance(value, int | float):
        return code_text(value)
    return value
