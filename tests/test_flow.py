"""Questionnaire flow: the condition language against a plain reference evaluator, every
load-time error at its line, seeded orders, pipes, and the exact chance of being asked."""

from __future__ import annotations

import itertools
import textwrap
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from survey_sim import InputError, Population, load_questionnaire
from survey_sim._conditions import ConditionError, Reference, evaluate, parse_condition
from survey_sim.cli.main import main
from survey_sim.errors import FlowWarning
from survey_sim.flow import (
    asked_probability,
    can_be_asked,
    check_population,
    interview_order,
    path_dependent,
    personalised,
)

# --- the condition language against a reference evaluator ---------------------------------

NAMES = ["a", "b", "q-1", "x.y", "persona.age", "persona.party"]
VALUES = st.one_of(
    st.sampled_from(["1", "2", "yes", 'say "hi"', "it's"]),
    st.integers(-3, 60),
    st.sampled_from([1.5, True, False]),
)


def written(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


@st.composite
def expressions(draw, depth=0):
    """(text, reference function): the function evaluates the expression directly in
    Python on a dict of values (None: skipped), with the documented semantics."""
    kinds = ["compare", "member", "answered"] + (["not", "and", "or"] if depth < 3 else [])
    kind = draw(st.sampled_from(kinds))
    name = draw(st.sampled_from(NAMES))
    if kind == "compare":
        operator = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
        value = draw(VALUES)

        def compare(values, name=name, operator=operator, value=value):
            have = values.get(name)
            if have is None:
                return False
            if operator in ("==", "!="):
                same = type(have) is type(value) or (
                    isinstance(have, int | float)
                    and isinstance(value, int | float)
                    and not isinstance(have, bool)
                    and not isinstance(value, bool)
                )
                equal = same and have == value
                return equal if operator == "==" else not equal
            numbers = all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in (have, value)
            )
            return numbers and eval(f"{have!r} {operator} {value!r}")  # reference only

        return f"{name} {operator} {written(value)}", compare
    if kind == "member":
        listed = draw(st.lists(VALUES, min_size=1, max_size=3))
        negated = draw(st.booleans())

        def member(values, name=name, listed=listed, negated=negated):
            have = values.get(name)
            if have is None:
                return False
            found = any(
                (type(have) is type(v) or not ({type(have), type(v)} & {bool, str})) and have == v
                for v in listed
            )
            return found != negated

        text = f"{name} {'not in' if negated else 'in'} [{', '.join(map(written, listed))}]"
        return text, member
    if kind == "answered":
        answered = draw(st.booleans())
        text = f"{name} is {'answered' if answered else 'skipped'}"
        return (
            text,
            lambda values, name=name, answered=answered: (values.get(name) is not None) == answered,
        )
    if kind == "not":
        text, inner = draw(expressions(depth + 1))
        return f"not ({text})", lambda values: not inner(values)
    parts = draw(st.lists(expressions(depth + 1), min_size=2, max_size=3))
    joined = f" {kind} ".join(f"({text})" for text, _ in parts)
    if kind == "and":
        return joined, lambda values: all(f(values) for _, f in parts)
    return joined, lambda values: any(f(values) for _, f in parts)


ANSWERS = st.fixed_dictionaries(
    {name: st.one_of(st.none(), VALUES) for name in NAMES},
)


@settings(max_examples=400, deadline=None)
@given(expressions(), ANSWERS)
def test_conditions_evaluate_as_the_reference_does(expression, answers):
    text, reference = expression
    condition = parse_condition(text)

    def value_of(ref: Reference):
        return answers[f"persona.{ref.name}" if ref.persona else ref.name]

    assert evaluate(condition, value_of) == reference(answers), text
    assert evaluate(parse_condition(str(condition)), value_of) == reference(answers)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty"),
        ("a ==", "expected a value.*found the end"),
        ("a = 1", "cannot read '= 1' at column 3"),
        ("a in [1, 2", r"expected '\]'"),
        ("a is maybe", "expected 'answered' or 'skipped'"),
        ("(a == 1", r"expected '\)'"),
        ("a == 1 b == 2", "expected 'and', 'or' or the end, found 'b' at column 8"),
        ("and == 1", "expected a question id"),
        ("persona. == 1", "persona.' needs an attribute"),
        ("a == b", "expected a value"),
    ],
)
def test_malformed_conditions_say_what_was_expected_and_where(text, expected):
    with pytest.raises(ConditionError, match=expected):
        parse_condition(text)


# --- load-time errors, each at its line ---------------------------------------------------

BASE = """\
id: flow
option_sets:
  yn: [{code: "1", text: "Yes"}, {code: "2", text: "No"}]
questions:
  - {id: kids, kind: single_choice, text: Do you have children, options: yn}
  - {id: age, kind: numeric, text: How old are you, minimum: 18, maximum: 99,
     bins: [{code: young, min: 18, max: 39}, {code: old, min: 40, max: 99}]}
"""


def load(tmp_path: Path, extra: str, *, base: str = BASE):
    path = tmp_path / "flow.yaml"
    extra = textwrap.dedent(extra)
    if extra.startswith("- "):  # more questions
        extra = textwrap.indent(extra, "  ")
    path.write_text(base + extra)
    return load_questionnaire(path)


@pytest.mark.parametrize(
    ("extra", "line", "expected"),
    [
        (
            """  - {id: n, kind: single_choice, ask_if: 'kid == "1"', text: T, options: yn}""",
            8,
            "the condition names 'kid', which is not a question here",
        ),
        (
            """  - {id: n, kind: single_choice, ask_if: 'kids == "3"', text: T, options: yn}""",
            8,
            r"'kids' has no option '3' \(codes: 1, 2\)",
        ),
        (
            "  - {id: n, kind: single_choice, ask_if: 'kids == 1', text: T, options: yn}",
            8,
            'option codes are text: write "1" in quotes',
        ),
        (
            """  - {id: n, kind: single_choice, ask_if: 'kids > "1"', text: T, options: yn}""",
            8,
            "'kids' has options; compare it with ==, != or in",
        ),
        (
            """  - {id: n, kind: single_choice, ask_if: 'age >= "x"', text: T, options: yn}""",
            8,
            "'age' is numeric: compare it with a number",
        ),
        (
            "  - {id: n, kind: single_choice, ask_if: 'age >= 30', text: T, options: yn}",
            8,
            "true for some answers in bin 'young' .* make the condition's numbers bin",
        ),
        (
            """  - {id: n, kind: single_choice, ask_if: 'n == "1"', text: T, options: yn}""",
            8,
            "names 'n', which is not asked before it",
        ),
        (
            "  - {id: n, kind: single_choice, ask_if: 'kids ==', text: T, options: yn}",
            8,
            "expected a value",
        ),
        (
            "  - {id: n, kind: single_choice, text: 'You said {kid}', options: yn}",
            8,
            r"the pipe \{kid\} names 'kid', which is not a question here",
        ),
        (
            "  - {id: n, kind: single_choice, text: 'a { brace', options: yn}",
            8,
            "a lone '{' at character 3",
        ),
        (
            """\
              - {id: n, kind: single_choice, ask_if: 'kids == "1"', text: T, options: yn}
              - {id: m, kind: single_choice, text: 'You said {n}', options: yn}
            """,
            9,
            r"may have skipped; give the text shown then: \{n\|...\}",
        ),
        (
            """\
              - id: n
                kind: single_choice
                text: T
                options: [{code: "{kids}", text: A}, {code: b, text: B}]
            """,
            11,
            "an option code cannot be piped",
        ),
    ],
)
def test_flow_errors_name_the_field_and_line(tmp_path, extra, line, expected):
    with pytest.raises(InputError, match=expected) as caught:
        load(tmp_path, extra)
    assert f"flow.yaml:{line}:" in str(caught.value)


def test_block_errors_name_the_block_and_line(tmp_path):
    blocks = """\
    blocks:
      - {id: first, questions: [kids]}
      - {id: second, order: random, questions: [age, nope]}
    """
    with pytest.raises(InputError, match=r"flow.yaml:10: .*lists 'nope'"):
        load(tmp_path, blocks)
    overlapping = blocks.replace(", nope", ", kids")
    with pytest.raises(InputError, match="is in block 'first' and in block 'second'"):
        load(tmp_path, overlapping)
    with pytest.raises(InputError, match="in no block: age"):
        load(tmp_path, "blocks: [{id: first, questions: [kids]}]")
    later_in_a_random_block = """\
      - {id: n, kind: single_choice, ask_if: 'kids == "1"', text: T, options: yn}
    blocks:
      - {id: first, order: random, questions: [kids, n]}
      - {id: second, questions: [age]}
    """
    with pytest.raises(InputError, match="'kids', which is not asked before it in every order"):
        load(tmp_path, later_in_a_random_block)


def test_a_condition_that_can_never_hold_is_warned_about(tmp_path):
    question = "  - {id: n, kind: single_choice, ask_if: '%s', text: T, options: yn}"
    never = question % 'kids == "1" and kids == "2"'
    with pytest.warns(FlowWarning, match="question 'n': its condition .* can never hold"):
        load(tmp_path, never)
    possible = question % 'kids == "1" or persona.x == 1'
    with warnings.catch_warnings():
        warnings.simplefilter("error", FlowWarning)
        load(tmp_path, possible)


# --- the bundled instrument ---------------------------------------------------------------


def test_orders_are_seeded_per_respondent_and_reproducible(instrument):
    orders = {r: interview_order(instrument, 7, r) for r in map(str, range(40))}
    assert orders == {r: interview_order(instrument, 7, r) for r in map(str, range(40))}
    assert all(
        order[:4] == ("voted16", "vote16", "vote16_strength", "prefer16")
        for order in orders.values()
    )
    spending = {order[4:] for order in orders.values()}
    assert len(spending) == 6  # every order of the random block appears among 40 respondents
    assert interview_order(instrument, 8, "0") != interview_order(
        instrument, 7, "0"
    ) or interview_order(instrument, 8, "1") != interview_order(instrument, 7, "1")


def test_asked_probability_is_the_enumerated_share_of_answer_paths(instrument):
    turnout = {"1": 0.1, "2": 0.05, "3": 0.05, "4": 0.8}
    choice = {"1": 0.45, "2": 0.4, "3": 0.1, "4": 0.03, "5": 0.02}
    distributions = {"voted16": turnout, "vote16": choice}
    old = {"age": 66}
    share = {
        qid: asked_probability(instrument, qid, old, distributions)
        for qid in instrument.listed_order
    }
    by_hand = {"vote16": 0.0, "vote16_strength": 0.0, "prefer16": 0.0}
    for (t, pt), (c, pc) in itertools.product(turnout.items(), choice.items()):
        voted = t == "4"
        by_hand["vote16"] += pt * pc * voted
        by_hand["vote16_strength"] += pt * pc * (voted and c in ("1", "2"))
        by_hand["prefer16"] += pt * pc * (not voted)
    assert share["voted16"] == share["natfare"] == share["natsoc"] == 1.0
    for qid, expected in by_hand.items():
        assert share[qid] == pytest.approx(expected, abs=1e-12)
    assert asked_probability(instrument, "natsoc", {"age": 23}, distributions) == 0.0
    assert not can_be_asked(instrument, "natsoc", {"age": 23})
    assert can_be_asked(instrument, "vote16_strength", {"age": 23})


def test_pipes_fill_answers_and_attributes_with_fallbacks(instrument, tmp_path):
    population = Population.from_records([{"id": "p", "age": 50, "party": "Democrat"}])
    (persona,) = population
    strength = instrument.question("vote16_strength")
    shown = personalised(strength, persona, {"vote16": "Donald Trump"}).text
    assert shown == "Would you say your preference for Donald Trump was strong or not strong?"
    assert path_dependent(instrument) == ["vote16_strength"]
    piped = load(
        tmp_path,
        """\
          - id: n
            kind: single_choice
            ask_if: persona.party == "Democrat"
            text: "As a {persona.party} aged {age|unknown}, {{really}}?"
            options: [{code: a, text: "{kids}"}, {code: b, text: "No"}]
        """,
    )
    question = personalised(piped.question("n"), persona, {"kids": "Yes"})
    assert question.text == "As a Democrat aged unknown, {really}?"
    assert question.options[0].text == "Yes" and question.options[0].code == "a"
    check_population(piped, population)
    with pytest.raises(
        InputError, match=r"persona.party is not an attribute .*\(its attributes: age\)"
    ):
        check_population(piped, Population.from_records([{"id": "p", "age": 50}]))
    with pytest.raises(InputError, match="the personas' party is number, not like 'Democrat'"):
        check_population(piped, Population.from_records([{"id": "p", "party": 3}]))


def test_check_describes_the_flow_and_refuses_an_unknown_attribute(instrument, tmp_path, capsys):
    questionnaire = str(Path(__file__).parents[1] / "questionnaires/anes_2016_vote_flow.yaml")
    personas = str(Path(__file__).parents[1] / "personas/us_adults_demo.yaml")
    assert main(["check", "--questionnaire", questionnaire, "--personas", personas]) == 0
    printed = capsys.readouterr().out
    assert "Flow: blocks turnout, vote_choice, nonvoters, spending (random order)" in printed
    assert "vote16_strength depend(s) on earlier answers" in printed
    ageless = tmp_path / "ageless.csv"
    ageless.write_text("id,party\np1,Democrat\n")
    assert main(["check", "--questionnaire", questionnaire, "--personas", str(ageless)]) == 2
    assert "persona.age is not an attribute" in capsys.readouterr().err


def test_too_many_answer_paths_are_refused_with_the_numbers(instrument, monkeypatch):
    import survey_sim.flow

    monkeypatch.setattr(survey_sim.flow, "PATH_LIMIT", 10)
    distributions = {"voted16": {c: 0.25 for c in "1234"}, "vote16": {c: 0.2 for c in "12345"}}
    with pytest.raises(InputError, match=r"depends on 2 questions with 20 answer combinations"):
        asked_probability(instrument, "vote16_strength", {"age": 50}, distributions)
