from pathlib import Path

import pytest

from survey_sim import InputError, load_questionnaire


def write(tmp_path: Path, text: str, name: str = "q.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_gss_questionnaire(gss):
    assert gss.id == "gss_spending_2018"
    assert len(gss) == 18
    natfare = gss.question("natfare")
    assert natfare.kind == "ordinal"
    assert [o.text for o in natfare.options] == ["Too little", "About right", "Too much"]
    assert [o.code for o in natfare.options] == ["1", "0", "-1"]
    assert [o.label for o in natfare.options] == ["A", "B", "C"]
    assert [o.position for o in natfare.options] == [1, 2, 3]
    assert natfare.preamble.startswith("We are faced with many problems in this country")


def test_labels_positions_and_non_substantive_options(tmp_path):
    path = write(
        tmp_path,
        """
id: t
questions:
  - id: q1
    kind: ordinal
    label_style: number
    text: How much do you agree?
    options:
      - {code: 1, text: Agree}
      - {code: 2, text: Disagree}
      - {code: 8, text: Don't know, substantive: false}
  - id: q2
    kind: single_choice
    text: Pick a colour
    options:
      - {code: r, text: Red, label: R}
      - {code: g, text: Green}
""",
    )
    questionnaire = load_questionnaire(path)
    q1, q2 = questionnaire.questions
    assert [o.label for o in q1.options] == ["1", "2", "3"]
    assert [o.position for o in q1.options] == [1, 2, None]
    assert [o.label for o in q2.options] == ["R", "B"]
    assert all(o.position is None for o in q2.options)
    assert q1.option("8").substantive is False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (  # missing text: names the question and the field, and the line
            """
id: t
questions:
  - id: q1
    kind: ordinal
    options: [{code: 1, text: A}, {code: 2, text: B}]
""",
            ["question 'q1'", "text", "Field required"],
        ),
        (
            """
id: t
questions:
  - id: q1
    kind: ordinal
    text: T
    options:
      - {code: 1, text: A}
      - {code: 2, txt: B}
""",
            ["q.yaml:9", "question 'q1'", "options.1."],
        ),
        (
            """
id: t
questions:
  - {id: q1, kind: ordinal, text: T, options: [{code: 1, text: A}, {code: 1, text: B}]}
""",
            ["question 'q1'", "duplicate option code: 1"],
        ),
        (  # the instruction could name neither letters nor numbers
            """
id: t
questions:
  - id: q1
    kind: single_choice
    text: T
    options: [{code: 1, text: A, label: "1"}, {code: 2, text: B, label: B}]
""",
            ["question 'q1'", "labels 1, B are neither all single letters nor all whole numbers"],
        ),
        (
            """
id: t
questions:
  - {id: q1, kind: ordinal, text: T, options: [{code: 1, text: A}, {code: 2, text: B}]}
  - {id: q1, kind: ordinal, text: U, options: [{code: 1, text: A}, {code: 2, text: B}]}
""",
            ["duplicate question id: q1"],
        ),
        (
            """
id: t
questions:
  - {id: q1, kind: essay, text: T, options: [{code: 1, text: A}, {code: 2, text: B}]}
""",
            ["question 'q1'", "single_choice", "ordinal"],
        ),
        (
            """
id: t
questions:
  - {id: q1, kind: ordinal, text: T, options: agree5}
""",
            ["question 'q1'", "unknown option set 'agree5'"],
        ),
        (
            "id: t\nquestions: [\n",
            ["q.yaml", "invalid YAML"],
        ),
        (
            "- just\n- a list\n",
            ["expected a mapping"],
        ),
        (
            """
id: t
questions:
  - {id: q1, kind: ordinal, text: T, options: [{code: 1, text: A}]}
""",
            ["question 'q1'", "options", "at least 2"],
        ),
    ],
)
def test_malformed_files_give_one_clear_error(tmp_path, body, expected):
    path = write(tmp_path, body)
    with pytest.raises(InputError) as caught:
        load_questionnaire(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_error_points_at_the_line_of_the_bad_field(tmp_path):
    path = write(
        tmp_path,
        "id: t\nquestions:\n  - id: q1\n    kind: ordinal\n    text: T\n"
        "    options:\n      - {code: 1, text: A}\n      - {code: true, text: B}\n",
    )
    with pytest.raises(InputError) as caught:
        load_questionnaire(path)
    assert caught.value.line == 8
    assert "YAML boolean true: quote" in caught.value.problem


def test_unquoted_yes_no_option_text_is_explained_at_its_line(tmp_path):
    """Unquoted Yes reads as a YAML boolean: the message says so at the option's line, in
    the question or in the option set the question uses."""
    path = write(
        tmp_path,
        "id: t\noption_sets:\n  yn:\n    - {code: 1, text: Yes}\n    - {code: 0, text: 'No'}\n"
        "questions:\n  - {id: q1, kind: single_choice, text: T, options: yn}\n"
        "  - id: q2\n    kind: single_choice\n    text: T\n    options:\n"
        "      - {code: 1, text: 'Yes'}\n      - {code: 0, text: No}\n",
    )
    with pytest.raises(InputError) as caught:
        load_questionnaire(path)
    assert caught.value.line == 4
    assert 'reads as the YAML boolean true: quote words such as "Yes"' in caught.value.problem
    path.write_text(path.read_text().replace("text: Yes}", "text: 'Yes'}"))
    with pytest.raises(InputError) as caught:
        load_questionnaire(path)
    assert caught.value.line == 13
    assert caught.value.location == "question 'q2', field 'options.1.text'"


def test_non_utf8_and_missing_files(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("id: caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match="not valid UTF-8"):
        load_questionnaire(path)
    with pytest.raises(InputError, match="file not found"):
        load_questionnaire(tmp_path / "absent.yaml")


def test_select_keeps_requested_questions(gss):
    subset = gss.select(["natfare", "natsoc"])
    assert [q.id for q in subset] == ["natfare", "natsoc"]
    with pytest.raises(KeyError):
        gss.select(["nope"])


def test_codes_are_normalised_as_the_data_loader_does(tmp_path):
    """1, 1.0 and "1" are one code everywhere: questionnaire, mapping and data file."""
    from survey_sim._codes import code_text

    path = write(
        tmp_path,
        "id: t\nquestions:\n  - id: q\n    kind: single_choice\n    text: T\n"
        "    options: [{code: 1.0, text: One}, {code: 2, text: Two}, {code: '3.5', text: X}]\n",
    )
    codes = [o.code for o in load_questionnaire(path).question("q").options]
    assert codes == ["1", "2", "3.5"]
    assert [code_text(value) for value in (1.0, 1, "1", 3.5)] == ["1", "1", "1", "3.5"]


GRID = """
id: t
option_sets:
  trust:
    - {code: "1", text: A lot}
    - {code: "2", text: Some}
    - {code: "3", text: Not at all}
    - {code: "8", text: "Don't know", substantive: false}
questions:
  - id: voted
    kind: single_choice
    text: Did you vote?
    options: [{code: "y", text: "Yes"}, {code: "n", text: "No"}]
  - id: trust
    kind: grid
    preamble: Now some questions about institutions.
    text: How much do you trust each of these?
    options: trust
    ask_if: voted == "y"
    rows:
      - {id: trust_parliament, text: The parliament}
      - {id: trust_police, text: The police}
      - {id: trust_courts, text: The courts}
blocks:
  - {id: first, questions: [voted]}
  - {id: institutions, questions: [trust], order: random}
"""


def test_a_grid_is_one_entry_whose_rows_are_asked_with_the_shared_stem(tmp_path):
    questionnaire = load_questionnaire(write(tmp_path, GRID))
    (grid,) = questionnaire.grids
    assert grid.rows == ("trust_parliament", "trust_police", "trust_courts")
    assert grid.text == "How much do you trust each of these?"
    police = questionnaire.question("trust_police")
    assert (police.kind, police.text, police.ask_if) == ("ordinal", "The police", 'voted == "y"')
    assert police.preamble == (
        "Now some questions about institutions.\n\nHow much do you trust each of these?"
    )
    assert [o.position for o in police.options] == [1, 2, 3, None]  # don't know off the scale
    assert questionnaire.block_of("trust_courts").questions == grid.rows
    assert questionnaire.grid_of("trust_courts") == grid and questionnaire.grid_of("voted") is None
    assert questionnaire.select(["voted", "trust_police"]).grids[0].rows == ("trust_police",)
    assert questionnaire.select(["voted"]).grids == ()
    again = type(questionnaire).model_validate(questionnaire.model_dump())
    assert again == questionnaire  # a loaded questionnaire's dump loads back unchanged


COURTS = "      - {id: trust_courts, text: The courts}"


@pytest.mark.parametrize(
    ("written", "instead", "fragments"),
    [
        (
            COURTS,
            "      - {id: trust courts, text: The courts}",
            ["grid 'trust', row 3, field 'id'"],
        ),
        (COURTS, "      - {id: trust_courts, txt: The courts}", ["grid 'trust', field 'rows.2'"]),
        ("    rows:", "    colour: blue\n    rows:", ["grid 'trust'", "unknown field colour"]),
        (
            "    rows:",
            "    scale: numeric\n    rows:",
            ["grid 'trust', field 'scale'", "ordinal or single_choice"],
        ),
        ("    rows:", "    scale: single_choice\n    rows:", []),
    ],
)
def test_grid_mistakes_are_located_where_they_are_written(tmp_path, written, instead, fragments):
    body = GRID.replace(written, instead)
    path = write(tmp_path, body)
    if not fragments:
        assert load_questionnaire(path).question("trust_courts").kind == "single_choice"
        return
    with pytest.raises(InputError) as caught:
        load_questionnaire(path)
    assert caught.value.line == body.splitlines().index(instead.split("\n")[0]) + 1
    for fragment in fragments:
        assert fragment in str(caught.value)
