"""Bayesian comparison of simulated and human answer distributions (PyMC, ArviZ), as model
objects in the manner of bambi: build one from a simulation and the human data, ``.fit()``
it, get ArviZ InferenceData whose coordinates are named after the survey (question ids,
option codes, contrasts such as "Too little vs Too much", subgroups).

* :class:`Alignment`: how much do people's answers agree with the simulation overall?
* :class:`Calibration`: a map from simulated to human distributions, with ``.predict``
  intervals for questions nobody has fielded yet and ``.held_out`` k-fold coverage;
* :class:`Subgroups`: the calibration per demographic subgroup, partially pooled.

The alignment model treats human counts per question as

    counts_q ~ DirichletMultinomial(n_q, κ · s_q)

where ``s_q`` is the simulated distribution. The concentration κ is the simulation's
*effective agreement*: a large κ means the human distributions sit close to the simulated
ones (as if each were a draw of about κ pseudo-respondents from it); a small κ means the
simulation says little about them.

The models pool questions, so every question must share one answer scale (the same option
codes in the same order); questions on other scales are refused, not silently pooled.
Needs the ``analysis`` extra (pymc, arviz). Sampler diagnostics (r̂, effective sample size,
divergences) are checked after every fit and reported as
:class:`~survey_sim.analysis.backend.DiagnosticWarning`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Unpack

import numpy as np
import polars as pl

from survey_sim._distribution import PROBABILITY_FLOOR
from survey_sim.analysis.backend import SamplingOptions, calibrated_counts, log_odds, sample
from survey_sim.data.aligned import option_probs, shared_questions, simulated_distribution
from survey_sim.data.responses import HumanResponses
from survey_sim.errors import InputError, SurveySimError
from survey_sim.runs.results import SimulationResult

if TYPE_CHECKING:
    import arviz as az

Simulated = SimulationResult | pl.DataFrame
"""A simulation's results, or a distribution frame (``question_id``, ``option_code``,
``prob``, and the ``by`` columns for subgroups)."""


@dataclass(frozen=True)
class AlignedData:
    """Simulated probabilities and human counts on one answer scale, as arrays.

    Arrays have shape (subgroups, questions, options); without subgroups there is one
    subgroup, ``()``. Counts are weighted shares times the Kish effective sample size
    (rounded), so survey weights change the evidence a cell carries the way they change
    its precision. Cells one side lacks are not ``observed`` and hold no counts.
    """

    subgroups: list[tuple[str, ...]]
    questions: list[str]
    options: list[str]
    contrasts: list[str]
    probabilities: np.ndarray
    counts: np.ndarray
    observed: np.ndarray
    attributes: dict[str, Any]

    @classmethod
    def of(cls, simulated: Simulated, human: HumanResponses, by: Sequence[str] = ()) -> AlignedData:
        """Align ``simulated`` (a population or subgroup distribution) with ``human``."""
        frame = simulated.population if isinstance(simulated, SimulationResult) else simulated
        manifest = simulated.manifest if isinstance(simulated, SimulationResult) else None
        people = human.distribution(by)
        model = simulated_distribution(frame, by)
        questions = shared_questions(model, people, human)
        scales: dict[tuple[str, ...], list[str]] = {}
        for question in questions:
            scales.setdefault(tuple(o.code for o in question.options), []).append(question.id)
        if len(scales) > 1:
            listing = "; ".join(f"{'/'.join(s)}: {', '.join(ids)}" for s, ids in scales.items())
            raise InputError(
                human.source,
                "the models pool questions on one answer scale, but these questions use "
                f"{len(scales)} ({listing}); select the questions of one scale",
            )
        first = questions[0]
        rows = people.select(by).unique().sort(by).rows() if by else [()]
        groups = [tuple(str(value) for value in row) for row in rows]
        shape = (len(groups), len(questions), len(first.options))
        probabilities = np.full(shape, 1 / shape[2])
        counts = np.zeros(shape, dtype=np.int64)
        observed = np.zeros(shape[:2], dtype=bool)
        for g, group in enumerate(groups):
            match = [pl.col(name) == value for name, value in zip(by, group, strict=True)]
            group_model = model.filter(*match) if match else model
            group_people = people.filter(*match) if match else people
            for q, question in enumerate(questions):
                answered = group_people.filter(pl.col("question_id") == question.id)
                if (
                    answered.is_empty()
                    or group_model.filter(pl.col("question_id") == question.id).is_empty()
                ):
                    continue
                s = np.maximum(option_probs(group_model, question), PROBABILITY_FLOOR)
                probabilities[g, q] = s / s.sum()
                n_effective = answered["n_effective"][0]
                counts[g, q] = np.rint(np.array(option_probs(answered, question)) * n_effective)
                observed[g, q] = True
        if not observed.any():
            raise InputError(
                human.source, f"the simulation and the human data share no group of {', '.join(by)}"
            )
        texts = [o.text for o in first.options]
        return cls(
            subgroups=groups,
            questions=[q.id for q in questions],
            options=[o.code for o in first.options],
            contrasts=[f"{text} vs {texts[-1]}" for text in texts[:-1]],
            probabilities=probabilities,
            counts=counts,
            observed=observed,
            attributes={
                "questionnaire": human.questionnaire.id,
                "human_data": human.source,
                "model_fingerprint": manifest.model.fingerprint if manifest else None,
            },
        )

    def select(self, questions: Sequence[str]) -> AlignedData:
        """The same data for some questions only."""
        unknown = [q for q in questions if q not in self.questions]
        if unknown:
            raise InputError(
                self.attributes["human_data"],
                f"no simulated and human answers to compare for question {', '.join(unknown)}",
            )
        index = [self.questions.index(q) for q in questions]
        return AlignedData(
            self.subgroups,
            list(questions),
            self.options,
            self.contrasts,
            self.probabilities[:, index],
            self.counts[:, index],
            self.observed[:, index],
            self.attributes,
        )


class Alignment:
    """The effective agreement κ between a simulation and people (module docstring)."""

    def __init__(self, simulated: Simulated, human: HumanResponses) -> None:
        self.data = AlignedData.of(simulated, human)

    def fit(self, **sampling: Unpack[SamplingOptions]) -> az.InferenceData:
        """Posterior of ``kappa`` (and ``log_kappa``); observed counts over (question, option)."""
        import pymc as pm

        data = self.data
        with pm.Model(coords={"question": data.questions, "option": data.options}):
            log_kappa = pm.Normal("log_kappa", mu=np.log(10.0), sigma=2.0)
            kappa = pm.Deterministic("kappa", pm.math.exp(log_kappa))
            counts = data.counts[0]
            pm.DirichletMultinomial(
                "counts",
                n=counts.sum(axis=1),
                a=kappa * data.probabilities[0],
                observed=counts,
                dims=("question", "option"),
            )
            return sample(["log_kappa"], sampling, data.attributes)


class Calibration:
    """A calibration map from simulated to human distributions, fitted on some questions and
    predicting others.

    On the log-odds scale (every option against the last), each question's human log-odds
    are ``alpha * x_q + beta + u_q``: ``x_q`` are the simulated log-odds (centred on the
    fitted questions' mean), ``alpha`` stretches or flattens them (0: they carry no signal,
    1: taken as they are), ``beta`` shifts each option (e.g. a simulation that overuses the
    first option), and ``u_q ~ Normal(0, sigma)`` is what is left per question. ``sigma``
    makes predictions for a question nobody has fielded honest: :meth:`predict` draws a
    fresh ``u`` for it.

    Args:
        simulated: The simulation (or its population distribution).
        human: The human answers.
        questions: Fit on these question ids only (default: every shared question).
    """

    def __init__(
        self, simulated: Simulated, human: HumanResponses, *, questions: Sequence[str] | None = None
    ) -> None:
        self.data = AlignedData.of(simulated, human)
        self.questions = list(questions) if questions is not None else self.data.questions
        self.idata: az.InferenceData | None = None

    def fit(self, **sampling: Unpack[SamplingOptions]) -> az.InferenceData:
        """Posterior of ``alpha``, ``beta`` (per contrast), ``sigma`` and ``eta`` (per
        question and contrast); kept for :meth:`predict`."""
        import pymc as pm

        data = self.data.select(self.questions)
        coords = {"question": data.questions, "option": data.options, "contrast": data.contrasts}
        with pm.Model(coords=coords):
            alpha = pm.Normal("alpha", mu=1.0, sigma=1.0)
            calibrated_counts(
                alpha,
                log_odds(data.probabilities[0]),
                data.counts[0],
                data.observed[0],
                ("question",),
            )
            self.idata = sample(["alpha", "beta", "sigma"], sampling, data.attributes)
        return self.idata

    def predict(
        self, questions: Sequence[str], *, interval: float = 0.9, seed: int = 0
    ) -> pl.DataFrame:
        """Calibrated predictions for questions (best: ones the fit did not see).

        For every posterior draw, a fresh question effect is drawn with the fitted ``sigma``
        and the answers of the question's respondents are simulated, so the interval covers
        what a real sample of that size would show.

        Returns:
            One row per question × option: ``question_id``, ``option_code``, ``simulated``
            (the raw simulated probability), ``predicted`` (posterior mean share),
            ``lower`` and ``upper`` (central ``interval``, recorded in ``interval``),
            ``human`` (the observed share), ``covered``, and ``free``: false for the
            question's last option, whose share the others fix (so a yes/no question is one
            check, not two).
        """
        if self.idata is None:
            raise SurveySimError("fit the calibration before predicting with it")
        posterior = self.idata.posterior
        alpha = posterior["alpha"].values.reshape(-1)
        beta = posterior["beta"].values.reshape(len(alpha), -1)
        sigma = posterior["sigma"].values.reshape(-1)
        centre = self.idata.constant_data["centre"].values
        data = self.data.select(questions)
        rng = np.random.default_rng(seed)
        tail = (1 - interval) / 2
        rows = []
        for q, question_id in enumerate(data.questions):
            s, observed = data.probabilities[0, q], data.counts[0, q]
            eta = alpha[:, None] * (log_odds(s) - centre) + beta
            eta += rng.normal(size=eta.shape) * sigma[:, None]  # a fresh question effect
            logits = np.concatenate([eta, np.zeros((len(eta), 1))], axis=1)
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            shares = np.array([rng.multinomial(observed.sum(), row) for row in p]) / observed.sum()
            human_share = observed / observed.sum()
            for k, code in enumerate(data.options):
                lower, upper = np.quantile(shares[:, k], [tail, 1 - tail])
                rows.append(
                    {
                        "question_id": question_id,
                        "option_code": code,
                        "simulated": float(s[k]),
                        "predicted": float(shares[:, k].mean()),
                        "lower": float(lower),
                        "upper": float(upper),
                        "human": float(human_share[k]),
                        "covered": bool(lower <= human_share[k] <= upper),
                        "free": k < len(data.options) - 1,
                        "interval": interval,
                    }
                )
        return pl.DataFrame(rows)

    def held_out(
        self, *, folds: int = 3, interval: float = 0.9, **sampling: Unpack[SamplingOptions]
    ) -> pl.DataFrame:
        """Predictions for every question, each from a fit without it (k-fold), with a
        ``fold`` column. The share of ``covered`` rows among the ``free`` ones is the
        held-out interval coverage: near ``interval`` means calibrated predictions for
        unfielded questions can be trusted at face value (:func:`coverage_by_question`
        gives it per question).

        Raises:
            InputError: fewer than 2 folds, or more folds than questions.
        """
        ids = self.questions
        if not 2 <= folds <= len(ids):
            raise InputError(
                "calibration",
                f"held-out folds must be between 2 and the number of questions "
                f"({len(ids)}); got {folds}",
            )
        seed = sampling.get("seed", 0)  # also splits the folds and seeds the predictions
        order = np.random.default_rng(seed).permutation(len(ids))
        parts = []
        for fold in range(folds):
            held_out = [ids[i] for i in order[fold::folds]]
            train = [question_id for question_id in ids if question_id not in held_out]
            model = copy.copy(self)  # the aligned data are shared, not computed again
            model.questions, model.idata = train, None
            fold_sampling: SamplingOptions = {**sampling, "seed": seed + fold}
            model.fit(**fold_sampling)
            predictions = model.predict(held_out, interval=interval, seed=seed + fold)
            parts.append(predictions.with_columns(fold=pl.lit(fold)))
        return pl.concat(parts)


def coverage_by_question(predictions: pl.DataFrame) -> pl.DataFrame:
    """Held-out coverage per question, from :meth:`Calibration.predict` or
    :meth:`Calibration.held_out` rows: ``shares`` (the free shares checked), ``covered``
    (how many fell inside their interval), ``all_covered`` and the mean interval ``width``."""
    free = predictions.filter(pl.col("free"))
    return free.group_by("question_id", maintain_order=True).agg(
        shares=pl.len(),
        covered=pl.col("covered").sum(),
        all_covered=pl.col("covered").all(),
        width=(pl.col("upper") - pl.col("lower")).mean(),
    )


class Subgroups:
    """The calibration model per demographic subgroup, with partial pooling.

    Counts of subgroup g on question q are Multinomial(n, softmax(alpha_g * x_gq + beta +
    u_gq)), with alpha_g = alpha_mu + alpha_tau * z_g. Each subgroup's ``alpha`` says how
    far the simulation follows that subgroup (1: as is, 0: not at all); small subgroups
    borrow strength from the rest through ``alpha_mu`` and ``alpha_tau``.

    Args:
        simulated: Probabilities per ``by`` group, question and option
            (:meth:`SimulationResult.subgroups`).
        human: The human answers, with the ``by`` attributes.
        by: The attribute columns that define the subgroups, in both.
    """

    def __init__(self, simulated: pl.DataFrame, human: HumanResponses, by: Sequence[str]) -> None:
        self.by = list(by)
        self.data = AlignedData.of(simulated, human, self.by)

    def fit(self, **sampling: Unpack[SamplingOptions]) -> az.InferenceData:
        """Posterior with ``alpha`` over ``subgroup`` (labelled by the attribute values),
        ``alpha_mu``, ``alpha_tau``, ``beta``, ``sigma``, and ``eta`` over subgroup ×
        question × contrast."""
        import pymc as pm

        data = self.data
        coords = {
            "subgroup": [", ".join(group) for group in data.subgroups],
            "question": data.questions,
            "option": data.options,
            "contrast": data.contrasts,
        }
        with pm.Model(coords=coords):
            alpha_mu = pm.Normal("alpha_mu", mu=1.0, sigma=1.0)
            alpha_tau = pm.HalfNormal("alpha_tau", sigma=0.5)
            alpha_z = pm.Normal("alpha_z", dims="subgroup")
            alpha = pm.Deterministic("alpha", alpha_mu + alpha_tau * alpha_z, dims="subgroup")
            calibrated_counts(
                alpha[:, None, None],
                log_odds(data.probabilities),
                data.counts,
                data.observed,
                ("subgroup", "question"),
            )
            # Few subgroups leave alpha_tau loosely known: smaller steps avoid divergences.
            options: SamplingOptions = {"target_accept": 0.95, **sampling}
            return sample(
                ["alpha_mu", "alpha_tau", "alpha", "beta", "sigma"],
                options,
                {**data.attributes, "subgroups_by": ", ".join(self.by)},
            )
