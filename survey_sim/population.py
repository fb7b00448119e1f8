"""Populations: persona cells with attributes, a rendered description and a weight.

A population is a table (``Population.frame``, polars) with one row per persona:
``persona_id``, ``weight``, ``description`` and one column per attribute. The description is
what a prompt format shows the model; it is either written out per persona or rendered from a
template over the attributes (Python ``str.format`` fields, e.g. ``"{age}-year-old {sex}"``).

Two file forms are read:

* **CSV**: columns ``id``, optional ``weight`` (default 1) and ``description``; every other
  column is an attribute. Without a description column, a template (argument) or the default
  profile listing is used.
* **YAML**::

      id: demo_adults
      template: "You are a {age}-year-old {sex} from the {region}."
      personas:                      # or: table: adults.csv (relative to this file)
        - {id: p01, weight: 0.12, attributes: {age: 34, sex: woman, region: Midwest}}
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from survey_sim._io import write_atomic
from survey_sim._yaml import line_of, load_yaml, read_text, validate_yaml
from survey_sim.errors import InputError, input_error

AttributeValue = str | int | float | bool | None
_RECORDS = Path("<records>")


class Persona(BaseModel):
    """One persona cell: who answers, and how much it counts in the population."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    description: str = Field(min_length=1)
    weight: float = 1.0
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("weight")
    @classmethod
    def _positive_weight(cls, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"weight must be a positive finite number, got {value}")
        return value


def default_description(attributes: Mapping[str, AttributeValue]) -> str:
    """The description used when neither a description nor a template is given."""
    lines = [f"- {name.replace('_', ' ')}: {value}" for name, value in attributes.items()]
    return "Survey respondent profile:\n" + "\n".join(lines)


class Population:
    """A weighted set of personas, held as a polars frame (one row per persona)."""

    def __init__(self, personas: list[Persona], *, id: str = "population") -> None:
        if not personas:
            raise ValueError("a population needs at least one persona")
        counts = Counter(p.id for p in personas)
        duplicates = sorted(i for i, count in counts.items() if count > 1)
        if duplicates:
            raise ValueError(f"duplicate persona id: {', '.join(duplicates)}")
        self.id = id
        self._personas = tuple(personas)

    def __iter__(self) -> Iterator[Persona]:
        return iter(self._personas)

    def __len__(self) -> int:
        return len(self._personas)

    def __repr__(self) -> str:
        return f"Population(id={self.id!r}, personas={len(self)})"

    @property
    def frame(self) -> pl.DataFrame:
        """``persona_id``, ``weight``, ``description`` and one column per attribute."""
        rows = [
            {"persona_id": p.id, "weight": p.weight, "description": p.description, **p.attributes}
            for p in self._personas
        ]
        return pl.from_dicts(rows, infer_schema_length=None, strict=False)

    def write_csv(self, path: str | Path) -> Path:
        """Write the personas as a CSV table that :meth:`from_csv` reads back."""
        table = self.frame.rename({"persona_id": "id"})
        return write_atomic(Path(path), table.write_csv)

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        template: str | None = None,
        id: str = "population",
    ) -> Population:
        """Personas from dicts with keys ``id``, optional ``weight`` and ``description``, and
        attributes (every other key)."""
        rows = [_persona_fields(record, template, _RECORDS, line=None) for record in records]
        return cls._from_rows(rows, _RECORDS, id=id)

    @classmethod
    def from_frame(
        cls, frame: pl.DataFrame, *, template: str | None = None, id: str = "population"
    ) -> Population:
        """Personas from a polars frame with the columns :meth:`from_records` takes as keys."""
        return cls.from_records(frame.to_dicts(), template=template, id=id)

    @classmethod
    def from_file(cls, path: str | Path, *, template: str | None = None) -> Population:
        """Load a population from ``.csv`` or ``.yaml``/``.yml`` (see the module docstring)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".csv":
            return cls.from_csv(path, template=template)
        if suffix in (".yaml", ".yml"):
            return cls.from_yaml(path)
        raise InputError(path, f"unsupported persona file type {suffix!r}; use .csv or .yaml")

    @classmethod
    def from_csv(
        cls, path: str | Path, *, template: str | None = None, id: str | None = None
    ) -> Population:
        """Load personas from a CSV table (columns ``id``, ``weight``, ``description``, ...)."""
        path = Path(path)
        text = read_text(path)
        try:
            table = pl.read_csv(text.encode(), infer_schema_length=None)
        except (pl.exceptions.PolarsError, ValueError) as error:
            raise InputError(path, f"cannot parse CSV: {error}") from error
        if "id" not in table.columns:
            raise InputError(path, f"needs an 'id' column (columns: {', '.join(table.columns)})")
        rows = [
            _persona_fields(row, template, path, line=index + 2)
            for index, row in enumerate(table.iter_rows(named=True))
        ]
        return cls._from_rows(rows, path, id=id or path.stem)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Population:
        """Load personas from YAML: inline ``personas`` or a ``table`` CSV, plus a template."""
        path = Path(path)
        data, node = load_yaml(path)
        spec = validate_yaml(_PopulationFile, data, path, node)
        population_id = spec.id or path.stem
        if spec.table is not None:
            table_path = path.parent / spec.table
            return cls.from_csv(table_path, template=spec.template, id=population_id)
        rows = []
        for index, entry in enumerate(spec.personas or []):
            fields = {"id": entry.id, "weight": entry.weight, **entry.attributes}
            if entry.description is not None:
                fields["description"] = entry.description
            line = line_of(node, ("personas", index))
            rows.append(_persona_fields(fields, spec.template, path, line=line))
        return cls._from_rows(rows, path, id=population_id)

    @classmethod
    def _from_rows(cls, rows: list[dict[str, Any]], path: Path, *, id: str) -> Population:
        personas = []
        for fields in rows:
            line = fields.pop("_line")
            try:
                personas.append(Persona.model_validate(fields))
            except ValidationError as error:
                persona = fields.get("id")

                def in_persona(loc: tuple[Any, ...], persona: Any = persona) -> str:
                    return f"persona {persona!r}, field '{'.'.join(str(part) for part in loc)}'"

                raise input_error(path, error, describe=in_persona, line=line) from error
        try:
            return cls(personas, id=id)
        except ValueError as error:
            raise InputError(path, str(error)) from error


class _PersonaEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | int
    weight: float = 1.0
    description: str | None = None
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)


class _PopulationFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    template: str | None = None
    table: str | None = None
    personas: list[_PersonaEntry] | None = None

    def model_post_init(self, context: Any) -> None:
        if (self.table is None) == (self.personas is None):
            raise ValueError("give exactly one of 'personas' (a list) or 'table' (a CSV path)")


def _persona_fields(
    row: Mapping[str, Any], template: str | None, path: Path, *, line: int | None
) -> dict[str, Any]:
    """Split a raw row into Persona fields, rendering the description when needed."""
    attributes = {
        key: value for key, value in row.items() if key not in ("id", "weight", "description")
    }
    persona_id = row.get("id")
    weight = row.get("weight")
    description = row.get("description")
    if description is None:
        description = _render(template, attributes, path, persona_id, line)
    return {
        "id": persona_id,
        "weight": 1.0 if weight is None and "weight" not in row else weight,
        "description": description,
        "attributes": attributes,
        "_line": line,
    }


def _render(
    template: str | None,
    attributes: Mapping[str, AttributeValue],
    path: Path,
    persona_id: Any,
    line: int | None,
) -> str:
    if template is None:
        return default_description(attributes)
    try:
        return template.format_map(attributes)
    except KeyError as error:
        known = ", ".join(attributes) or "none"
        raise InputError(
            path,
            f"template uses {{{error.args[0]}}}, which is not an attribute (attributes: {known})",
            location=f"persona {persona_id!r}",
            line=line,
        ) from error
    except (ValueError, IndexError) as error:
        raise InputError(path, f"invalid template: {error}", location="field 'template'") from error
