"""Microdata out: SPSS and Stata files written by pyreadstat carry the questionnaire's
variable labels, value labels and (SPSS) user-missing codes, with the codes unchanged; text
codes stay text and are reported; a simulated sample exported to .sav and read back through
a mapping gives the sample's own answer shares."""

from __future__ import annotations

import polars as pl
import pyreadstat
import pytest

from survey_sim import (
    HumanResponses,
    InputError,
    Population,
    Questionnaire,
    bundled_file,
    load_questionnaire,
    simulate_respondents,
)
from survey_sim.data.export import export_microdata
from survey_sim.runs.respondents import WEIGHT_LABEL

QUESTIONNAIRE = """
id: exported
title: Exported
questions:
  - id: trust
    kind: ordinal
    text: How much do you trust the news?
    options:
      - {code: 1, text: A lot}
      - {code: 2, text: Some}
      - {code: 3, text: Not at all}
      - {code: 9, text: Don't know, substantive: false}
    missing_codes:
      - {code: -1, text: Inapplicable}
  - id: paper
    kind: single_choice
    text: Which do you read most?
    options:
      - {code: l, text: Local}
      - {code: n, text: National}
"""


@pytest.fixture(scope="module")
def questionnaire(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "exported.yaml"
    path.write_text(QUESTIONNAIRE)
    return load_questionnaire(path)


WIDE = pl.DataFrame(
    {
        "respondent_id": ["r1", "r2", "r3"],
        "persona_id": ["a", "a", "b"],
        "trust": ["1", "9", None],
        "paper": ["l", None, "n"],
    }
)


def test_spss_file_carries_labels_and_user_missing_codes(questionnaire, tmp_path):
    exported = export_microdata(WIDE, questionnaire, tmp_path / "s.sav")
    assert exported.text_coded == ["paper"]
    frame, meta = pyreadstat.read_sav(str(tmp_path / "s.sav"), user_missing=True)
    assert frame["trust"].tolist()[:2] == [1.0, 9.0] and frame["trust"].isna().tolist()[2]
    assert frame["paper"].tolist() == ["l", "", "n"]
    assert meta.column_names_to_labels["trust"] == "How much do you trust the news?"
    assert meta.variable_value_labels["trust"] == {
        1.0: "A lot",
        2.0: "Some",
        3.0: "Not at all",
        9.0: "Don't know",
        -1.0: "Inapplicable",
    }
    assert meta.missing_ranges["trust"] == [{"lo": -1.0, "hi": -1.0}, {"lo": 9.0, "hi": 9.0}]


def test_more_missing_codes_than_spss_declares_become_a_range_or_a_clear_refusal(tmp_path):
    def scale(missing: list[int]) -> Questionnaire:
        options = [{"code": c, "text": f"Point {c}"} for c in (1, 2, 3)]
        return Questionnaire.model_validate(
            {
                "id": "m",
                "questions": [
                    {"id": "q", "kind": "ordinal", "text": "How much?", "options": options}
                    | {"missing_codes": [{"code": c, "text": f"Missing {c}"} for c in missing]}
                ],
            }
        )

    wide = pl.DataFrame({"respondent_id": ["r1"], "persona_id": ["a"], "q": ["2"]})
    export_microdata(wide, scale([96, 97, 98, 99]), tmp_path / "range.sav")
    _, meta = pyreadstat.read_sav(str(tmp_path / "range.sav"), user_missing=True)
    assert meta.missing_ranges["q"] == [{"lo": 96.0, "hi": 99.0}]
    with pytest.raises(InputError, match="answers 1, 2, 3 lie between them"):
        export_microdata(wide, scale([-1, 0, 97, 98]), tmp_path / "split.sav")
    assert not (tmp_path / "split.sav").exists()
    export_microdata(wide, scale([-1, 0, 97, 98]), tmp_path / "split.dta")  # labels only


def test_stata_file_carries_labels_and_refuses_names_it_cannot_hold(questionnaire, tmp_path):
    export_microdata(WIDE, questionnaire, tmp_path / "s.dta")
    frame, meta = pyreadstat.read_dta(str(tmp_path / "s.dta"))
    assert frame["trust"].tolist()[:2] == [1, 9]
    assert meta.variable_value_labels["trust"][3] == "Not at all"
    assert meta.column_names_to_labels["paper"] == "Which do you read most?"
    with pytest.raises(InputError, match="cannot be a dta variable name"):
        export_microdata(WIDE.rename({"persona_id": "x" * 33}), questionnaire, tmp_path / "t.dta")
    assert not (tmp_path / "t.dta").exists()
    with pytest.raises(InputError, match="unknown export format 'xlsx'"):
        export_microdata(WIDE, questionnaire, tmp_path / "s.xlsx")


def test_csv_gets_a_codebook(questionnaire, tmp_path):
    exported = export_microdata(WIDE, questionnaire, tmp_path / "s.csv")
    assert [path.name for path in exported.paths] == ["s.csv", "s.codebook.md", "s.codebook.csv"]
    markdown = (tmp_path / "s.codebook.md").read_text()
    assert "## `trust` (ordinal)" in markdown and "| 9 | Don't know | non-substantive |" in markdown
    assert "| -1 | Inapplicable | declared missing, not asked |" in markdown
    book = pl.read_csv(tmp_path / "s.codebook.csv")
    trust = book.filter(pl.col("question_id") == "trust")
    assert trust["label"].to_list()[-2:] == ["Don't know", "Inapplicable"]
    assert trust["substantive"].to_list()[-2:] == [False, None]
    assert pl.read_csv(tmp_path / "s.csv").height == 3


def test_a_simulated_sample_read_back_through_a_mapping_gives_its_own_shares(tiny_engine, tmp_path):
    questionnaire_path = bundled_file("questionnaires", "anes_2016_vote_flow.yaml")
    instrument = load_questionnaire(questionnaire_path)
    population = Population.from_file(bundled_file("personas", "us_adults_demo.yaml"))
    sample = simulate_respondents(instrument, population, tiny_engine, 60, seed=3, progress=False)
    sample.export(tmp_path / "sample.sav", instrument)
    frame, meta = pyreadstat.read_sav(str(tmp_path / "sample.sav"))
    assert "party" in frame.columns  # the personas' attributes come along
    assert set(frame["weight"]) == {1.0}
    assert meta.column_names_to_labels["weight"] == WEIGHT_LABEL
    assert (tmp_path / "sample.codebook.md").is_file()
    assert meta.variable_value_labels["vote16"][2.0] == "Donald Trump"
    mapping = tmp_path / "sample.mapping.yaml"
    questions = ["voted16", "natfare", "natenvir", "natsoc"]
    mapping.write_text(
        "questionnaire: anes_2016_vote_flow\nrespondent: respondent_id\nquestions:\n"
        + "".join(f"  {q}: {q}\n" for q in questions)
    )
    people = HumanResponses.from_file(tmp_path / "sample.sav", mapping, instrument)
    shares = people.distribution().select("question_id", "option_code", "prob")
    observed = sample.marginals.select("question_id", "option_code", "observed")
    both = shares.join(observed, on=["question_id", "option_code"])
    assert both.height == sum(len(instrument.question(q).options) for q in questions)
    assert (both["prob"] - both["observed"]).abs().max() < 1e-12
    changed = instrument.model_copy(update={"title": "Edited"})
    with pytest.raises(InputError, match="differs from it"):
        sample.export(tmp_path / "other.sav", changed)
