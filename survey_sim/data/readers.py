"""Reading respondent tables: CSV and Parquet (polars), SPSS ``.sav`` and Stata ``.dta``
(pyreadstat, with their value labels)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from survey_sim._codes import code_text
from survey_sim.errors import InputError

DATA_SUFFIXES = (".csv", ".parquet", ".sav", ".dta")
"""The data-file formats :func:`read_table` reads."""


def read_table(
    path: Path, encoding: str = "utf-8"
) -> tuple[pl.DataFrame, dict[str, dict[str, str]]]:
    """A data file as a polars frame plus value labels per column (SPSS/Stata only).

    Args:
        encoding: The text encoding of a CSV file (Excel and SPSS often export
            ``latin-1`` or ``cp1252``); other formats say their own.
    """
    if not path.is_file():
        raise InputError(path, "no such file" if not path.is_dir() else "a folder, not a file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, encoding), {}
    if suffix == ".parquet":
        try:
            return pl.read_parquet(path), {}
        except (pl.exceptions.PolarsError, OSError) as error:
            raise InputError(path, f"cannot read as Parquet: {error}") from error
    if suffix in (".sav", ".dta"):
        try:
            import pyreadstat
        except ImportError as error:
            raise InputError(
                path,
                "reading SPSS/Stata files needs pyreadstat: pip install 'survey-sim[analysis]'",
            ) from error
        reader = pyreadstat.read_sav if suffix == ".sav" else pyreadstat.read_dta
        try:
            frame, meta = reader(str(path), output_format="polars")
        except pyreadstat.ReadstatError as error:
            raise InputError(path, f"cannot read: {error}") from error
        labels = {
            column: {code_text(code): str(label) for code, label in value_labels.items()}
            for column, value_labels in meta.variable_value_labels.items()
        }
        return frame, labels
    raise InputError(path, f"unknown data format {suffix!r}: use {', '.join(DATA_SUFFIXES)}")


def _read_csv(path: Path, encoding: str) -> pl.DataFrame:
    """A CSV file decoded from ``encoding``; a byte the encoding cannot decode is an error
    naming its line, with the fix."""
    raw = path.read_bytes()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise InputError(
            path,
            f"not valid {encoding} text (byte 0x{raw[error.start]:02x}); save it as UTF-8 "
            "(Excel: 'CSV UTF-8'), or name its encoding in the mapping, e.g. "
            "'encoding: latin-1' (Excel and SPSS on Windows often write cp1252)",
            line=line,
        ) from error
    try:
        return pl.read_csv(text.encode("utf-8"), infer_schema_length=None)
    except pl.exceptions.PolarsError as error:
        raise InputError(path, f"cannot read as CSV: {error}") from error
