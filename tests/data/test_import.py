"""Questionnaires in: an SPSS file written by pyreadstat (labels, measurement levels, declared
missing values, a weight, an id, demographics, an unlabelled number, a partly labelled scale,
a name ids cannot hold) becomes a questionnaire and mapping that load, read the file, and
give the same shares as a plain count; everything left out or guessed is noted."""

from __future__ import annotations

import pandas as pd
import polars as pl
import pyreadstat
import pytest

from survey_sim import HumanResponses, InputError, load_questionnaire
from survey_sim.data.importers import import_data_file


@pytest.fixture
def spss_file(tmp_path):
    frame = pd.DataFrame(
        {
            "respid": [101, 102, 103, 104, 105, 106],
            "wtfinal": [1.0, 2.0, 1.0, 0.5, 1.5, 1.0],
            "sex": [1, 2, 2, 1, 2, 1],
            "q1": [1, 2, 2, 3, 8, 1],
            "q2@b": [1, 2, 9, 1, 2, 2],
            "scale": [0, 5, 10, 7, 0, 3],
            "hours": [1.5, 2.0, 3.0, 0.5, 1.0, 2.5],
        }
    )
    path = tmp_path / "survey.sav"
    pyreadstat.write_sav(
        frame,
        str(path),
        column_labels={
            "q1": "How interested are you in politics?",
            "q2@b": "Did you vote?",
            "scale": "Trust in parliament, 0 to 10",
            "hours": "Hours of TV a day",
        },
        variable_value_labels={
            "sex": {1: "man", 2: "woman"},
            "q1": {1: "Very", 2: "Somewhat", 3: "Not at all", 8: "Don't know"},
            "q2@b": {1: "Yes", 2: "No", 9: "Refused"},
            "scale": {0: "No trust at all", 10: "Complete trust"},
        },
        missing_ranges={"q1": [8]},
        variable_measure={"q1": "ordinal", "q2@b": "nominal", "scale": "scale"},
    )
    return path


def test_an_spss_file_becomes_a_questionnaire_and_mapping(spss_file, tmp_path):
    imported = import_data_file(spss_file)
    questionnaire_path, mapping_path = imported.write(tmp_path / "q.yaml", tmp_path / "m.yaml")
    questionnaire = load_questionnaire(questionnaire_path)
    assert questionnaire.listed_order == ("q1", "q2_b", "scale")
    q1 = questionnaire.question("q1")
    assert q1.kind == "ordinal" and [o.code for o in q1.options] == ["1", "2", "3"]
    q2 = questionnaire.question("q2_b")
    assert q2.kind == "single_choice" and q2.options[-1].substantive is False
    scale = questionnaire.question("scale")
    assert [o.text for o in scale.options] == ["No trust at all", "3", "5", "7", "Complete trust"]
    assert imported.mapping["respondent"] == "respid"
    assert imported.mapping["weight"] == "wtfinal"
    assert imported.mapping["attributes"] == {"sex": "sex"}
    notes = "\n".join(imported.notes)
    for expected in (
        "hours: left out",
        "codes 8 declared missing",
        "q2@b: question id 'q2_b'",
        "9 'Refused' kept as a non-substantive option",
        "codes 3, 5, 7 have no value label",
        "scale: kind single_choice",
    ):
        assert expected in notes
    people = HumanResponses.from_file(spss_file, mapping_path, questionnaire)
    shares = dict(
        people.distribution()
        .filter(pl.col("question_id") == "q1")
        .select("option_code", "prob")
        .iter_rows()
    )
    weights = {"1": 1.0 + 1.0, "2": 2.0 + 1.0, "3": 0.5}  # the Don't know (8) left out
    total = sum(weights.values())
    assert shares == pytest.approx({code: w / total for code, w in weights.items()})
    assert people.frame.filter(pl.col("question_id") == "q1")["sex"].to_list()[0] == "man"


def test_a_file_without_labels_or_of_another_kind_is_refused(tmp_path):
    plain = tmp_path / "plain.sav"
    pyreadstat.write_sav(pd.DataFrame({"x": [1.0, 2.0]}), str(plain))
    with pytest.raises(InputError, match="no variable with value labels"):
        import_data_file(plain)
    with pytest.raises(InputError, match="reads SPSS"):
        import_data_file(tmp_path / "data.csv")


def test_an_exported_sample_imports_back_to_its_questions(tmp_path):
    from survey_sim.data.export import export_microdata

    source = tmp_path / "asked.yaml"
    source.write_text(
        "id: asked\ntitle: Asked\nquestions:\n"
        "  - id: trust\n    kind: ordinal\n    text: How much do you trust the news?\n"
        "    options:\n      - {code: 1, text: A lot}\n      - {code: 2, text: Some}\n"
        "      - {code: 9, text: Don't know, substantive: false}\n"
        "  - id: voted\n    kind: single_choice\n    text: Did you vote?\n"
        "    options:\n      - {code: 1, text: 'Yes'}\n      - {code: 2, text: 'No'}\n"
    )
    asked = load_questionnaire(source)
    wide = pl.DataFrame(
        {
            "respondent_id": ["r1", "r2"],
            "persona_id": ["a", "b"],
            "trust": ["1", "9"],
            "voted": ["2", "1"],
        }
    )
    export_microdata(wide, asked, tmp_path / "sample.sav")
    stata = tmp_path / "sample.dta"
    export_microdata(wide, asked, stata)
    imported = import_data_file(tmp_path / "sample.sav", survey_id="asked")
    imported.write(tmp_path / "back.yaml", tmp_path / "back.mapping.yaml")
    back = load_questionnaire(tmp_path / "back.yaml")
    for question in ("trust", "voted"):
        original, again = asked.question(question), back.question(question)
        assert (again.kind, again.text) == (original.kind, original.text)
        substantive = [(o.code, o.text) for o in original.options if o.substantive]
        assert [(o.code, o.text) for o in again.options] == substantive
    assert imported.mapping["questions"]["trust"] == {"column": "trust", "missing": ["9"]}
    from_stata = import_data_file(stata)
    assert [q["kind"] for q in from_stata.questionnaire["questions"]] == ["single_choice"] * 2
    assert any("trust: kind single_choice" in note for note in from_stata.notes)


def write_xlsform(path):
    from openpyxl import Workbook

    book = Workbook()
    survey = book.active
    survey.title = "survey"
    for row in [
        ("type", "name", "label::English (en)", "relevant", "constraint", "appearance"),
        ("start", "start", None, None, None),
        ("select_one yn", "voted", "Did you vote?", None, None),
        ("select_one cand", "vote", "Who did you vote for?", "${voted} = 'yes'", None),
        ("begin group", "spending", "Spending", None, None),
        ("select_one spend", "natfare", "Welfare", "not(${voted} = 'no')", None),
        ("select_multiple media", "media", "Which media do you use?", None, None),
        ("end group", None, None, None, None),
        ("begin group", "trust", "How much do you trust", None, None, "table-list"),
        ("select_one level", "trust_tv", "television", None, None),
        ("select_one level", "trust_web", "the web", None, None),
        ("end group", None, None, None, None),
        ("integer", "age", "How old are you?", None, ". >= 18 and . <= 99"),
        ("integer", "kids", "How many children do you have?", None, None),
        ("text", "why", "Why?", "selected(${media}, 'tv')", None),
        ("rank cand", "prefer", "Rank the candidates", None, None),
        ("note", "thanks", "Thank you", None, None),
    ]:
        survey.append(row)
    choices = book.create_sheet("choices")
    choices.append(("list_name", "name", "label::English (en)"))
    for row in [
        ("yn", "yes", "Yes"), ("yn", "no", "No"),
        ("cand", "clinton", "Hillary Clinton"), ("cand", "trump", "Donald Trump"),
        ("spend", "1", "Too little"), ("spend", "2", "About right"), ("spend", "3", "Too much"),
        ("media", "tv", "Television"), ("media", "paper", "Newspapers"),
        ("level", "1", "A lot"), ("level", "2", "Some"), ("level", "3", "None"),
    ]:  # fmt: skip
        choices.append(row)
    settings = book.create_sheet("settings")
    settings.append(("form_id", "form_title"))
    settings.append(("vote_form", "A vote form"))
    book.save(path)


def test_an_xlsform_becomes_a_questionnaire_with_blocks_and_conditions(tmp_path):
    from survey_sim.data.importers import import_file

    form = tmp_path / "form.xlsx"
    write_xlsform(form)
    imported = import_file(form)
    assert imported.mapping == {}
    (written,) = imported.write(tmp_path / "form.yaml", tmp_path / "unused.yaml")
    questionnaire = load_questionnaire(written)
    assert questionnaire.id == "vote_form" and questionnaire.title == "A vote form"
    assert questionnaire.listed_order == (
        "voted", "vote", "natfare", "media", "trust_tv", "trust_web", "age", "why", "prefer"
    )  # fmt: skip
    prefer = questionnaire.question("prefer")
    assert (prefer.kind, prefer.ranked, len(prefer.outcomes)) == ("rank", 2, 2)
    (trust,) = questionnaire.grids
    assert (trust.id, trust.text, trust.rows) == (
        "trust",
        "How much do you trust",
        ("trust_tv", "trust_web"),
    )
    web = questionnaire.question("trust_web")
    assert (web.kind, web.preamble, web.text) == (
        "single_choice",
        "How much do you trust",
        "the web",
    )
    assert questionnaire.question("vote").ask_if == 'voted == "yes"'
    assert questionnaire.question("natfare").ask_if == 'not (voted == "no")'
    assert questionnaire.question("media").kind == "multi_select"
    age = questionnaire.question("age")
    assert (age.kind, age.minimum, age.maximum) == ("numeric", 18, 99)
    assert questionnaire.question("why").ask_if is None
    assert [(b.id, b.questions) for b in questionnaire.blocks] == [
        ("part1", ("voted", "vote")),
        ("spending", ("natfare", "media")),
        ("trust", ("trust_tv", "trust_web")),
        ("part4", ("age", "why", "prefer")),
    ]
    notes = "\n".join(imported.notes)
    for expected in (
        "type start left out",
        "(kids): a number without",
        "(thanks): type note",
        "(trust): a matrix, asked as a grid of 2 rows (a single-choice question each",
    ):
        assert expected in notes
    assert "relevant \"selected(${media}, 'tv')\" does not translate" in notes
    assert not (tmp_path / "unused.yaml").exists()


SURVEYJS = {
    "title": "Media and politics",
    "pages": [
        {
            "name": "politics",
            "elements": [
                {
                    "type": "radiogroup",
                    "name": "voted",
                    "title": "Did you vote?",
                    "choices": [{"value": "yes", "text": "Yes"}, {"value": "no", "text": "No"}],
                },
                {
                    "type": "rating",
                    "name": "interest",
                    "title": "How interested are you in politics?",
                    "rateMin": 1,
                    "rateMax": 5,
                    "visibleIf": "{voted} = 'yes'",
                },
                {"type": "boolean", "name": "member", "title": "Are you a party member?"},
            ],
        },
        {
            "name": "media",
            "elements": [
                {
                    "type": "panel",
                    "name": "box",
                    "elements": [
                        {
                            "type": "checkbox",
                            "name": "media",
                            "title": "Which media do you use?",
                            "choices": ["TV", "Radio", "Papers"],
                        }
                    ],
                },
                {
                    "type": "matrix",
                    "name": "trust",
                    "title": "How much do you trust",
                    "columns": [
                        {"value": 1, "text": "A lot"},
                        {"value": 2, "text": "Some"},
                        {"value": 3, "text": "None"},
                    ],
                    "rows": [
                        {"value": "tv", "text": "television"},
                        {"value": "web", "text": "the web"},
                    ],
                    "visibleIf": "{media} contains 'TV'",
                },
                {
                    "type": "text",
                    "name": "age",
                    "title": "Age?",
                    "inputType": "number",
                    "min": 18,
                    "max": 99,
                },
                {
                    "type": "comment",
                    "name": "why",
                    "title": "Why?",
                    "visibleIf": "{interest} notempty",
                },
                {
                    "type": "ranking",
                    "name": "issues",
                    "title": "Rank these issues",
                    "choices": ["Jobs", "Health", "Crime", "Climate", "Taxes", "Schools", "Roads"],
                },
                {"type": "html", "name": "bye", "html": "<p>Thanks</p>"},
            ],
        },
    ],
}


def test_a_surveyjs_survey_becomes_a_questionnaire(tmp_path):
    import json

    from survey_sim.data.importers import import_file

    source = tmp_path / "survey.json"
    source.write_text(json.dumps(SURVEYJS))
    imported = import_file(source)
    (written,) = imported.write(tmp_path / "survey.yaml", tmp_path / "unused.yaml")
    questionnaire = load_questionnaire(written)
    assert questionnaire.listed_order == (
        "voted", "interest", "member", "media", "trust_tv", "trust_web", "age", "why", "issues"
    )  # fmt: skip
    issues = questionnaire.question("issues")
    assert (issues.kind, issues.ranked, len(issues.outcomes)) == ("rank", 3, 7 * 6 * 5)
    assert questionnaire.question("interest").kind == "ordinal"
    assert questionnaire.question("interest").ask_if == 'voted == "yes"'
    assert [o.code for o in questionnaire.question("member").options] == ["true", "false"]
    web = questionnaire.question("trust_web")
    assert (web.kind, web.preamble, web.text) == ("ordinal", "How much do you trust", "the web")
    assert questionnaire.grid("trust").rows == ("trust_tv", "trust_web")
    assert questionnaire.question("trust_tv").ask_if is None
    assert questionnaire.question("why").ask_if == "interest is answered"
    assert [b.id for b in questionnaire.blocks] == ["politics", "media"]
    notes = "\n".join(imported.notes)
    assert "a matrix, asked as a grid of 2 rows (an ordinal question each" in notes
    assert "visibleIf \"{media} contains 'TV'\" does not translate" in notes
    assert "type html left out" in notes
    assert (
        "ranking all 7 options has 5,040 possible rankings, more than the 720 that can be read; "
        "asked for the top 3 (rank: 3)"
    ) in notes
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(InputError, match="cannot read as JSON"):
        import_file(tmp_path / "broken.json")


def qualtrics_question(qid, tag, text, kind, selector, **payload):
    return {
        "SurveyID": "SV_1",
        "Element": "SQ",
        "PrimaryAttribute": qid,
        "Payload": {
            "QuestionID": qid,
            "DataExportTag": tag,
            "QuestionText": text,
            "QuestionType": kind,
            "Selector": selector,
            **payload,
        },
    }


QSF = {
    "SurveyEntry": {"SurveyID": "SV_1", "SurveyName": "Spending study"},
    "SurveyElements": [
        {
            "Element": "BL",
            "PrimaryAttribute": "Survey Blocks",
            "Payload": [
                {
                    "Type": "Default",
                    "Description": "Screener",
                    "ID": "BL_1",
                    "BlockElements": [
                        {"Type": "Question", "QuestionID": "QID1"},
                        {"Type": "Question", "QuestionID": "QID2"},
                    ],
                },
                {
                    "Type": "Standard",
                    "Description": "Main items",
                    "ID": "BL_2",
                    "BlockElements": [
                        {"Type": "Question", "QuestionID": "QID3"},
                        {"Type": "Question", "QuestionID": "QID4"},
                        {"Type": "Question", "QuestionID": "QID5"},
                        {"Type": "Question", "QuestionID": "QID6"},
                    ],
                },
            ],
        },
        qualtrics_question(
            "QID1",
            "voted",
            "<p>Did you <b>vote</b> in 2016?</p>",
            "MC",
            "SAVR",
            Choices={"1": {"Display": "Yes"}, "2": {"Display": "No"}},
            ChoiceOrder=[1, 2],
            RecodeValues={"1": "1", "2": "0"},
        ),
        qualtrics_question(
            "QID2",
            "media",
            "Which media do you use?",
            "MC",
            "MAVR",
            Choices={"1": {"Display": "TV"}, "2": {"Display": "Papers"}},
            ChoiceOrder=[1, 2],
        ),
        qualtrics_question(
            "QID3",
            "spend",
            "Are we spending too much or too little on",
            "Matrix",
            "Likert",
            Choices={"1": {"Display": "welfare"}, "2": {"Display": "defence"}},
            ChoiceOrder=[1, 2],
            Answers={
                "1": {"Display": "Too little"},
                "2": {"Display": "About right"},
                "3": {"Display": "Too much"},
            },
            AnswerOrder=[1, 2, 3],
        ),
        qualtrics_question(
            "QID4",
            "why",
            "Why did you vote?",
            "TE",
            "SL",
            DisplayLogic={
                "0": {
                    "0": {
                        "LogicType": "Question",
                        "QuestionID": "QID1",
                        "ChoiceLocator": "q://QID1/SelectableChoice/1",
                        "Operator": "Selected",
                        "Type": "Expression",
                    },
                    "Type": "If",
                },
                "Type": "BooleanExpression",
            },
        ),
        qualtrics_question(
            "QID5",
            "rank",
            "Rank these",
            "RO",
            "DND",
            Choices={
                "1": {"Display": "Schools"},
                "2": {"Display": "Roads"},
                "3": {"Display": "Parks"},
            },
            ChoiceOrder=[1, 2, 3],
        ),
        qualtrics_question(
            "QID6",
            "tv_hours",
            "Hours of TV",
            "MC",
            "SAVR",
            Choices={"1": {"Display": "Few"}, "2": {"Display": "Many"}},
            DisplayLogic={
                "0": {
                    "0": {
                        "LogicType": "Question",
                        "QuestionID": "QID2",
                        "ChoiceLocator": "q://QID2/SelectableChoice/1",
                        "Operator": "Selected",
                    },
                    "Type": "If",
                },
                "Type": "BooleanExpression",
            },
        ),
    ],
}


def test_a_qualtrics_export_becomes_a_questionnaire(tmp_path):
    import json

    from survey_sim.data.importers import import_file

    source = tmp_path / "study.qsf"
    source.write_text(json.dumps(QSF))
    imported = import_file(source)
    (written,) = imported.write(tmp_path / "study.yaml", tmp_path / "unused.yaml")
    questionnaire = load_questionnaire(written)
    assert questionnaire.title == "Spending study"
    assert questionnaire.listed_order == (
        "voted", "media", "spend_1", "spend_2", "why", "rank", "tv_hours"
    )  # fmt: skip
    ranked = questionnaire.question("rank")
    assert (ranked.kind, [o.text for o in ranked.options]) == (
        "rank",
        ["Schools", "Roads", "Parks"],
    )
    voted = questionnaire.question("voted")
    assert voted.text == "Did you vote in 2016?"
    assert [(o.code, o.text) for o in voted.options] == [("1", "Yes"), ("0", "No")]
    assert questionnaire.question("media").kind == "multi_select"
    spend = questionnaire.question("spend_2")
    assert (spend.preamble, spend.text) == ("Are we spending too much or too little on", "defence")
    assert questionnaire.grid_of("spend_1") == questionnaire.grid("spend")
    assert questionnaire.question("why").ask_if == 'voted == "1"'
    assert questionnaire.question("tv_hours").ask_if is None
    assert [b.id for b in questionnaire.blocks] == ["Screener", "Main_items"]
    notes = "\n".join(imported.notes)
    assert "question tv_hours: display logic does not translate" in notes


def test_import_simulate_export_round_trip(spss_file, tiny_engine, tmp_path):
    from survey_sim import simulate_respondents

    imported = import_data_file(spss_file)
    questionnaire_path, mapping_path = imported.write(tmp_path / "q.yaml", tmp_path / "m.yaml")
    questionnaire = load_questionnaire(questionnaire_path)
    people = HumanResponses.from_file(spss_file, mapping_path, questionnaire)
    population = people.population(["sex"])
    sample = simulate_respondents(questionnaire, population, tiny_engine, 30, progress=False)
    sample.export(tmp_path / "simulated.sav", questionnaire)
    _, original = pyreadstat.read_sav(str(spss_file), user_missing=True)
    frame, again = pyreadstat.read_sav(str(tmp_path / "simulated.sav"), user_missing=True)
    for name in ("q1", "scale"):  # q2@b became q2_b: ids cannot hold '@'
        assert name in frame.columns
        assert again.column_names_to_labels[name] == original.column_names_to_labels[name]
        # Every labelled code, the declared-missing 8 "Don't know" included (never asked,
        # carried as a missing code).
        assert again.variable_value_labels[name].items() >= (
            original.variable_value_labels[name].items()
        )
    assert again.missing_ranges["q1"] == original.missing_ranges["q1"] == [{"lo": 8.0, "hi": 8.0}]
    # The source left q2@b's 9 "Refused" undeclared; imported as a non-substantive option (the
    # import notes it), it is exported declared missing, as exports declare such options.
    assert again.missing_ranges["q2_b"] == [{"lo": 9.0, "hi": 9.0}]
    assert questionnaire.question("q1").missing_codes[0].text == "Don't know"
    assert set(frame["q1"].dropna()) <= {1.0, 2.0, 3.0}
    assert set(frame["sex"]) == {"man", "woman"}
