"""Human survey data: loaders for every format, mapping errors, weighted distributions."""

from __future__ import annotations

import math
import re

import pandas as pd
import polars as pl
import pyreadstat
import pytest

from survey_sim import InputError, Population, load_questionnaire
from survey_sim.data.mapping import DataMapping
from survey_sim.data.responses import HumanResponses

QUESTIONNAIRE = """\
id: mini
questions:
  - id: trust
    kind: ordinal
    text: How much do you trust the government?
    options:
      - {code: 1, text: A lot}
      - {code: 2, text: Some}
      - {code: 3, text: Not at all}
  - id: pet
    kind: single_choice
    text: Cat or dog?
    options:
      - {code: cat, text: Cat}
      - {code: dog, text: Dog}
"""

MAPPING = """\
questionnaire: mini
respondent: rid
weight: w
missing: [9]
questions:
  trust: q_trust
  pet:
    column: q_pet
    codes: {1: cat, 2: dog}
attributes:
  party: party
"""

ROWS = {
    "rid": [101, 102, 103, 104, 105],
    "w": [1.0, 2.0, 1.0, 0.5, 1.5],
    "q_trust": [1, 2, 9, 3, 1],
    "q_pet": [1, 2, 2, None, 1],
    "party": ["D", "R", "R", "D", "I"],
}


@pytest.fixture
def mini(tmp_path):
    path = tmp_path / "mini.yaml"
    path.write_text(QUESTIONNAIRE)
    return load_questionnaire(path)


@pytest.fixture
def mapping_path(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING)
    return path


def check_mini(human: HumanResponses) -> None:
    frame = human.frame.sort("question_id", "respondent_id")
    trust = frame.filter(pl.col("question_id") == "trust")
    assert trust["respondent_id"].to_list() == ["101", "102", "104", "105"]  # 9 is missing
    assert trust["option_code"].to_list() == ["1", "2", "3", "1"]
    pets = frame.filter(pl.col("question_id") == "pet")
    assert pets["option_code"].to_list() == ["cat", "dog", "dog", "cat"]  # 104 had no answer
    assert human.attributes == ["party"]
    distribution = human.distribution().filter(pl.col("question_id") == "trust")
    assert distribution["option_code"].to_list() == ["1", "2", "3"]
    assert distribution["prob"].to_list() == pytest.approx([2.5 / 5, 2 / 5, 0.5 / 5])
    assert distribution["n"].to_list() == [4, 4, 4]
    assert distribution["n_effective"][0] == pytest.approx(5**2 / (1 + 4 + 0.25 + 2.25))


def test_csv_and_parquet(tmp_path, mini, mapping_path):
    frame = pl.DataFrame(ROWS)
    frame.write_csv(tmp_path / "data.csv")
    frame.write_parquet(tmp_path / "data.parquet")
    for name in ("data.csv", "data.parquet"):
        check_mini(HumanResponses.from_file(tmp_path / name, mapping_path, mini))


@pytest.mark.parametrize("suffix", [".sav", ".dta"])
def test_spss_and_stata_with_value_labels(tmp_path, mini, suffix):
    data = pd.DataFrame({k: v for k, v in ROWS.items() if k != "party"})
    data["party"] = [1, 2, 2, 1, 3]
    path = tmp_path / f"data{suffix}"
    labels = {
        "q_pet": {1: "Cat", 2: "Dog"},
        "party": {1: "Democrat", 2: "Republican", 3: "Independent"},
        "q_trust": {9: "No answer"},
    }
    writer = pyreadstat.write_sav if suffix == ".sav" else pyreadstat.write_dta
    writer(data, str(path), variable_value_labels=labels)
    mapping = DataMapping.model_validate(
        {
            "respondent": "rid",
            "weight": "w",
            "missing": ["No answer"],  # a value label works as a code
            "questions": {
                "trust": "q_trust",
                "pet": {"column": "q_pet", "codes": {"Cat": "cat", "Dog": "dog"}},
            },
            "attributes": {"party": "party"},
        }
    )
    human = HumanResponses.from_file(path, mapping, mini)
    check_mini(human)
    parties = human.frame.filter(pl.col("question_id") == "trust")["party"].to_list()
    assert parties == ["Democrat", "Republican", "Democrat", "Independent"]


def test_unknown_codes_are_listed(tmp_path, mini, mapping_path):
    rows = dict(ROWS, q_trust=[1, 7, 8, 7, 1])
    pl.DataFrame(rows).write_csv(tmp_path / "data.csv")
    with pytest.raises(InputError) as error:
        HumanResponses.from_file(tmp_path / "data.csv", mapping_path, mini)
    message = str(error.value)
    assert "data.csv" in message and "question 'trust'" in message
    assert "codes the mapping does not know: 7 (2 answers), 8 (1 answer)" in message
    assert "map them under 'codes' or list them as 'missing'" in message  # far off the scale


def test_codes_next_to_a_scale_point_at_the_questionnaire_first(tmp_path, mini, mapping_path):
    """A 1-3 scale whose data hold 4 (and 0): the questionnaire may lack those options;
    listing them as missing would drop real answers, and `removed` counts what it drops."""
    rows = dict(ROWS, q_trust=[1, 4, 0, 4, 9])
    pl.DataFrame(rows).write_csv(tmp_path / "data.csv")
    with pytest.raises(InputError) as error:
        HumanResponses.from_file(tmp_path / "data.csv", mapping_path, mini)
    message = str(error.value)
    assert "0 (1 answer), 4 (2 answers)" in message
    assert "0, 4 lie on or next to the scale of 'trust' (1 to 3)" in message
    assert "the questionnaire lacks those options" in message
    dropping = mapping_path.read_text().replace("missing: [9]", "missing: [9, 0, 4]")
    (tmp_path / "dropping.yaml").write_text(dropping)
    human = HumanResponses.from_file(tmp_path / "data.csv", tmp_path / "dropping.yaml", mini)
    assert human.removed is not None
    trust = human.removed.filter(pl.col("question_id") == "trust")
    assert dict(zip(trust["code"], trust["answers"], strict=True)) == {"0": 1, "4": 2, "9": 1}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"w": [1.0, -1.0, 1.0, 1.0, None]}, "2 rows do not (data rows 2, 5)"),
        ({"rid": [1, 1, 2, 3, 4]}, "respondent ids in column 'rid' repeat"),
    ],
)
def test_bad_weights_and_ids(tmp_path, mini, mapping_path, change, message):
    pl.DataFrame(dict(ROWS, **change)).write_csv(tmp_path / "data.csv")
    with pytest.raises(InputError, match=re.escape(message)):
        HumanResponses.from_file(tmp_path / "data.csv", mapping_path, mini)


def test_mapping_errors(tmp_path, mini, mapping_path):
    pl.DataFrame(ROWS).rename({"party": "Party_ID"}).write_csv(tmp_path / "data.csv")
    with pytest.raises(InputError) as error:  # blamed on the mapping's line, with spellings
        HumanResponses.from_file(tmp_path / "data.csv", mapping_path, mini)
    assert str(error.value) == (
        f"{mapping_path}:11: attribute 'party', field 'column': column 'party' is not in "
        f"{tmp_path / 'data.csv'} (closest: Party_ID)"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        MAPPING.replace("  trust: q_trust\n", "  trust: {column: q_trust, colour: red}\n")
    )
    with pytest.raises(InputError) as error:
        DataMapping.from_yaml(bad)
    assert str(error.value).startswith(f"{bad}:6: question 'trust', field 'colour'")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(MAPPING.replace("  trust: q_trust\n", "  trusts: q_trust\n"))
    pl.DataFrame(ROWS).write_csv(tmp_path / "data.csv")
    with pytest.raises(InputError, match="names question 'trusts', which is not in"):
        HumanResponses.from_file(tmp_path / "data.csv", unknown, mini)
    wrong_target = tmp_path / "target.yaml"
    wrong_target.write_text(MAPPING.replace("{1: cat, 2: dog}", "{1: cat, 2: hamster}"))
    with pytest.raises(InputError, match="options that question 'pet' does not have: hamster"):
        HumanResponses.from_file(tmp_path / "data.csv", wrong_target, mini)
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(InputError, match=r"unknown data format '\.xlsx'"):
        HumanResponses.from_file(tmp_path / "data.xlsx", mapping_path, mini)


def test_grouped_distribution(tmp_path, mini, mapping_path):
    pl.DataFrame(ROWS).write_csv(tmp_path / "data.csv")
    human = HumanResponses.from_file(tmp_path / "data.csv", mapping_path, mini)
    by_party = human.distribution(by=["party"]).filter(pl.col("question_id") == "pet")
    democrats = by_party.filter(pl.col("party") == "D")
    assert democrats["prob"].to_list() == [1.0, 0.0]  # only 101 answered, a cat
    sums = by_party.group_by("party").agg(pl.col("prob").sum())["prob"]
    assert all(math.isclose(total, 1.0) for total in sums)


AGE_AND_PARTY = """\
  age:
    column: age
    bins: [{label: young, min: 18, max: 39}, {label: old, min: 40}]
  side:
    column: party
    labels: {D: left, R: right}
    missing: [I]
population:
  by: [side, age]
  template: "You are {age} and lean {side}."
"""


def test_attribute_labels_bins_and_population(tmp_path, mini, mapping_path):
    mapping_path.write_text(MAPPING + AGE_AND_PARTY)
    rows = dict(ROWS, age=[25, 60, 41, 39, 30])
    pl.DataFrame(rows).write_csv(tmp_path / "data.csv")
    human = HumanResponses.from_file(tmp_path / "data.csv", mapping_path, mini)
    people = human.frame.unique("respondent_id").sort("respondent_id")
    assert people["age"].to_list() == ["young", "old", "old", "young", "young"]
    assert people["side"].to_list() == ["left", "right", "right", "left", None]  # I is missing

    cells = human.cells()  # 105 (no side) is left out; weights are shares of the rest
    assert cells.select("side", "age", "respondents").rows() == [
        ("left", "young", 2),
        ("right", "old", 2),
    ]
    assert cells["weight"].to_list() == pytest.approx([1.5 / 4.5, 3.0 / 4.5])
    population = human.population()
    assert [p.id for p in population] == ["side=left, age=young", "side=right, age=old"]
    assert [p.description for p in population] == [
        "You are young and lean left.",
        "You are old and lean right.",
    ]
    assert len(human.cells(min_respondents=3, by=["age"])) == 1  # young: 101, 104, 105
    written = population.write_csv(tmp_path / "cells.csv")
    assert Population.from_csv(written).frame.equals(population.frame)


@pytest.mark.parametrize(
    ("rows", "text", "message"),
    [
        ({"age": [25, 60, 41, 39, -3]}, AGE_AND_PARTY, "column 'age' has codes the mapping"),
        (
            {"age": [25, 60, 41, 39, 30], "party": ["D", "R", "R", "G", "I"]},
            AGE_AND_PARTY,
            "does not know: G (1 respondent); add them to 'labels' or list them as 'missing'",
        ),
        (
            {"age": [25, 60, 41, 39, 30]},
            AGE_AND_PARTY.replace("by: [side, age]", "by: [side, income]"),
            "'by' names income, which is not under 'attributes'",
        ),
        (  # a template field no attribute has would describe nobody: refused
            {"age": [25, 60, 41, 39, 30]},
            AGE_AND_PARTY.replace("lean {side}", "lean {party_side}"),
            "'template' uses party_side, which is not under 'attributes' (party, age, side)",
        ),
        (
            {"age": [25, 60, 41, 39, 30]},
            AGE_AND_PARTY.replace("{label: old, min: 40}", "{label: old, min: 39}"),
            "bins 'young' and 'old' overlap (both hold 39 to 39)",
        ),
    ],
)
def test_attribute_errors(tmp_path, mini, mapping_path, rows, text, message):
    mapping_path.write_text(MAPPING + text)
    pl.DataFrame(dict(ROWS, **rows)).write_csv(tmp_path / "data.csv")
    with pytest.raises(InputError, match=re.escape(message)):
        HumanResponses.from_file(tmp_path / "data.csv", mapping_path, mini)


def test_cells_need_known_attributes(tmp_path, mini, mapping_path):
    pl.DataFrame(ROWS).write_csv(tmp_path / "data.csv")
    human = HumanResponses.from_file(tmp_path / "data.csv", mapping_path, mini)
    with pytest.raises(InputError, match="the mapping has no population"):
        human.population()
    with pytest.raises(InputError, match="cannot group by income: the attributes are party"):
        human.cells(["income"])
    with pytest.raises(InputError, match="no cell of party has 9 respondents"):
        human.cells(["party"], min_respondents=9)


def test_unquoted_yaml_booleans_are_refused(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text("questions:\n  q: {column: c, codes: {Yes: y, No: n}}\n")
    with pytest.raises(InputError, match='quote words such as "Yes", "No"') as error:
        DataMapping.from_yaml(path)
    assert str(error.value).startswith(f"{path}:2: question 'q', field 'codes'")


def test_template_fields_the_cells_lack_are_said(tmp_path, mini, mapping_path):
    mapping_path.write_text(MAPPING + AGE_AND_PARTY)
    pl.DataFrame(dict(ROWS, age=[25, 60, 41, 39, 30])).write_csv(tmp_path / "data.csv")
    human = HumanResponses.from_file(tmp_path / "data.csv", mapping_path, mini)
    with pytest.warns(UserWarning, match="template uses age, which the personas here are not"):
        population = human.population(["side"])
    assert "side: left" in next(iter(population)).description


def test_csv_encodings(tmp_path, mini, mapping_path):
    """A Latin-1 export is an error naming the file, its line and the fix; naming the
    encoding in the mapping reads it."""
    rows = dict(ROWS, party=["D", "R", "R", "D", "Indépendant"])
    (tmp_path / "data.csv").write_bytes(pl.DataFrame(rows).write_csv().encode("latin-1"))
    with pytest.raises(InputError) as error:
        HumanResponses.from_file(tmp_path / "data.csv", mapping_path, mini)
    assert str(error.value).startswith(f"{tmp_path / 'data.csv'}:6: not valid utf-8 text")
    assert "'encoding: latin-1'" in str(error.value)
    mapping_path.write_text(MAPPING + "encoding: latin-1\n")
    human = HumanResponses.from_file(tmp_path / "data.csv", mapping_path, mini)
    assert "Indépendant" in human.frame["party"].to_list()
    mapping_path.write_text(MAPPING + "encoding: klingon\n")
    with pytest.raises(InputError, match="unknown text encoding 'klingon'"):
        DataMapping.from_yaml(mapping_path)
