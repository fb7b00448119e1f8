"""Microdata out, in the formats researchers analyse with: SPSS ``.sav`` and Stata ``.dta``
(pyreadstat) with variable labels, value labels and missing-value declarations (and, in
``.sav``, measurement levels: ordinal or nominal) from the questionnaire, and CSV / Parquet
with a codebook beside them.

The table is one row per respondent and one column per question (the wide form of simulated
respondents). Codes are never rewritten: a question whose codes are all whole numbers becomes
a numeric variable labelled with its options' texts; one with text codes stays a text
variable (SPSS and Stata label numbers only), and :class:`Exported` lists it. A question not
asked is missing (system missing); in ``.sav`` files the codes of non-substantive options
(don't know, refused) and the question's ``missing_codes`` (codes the source data declared
missing, kept by ``survey-sim import``) are declared user-missing, as survey data files
declare them, and labelled in every format.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from survey_sim._io import write_set
from survey_sim.errors import InputError
from survey_sim.questionnaire import (
    ChoiceQuestion,
    MissingCode,
    OptionsQuestion,
    Question,
    Questionnaire,
)

EXPORT_FORMATS = ("sav", "dta", "csv", "parquet")
NAME_LIMITS = {"sav": 64, "dta": 32}
"""Longest variable name each format allows."""
LABEL_LIMITS = {"sav": 256, "dta": 80}
"""Longest variable label each format keeps."""
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Exported:
    """What an export wrote and what it could not carry over.

    Attributes:
        paths: The files written (the data, and for CSV/Parquet the codebook).
        text_coded: Questions kept as text variables (their codes are not whole numbers,
            and the format labels numbers only), with no value labels.
        cut_labels: Questions whose text was cut to the format's variable-label limit.
    """

    paths: list[Path]
    text_coded: list[str] = field(default_factory=list)
    cut_labels: list[str] = field(default_factory=list)


def codebook(questionnaire: Questionnaire, questions: list[str]) -> pl.DataFrame:
    """One row per question × option of ``questions`` (``question_id``, ``question_text``,
    ``kind``, ``grid``: the grid it is a row of, ``code``, ``label``, ``substantive``), then
    one per code the question declares missing (``substantive`` null: not an answer); a
    question without options has one row with null code."""
    rows: list[dict[str, Any]] = []
    for question_id in questions:
        question = questionnaire.question(question_id)
        grid = questionnaire.grid_of(question_id)
        base = {
            "question_id": question.id,
            "question_text": question.text,
            "kind": question.kind,
            "grid": None if grid is None else grid.id,
        }
        if isinstance(question, OptionsQuestion):
            rows += [
                {**base, "code": o.code, "label": o.text, "substantive": o.substantive}
                for o in question.options
            ]
            rows += [
                {**base, "code": m.code, "label": m.text, "substantive": None}
                for m in _missing_codes(question)
            ]
        else:
            rows.append({**base, "code": None, "label": None, "substantive": None})
    return pl.DataFrame(
        rows,
        schema={
            "question_id": pl.String,
            "question_text": pl.String,
            "kind": pl.String,
            "grid": pl.String,
            "code": pl.String,
            "label": pl.String,
            "substantive": pl.Boolean,
        },
    )


def codebook_markdown(
    book: pl.DataFrame, questionnaire: Questionnaire, column_labels: dict[str, str]
) -> str:
    """A codebook (from :func:`codebook`) as Markdown: each question's text and kind, and a
    table of its codes and labels (non-substantive ones marked); a grid's stem heads its
    rows."""
    lines = [f"# Codebook: {questionnaire.title or questionnaire.id}", ""]
    lines += [f"- `{column}`: {label}" for column, label in column_labels.items()]
    shown_grid = None
    for (question_id,), rows in book.group_by("question_id", maintain_order=True):
        first = rows.row(0, named=True)
        if first["grid"] is not None and first["grid"] != shown_grid:
            grid = questionnaire.grid(first["grid"])
            lines += ["", f"## Grid `{grid.id}`", "", grid.text]
        shown_grid = first["grid"]
        level = "###" if first["grid"] is not None else "##"
        lines += ["", f"{level} `{question_id}` ({first['kind']})", "", first["question_text"]]
        if first["code"] is not None:
            lines += ["", "| code | label | |", "|---|---|---|"]
            marks = {True: "", False: "non-substantive", None: "declared missing, not asked"}
            lines += [
                f"| {row['code']} | {row['label']} | {marks[row['substantive']]} |"
                for row in rows.iter_rows(named=True)
            ]
    return "\n".join(lines) + "\n"


def export_microdata(
    wide: pl.DataFrame,
    questionnaire: Questionnaire,
    path: Path,
    to: str | None = None,
    *,
    file_label: str = "",
    column_labels: dict[str, str] | None = None,
) -> Exported:
    """Write ``wide`` (one row per respondent; ``respondent_id``, ``persona_id``, then a
    column per question holding its code) in format ``to`` (default: from ``path``'s
    suffix), as the module docstring says, with a Markdown codebook beside it
    (``*.codebook.md``; CSV and Parquet also ``*.codebook.csv``). ``column_labels`` label
    columns that are not questions (attributes, weights).

    Raises:
        InputError: an unknown format, a column name the format does not allow (named, with
            the limit), or pyreadstat missing; before anything is written.
    """
    to = to or path.suffix.lstrip(".").lower()
    if to not in EXPORT_FORMATS:
        raise InputError(path, f"unknown export format {to!r}: use {', '.join(EXPORT_FORMATS)}")
    questions = [c for c in wide.columns if c in questionnaire.listed_order]
    book = codebook(questionnaire, questions)
    books: dict[Path, Callable[[str], object]] = {
        path.with_name(f"{path.stem}.codebook.md"): lambda temporary: Path(temporary).write_text(
            codebook_markdown(book, questionnaire, column_labels or {})
        )
    }
    if to in ("csv", "parquet"):
        books[path.with_name(f"{path.stem}.codebook.csv")] = book.write_csv
        data: Callable[[str], object] = wide.write_csv if to == "csv" else wide.write_parquet
        return Exported(write_set({path: data, **books}))
    limit = NAME_LIMITS[to]
    for column in wide.columns:
        if len(column) > limit or not _NAME.match(column):
            raise InputError(
                path,
                f"column {column!r} cannot be a {to} variable name (a letter, then letters, "
                f"digits or _, at most {limit} characters): rename the question id",
            )
    try:
        import pyreadstat
    except ImportError as error:
        raise InputError(
            path, "writing SPSS/Stata files needs pyreadstat: pip install 'survey-sim[analysis]'"
        ) from error
    columns: dict[str, pl.Series] = {}
    labels: dict[str, str | None] = {
        "respondent_id": "respondent",
        "persona_id": "persona",
        **(column_labels or {}),
    }
    value_labels: dict[str, dict[int | float, str]] = {}
    missing: dict[str, list[Any]] = {}
    measures: dict[str, str] = {}
    text_coded: list[str] = []
    cut: list[str] = []
    for column in wide.columns:
        series = wide[column]
        if column not in questions:
            columns[column] = series
            continue
        question = questionnaire.question(column)
        label = variable_label(questionnaire, column)
        if len(label) > LABEL_LIMITS[to]:
            label = label[: LABEL_LIMITS[to] - 1] + "…"
            cut.append(column)
        labels[column] = label
        numbers = _whole_numbers(series, question)
        if numbers is None:
            columns[column] = series
            if isinstance(question, OptionsQuestion):
                text_coded.append(column)
            continue
        columns[column] = numbers
        if isinstance(question, ChoiceQuestion):
            measures[column] = "ordinal" if question.kind == "ordinal" else "nominal"
            value_labels[column] = {int(code): text for code, text in _labelled(question)}
            off = [int(o.code) for o in question.non_substantive]
            off += [int(m.code) for m in question.missing_codes]
            if off and to == "sav":
                answers = [int(o.code) for o in question.options if o.substantive]
                missing[column] = _spss_missing(off, answers, column, path)
    frame = pl.DataFrame(columns).to_pandas()
    ordered = [labels.get(column) for column in frame.columns]

    def write(temporary: str) -> None:
        if to == "sav":
            pyreadstat.write_sav(
                frame,
                temporary,
                file_label=file_label,
                column_labels=ordered,
                variable_value_labels=value_labels,
                missing_ranges=missing,
                variable_measure=measures,
            )
        else:
            pyreadstat.write_dta(
                frame,
                temporary,
                file_label=file_label[:80],
                column_labels=ordered,
                variable_value_labels=value_labels,
            )

    return Exported(write_set({path: write, **books}), text_coded, cut)


def variable_label(questionnaire: Questionnaire, question_id: str) -> str:
    """A question's text on one line, after its grid's stem for a grid row ("How much do
    you trust: the police")."""
    grid = questionnaire.grid_of(question_id)
    text = questionnaire.question(question_id).text
    return " ".join((text if grid is None else f"{grid.text}: {text}").split())


def _missing_codes(question: Question) -> tuple[MissingCode, ...]:
    return question.missing_codes if isinstance(question, ChoiceQuestion) else ()


def _labelled(question: ChoiceQuestion) -> list[tuple[str, str]]:
    """Every code a question's variable may hold, with its label: options, then the codes
    declared missing."""
    return [(o.code, o.text) for o in question.options] + [
        (m.code, m.text) for m in question.missing_codes
    ]


SPSS_DISCRETE_MISSING = 3
"""Most discrete missing values an SPSS variable declares (or one range)."""


def _spss_missing(off: list[int], answers: list[int], column: str, path: Path) -> list[Any]:
    """How a ``.sav`` declares ``off`` missing: as discrete values (at most three), else as
    one range when no answer code lies inside it.

    Raises:
        InputError: neither can declare them.
    """
    if len(off) <= SPSS_DISCRETE_MISSING:
        return sorted(off)
    low, high = min(off), max(off)
    inside = [code for code in answers if low <= code <= high]
    if inside:
        raise InputError(
            path,
            f"{column}: SPSS declares at most {SPSS_DISCRETE_MISSING} missing codes or one "
            f"range, but codes {', '.join(map(str, sorted(off)))} are missing and answers "
            f"{', '.join(map(str, inside))} lie between them; export to .dta, .csv or .parquet "
            "(their codebook lists every code), or give the missing codes one block of numbers",
        )
    return [{"lo": low, "hi": high}]


def _whole_numbers(series: pl.Series, question: Question) -> pl.Series | None:
    """An options question's column as whole numbers when every code it has is one
    (``None`` otherwise, and for other kinds: their answers are values or text)."""
    if not isinstance(question, ChoiceQuestion):
        return None
    if not all(re.fullmatch(r"-?\d+", code) for code, _ in _labelled(question)):
        return None
    return series.cast(pl.Int64, strict=True)
