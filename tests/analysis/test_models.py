"""The PyMC alignment model: parameter recovery on simulated data, and the real GSS fit."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import polars as pl
import pytest

from survey_sim import Alignment, Calibration, DiagnosticWarning, InputError, Population, Subgroups
from survey_sim.analysis import AlignedData
from survey_sim.analysis.backend import log_odds
from survey_sim.data.bundled import gss_spending_2018
from survey_sim.data.responses import HumanResponses
from survey_sim.runs import subgroup_distributions


def synthetic(kappa: float, respondents: int = 400, seed: int = 1):
    """Human answers drawn around known simulated distributions with concentration kappa."""
    rng = np.random.default_rng(seed)
    people = gss_spending_2018()
    questionnaire = people.questionnaire
    ids = [q.id for q in questionnaire]
    simulated, rows = [], []
    for question_id in ids:
        codes = [o.code for o in questionnaire.question(question_id).options]
        s = rng.dirichlet([2.0] * len(codes))
        p = rng.dirichlet(kappa * s)
        answers = rng.choice(codes, size=respondents, p=p)
        simulated += [
            {"question_id": question_id, "option_code": c, "prob": v}
            for c, v in zip(codes, s, strict=True)
        ]
        rows += [
            {"respondent_id": str(i), "weight": 1.0, "question_id": question_id, "option_code": a}
            for i, a in enumerate(answers)
        ]
    human = HumanResponses(pl.DataFrame(rows), questionnaire, source="synthetic")
    return pl.DataFrame(simulated), human


def test_alignment_recovers_a_known_kappa():
    simulated, human = synthetic(kappa=20.0)
    data = AlignedData.of(simulated, human)
    assert data.probabilities.shape == data.counts.shape == (1, 18, 3)
    assert (data.counts.sum(axis=-1) == 400).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiagnosticWarning)
        idata = Alignment(simulated, human).fit()
    low, high = az.hdi(idata, var_names=["kappa"], hdi_prob=0.95)["kappa"].values
    assert low < 20.0 < high, (low, high)
    assert high / low < 6  # the data pin kappa down, not just the prior


def test_real_gss_alignment_of_a_uniform_simulation():
    people = gss_spending_2018()
    uniform = (
        people.distribution()
        .with_columns(prob=pl.lit(1 / 3))
        .select("question_id", "option_code", "prob")
    )
    idata = Alignment(uniform, people).fit(draws=300, tune=300)
    kappa = float(idata.posterior["kappa"].mean())
    assert 0 < kappa < 50
    counts = idata.observed_data["counts"]
    answered = set(people.distribution()["question_id"])  # the 7 single-wording items
    assert list(counts.coords["question"].values) == [
        q.id for q in people.questionnaire if q.id in answered
    ]
    assert list(counts.coords["option"].values) == ["1", "0", "-1"]  # the survey's codes
    assert idata.posterior.attrs["questionnaire"] == "gss_spending_2018"


def test_diagnostics_are_hard_to_miss():
    simulated, human = synthetic(kappa=20.0, seed=2)
    with pytest.warns(DiagnosticWarning, match=r"bulk ESS.*the CLI's --draws") as caught:
        Alignment(simulated, human).fit(draws=20, tune=20, chains=2)
    assert "(draws=, tune=" in str(caught[0].message)


def calibrated_people(alpha: float, beta: list[float], sigma: float, seed: int = 3):
    """Human answers whose log-odds against the last option are alpha * (log-odds of s) + beta
    + u, u ~ Normal(0, sigma), around random s."""
    rng = np.random.default_rng(seed)
    questionnaire = gss_spending_2018().questionnaire
    simulated, rows = [], []
    for question in questionnaire:
        codes = [o.code for o in question.options]
        s = rng.dirichlet([2.0] * len(codes))
        eta = alpha * log_odds(s) + np.array(beta) + rng.normal(0, sigma, len(codes) - 1)
        p = np.exp(np.append(eta, 0.0)) / np.exp(np.append(eta, 0.0)).sum()
        answers = rng.choice(codes, size=300, p=p)
        simulated += [
            {"question_id": question.id, "option_code": c, "prob": v}
            for c, v in zip(codes, s, strict=True)
        ]
        rows += [
            {"respondent_id": str(i), "weight": 1.0, "question_id": question.id, "option_code": a}
            for i, a in enumerate(answers)
        ]
    return pl.DataFrame(simulated), HumanResponses(pl.DataFrame(rows), questionnaire, "synthetic")


def test_calibration_recovers_its_parameters_and_predicts_held_out_questions():
    simulated, human = calibrated_people(alpha=1.5, beta=[0.8, 0.4], sigma=0.3)
    ids = [q.id for q in human.questionnaire]
    calibration = Calibration(simulated, human, questions=ids[:14])
    idata = calibration.fit()
    assert list(idata.posterior["beta"].coords["contrast"].values) == [
        "Too little vs Too much",
        "About right vs Too much",
    ]
    assert list(idata.posterior["eta"].coords["question"].values) == ids[:14]
    hdi = az.hdi(idata, var_names=["alpha", "sigma"], hdi_prob=0.95)
    assert hdi["alpha"].values[0] < 1.5 < hdi["alpha"].values[1]
    assert hdi["sigma"].values[0] < 0.3 < hdi["sigma"].values[1]
    predictions = calibration.predict(ids[14:])
    assert predictions.height == 4 * 3
    assert (predictions["lower"] <= predictions["predicted"]).all()
    assert (predictions["predicted"] <= predictions["upper"]).all()
    assert predictions["covered"].mean() >= 0.5  # 90% intervals, 12 cells: a loose floor


@pytest.mark.slow
def test_subgroups_recover_each_groups_alpha():
    rng = np.random.default_rng(5)
    questionnaire = gss_spending_2018().questionnaire
    questions = list(questionnaire)[:10]
    alphas = {"young": 0.4, "middle": 1.0, "old": 1.6}
    simulated, rows = [], []
    for group, alpha in alphas.items():
        for question in questions:
            codes = [o.code for o in question.options]
            s = rng.dirichlet([2.0] * len(codes))
            eta = alpha * log_odds(s) + np.array([0.5, 0.2]) + rng.normal(0, 0.2, 2)
            p = np.exp(np.append(eta, 0.0)) / np.exp(np.append(eta, 0.0)).sum()
            simulated += [
                {"age": group, "question_id": question.id, "option_code": c, "prob": v}
                for c, v in zip(codes, s, strict=True)
            ]
            rows += [
                {
                    "respondent_id": f"{group}{i}",
                    "weight": 1.0,
                    "question_id": question.id,
                    "option_code": answer,
                    "age": group,
                }
                for i, answer in enumerate(rng.choice(codes, size=200, p=p))
            ]
    human = HumanResponses(pl.DataFrame(rows), questionnaire, "synthetic")
    idata = Subgroups(pl.DataFrame(simulated), human, ["age"]).fit(draws=600, tune=600)
    assert idata.posterior["eta"].dims[2:] == ("subgroup", "question", "contrast")
    assert list(idata.posterior["alpha"].coords["subgroup"].values) == ["middle", "old", "young"]
    hdi = az.hdi(idata, var_names=["alpha"], hdi_prob=0.95)["alpha"]
    for group, alpha in alphas.items():
        low, high = hdi.sel(subgroup=group).values
        assert low < alpha < high, (group, low, high)
    means = idata.posterior["alpha"].mean(("chain", "draw"))
    assert means.sel(subgroup="young") < means.sel(subgroup="middle") < means.sel(subgroup="old")


def test_subgroup_distributions_average_personas_by_weight():
    population = Population.from_records(
        [
            {"id": "a", "weight": 1.0, "party": "D"},
            {"id": "b", "weight": 3.0, "party": "D"},
            {"id": "c", "weight": 1.0, "party": "R"},
        ]
    )
    responses = pl.DataFrame(
        {
            "persona_id": ["a", "a", "b", "b", "c", "c"],
            "weight": [1.0, 1.0, 3.0, 3.0, 1.0, 1.0],
            "question_id": ["q"] * 6,
            "option_code": ["yes", "no"] * 3,
            "prob": [0.8, 0.2, 0.4, 0.6, 0.1, 0.9],
        }
    ).with_columns(
        kind=pl.lit("single_choice"),
        option_text=pl.col("option_code"),
        position=pl.lit(None, pl.Int32),
        substantive=True,
        coverage=0.5,
        method=pl.lit("exact"),
        model=pl.lit("m"),
        format=pl.lit("chat"),
    )
    grouped = subgroup_distributions(responses, population.frame, ["party"]).sort(
        "party", maintain_order=True
    )
    assert grouped["prob"].to_list() == pytest.approx([0.5, 0.5, 0.1, 0.9])
    with pytest.raises(InputError, match="no attribute age"):
        subgroup_distributions(responses, population.frame, ["age"])


def test_nutpie_samples_the_same_posterior():
    simulated, human = synthetic(kappa=20.0, seed=4)
    by_pymc = Alignment(simulated, human).fit(draws=500, tune=500)
    by_nutpie = Alignment(simulated, human).fit(draws=500, tune=500, sampler="nutpie")
    means = [float(i.posterior["log_kappa"].mean()) for i in (by_pymc, by_nutpie)]
    sd = float(by_pymc.posterior["log_kappa"].std())
    assert abs(means[0] - means[1]) < sd / 2


def test_questions_on_different_scales_are_not_pooled():
    """Two 3-option questions with different answer scales: refused, naming both scales."""
    simulated, human = synthetic(kappa=20.0)
    questionnaire = human.questionnaire
    natfare = questionnaire.question("natfare")
    other = natfare.model_validate(
        natfare.model_dump() | {"options": [{"code": c, "text": c} for c in ("yes", "no", "maybe")]}
    )
    mixed = questionnaire.model_copy(update={"questions": (other, *questionnaire.questions[1:])})
    frame = human.frame.filter(pl.col("question_id") != "natfare")
    codes = ["yes", "no", "maybe"] * 100
    extra = pl.DataFrame(
        {
            "respondent_id": [str(i) for i in range(300)],
            "weight": [1.0] * 300,
            "question_id": ["natfare"] * 300,
            "option_code": codes,
        }
    )
    people = HumanResponses(pl.concat([frame, extra]), mixed, "synthetic")
    relabelled = simulated.with_columns(
        option_code=pl.when(pl.col("question_id") == "natfare")
        .then(pl.col("option_code").replace({"1": "yes", "0": "no", "-1": "maybe"}))
        .otherwise(pl.col("option_code"))
    )
    with pytest.raises(InputError, match=r"one answer scale.*yes/no/maybe: natfare"):
        Calibration(relabelled, people)
