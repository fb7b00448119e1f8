import math

import polars as pl
import pytest

from survey_sim import simulate
from survey_sim.asking.formats import PromptContext, get_format
from survey_sim.asking.kinds import ask, choice_request
from survey_sim.asking.orders import balanced_orders, displays, option_orders, order_name, reorder
from survey_sim.questionnaire import ChoiceQuestion
from survey_sim.runs import position_bias


def test_all_orders_up_to_four_options_then_a_latin_square():
    assert len(option_orders(3)) == 6 and option_orders(3)[0] == (0, 1, 2)
    assert len(set(option_orders(4))) == 24
    cyclic = option_orders(7)
    assert len(cyclic) == 7
    for position in range(7):  # every option appears once in every position
        assert sorted(order[position] for order in cyclic) == list(range(7))


def zero_to_ten(**given: object) -> ChoiceQuestion:
    """A 0-10 scale labelled 0 to 10 (the labels belong to the options), then don't know."""
    options = [{"code": str(i), "text": str(i), "label": str(i)} for i in range(11)]
    options.append({"code": "88", "text": "Don't know", "label": "88", "substantive": False})
    return ChoiceQuestion.model_validate(
        {"id": "trust", "kind": "ordinal", "text": "How much do you trust it?"}
        | {"options": options, **given}
    )


def test_a_scale_is_balanced_by_reversal_and_nominal_options_by_shifts(gss):
    scale = zero_to_ten()
    listed = tuple(range(12))
    assert balanced_orders(scale) == [listed, (*range(10, -1, -1), 11)]  # don't know stays
    assert len(balanced_orders(scale, "shift")) == 12
    nominal = ChoiceQuestion.model_validate(
        {"id": "c", "kind": "single_choice", "text": "Colour?"}
        | {"options": [{"code": c, "text": c} for c in ("red", "green", "blue")]}
    )
    assert len(balanced_orders(nominal)) == 6
    assert balanced_orders(nominal, "reverse") == [(0, 1, 2), (2, 1, 0)]
    assert balanced_orders(gss.question("natfare")) == [(0, 1, 2), (2, 1, 0)]


def test_labels_the_questionnaire_gives_stay_with_their_options_in_every_order():
    scale = zero_to_ten()
    assert not scale.positional_labels
    shown = [question for question, _ in displays(scale, permute=True)]
    assert [o.label for o in shown[1].options][:3] == ["10", "9", "8"]
    for question in shown:
        assert all(o.label == o.code for o in question.options)
        (request,) = ask(question, get_format("plain")).exact_requests(
            PromptContext("You are a voter.", None, None)
        )
        listing = [f"{o.label}. {o.text}" for o in question.options]
        assert "\n".join(listing) in request.prefix
        assert "Answer with the number of one option only." in request.prefix


def test_reorder_moves_options_and_keeps_their_identity(gss):
    natfare = gss.question("natfare")
    shown = reorder(natfare, (2, 0, 1))
    assert [o.code for o in shown.options] == ["-1", "1", "0"]
    assert [o.label for o in shown.options] == ["A", "B", "C"]  # labels follow the screen
    assert [o.position for o in shown.options] == [3, 1, 2]  # ordinal positions stay
    kept = reorder(natfare, (2, 0, 1), relabel=False)
    assert [o.label for o in kept.options] == ["C", "A", "B"]
    assert order_name(natfare, (2, 0, 1)) == "-1|1|0"
    with pytest.raises(ValueError):
        reorder(natfare, (0, 0, 1))


def test_permuted_simulation_maps_every_order_back(tiny_engine, gss, demo_population):
    questionnaire = gss.select(["natfare", "natarms"])
    result = simulate(
        questionnaire, demo_population, tiny_engine, permute=True, balance="shift", progress=False
    )
    responses = result.responses
    assert responses["order"].n_unique() == 6
    per_cell = responses.group_by("persona_id", "question_id", "order").agg(
        pl.col("option_code").sort(), pl.col("prob").sum(), pl.col("shown_position").sort()
    )
    assert all(codes.to_list() == ["-1", "0", "1"] for codes in per_cell["option_code"])
    assert all(p.to_list() == [1, 2, 3] for p in per_cell["shown_position"])
    assert per_cell["prob"].to_list() == pytest.approx([1.0] * per_cell.height)
    # Round trip: a row's probability is what the permuted prompt gives the option shown there.
    persona = next(iter(demo_population))
    natfare = questionnaire.question("natfare")
    shown = reorder(natfare, (1, 2, 0))
    request = choice_request(
        shown, get_format("chat"), description=persona.description, chat=tiny_engine
    )
    direct = tiny_engine.score([request])[0].probs
    rows = responses.filter(
        pl.col("persona_id") == persona.id,
        pl.col("question_id") == "natfare",
        pl.col("order") == "0|-1|1",
    ).sort("shown_position")
    assert rows["prob"].to_list() == pytest.approx(list(direct), abs=1e-6)
    population = result.population
    assert population.height == 6
    assert population.group_by("question_id").agg(pl.col("prob").sum())["prob"].to_list() == (
        pytest.approx([1.0, 1.0])
    )


def test_position_bias_on_known_values():
    # One persona, one 2-option question, two orders; the first shown always gets 0.8.
    rows = []
    for order, codes in (("a|b", ["a", "b"]), ("b|a", ["b", "a"])):
        for shown_position, (code, prob) in enumerate(zip(codes, [0.8, 0.2], strict=True), 1):
            rows.append(
                {
                    "persona_id": "p",
                    "question_id": "q",
                    "kind": "single_choice",
                    "option_code": code,
                    "order": order,
                    "shown_position": shown_position,
                    "prob": prob,
                }
            )
    bias = position_bias(pl.DataFrame(rows)).row(0, named=True)
    assert bias["orders"] == 2 and bias["options"] == 2
    assert math.isclose(bias["first_shown"], 0.8)
    assert math.isclose(bias["first_position_bias"], 0.3)
    assert math.isclose(bias["order_tv"], 0.3)  # each order is 0.3 from the 0.5/0.5 average
