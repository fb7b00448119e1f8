"""Questionnaires in: a questionnaire and a mapping written from an SPSS ``.sav`` or Stata
``.dta`` file's own metadata (pyreadstat), so that its answers can be simulated and compared.

What maps to what:

* a variable with value labels → a question: its label (else its name) is the text, its
  value labels the options in code order; SPSS's measurement level ``ordinal`` makes an
  ordinal question, anything else single-choice (Stata records no level: say ``kind:
  ordinal`` where the options form a scale); codes in the data without a label become
  options whose text is the code, and are listed;
* codes the file declares missing (SPSS missing values) → the question's ``missing`` codes in
  the mapping, not options; labels such as "Don't know" or "Refused" that are not declared
  missing → options marked ``substantive: false``, listed;
* a variable named like a demographic (age, sex, gender, party, education, race, region,
  income...) → an attribute of the mapping, not a question; one named like a weight → the
  mapping's ``weight``; one named like a respondent id → ``respondent``;
* a variable without value labels (a number or text) → left out and listed: numeric answers
  cannot be mapped (write a 0-10 item as 11 ordinal options).

Nothing is dropped silently: :attr:`ImportedSurvey.notes` says what was left out, renamed,
guessed or added, and the questionnaire passes ``survey-sim check``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from survey_sim._codes import code_text
from survey_sim._io import write_set
from survey_sim.errors import InputError

DEMOGRAPHIC = re.compile(
    r"^(age|agegrp|age_group|sex|gender|party|partyid|pid|pid3|pid7|educ|education|degree|"
    r"race|ethnicity|region|state|income|faminc|marital|religion|relig|ideology|polviews)$",
    re.IGNORECASE,
)
WEIGHT = re.compile(r"weight|^wt|wgt", re.IGNORECASE)
RESPONDENT = re.compile(r"^(id|respid|resp_id|caseid|case_id|respondent|respondent_id)$", re.I)
NON_SUBSTANTIVE = re.compile(
    r"\b(don'?t know|dk|refused|no answer|not sure|can'?t choose|prefer not to say|skipped|"
    r"not asked|inapplicable)\b",
    re.IGNORECASE,
)
_ID = re.compile(r"[^A-Za-z0-9_.\-]")


@dataclass
class ImportedSurvey:
    """A questionnaire and a mapping made from a data file, and what the import noted.

    Attributes:
        questionnaire: The questionnaire, as YAML-ready data.
        mapping: The mapping from the file's columns, as YAML-ready data.
        notes: Everything left out, renamed, guessed or added, one line each.
    """

    questionnaire: dict[str, Any]
    mapping: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def write(self, questionnaire_path: Path, mapping_path: Path) -> list[Path]:
        """Write both files (YAML) as one set: both or neither."""

        def writer(data: dict[str, Any]) -> Callable[[str], object]:
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
            return lambda temporary: Path(temporary).write_text(text)

        return write_set(
            {questionnaire_path: writer(self.questionnaire), mapping_path: writer(self.mapping)}
        )


def import_data_file(path: Path, survey_id: str | None = None) -> ImportedSurvey:
    """A questionnaire and mapping from ``path``'s metadata (module docstring).

    Args:
        survey_id: The questionnaire's id (default: the file's name).

    Raises:
        InputError: not a .sav or .dta file, pyreadstat missing or the file unreadable, or
            no variable with value labels.
    """
    suffix = path.suffix.lower()
    if suffix not in (".sav", ".dta"):
        raise InputError(path, "import reads SPSS (.sav) and Stata (.dta) files")
    try:
        import pyreadstat
    except ImportError as error:
        raise InputError(
            path, "reading SPSS/Stata files needs pyreadstat: pip install 'survey-sim[data]'"
        ) from error
    try:
        if suffix == ".sav":  # user_missing: the declared missing values are reported
            frame, meta = pyreadstat.read_sav(str(path), output_format="polars", user_missing=True)
        else:
            frame, meta = pyreadstat.read_dta(str(path), output_format="polars")
    except (pyreadstat.ReadstatError, OSError) as error:
        raise InputError(path, f"cannot read: {error}") from error
    survey_id = survey_id or _ID.sub("_", path.stem)
    notes: list[str] = []
    questions: list[dict[str, Any]] = []
    mapped: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    mapping: dict[str, Any] = {"questionnaire": survey_id}
    measures = getattr(meta, "variable_measure", {}) or {}
    declared = _declared_missing(meta)
    for column in frame.columns:
        label = (meta.column_names_to_labels or {}).get(column)
        value_labels = (meta.variable_value_labels or {}).get(column)
        if RESPONDENT.match(column) and "respondent" not in mapping:
            mapping["respondent"] = column
            continue
        if WEIGHT.match(column) and not value_labels and "weight" not in mapping:
            mapping["weight"] = column
            notes.append(f"{column}: taken as the survey weights (check that it is)")
            continue
        if DEMOGRAPHIC.match(column):
            attributes[column] = column
            continue
        if not value_labels:
            notes.append(
                f"{column}: left out (no value labels: a number or text; numeric answers "
                "cannot be mapped, write a scale as ordinal options)"
            )
            continue
        question_id = _ID.sub("_", column)
        if question_id != column:
            notes.append(
                f"{column}: question id {question_id!r} (ids cannot hold some of the name's "
                "characters)"
            )
        missing = declared.get(column, set())
        labelled = {code_text(code): str(text) for code, text in value_labels.items()}
        present = {code_text(v) for v in frame[column].drop_nulls().unique().to_list()}
        unlabelled = sorted(present - set(labelled) - missing, key=_order)
        if unlabelled:
            notes.append(
                f"{column}: codes {', '.join(unlabelled)} have no value label; added as options "
                "whose text is the code"
            )
        options = []
        for code in sorted({*labelled, *unlabelled} - missing, key=_order):
            option: dict[str, Any] = {"code": code, "text": labelled.get(code, code)}
            if NON_SUBSTANTIVE.search(option["text"]):
                option["substantive"] = False
                notes.append(
                    f"{column}: {code} {option['text']!r} kept as a non-substantive option "
                    "(not declared missing in the file)"
                )
            options.append(option)
        if missing:
            notes.append(
                f"{column}: codes {', '.join(sorted(missing, key=_order))} declared missing in "
                "the file: not options, listed as missing in the mapping"
            )
        if len(options) < 2:
            notes.append(f"{column}: left out (fewer than two answer options)")
            continue
        ordinal = measures.get(column) == "ordinal"
        if not ordinal and measures.get(column) != "nominal":
            notes.append(
                f"{column}: kind single_choice, the file records no nominal level (set kind: "
                "ordinal if its options form a scale)"
            )
        questions.append(
            {
                "id": question_id,
                "kind": "ordinal" if ordinal else "single_choice",
                "text": " ".join((label or column).split()),
                "options": options,
            }
        )
        mapped[question_id] = (
            column if not missing else {"column": column, "missing": sorted(missing, key=_order)}
        )
    if not questions:
        raise InputError(path, "no variable with value labels: nothing to ask")
    mapping["questions"] = mapped
    if attributes:
        mapping["attributes"] = attributes
    questionnaire = {
        "id": survey_id,
        "title": (getattr(meta, "file_label", None) or survey_id),
        "source": path.name,
        "questions": questions,
    }
    return ImportedSurvey(questionnaire, mapping, notes)


def _declared_missing(meta: Any) -> dict[str, set[str]]:
    """The codes the file declares missing, per variable (SPSS discrete missing values and
    ranges over labelled codes)."""
    declared: dict[str, set[str]] = {}
    for column, ranges in (getattr(meta, "missing_ranges", None) or {}).items():
        labelled = (meta.variable_value_labels or {}).get(column, {})
        for entry in ranges:
            low, high = entry["lo"], entry["hi"]
            codes = {code_text(code) for code in labelled if low <= code <= high}
            if low == high:
                codes.add(code_text(low))
            declared.setdefault(column, set()).update(codes)
    return declared


def _order(code: str) -> tuple[int, float, str]:
    """Codes in numeric order, text codes after them."""
    try:
        return (0, float(code), code)
    except ValueError:
        return (1, 0.0, code)
