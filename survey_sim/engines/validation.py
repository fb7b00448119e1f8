"""A check of parsed answers against the JSON Schema subset survey-sim's schemas use.

Grammar-constrained decoding enforces a schema token by token, so a parsed answer should
always conform. This second check after parsing catches where a grammar engine does not:
xgrammar 0.2.8's rule for length-bounded strings can let a string run past ``maxLength``.
Keywords outside the subset (``enum``, ``type``, numeric bounds, string lengths, array
items/lengths/uniqueness, object properties) are not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "array": (list,),
    "object": (dict,),
    "boolean": (bool,),
}


def conforms(value: Any, schema: Mapping[str, Any]) -> bool:
    """Whether ``value`` satisfies ``schema`` (within the subset above)."""
    if "enum" in schema and not any(_same(value, allowed) for allowed in schema["enum"]):
        return False
    kind = schema.get("type")
    if kind is not None:
        if isinstance(value, bool) and kind != "boolean":
            return False
        if not isinstance(value, _TYPES[kind]):
            return False
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric and not _within(value, schema.get("minimum"), schema.get("maximum")):
        return False
    if isinstance(value, str) and not _within(
        len(value), schema.get("minLength"), schema.get("maxLength")
    ):
        return False
    if isinstance(value, list):
        if not _within(len(value), schema.get("minItems"), schema.get("maxItems")):
            return False
        items = schema.get("items", {})
        if not all(conforms(item, items) for item in value):
            return False
        if schema.get("uniqueItems") and len({repr(item) for item in value}) < len(value):
            return False
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        if any(name not in value for name in schema.get("required", ())):
            return False
        if schema.get("additionalProperties") is False and set(value) - set(properties):
            return False
        return all(conforms(value[name], sub) for name, sub in properties.items() if name in value)
    return True


def _same(value: Any, allowed: Any) -> bool:
    """JSON equality: ``1`` is not ``true``, and ``1`` equals ``1.0``."""
    return (type(value) is bool) == (type(allowed) is bool) and value == allowed


def _within(number: float, low: float | None, high: float | None) -> bool:
    return (low is None or number >= low) and (high is None or number <= high)
