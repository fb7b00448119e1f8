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

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from survey_sim._codes import code_text
from survey_sim._conditions import ConditionError, parse_condition
from survey_sim._io import write_set
from survey_sim.errors import InputError
from survey_sim.questionnaire import MAX_RANKINGS

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
        """Write both files (YAML) as one set: both or neither (the questionnaire alone for
        a form, which holds no answers to map)."""

        def writer(data: dict[str, Any]) -> Callable[[str], object]:
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
            return lambda temporary: Path(temporary).write_text(text)

        writers = {questionnaire_path: writer(self.questionnaire)}
        if self.mapping:
            writers[mapping_path] = writer(self.mapping)
        return write_set(writers)


IMPORT_SUFFIXES = (".sav", ".dta", ".xlsx", ".json", ".qsf")


def import_file(path: Path, survey_id: str | None = None) -> ImportedSurvey:
    """A questionnaire (and, from a data file, a mapping) from an SPSS or Stata data file
    (:func:`import_data_file`), an XLSForm (:func:`import_xlsform`), a SurveyJS survey
    (:func:`import_surveyjs`) or a Qualtrics export (:func:`import_qualtrics`), by suffix.

    Raises:
        InputError: another suffix, or what the importer raises.
    """
    suffix = path.suffix.lower()
    if suffix not in IMPORT_SUFFIXES:
        raise InputError(
            path,
            f"import reads {', '.join(IMPORT_SUFFIXES)} files (SPSS, Stata, XLSForm, SurveyJS, "
            "Qualtrics)",
        )
    if suffix == ".xlsx":
        return import_xlsform(path, survey_id)
    if suffix == ".json":
        return import_surveyjs(path, survey_id)
    if suffix == ".qsf":
        return import_qualtrics(path, survey_id)
    return import_data_file(path, survey_id)


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
            path, "reading SPSS/Stata files needs pyreadstat: pip install 'survey-sim[analysis]'"
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
                "the file: not options, listed as missing in the mapping and kept as the "
                "question's missing_codes (exports declare them missing again)"
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
        question = {
            "id": question_id,
            "kind": "ordinal" if ordinal else "single_choice",
            "text": " ".join((label or column).split()),
            "options": options,
        }
        if missing:
            question["missing_codes"] = [
                {"code": code, "text": labelled.get(code, f"missing ({code})")}
                for code in sorted(missing, key=_order)
            ]
        questions.append(question)
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


XLSFORM_SKIPPED = frozenset(
    {
        "note", "calculate", "start", "end", "today", "deviceid", "subscriberid", "simserial",
        "phonenumber", "username", "audit", "hidden", "image", "audio", "video", "file",
        "geopoint", "geotrace", "geoshape", "barcode", "acknowledge", "date", "time",
        "datetime", "range",
    }
)  # fmt: skip
"""XLSForm types that ask nothing survey-sim can simulate (left out, each noted)."""
_COMPARISON = re.compile(r"\$\{(\w+)\}\s*(!=|<=|>=|=|<|>)\s*('[^']*'|\"[^\"]*\"|-?\d+(?:\.\d+)?)")
_SELECTED = re.compile(r"selected\(\s*\$\{(\w+)\}\s*,\s*('[^']*'|\"[^\"]*\")\s*\)")
_RANGE = re.compile(r"^\.\s*>=?\s*(-?\d+(?:\.\d+)?)\s+and\s+\.\s*<=?\s*(-?\d+(?:\.\d+)?)$")


def import_xlsform(path: Path, survey_id: str | None = None) -> ImportedSurvey:
    """A questionnaire from an XLSForm (``.xlsx``: ``survey``, ``choices`` and optional
    ``settings`` sheets, as ODK, KoboToolbox and SurveyCTO use):

    * ``select_one LIST`` → single-choice (say ``kind: ordinal`` where the choices form a
      scale), ``select_multiple LIST`` → multi-select, ``rank LIST`` → rank (the top few
      places when all would be too many rankings, noted), ``text`` → free text, ``integer`` /
      ``decimal`` → numeric with the range of a ``. >= A and . <= B`` constraint (without
      one: left out, noted);
    * ``begin group`` ... ``end group`` → a block (nested groups: the outermost), and the
      questions between groups blocks of their own (``part1``, ...), in the form's order;
      a group with appearance ``field-list`` or ``table-list`` whose questions are
      ``select_one`` over one list (two or more, no ``relevant`` of their own) → also a
      grid: the group's label is the stem, each question a row (single-choice; noted);
    * ``relevant`` → ``ask_if`` where it translates (comparisons of earlier answers,
      ``selected()`` on single-choice questions, ``and`` / ``or`` / ``not``), else left out
      and noted; every other type (notes, calculations, metadata, media) is left out, noted.

    The form holds no answers: the result has no mapping.

    Raises:
        InputError: not readable as an XLSForm (no survey sheet, no type/name columns).
    """
    try:
        import openpyxl  # type: ignore[import-untyped]
    except ImportError as error:
        raise InputError(
            path, "reading XLSForms needs openpyxl: pip install 'survey-sim[analysis]'"
        ) from error
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a file that is not .xlsx
        raise InputError(path, f"cannot read as an Excel workbook: {error}") from error
    sheets = {name.lower(): book[name] for name in book.sheetnames}
    if "survey" not in sheets:
        raise InputError(path, "no 'survey' sheet: not an XLSForm")
    survey = _sheet_rows(sheets["survey"])
    if not survey or not {"type", "name"} <= set(survey[0]):
        raise InputError(path, "the survey sheet needs 'type' and 'name' columns")
    choices: dict[str, list[dict[str, str]]] = {}
    for row in _sheet_rows(sheets["choices"]) if "choices" in sheets else []:
        listed = row.get("list_name") or row.get("list name")
        if listed and row.get("name"):
            choices.setdefault(listed, []).append(
                {"code": row["name"], "text": _label(row) or row["name"]}
            )
    settings = _sheet_rows(sheets["settings"]) if "settings" in sheets else []
    form = settings[0] if settings else {}
    survey_id = survey_id or _ID.sub("_", form.get("form_id") or path.stem)
    notes: list[str] = []
    questions: list[dict[str, Any]] = []
    kinds: dict[str, str] = {}
    blocks: list[dict[str, Any]] = []
    groups: list[str] = []
    matrix: dict[str, Any] | None = None
    lists: dict[str, str] = {}
    for number, row in enumerate(survey, start=2):
        kind, _, listed = (row.get("type") or "").strip().partition(" ")
        name = row.get("name") or ""
        where = f"survey row {number} ({name or kind})"
        structure = listed.strip() in ("group", "repeat")
        if kind in ("begin_group", "begin_repeat") or (kind == "begin" and structure):
            group = name or f"group{number}"
            if "repeat" in (kind, listed.strip()) or kind == "begin_repeat":
                notes.append(f"{where}: a repeat; its questions are asked once")
            if groups:
                notes.append(f"{where}: a group inside {groups[0]!r}: its questions join it")
            else:
                blocks.append({"id": _ID.sub("_", group), "questions": [], "group": True})
                if MATRIX_APPEARANCES & set((row.get("appearance") or "").split()):
                    stem = _label(row) or group
                    matrix = {"id": _ID.sub("_", group), "text": stem, "where": where}
                    matrix["start"] = len(questions)
            groups.append(group)
            continue
        if kind in ("end_group", "end_repeat") or (kind == "end" and structure):
            if groups:
                groups.pop()
            if not groups and matrix is not None:
                grid = _as_grid(matrix, questions[matrix["start"] :], lists)
                if grid is not None:
                    questions[matrix["start"] :] = [grid]
                    notes.append(_grid_note(matrix["where"], grid, "row"))
                matrix = None
            continue
        if not kind or kind in XLSFORM_SKIPPED:
            if kind:
                notes.append(f"{where}: type {kind} left out (it asks nothing to simulate)")
            continue
        question: dict[str, Any] = {"id": _ID.sub("_", name), "text": _label(row) or name}
        if kind in ("select_one", "select_multiple", "rank"):
            listed = listed.strip()
            if len(choices.get(listed, [])) < 2:
                notes.append(
                    f"{where}: choice list {listed!r} has fewer than two choices; left out"
                )
                continue
            if kind == "rank":
                question = _rank(question["id"], question["text"], choices[listed], where, notes)
            else:
                question["kind"] = "single_choice" if kind == "select_one" else "multi_select"
                question["options"] = choices[listed]
                lists[question["id"]] = listed
        elif kind == "text":
            question["kind"] = "free_text"
        elif kind in ("integer", "decimal"):
            bounds = _RANGE.match((row.get("constraint") or "").strip())
            if not bounds:
                notes.append(
                    f"{where}: a number without a '. >= A and . <= B' constraint; left out "
                    "(numeric questions need a range)"
                )
                continue
            question.update(
                kind="numeric",
                minimum=float(bounds.group(1)),
                maximum=float(bounds.group(2)),
                integer=kind == "integer",
            )
        else:
            notes.append(f"{where}: type {kind!r} is not carried over")
            continue
        relevant = (row.get("relevant") or "").strip()
        if relevant:
            condition = _translated_condition(relevant, kinds)
            if condition is None:
                notes.append(f"{where}: relevant {relevant!r} does not translate; left out")
            else:
                question["ask_if"] = condition
        questions.append(question)
        kinds[name] = question["kind"]
        if not groups and (not blocks or blocks[-1].get("group")):
            blocks.append({"id": f"part{len(blocks) + 1}", "questions": []})
        blocks[-1]["questions"].append(question["id"])
    if not questions:
        raise InputError(path, "no question survey-sim can ask in the survey sheet")
    grouped = any(block.get("group") for block in blocks)
    kept = [
        {"id": block["id"], "questions": block["questions"]}
        for block in blocks
        if grouped and block["questions"]
    ]
    return _form(survey_id, form.get("form_title") or survey_id, path, questions, kept, notes)


MATRIX_APPEARANCES = {"field-list", "table-list"}
"""XLSForm group appearances that show the group's questions as one matrix."""


def _as_grid(
    matrix: dict[str, Any], members: list[dict[str, Any]], lists: dict[str, str]
) -> dict[str, Any] | None:
    """A matrix group's questions as one grid entry when they are two or more single-choice
    questions over one choice list without conditions of their own (else ``None``: they
    stay as they are)."""
    listed = {lists.get(question["id"]) for question in members}
    if (
        len(members) < 2
        or None in listed
        or len(listed) > 1
        or any(q["kind"] != "single_choice" or "ask_if" in q for q in members)
    ):
        return None
    rows = [{"id": q["id"], "text": q["text"]} for q in members]
    return _grid(matrix["id"], matrix["text"], members[0]["options"], rows, "single_choice")


def _form(
    survey_id: str,
    title: str,
    path: Path,
    questions: list[dict[str, Any]],
    blocks: list[dict[str, Any]],
    notes: list[str],
) -> ImportedSurvey:
    """An imported form (no answers, so no mapping): its questionnaire, with ``blocks``
    where there are any."""
    questionnaire: dict[str, Any] = {
        "id": survey_id,
        "title": title,
        "source": path.name,
        "questions": questions,
    }
    if blocks:
        questionnaire["blocks"] = blocks
    return ImportedSurvey(questionnaire, {}, notes)


def _sheet_rows(sheet: Any) -> list[dict[str, str]]:
    """A sheet's rows as dicts keyed by its lower-cased header (blank rows dropped)."""
    rows = sheet.iter_rows(values_only=True)
    header = [str(cell).strip().lower() if cell is not None else "" for cell in next(rows, ())]
    return [
        {
            key: str(value).strip()
            for key, value in zip(header, row, strict=False)
            if key and value is not None
        }
        for row in rows
        if any(value is not None for value in row)
    ]


def _label(row: dict[str, str]) -> str:
    """A row's label: ``label``, else the first ``label::LANGUAGE`` column."""
    if row.get("label"):
        return " ".join(row["label"].split())
    for key, value in row.items():
        if key.startswith("label::") and value:
            return " ".join(value.split())
    return ""


def _translated_condition(relevant: str, kinds: dict[str, str]) -> str | None:
    """An XLSForm ``relevant`` expression (references ``${q}``) as an ``ask_if`` condition,
    or ``None`` where it does not translate (other functions, multi-select tests, questions
    not asked before)."""

    def compared(match: re.Match[str]) -> str:
        name, operator, value = match.group(1), match.group(2), match.group(3)
        if kinds.get(name) not in ("single_choice", "numeric"):
            raise ValueError(name)
        operator = "==" if operator == "=" else operator
        if kinds[name] == "single_choice":
            value = '"' + value.strip("'\"") + '"'
        return f"{name} {operator} {value}"

    def selected(match: re.Match[str]) -> str:
        name = match.group(1)
        if kinds.get(name) != "single_choice":
            raise ValueError(name)
        return f'{name} == "{match.group(2).strip(chr(39) + chr(34))}"'

    try:
        text = _SELECTED.sub(selected, _COMPARISON.sub(compared, relevant))
    except ValueError:
        return None
    text = re.sub(r"\bnot\s*\(", "not (", text)
    if "${" in text or re.search(r"[A-Za-z_-]+\(", text.replace("not (", "")):
        return None
    try:
        parse_condition(text)
    except ConditionError:
        return None
    return text


SURVEYJS_SKIPPED = frozenset(
    {"html", "expression", "image", "signaturepad", "file", "paneldynamic"}
)
"""SurveyJS element types that ask nothing survey-sim can simulate (left out, noted)."""


def import_surveyjs(path: Path, survey_id: str | None = None) -> ImportedSurvey:
    """A questionnaire from a SurveyJS survey (JSON):

    * ``radiogroup`` / ``dropdown`` → single-choice, ``checkbox`` / ``tagbox`` →
      multi-select, ``rating`` → ordinal (``rateValues``, else ``rateMin`` to ``rateMax``),
      ``boolean`` → single-choice with codes ``true`` / ``false``, ``comment`` and ``text``
      → free text (``inputType: number`` with ``min`` and ``max`` → numeric);
    * ``matrix`` → a grid (the stem shared, one ordinal question per row), noted;
    * pages → blocks (panels join their page's block);
    * ``visibleIf`` → ``ask_if`` where it translates (``{q} = 'a'``, ``<>``, comparisons,
      ``notempty`` / ``empty``, ``and`` / ``or`` / ``not``), else left out, noted;
      ``ranking`` → rank (the top few places when all would be too many rankings, noted);
      HTML, expressions and other elements are left out, noted.

    Raises:
        InputError: not JSON, or not a survey (no pages or elements).
    """
    import json

    try:
        survey = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(path, f"cannot read as JSON: {error}") from error
    pages = survey.get("pages") if isinstance(survey, dict) else None
    if pages is None and isinstance(survey, dict) and "elements" in survey:
        pages = [{"name": "page1", "elements": survey["elements"]}]
    if not isinstance(pages, list) or not pages:
        raise InputError(path, "no 'pages' or 'elements': not a SurveyJS survey")
    survey_id = survey_id or _ID.sub("_", path.stem)
    notes: list[str] = []
    questions: list[dict[str, Any]] = []
    kinds: dict[str, str] = {}
    blocks: list[dict[str, Any]] = []

    def add(element: dict[str, Any], block: list[str]) -> None:
        kind, name = element.get("type", ""), str(element.get("name", ""))
        where = f"element {name or kind!r}"
        if kind == "panel":
            for inner in element.get("elements", []):
                add(inner, block)
            return
        text = " ".join(str(element.get("title") or name).split())
        made: list[dict[str, Any]] = []
        if kind in ("radiogroup", "dropdown", "checkbox", "tagbox"):
            options = _surveyjs_choices(element.get("choices", []))
            question_kind = (
                "single_choice" if kind in ("radiogroup", "dropdown") else "multi_select"
            )
            made.append({"id": name, "kind": question_kind, "text": text, "options": options})
        elif kind == "ranking":
            made.append(
                _rank(name, text, _surveyjs_choices(element.get("choices", [])), where, notes)
            )
        elif kind == "rating":
            values = element.get("rateValues") or list(
                range(int(element.get("rateMin", 1)), int(element.get("rateMax", 5)) + 1)
            )
            made.append(
                {"id": name, "kind": "ordinal", "text": text, "options": _surveyjs_choices(values)}
            )
        elif kind == "boolean":
            options = [
                {"code": "true", "text": str(element.get("labelTrue", "Yes"))},
                {"code": "false", "text": str(element.get("labelFalse", "No"))},
            ]
            made.append({"id": name, "kind": "single_choice", "text": text, "options": options})
        elif kind == "text" and element.get("inputType") == "number":
            if "min" not in element or "max" not in element:
                notes.append(f"{where}: a number without min and max; left out")
                return
            made.append(
                {
                    "id": name,
                    "kind": "numeric",
                    "text": text,
                    "minimum": float(element["min"]),
                    "maximum": float(element["max"]),
                }
            )
        elif kind in ("text", "comment"):
            made.append({"id": name, "kind": "free_text", "text": text})
        elif kind == "matrix":
            rows = [
                {"id": _ID.sub("_", f"{name}_{row['code']}"), "text": row["text"]}
                for row in _surveyjs_choices(element.get("rows", []))
            ]
            columns = _surveyjs_choices(element.get("columns", []))
            made.append(_grid(name, text, columns, rows))
            notes.append(_grid_note(where, made[-1], "row"))
        else:
            reason = "asks nothing to simulate" if kind in SURVEYJS_SKIPPED else "not carried over"
            notes.append(f"{where}: type {kind} left out ({reason})")
            return
        visible = str(element.get("visibleIf") or "").strip()
        condition = None
        if visible:
            condition = _translated_condition(_surveyjs_expression(visible), kinds)
            if condition is None:
                notes.append(f"{where}: visibleIf {visible!r} does not translate; left out")
        for question in made:
            question["id"] = _ID.sub("_", question["id"])
            if condition is not None:
                question["ask_if"] = condition
            if question.get("options") is not None and len(question["options"]) < 2:
                notes.append(f"{where}: fewer than two choices; left out")
                continue
            questions.append(question)
            kinds.update(_answer_kinds(question))
            block.append(question["id"])

    for number, page in enumerate(pages, start=1):
        block: list[str] = []
        for element in page.get("elements", []):
            add(element, block)
        if block:
            blocks.append(
                {"id": _ID.sub("_", str(page.get("name") or f"page{number}")), "questions": block}
            )
    if not questions:
        raise InputError(path, "no element survey-sim can ask")
    title = str(survey.get("title") or survey_id)
    return _form(survey_id, title, path, questions, blocks if len(blocks) > 1 else [], notes)


def _surveyjs_choices(choices: list[Any]) -> list[dict[str, str]]:
    """SurveyJS choices (plain values, or ``{value, text}``) as options."""
    options = []
    for choice in choices:
        if isinstance(choice, dict):
            value = choice.get("value")
            text = choice.get("text", value)
        else:
            value = text = choice
        if isinstance(text, dict):  # localised texts: the default language
            text = text.get("default", next(iter(text.values()), value))
        options.append({"code": code_text(value), "text": " ".join(str(text).split())})
    return options


def _surveyjs_expression(expression: str) -> str:
    """A SurveyJS expression in XLSForm's reference syntax, with its other operators
    spelled as the condition language spells them."""
    text = re.sub(r"\{(\w+)\}", r"${\1}", expression)
    text = re.sub(r"\$\{(\w+)\}\s+notempty\b", r"\1 is answered", text)
    text = re.sub(r"\$\{(\w+)\}\s+empty\b", r"\1 is skipped", text)
    return text.replace("<>", "!=").replace("!(", "not (")


def import_qualtrics(path: Path, survey_id: str | None = None) -> ImportedSurvey:
    """A questionnaire from a Qualtrics survey export (``.qsf``, JSON):

    * multiple choice (``MC``): single answer → single-choice, multiple answer →
      multi-select; codes are the recode values where set, else the choice numbers;
    * ``Matrix`` (Likert) → a grid (the stem shared, one ordinal question per statement),
      noted; text entry (``TE``)
      → free text; rank order (``RO``) → rank (the top few places when all would be too
      many rankings, noted); sliders, descriptive text and the rest → left out, noted;
    * blocks → blocks, in the survey's block order (the survey flow's randomisers and
      branches are not read: noted);
    * display logic → ``ask_if`` where it is "choice selected / not selected" on earlier
      single-choice questions joined by and / or; else left out, noted.

    Ids are the questions' export tags (``DataExportTag``); HTML in texts is removed.

    Raises:
        InputError: not JSON, or no questions (``SQ`` elements).
    """
    import json

    try:
        export = json.loads(path.read_text(encoding="utf-8"))
        elements = export["SurveyElements"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise InputError(path, f"cannot read as a Qualtrics survey (.qsf): {error}") from error
    entry = export.get("SurveyEntry", {})
    survey_id = survey_id or _ID.sub("_", str(entry.get("SurveyID") or path.stem))
    notes: list[str] = ["the survey flow (randomisers, branches) is not read: blocks in order"]
    payloads = {e["PrimaryAttribute"]: e["Payload"] for e in elements if e.get("Element") == "SQ"}
    if not payloads:
        raise InputError(path, "no questions (SQ elements) in the export")
    block_payload: Any = next((e["Payload"] for e in elements if e.get("Element") == "BL"), {})
    listed = block_payload.values() if isinstance(block_payload, dict) else block_payload
    order: list[tuple[str, list[str]]] = []
    for entry_block in listed:
        ids = [
            item["QuestionID"]
            for item in entry_block.get("BlockElements", [])
            if item.get("Type") == "Question" and item.get("QuestionID") in payloads
        ]
        if ids:
            order.append((str(entry_block.get("Description") or entry_block.get("ID")), ids))
    if not order:
        order = [("block1", list(payloads))]
    questions: list[dict[str, Any]] = []
    kinds: dict[str, str] = {}
    codes_of: dict[str, dict[str, str]] = {}
    tags: dict[str, str] = {}
    blocks: list[dict[str, Any]] = []
    for description, ids in order:
        block: list[str] = []
        for qid in ids:
            payload = payloads[qid]
            tag = _ID.sub("_", str(payload.get("DataExportTag") or qid))
            tags[qid] = tag
            text = _plain(str(payload.get("QuestionText", tag)))
            kind, selector = payload.get("QuestionType"), payload.get("Selector")
            where = f"question {tag}"
            made: list[dict[str, Any]] = []
            if kind == "MC":
                options, codes = _qualtrics_choices(payload, "Choices", "ChoiceOrder")
                codes_of[qid] = codes
                single = selector in ("SAVR", "SAHR", "SACOL", "DL", "SB")
                made.append(
                    {
                        "id": tag,
                        "kind": "single_choice" if single else "multi_select",
                        "text": text,
                        "options": options,
                    }
                )
            elif kind == "RO":
                options, _ = _qualtrics_choices(payload, "Choices", "ChoiceOrder")
                made.append(_rank(tag, text, options, where, notes))
            elif kind == "Matrix":
                columns, _ = _qualtrics_choices(payload, "Answers", "AnswerOrder")
                statements, row_codes = _qualtrics_choices(payload, "Choices", "ChoiceOrder")
                rows = [
                    {"id": _ID.sub("_", f"{tag}_{code}"), "text": row["text"]}
                    for row, code in zip(statements, row_codes.values(), strict=True)
                ]
                made.append(_grid(tag, text, columns, rows))
                notes.append(_grid_note(where, made[-1], "statement"))
            elif kind == "TE":
                made.append({"id": tag, "kind": "free_text", "text": text})
            else:
                notes.append(f"{where}: type {kind} ({selector}) left out (not carried over)")
                continue
            logic = payload.get("DisplayLogic")
            condition = None
            if logic:
                condition = _qualtrics_condition(logic, kinds, codes_of, tags)
                if condition is None:
                    notes.append(f"{where}: display logic does not translate; left out")
            for question in made:
                if question.get("options") is not None and len(question["options"]) < 2:
                    notes.append(f"{where}: fewer than two choices; left out")
                    continue
                if condition is not None:
                    question["ask_if"] = condition
                questions.append(question)
                kinds[qid] = question.get("scale", question["kind"])
                block.append(question["id"])
        if block:
            block_id = _ID.sub("_", description) or f"block{len(blocks) + 1}"
            blocks.append({"id": block_id, "questions": block})
    title = str(entry.get("SurveyName") or survey_id)
    return _form(survey_id, title, path, questions, blocks if len(blocks) > 1 else [], notes)


def _rank(
    name: str, text: str, options: list[dict[str, str]], where: str, notes: list[str]
) -> dict[str, Any]:
    """A ranking question; when ranking every option has more rankings than can be read,
    only the first few places are asked for (noted)."""
    question: dict[str, Any] = {"id": name, "kind": "rank", "text": text, "options": options}
    places = len(options)
    while places > 1 and math.perm(len(options), places) > MAX_RANKINGS:
        places -= 1
    if places < len(options):
        question["rank"] = places
        notes.append(
            f"{where}: ranking all {len(options)} options has "
            f"{math.perm(len(options), len(options)):,} possible rankings, more than the "
            f"{MAX_RANKINGS} that can be read; asked for the top {places} (rank: {places})"
        )
    return question


def _grid(
    name: str,
    stem: str,
    options: list[dict[str, str]],
    rows: list[dict[str, str]],
    scale: str = "ordinal",
) -> dict[str, Any]:
    """A matrix as a grid entry: one stem, its columns as the scale, its rows."""
    return {
        "id": name,
        "kind": "grid",
        "text": stem,
        "scale": scale,
        "options": options,
        "rows": rows,
    }


def _grid_note(where: str, grid: dict[str, Any], row_name: str) -> str:
    scale = grid["scale"].replace("_", "-")
    check = "; check that its columns form a scale" if grid["scale"] == "ordinal" else ""
    return (
        f"{where}: a matrix, asked as a grid of {len(grid['rows'])} {row_name}s "
        f"({'an' if scale[0] in 'aeiou' else 'a'} {scale} question each, the stem shared){check}"
    )


def _answer_kinds(question: dict[str, Any]) -> dict[str, str]:
    """The kind of each question an imported entry asks (a grid: each row, its scale)."""
    if question["kind"] == "grid":
        return {row["id"]: question["scale"] for row in question["rows"]}
    return {question["id"]: question["kind"]}


def _plain(html: str) -> str:
    """Text without HTML tags and entities, on one line."""
    import html as entities

    return " ".join(entities.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _qualtrics_choices(
    payload: dict[str, Any], key: str, order_key: str
) -> tuple[list[dict[str, str]], dict[str, str]]:
    """A payload's choices (or answers) in their order as options, and each choice
    number's code (its recode value where set)."""
    choices = payload.get(key) or {}
    order = [str(n) for n in payload.get(order_key) or list(choices)]
    recodes = {str(k): str(v) for k, v in (payload.get("RecodeValues") or {}).items()}
    codes = {number: recodes.get(number, number) for number in order if number in choices}
    options = [
        {"code": codes[number], "text": _plain(str(choices[number].get("Display", number)))}
        for number in codes
    ]
    return options, codes


def _qualtrics_condition(
    logic: dict[str, Any],
    kinds: dict[str, str],
    codes_of: dict[str, dict[str, str]],
    tags: dict[str, str],
) -> str | None:
    """Display logic as an ``ask_if`` condition: "selected" / "not selected" tests of
    earlier single-choice questions, joined by and / or (``None`` for anything else)."""
    parts: list[str] = []
    for key in sorted((k for k in logic if k.isdigit()), key=int):
        group = logic[key]
        tests = [group[k] for k in sorted((k for k in group if k.isdigit()), key=int)]
        for index, test in enumerate(tests):
            qid = test.get("QuestionID")
            locator = str(test.get("ChoiceLocator"))
            match = re.match(r"q://(\w+)/SelectableChoice/(\w+)$", locator)
            if (
                test.get("LogicType") != "Question"
                or kinds.get(qid) != "single_choice"
                or match is None
                or test.get("Operator") not in ("Selected", "NotSelected")
            ):
                return None
            code = codes_of[qid].get(match.group(2))
            if code is None:
                return None
            operator = "==" if test["Operator"] == "Selected" else "!="
            conjunction = str(test.get("Conjuction", "And")).lower()  # Qualtrics' spelling
            joined = "" if not parts and index == 0 else f" {conjunction} "
            parts.append(f'{joined}{tags[qid]} {operator} "{code}"')
    return "".join(parts) or None
