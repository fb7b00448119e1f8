"""Real human survey answers: data files, the mapping that ties them to a questionnaire, and
weighted answer distributions.

A mapping file (YAML) says which data column answers which question, how data codes
become option codes, which codes mean "missing", and where weights and demographics are::

    questionnaire: gss_spending_2018   # the questionnaire's id
    encoding: utf-8                # optional: a CSV file's text encoding (latin-1, cp1252...)
    respondent: id                 # optional: respondent id column (default: row number)
    weight: wtssall                # optional: survey weights (default: 1 each)
    missing: [8, 9]                # codes dropped in every question (nulls always are)
    questions:
      natfare: natfare             # column with the same codes as the options
      natsoc:                      # or a column with its own codes
        column: NATSOC_2018
        codes: {1: "1", 2: "0", 3: "-1"}    # data code (or value label) -> option code
        missing: [0]
    attributes:                    # demographic columns kept beside the answers, as text
      sex: sex                     # the data's value labels or codes
      party:                       # or labels of your own (several codes may share one)
        column: partyid
        labels: {0: Democrat, 1: Democrat, 2: independent, 3: independent, 4: independent,
                 5: Republican, 6: Republican, 7: another party}
      age:                         # or numeric ranges (inclusive; overlaps are refused)
        column: age
        bins: [{label: 18-29, max: 29}, {label: 30-49, min: 30, max: 49}, {label: 50+, min: 50}]
    population:                    # optional: persona cells built from the attributes
      by: [party, age]
      template: "You are {age} years old and identify as {party}."   # fields: attributes

The README's "Your own survey" section walks through a complete example.

With ``labels`` or ``bins``, a value the mapping does not cover is an error listing every such
value (list it under the attribute's ``missing`` to drop it); the respondent keeps their
answers with that attribute empty.

Data files: CSV and Parquet (polars), SPSS ``.sav`` and Stata ``.dta`` (pyreadstat; a code
may be written as its value label too). A data code the mapping does not know is an error
that lists every such code, so nothing is silently dropped.
"""

from __future__ import annotations

import codecs
import itertools
import math
import string
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from survey_sim._codes import declared_code
from survey_sim._yaml import line_of, load_yaml, validate_yaml
from survey_sim.errors import InputError


def _codes_dict(value: Any) -> Any:
    """A YAML mapping of codes (to codes or labels) as text; YAML booleans are refused."""
    if isinstance(value, dict):
        return {declared_code(k): declared_code(v) for k, v in value.items()}
    return value


def _codes_list(value: Any) -> Any:
    """A YAML list of codes as text (other values are left for validation to reject)."""
    return [declared_code(v) for v in value] if isinstance(value, list) else value


def template_fields(template: str | None) -> list[str]:
    """The ``{fields}`` a description template uses, in order, once each."""
    if template is None:
        return []
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field]
    except ValueError as error:
        raise ValueError(f"invalid template: {error}") from error
    return list(dict.fromkeys(fields))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnMapping(_Strict):
    """How one data column answers one question."""

    column: str
    codes: dict[str, str] | None = None
    missing: tuple[str, ...] = ()

    _codes_as_text = field_validator("codes", mode="before")(_codes_dict)
    _missing_as_text = field_validator("missing", mode="before")(_codes_list)


class AttributeBin(_Strict):
    """A numeric range (inclusive bounds; either may be open) that becomes one label."""

    label: str
    min: float = -math.inf
    max: float = math.inf

    def contains(self, value: float) -> bool:
        return self.min <= value <= self.max


class AttributeMapping(_Strict):
    """How one data column becomes a demographic attribute (text)."""

    column: str
    labels: dict[str, str] | None = None
    bins: tuple[AttributeBin, ...] | None = None
    missing: tuple[str, ...] = ()

    _missing_as_text = field_validator("missing", mode="before")(_codes_list)
    _labels_as_text = field_validator("labels", mode="before")(_codes_dict)

    @field_validator("bins")
    @classmethod
    def _disjoint(cls, bins: tuple[AttributeBin, ...] | None) -> tuple[AttributeBin, ...] | None:
        ordered = sorted(bins or (), key=lambda b: (b.min, b.max))
        for lower, upper in itertools.pairwise(ordered):
            if upper.min <= lower.max:
                raise ValueError(
                    f"bins {lower.label!r} and {upper.label!r} overlap (both hold "
                    f"{upper.min:g} to {min(lower.max, upper.max):g}): bounds are inclusive, "
                    "so a value must fall in one bin only"
                )
        return bins

    @model_validator(mode="after")
    def _labels_or_bins(self) -> AttributeMapping:
        if self.labels is not None and self.bins is not None:
            raise ValueError("give 'labels' or 'bins', not both")
        return self

    def value_of(self, code: str, data_label: str | None) -> str | None:
        """The attribute text for one data value (``None``: the mapping does not cover it)."""
        if self.labels is not None:
            return self.labels.get(code, self.labels.get(data_label or ""))
        if self.bins is not None:
            try:
                number = float(code)
            except ValueError:
                return None
            return next((b.label for b in self.bins if b.contains(number)), None)
        return data_label if data_label is not None else code


class PopulationRecipe(_Strict):
    """How respondents' attributes become persona cells (see :meth:`HumanResponses.population`)."""

    by: tuple[str, ...] = Field(min_length=1)
    template: str | None = None
    min_respondents: int = Field(default=1, ge=1)


class DataMapping(_Strict):
    """Ties a data file's columns to a questionnaire (see the module docstring)."""

    questionnaire: str | None = None
    encoding: str = "utf-8"
    respondent: str | None = None
    weight: str | None = None
    missing: tuple[str, ...] = ()
    questions: dict[str, ColumnMapping] = Field(min_length=1)
    attributes: dict[str, AttributeMapping] = {}
    population: PopulationRecipe | None = None

    _missing_as_text = field_validator("missing", mode="before")(_codes_list)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError as error:
            raise ValueError(
                f"unknown text encoding {value!r} (e.g. utf-8, latin-1, cp1252)"
            ) from error
        return value

    @field_validator("questions", "attributes", mode="before")
    @classmethod
    def _column_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"column": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("population")
    @classmethod
    def _cells_from_known_attributes(
        cls, population: PopulationRecipe | None, info: ValidationInfo
    ) -> PopulationRecipe | None:
        attributes = info.data.get("attributes")
        if population is None or attributes is None:  # attributes failed: reported already
            return population
        fields = template_fields(population.template)
        for what, names in (("'by' names", population.by), ("'template' uses", fields)):
            unknown = [name for name in names if name not in attributes]
            if unknown:
                raise ValueError(
                    f"{what} {', '.join(unknown)}, which "
                    f"{'is' if len(unknown) == 1 else 'are'} not under 'attributes' "
                    f"({', '.join(attributes) or 'none'})"
                )
        return population

    _file: Path | None = PrivateAttr(default=None)
    _node: yaml.Node | None = PrivateAttr(default=None)

    @classmethod
    def from_yaml(cls, path: str | Path) -> DataMapping:
        """Load and validate a mapping file."""
        path = Path(path)
        data, node = load_yaml(path)
        if not isinstance(data, dict):
            raise InputError(path, "expected a mapping with 'questions' at the top level")
        mapping = validate_yaml(cls, data, path, node, _describe)
        mapping._file, mapping._node = path, node
        return mapping

    def columns(self) -> list[tuple[str, tuple[str, ...]]]:
        """Every data column the mapping reads, with where it is named (a field location)."""
        named: list[tuple[str, tuple[str, ...]]] = [
            (column, (key,))
            for key in ("respondent", "weight")
            if (column := getattr(self, key)) is not None
        ]
        entries: dict[str, ColumnMapping] | dict[str, AttributeMapping]
        for group, entries in (("questions", self.questions), ("attributes", self.attributes)):
            named += [(entry.column, (group, name, "column")) for name, entry in entries.items()]
        return named

    def error(self, problem: str, location: tuple[str, ...], fallback: str) -> InputError:
        """An error about the entry at ``location``, pointing into the mapping file (its
        line) when the mapping was read from one, else naming ``fallback``."""
        return InputError(
            self._file or fallback,
            problem,
            location=_describe(location),
            line=line_of(self._node, location) if self._file else None,
        )


def _describe(loc: tuple[Any, ...]) -> str | None:
    if len(loc) >= 2 and loc[0] in ("questions", "attributes"):
        rest = ".".join(str(part) for part in loc[2:])
        return f"{loc[0][:-1]} {loc[1]!r}" + (f", field '{rest}'" if rest else "")
    return "field " + ".".join(str(part) for part in loc) if loc else None
