"""YAML reading that keeps line numbers, so validation errors can point into the file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from survey_sim.errors import InputError, error_location, input_error

ModelT = TypeVar("ModelT", bound=BaseModel)


def read_text(path: Path) -> str:
    """Read a UTF-8 text file, turning decoding and missing-file problems into InputError."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise InputError(path, "file not found") from error
    except IsADirectoryError as error:
        raise InputError(path, "a folder, not a file") from error
    except OSError as error:
        raise InputError(path, f"cannot read: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise InputError(
            path, f"not valid UTF-8 (byte {error.start}); save the file as UTF-8"
        ) from error


def load_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML file; return the plain data and the node tree (for line lookups)."""
    text = read_text(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else None
        raise InputError(path, f"invalid YAML: {error.problem}", line=line) from error
    except yaml.YAMLError as error:
        raise InputError(path, f"invalid YAML: {error}") from error
    return data, node


def line_of(node: yaml.Node | None, location: Sequence[str | int]) -> int | None:
    """1-based line of the deepest node reachable along ``location`` (a pydantic error loc).

    Parts of the location that are not keys in the file (a union's discriminator tag, a
    missing field) are skipped.
    """
    line = None if node is None else node.start_mark.line + 1
    for key in location:
        if isinstance(node, yaml.MappingNode):
            child = next(
                (value for name, value in node.value if getattr(name, "value", None) == key),
                None,
            )
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            child = node.value[key] if 0 <= key < len(node.value) else None
        else:
            child = None
        if child is None:
            continue
        node = child
        line = node.start_mark.line + 1
    return line


def validate_yaml(
    model: type[ModelT],
    data: Any,
    path: Path,
    node: yaml.Node | None,
    describe: Callable[[tuple[Any, ...]], str | None] | None = None,
    in_file: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None,
) -> ModelT:
    """Validate ``data`` as ``model``; on failure raise one InputError for the first problem.

    ``describe(loc)`` may turn a pydantic location into words (e.g. "question 'natfare'");
    ``in_file(loc)`` says where in the file that location is written, when the file puts it
    elsewhere (the line then comes from there).
    """
    try:
        return model.model_validate(data)
    except ValidationError as error:
        loc = error_location(error.errors()[0])
        line = line_of(node, in_file(loc) if in_file else loc)
        raise input_error(path, error, describe=describe, line=line) from error
