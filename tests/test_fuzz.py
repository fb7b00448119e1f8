"""Property-based tests: whatever the files hold, the loaders either load them or raise one
SurveySimError naming the problem; never an unhandled exception."""

from __future__ import annotations

import string
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from survey_sim import (
    DataMapping,
    HumanResponses,
    Population,
    SurveySimError,
    load_questionnaire,
)
from survey_sim.data.bundled import bundled_file

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
KEYS = st.sampled_from(
    [
        "id", "questions", "kind", "text", "options", "code", "option_sets", "preamble",
        "label", "position", "substantive", "minimum", "maximum", "bins", "min", "max",
        "personas", "weight", "attributes", "template", "table", "description", "column",
        "codes", "missing", "respondent", "questionnaire", "labels", "population", "by",
        "single_choice", "ordinal", "multi_select", "numeric", "free_text", "x-a",
    ]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 300)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | KEYS
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=25,
)
QUESTIONNAIRE = yaml.safe_load(bundled_file("questionnaires", "question_kinds.yaml").read_text())


def loads_or_explains(load, path: Path) -> None:
    try:
        load(path)
    except SurveySimError as error:
        assert str(error)


@contextmanager
def written(text: str | bytes, suffix: str) -> Iterator[Path]:
    """A temporary file holding ``text``, deleted afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        yield path


LOADERS = [load_questionnaire, Population.from_yaml, DataMapping.from_yaml]


@FUZZ
@given(document=DOCUMENTS)
def test_any_yaml_structure(document):
    with written(yaml.safe_dump(document), ".yaml") as path:
        for load in LOADERS:
            loads_or_explains(load, path)


@FUZZ
@given(text=st.text(alphabet=string.printable + "é:-[]{}&*!|>'\"%@`", max_size=200))
def test_any_yaml_text(text):
    with written(text, ".yaml") as path:
        for load in LOADERS:
            loads_or_explains(load, path)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_any_bytes(raw):
    for suffix, loaders in [(".yaml", LOADERS), (".csv", [Population.from_csv])]:
        with written(raw, suffix) as path:
            for load in loaders:
                loads_or_explains(load, path)


@FUZZ
@given(mutation=st.tuples(st.integers(0, 3), KEYS, DOCUMENTS))
def test_mutated_questionnaire(mutation):
    """The bundled questionnaire with one field of one question replaced by anything."""
    index, key, value = mutation
    document = yaml.safe_load(yaml.safe_dump(QUESTIONNAIRE))
    document["questions"][index][key] = value
    with written(yaml.safe_dump(document), ".yaml") as path:
        loads_or_explains(load_questionnaire, path)


CELLS = st.none() | st.integers(-2, 9) | st.floats(allow_nan=True) | st.text(max_size=4)


@FUZZ
@given(
    rows=st.lists(st.tuples(CELLS, CELLS, CELLS, CELLS), min_size=0, max_size=8),
    mapping=st.dictionaries(
        st.sampled_from(["weight", "missing", "respondent"]),
        st.sampled_from(["w", "id", "abortion"]) | SCALARS | st.lists(SCALARS, max_size=3),
        max_size=3,
    ),
)
def test_any_data_through_a_mapping(rows, mapping):
    """Respondent tables with arbitrary values (and mapping options) load or explain."""
    questionnaire = load_questionnaire(bundled_file("questionnaires", "ces_2011.yaml"))
    columns = ["id", "w", "abortion", "importance"]
    data = pl.DataFrame(
        {
            name: [str(row[i]) if row[i] is not None else None for row in rows]
            for i, name in enumerate(columns)
        },
        schema={name: pl.String for name in columns},
    )
    spec = {"questions": {"abortion": "abortion", "importance": "importance"}, **mapping}

    def load(data_path: Path) -> None:
        try:
            parsed = DataMapping.model_validate(spec)
        except ValueError:
            return  # the mapping itself is invalid: from_yaml reports that (tested above)
        HumanResponses.from_file(data_path, parsed, questionnaire)

    with written(data.write_csv(), ".csv") as path:
        loads_or_explains(load, path)
