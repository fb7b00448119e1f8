"""Reading respondent tables: CSV and Parquet (polars), SPSS ``.sav`` and Stata ``.dta``
(pyreadstat, with their value labels)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from survey_sim._codes import code_text
from survey_sim.errors import InputError


def read_table(path: Path) -> tuple[pl.DataFrame, dict[str, dict[str, str]]]:
    """A data file as a polars frame plus value labels per column (SPSS/Stata only)."""
    if not path.is_file():
        raise InputError(path, "no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pl.read_csv(path, infer_schema_length=None), {}
    if suffix == ".parquet":
        return pl.read_parquet(path), {}
    if suffix in (".sav", ".dta"):
        try:
            import pyreadstat
        except ImportError:
            raise InputError(
                path,
                "reading SPSS/Stata files needs pyreadstat: pip install 'survey-sim[analysis]'",
            ) from None
        reader = pyreadstat.read_sav if suffix == ".sav" else pyreadstat.read_dta
        try:
            frame, meta = reader(str(path), output_format="polars")
        except pyreadstat.ReadstatError as error:
            raise InputError(path, f"cannot read: {error}") from None
        labels = {
            column: {code_text(code): str(label) for code, label in value_labels.items()}
            for column, value_labels in meta.variable_value_labels.items()
        }
        return frame, labels
    raise InputError(path, f"unknown data format {suffix!r}: use .csv, .parquet, .sav or .dta")
