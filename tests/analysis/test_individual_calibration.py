"""The respondent-level calibration model recovers planted parameters, and each k's trust
parameter gets the full weight of its own rows."""

from __future__ import annotations

import arviz as az
import numpy as np
import polars as pl
import pytest

from survey_sim import load_questionnaire
from survey_sim.analysis.individuals import IndividualCalibration
from survey_sim.data.bundled import bundled_file
from survey_sim.data.responses import HumanResponses
from survey_sim.runs.individuals import HeldOutRows

PLANTED_ALPHA = {0: 0.3, 2: 0.8, 8: 1.4}
"""Trust in the model's log-odds after k shown answers (k: alpha_k)."""
SAMPLING = {"draws": 1000, "tune": 1000, "seed": 1, "target_accept": 0.9}


def planted_rows(respondents: int = 400, seed: int = 0) -> HeldOutRows:
    """Rows drawn from the model itself: per k, ``respondents`` answers to one of seven
    questions (three options, as the GSS spending items), answer ~ Categorical(softmax(
    alpha_k · x + u_q)) with x the log-probabilities of a random simulated distribution."""
    rng = np.random.default_rng(seed)
    questions = ["natfare", "natsoc", "natenvir", "natheal", "natcity", "natcrime", "natdrug"]
    u = rng.normal(0.0, 0.8, size=(len(questions), 3))
    u[:, -1] = 0.0
    ids, shots, asked, answers, logprobs = [], [], [], [], []
    for k, alpha in PLANTED_ALPHA.items():
        for respondent in range(respondents):
            q = int(rng.integers(len(questions)))
            x = np.log(rng.dirichlet([1.0, 1.0, 1.0]))
            logits = alpha * x + u[q]
            p = np.exp(logits - logits.max())
            ids.append(f"{k}-{respondent}")
            shots.append(k)
            asked.append(questions[q])
            answers.append(int(rng.choice(3, p=p / p.sum())))
            logprobs.append(x)
    return HeldOutRows(ids, np.array(shots), asked, np.array(answers), logprobs)


@pytest.fixture(scope="module")
def human() -> HumanResponses:
    questionnaire = load_questionnaire(bundled_file("questionnaires", "gss_spending_2018.yaml"))
    frame = pl.DataFrame(
        {"respondent_id": ["r"], "weight": [1.0], "question_id": ["natfare"], "option_code": ["1"]}
    )
    return HumanResponses(frame, questionnaire, source="planted")


def only(rows: HeldOutRows, k: int) -> HeldOutRows:
    keep = np.flatnonzero(rows.shots == k)
    return HeldOutRows(
        [rows.respondents[i] for i in keep],
        rows.shots[keep],
        [rows.questions[i] for i in keep],
        rows.answers[keep],
        [rows.model_logprobs[i] for i in keep],
    )


def test_each_alpha_is_recovered_with_the_full_weight_of_its_rows(human):
    rows = planted_rows()
    joint = IndividualCalibration(rows, human).fit(**SAMPLING)
    hdi = az.hdi(joint, var_names=["alpha"], hdi_prob=0.95)["alpha"]
    sd = joint.posterior["alpha"].std(("chain", "draw"))
    for k, planted in PLANTED_ALPHA.items():
        low, high = hdi.sel(shots=k).values
        assert low < planted < high, (k, planted, low, high)
    # Fitted on k = 2's rows alone, alpha_2 is as certain as in the joint fit: the joint
    # fit does not divide a k's likelihood by the number of k (that widened it by sqrt(K)).
    alone = IndividualCalibration(only(rows, 2), human).fit(**SAMPLING)
    ratio = float(sd.sel(shots=2)) / float(alone.posterior["alpha"].std())
    assert 0.8 < ratio < 1.25, ratio
