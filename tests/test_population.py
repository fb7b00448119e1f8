import math
from pathlib import Path

import pytest

from survey_sim import InputError, Population


def test_bundled_population(demo_population):
    frame = demo_population.frame
    assert len(demo_population) == 8
    assert frame.columns[:3] == ["persona_id", "weight", "description"]
    assert {"age", "party", "ideology"} <= set(frame.columns)
    first = next(iter(demo_population))
    assert first.description.startswith("You are a 27-year-old woman living in the West")
    assert math.isclose(frame["weight"].sum(), 1.0)


def test_csv_with_template_and_default_description(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("id,weight,age,party\np1,2,30,Democrat\np2,1,70,Republican\n")
    templated = Population.from_file(path, template="Age {age}, {party}.")
    assert [p.description for p in templated] == ["Age 30, Democrat.", "Age 70, Republican."]
    assert templated.frame["weight"].to_list() == [2.0, 1.0]
    plain = Population.from_file(path)
    assert "- age: 30" in next(iter(plain)).description


def test_yaml_with_table_reference(tmp_path):
    (tmp_path / "cells.csv").write_text("id,age\na,30\nb,40\n")
    spec = tmp_path / "pop.yaml"
    spec.write_text("id: cells\ntemplate: 'I am {age}.'\ntable: cells.csv\n")
    population = Population.from_file(spec)
    assert population.id == "cells"
    assert [p.description for p in population] == ["I am 30.", "I am 40."]
    assert [p.weight for p in population] == [1.0, 1.0]


@pytest.mark.parametrize(
    ("csv", "expected"),
    [
        ("id,weight\np1,0\n", ["people.csv:2", "persona 'p1'", "positive finite"]),
        ("id,weight\np1,1\np2,-3\n", ["people.csv:3", "persona 'p2'", "positive finite"]),
        ("id,weight\np1,NaN\n", ["persona 'p1'", "positive finite"]),
        ("id,weight\np1,1\np1,2\n", ["duplicate persona id: p1"]),
        ("id,weight\n", ["at least one persona"]),
        ("name,weight\np1,1\n", ["needs an 'id' column"]),
        ("id,weight\np1,\n", ["persona 'p1'", "weight"]),
    ],
)
def test_bad_csv_rows(tmp_path, csv, expected):
    path = tmp_path / "people.csv"
    path.write_text(csv)
    with pytest.raises(InputError) as caught:
        Population.from_file(path)
    for fragment in expected:
        assert fragment in str(caught.value)


def test_template_with_unknown_attribute(tmp_path):
    path = tmp_path / "pop.yaml"
    path.write_text("template: 'I vote {party}.'\npersonas:\n  - {id: a, attributes: {age: 3}}\n")
    with pytest.raises(InputError) as caught:
        Population.from_file(path)
    assert "{party}" in str(caught.value)
    assert caught.value.line == 3


def test_yaml_needs_exactly_one_source(tmp_path):
    path = tmp_path / "pop.yaml"
    path.write_text("id: x\n")
    with pytest.raises(InputError, match="exactly one of 'personas'"):
        Population.from_file(path)


def test_unknown_file_type(tmp_path: Path):
    path = tmp_path / "pop.json"
    path.write_text("{}")
    with pytest.raises(InputError, match="unsupported persona file type"):
        Population.from_file(path)
