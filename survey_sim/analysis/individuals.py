"""The calibration model at the respondent level: how far to trust the model's individual
predictions.

Each training respondent's real answer to a held-out question q, after k shown answers, is

    answer ~ Categorical(softmax(alpha_k · x + u_q))

where ``x`` are the model's log-probabilities of the question's options for that respondent,
``alpha_k`` stretches or flattens them (0: they carry nothing about the person, 1: take them
as they are; one per k, so the posterior says whether shown answers make the model more
trustworthy), and ``u_k,q`` is the question's own leaning per option, partially pooled over
questions: ``u_k,q,o = beta_k,o + sigma_k · z_k,q,o`` (``beta`` the leaning shared by option
position, ``sigma`` how far questions stray from it). The last option of each question is
the reference (its ``u`` is 0). Questions may have different numbers of options: the missing
ones are masked out.

Each respondent's answer is in the data once per k, with the model's prediction after k
answers. Every k therefore has a model of its own (its ``alpha``, question effects and
their pooling): each sub-model sees every real answer once, with full weight, so ``alpha_k``
is as certain as the rows at k make it. (Question effects shared over k would see every
answer once per k; dividing the likelihood by the number of k to undo that also divided
each ``alpha_k``'s own likelihood, widening its posterior by about sqrt(K).)

Fitted on training respondents only (:class:`~survey_sim.runs.individuals.HeldOutRows` of role
train), it predicts test respondents' answers (:meth:`IndividualCalibration.predict`) with
the posterior averaged over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Unpack

import numpy as np

from survey_sim.analysis.backend import SamplingOptions, sample
from survey_sim.data.responses import HumanResponses
from survey_sim.errors import InputError, SurveySimError

if TYPE_CHECKING:
    import arviz as az

    from survey_sim.runs.individuals import HeldOutRows

MASKED = -1e9
"""The logit of an option a question does not have."""
PREDICTION_DRAWS = 500
"""Posterior draws averaged over per prediction."""


class IndividualCalibration:
    """The respondent-level calibration model (module docstring).

    Args:
        rows: Training rows: respondent × k × held-out question, the model's
            log-probabilities and the real answers.
        human: The human data (for question ids and attributes of the fit).
    """

    def __init__(self, rows: HeldOutRows, human: HumanResponses) -> None:
        self.rows = rows
        self.questions = sorted(set(rows.questions))
        self.shots = sorted(set(rows.shots.tolist()))
        self.width = max(len(p) for p in rows.model_logprobs)
        self.attributes = {"questionnaire": human.questionnaire.id, "human_data": human.source}
        self.idata: az.InferenceData | None = None

    def _design(
        self, rows: HeldOutRows, questions: list[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x padded with zeros, option mask, index in ``questions``, k index) of ``rows``."""
        unknown_shots = sorted(set(rows.shots.tolist()) - set(self.shots))
        if unknown_shots:
            raise InputError(
                self.attributes["human_data"],
                f"the calibration was fitted without k = {', '.join(map(str, unknown_shots))}",
            )
        x = np.zeros((len(rows.questions), self.width))
        mask = np.zeros_like(x, dtype=bool)
        for i, logprobs in enumerate(rows.model_logprobs):
            x[i, : len(logprobs)] = logprobs
            mask[i, : len(logprobs)] = True
        question = np.array([questions.index(q) for q in rows.questions])
        shots = np.array([self.shots.index(int(k)) for k in rows.shots])
        return x, mask, question, shots

    def _free(self, rows: HeldOutRows, questions: list[str]) -> np.ndarray:
        """(questions, width): which options of each question have an effect of their own
        (all but the question's last, the reference)."""
        sizes = {q: len(p) for q, p in zip(rows.questions, rows.model_logprobs, strict=True)}
        return np.array(
            [[o < sizes[q] - 1 for o in range(self.width)] for q in questions], dtype=float
        )

    def fit(self, **sampling: Unpack[SamplingOptions]) -> az.InferenceData:
        """Posterior of ``alpha``, ``beta`` (over option ``position``), ``sigma`` and the
        question effects ``u`` (question × position), each per ``shots``."""
        import pymc as pm

        x, mask, question, shots = self._design(self.rows, self.questions)
        coords = {
            "shots": self.shots,
            "question": self.questions,
            "position": list(range(1, self.width + 1)),
        }
        free = self._free(self.rows, self.questions)
        with pm.Model(coords=coords):
            alpha = pm.Normal("alpha", mu=1.0, sigma=1.0, dims="shots")
            beta = pm.Normal("beta", mu=0.0, sigma=2.0, dims=("shots", "position"))
            sigma = pm.HalfNormal("sigma", sigma=1.0, dims="shots")
            z = pm.Normal("z", dims=("shots", "question", "position"))
            u = pm.Deterministic(
                "u",
                (beta[:, None, :] + sigma[:, None, None] * z) * free,
                dims=("shots", "question", "position"),
            )
            logits = alpha[shots][:, None] * x + u[shots, question] + np.where(mask, 0.0, MASKED)
            pm.Categorical("answer", logit_p=logits, observed=self.rows.answers)
            self.idata = sample(["alpha", "beta", "sigma"], sampling, self.attributes)
        return self.idata

    def predict(self, rows: HeldOutRows, *, seed: int = 0) -> list[np.ndarray]:
        """Each row's answer distribution (options in questionnaire order), averaged over
        posterior draws. A question no training row had gets a fresh question effect per
        draw (``seed``), so its prediction carries how far questions stray.

        Raises:
            SurveySimError: before :meth:`fit`.
        """
        if self.idata is None:
            raise SurveySimError("fit the calibration before predicting with it")
        posterior = self.idata.posterior
        alpha = posterior["alpha"].values.reshape(-1, len(self.shots))
        keep = np.linspace(0, len(alpha) - 1, min(PREDICTION_DRAWS, len(alpha))).astype(int)
        alpha = alpha[keep]
        k = len(self.shots)
        u = posterior["u"].values.reshape(-1, k, len(self.questions), self.width)[keep]
        new = sorted(set(rows.questions) - set(self.questions))
        if new:  # questions no training respondent was asked: a fresh effect per draw and k
            beta = posterior["beta"].values.reshape(-1, k, self.width)[keep]
            sigma = posterior["sigma"].values.reshape(-1, k)[keep]
            z = np.random.default_rng(seed).normal(size=(len(keep), k, len(new), self.width))
            fresh = (beta[:, :, None] + sigma[:, :, None, None] * z) * self._free(rows, new)
            u = np.concatenate([u, fresh], axis=2)
        x, mask, question, shots = self._design(rows, [*self.questions, *new])
        logits = alpha[:, shots, None] * x[None] + u[:, shots, question]
        logits = np.where(mask[None], logits, -np.inf)
        logits -= logits.max(axis=2, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=2, keepdims=True)
        mean = probs.mean(axis=0)
        return [mean[i, : mask[i].sum()] for i in range(len(question))]
