"""Bayesian comparison of simulated and human answer distributions (PyMC, ArviZ).

:func:`fit_alignment` asks one question of a whole questionnaire: how much do people's
answers agree with the simulation? Human counts per question are modelled as

    counts_q ~ DirichletMultinomial(n_q, κ · s_q)

where ``s_q`` is the simulated distribution. The concentration κ is the simulation's
*effective agreement*: a large κ means the human distributions sit close to the simulated
ones (as if each were a draw of about κ pseudo-respondents from it); a small κ means the
simulation says little about them. This marginal form integrates out the per-question
human distributions, which keeps it to one parameter and fast.

Needs the ``analysis`` extra (pymc, arviz). Sampler diagnostics (r̂, effective sample size,
divergences) are checked after every fit and reported as :class:`DiagnosticWarning`.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from survey_sim.human import HumanResponses
from survey_sim.metrics import option_probs, shared_questions, simulated_distribution

if TYPE_CHECKING:
    import arviz as az

PROBABILITY_FLOOR = 1e-6
"""Simulated probabilities are floored here (a zero would make observed answers impossible)."""


class DiagnosticWarning(UserWarning):
    """The sampler's diagnostics say the posterior may not be trustworthy."""


def alignment_data(
    simulated: pl.DataFrame, human: HumanResponses
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Question ids, simulated probabilities and human counts, aligned by option.

    Counts are weighted shares times the Kish effective sample size (rounded), so survey
    weights change the evidence a question carries the way they change its precision.
    """
    people = human.distribution()
    model = simulated_distribution(simulated)
    questions = shared_questions(model, people, human)
    probabilities, counts = [], []
    for question in questions:
        s = np.maximum(option_probs(model, question), PROBABILITY_FLOOR)
        probabilities.append(s / s.sum())
        n_effective = people.filter(pl.col("question_id") == question.id)["n_effective"][0]
        counts.append(np.rint(np.array(option_probs(people, question)) * n_effective))
    ids = [question.id for question in questions]
    sizes = {len(p) for p in probabilities}
    if len(sizes) > 1:
        raise ValueError(
            "fit_alignment needs questions with the same number of options; "
            f"select them first (found {sorted(sizes)})"
        )
    return ids, np.array(probabilities), np.array(counts, dtype=np.int64)


def fit_alignment(
    simulated: pl.DataFrame,
    human: HumanResponses,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    seed: int = 0,
    progress: bool = False,
) -> az.InferenceData:
    """Posterior of the effective agreement κ between simulation and people.

    Args:
        simulated: Per question × option probabilities (e.g. ``result.population``).
        human: The human answers.
        draws, tune, chains, seed: NUTS settings.
        progress: Show the sampler's progress bar.

    Returns:
        ArviZ InferenceData with ``kappa`` (and ``log_kappa``) in the posterior and the
        observed counts, coordinates named by question and option.
    """
    import pymc as pm

    ids, probabilities, counts = alignment_data(simulated, human)
    coords = {"question": ids, "option": list(range(probabilities.shape[1]))}
    with pm.Model(coords=coords):
        log_kappa = pm.Normal("log_kappa", mu=np.log(10.0), sigma=2.0)
        kappa = pm.Deterministic("kappa", pm.math.exp(log_kappa))
        pm.DirichletMultinomial(
            "counts",
            n=counts.sum(axis=1),
            a=kappa * probabilities,
            observed=counts,
            dims=("question", "option"),
        )
        return _sample(
            ["log_kappa"], draws=draws, tune=tune, chains=chains, seed=seed, progress=progress
        )


def _sample(
    variables: list[str], *, draws: int, tune: int, chains: int, seed: int, progress: bool
) -> az.InferenceData:
    """NUTS on the model in context, then the diagnostics of ``variables`` checked."""
    import pymc as pm

    idata = pm.sample(
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=seed,
        progressbar=progress,
        compute_convergence_checks=False,
    )
    check_diagnostics(idata, variables)
    return idata


def check_diagnostics(idata: az.InferenceData, variables: list[str]) -> None:
    """Warn (:class:`DiagnosticWarning`) on r̂ > 1.01, bulk ESS < 400 or any divergence."""
    import arviz as az

    summary = az.summary(idata, var_names=variables, kind="diagnostics")
    problems = []
    worst_rhat = float(summary["r_hat"].max())
    if worst_rhat > 1.01:
        problems.append(f"r_hat up to {worst_rhat:.3f} (want <= 1.01)")
    lowest_ess = float(summary["ess_bulk"].min())
    if lowest_ess < 400:
        problems.append(f"bulk ESS down to {lowest_ess:.0f} (want >= 400)")
    divergences = int(idata.sample_stats["diverging"].sum())
    if divergences:
        problems.append(f"{divergences} divergent transitions")
    if problems:
        warnings.warn(
            "the posterior may not be trustworthy: "
            + "; ".join(problems)
            + ". Run more draws/tuning or inspect the model.",
            DiagnosticWarning,
            stacklevel=3,
        )


def fit_calibration(
    simulated: pl.DataFrame,
    human: HumanResponses,
    *,
    questions: list[str] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 2,
    seed: int = 0,
    progress: bool = False,
) -> az.InferenceData:
    """Posterior of a calibration map from simulated to human distributions.

    Human counts per question are Multinomial(n, softmax(alpha * log s + beta + u_q)):
    ``alpha`` stretches or flattens the simulated log-probabilities, ``beta`` shifts each
    option position (e.g. a simulation that overuses the first option), and ``u_q`` is what
    is left per question, drawn around zero with scale ``sigma``. ``sigma`` is what makes
    predictions for a question nobody has fielded honest: :func:`predict_calibrated` draws a
    fresh ``u`` for it.

    Args:
        questions: Fit on these question ids only (the rest can be held out).
    """
    import pymc as pm

    ids, probabilities, counts = alignment_data(simulated, human)
    keep = [i for i, question_id in enumerate(ids) if questions is None or question_id in questions]
    ids = [ids[i] for i in keep]
    coords = {"question": ids, "option": list(range(probabilities.shape[1]))}
    with pm.Model(coords=coords):
        alpha = pm.Normal("alpha", mu=1.0, sigma=1.0)
        beta = pm.ZeroSumNormal("beta", sigma=1.0, dims="option")
        sigma = pm.HalfNormal("sigma", sigma=1.0)
        offsets = pm.ZeroSumNormal("offsets", sigma=1.0, dims=("question", "option"))
        logits = alpha * np.log(probabilities[keep]) + beta + sigma * offsets
        pm.Multinomial(
            "counts",
            n=counts[keep].sum(axis=1),
            p=pm.math.softmax(logits, axis=-1),
            observed=counts[keep],
            dims=("question", "option"),
        )
        return _sample(
            ["alpha", "beta", "sigma"],
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            progress=progress,
        )


def predict_calibrated(
    idata: az.InferenceData,
    simulated: pl.DataFrame,
    human: HumanResponses,
    questions: list[str],
    *,
    interval: float = 0.9,
    seed: int = 0,
) -> pl.DataFrame:
    """Calibrated predictions for questions the calibration was not fitted on.

    For every posterior draw, a fresh question effect is drawn with the fitted ``sigma`` and the
    answers of the question's respondents are simulated, so the interval covers what a
    real sample of that size would show.

    Returns:
        One row per question × option: ``question_id``, ``option_code``, ``simulated``
        (the raw simulated probability), ``predicted`` (posterior mean share), ``lower`` and
        ``upper`` (central ``interval``), ``human`` (the observed share) and ``covered``.
    """
    ids, probabilities, counts = alignment_data(simulated, human)
    posterior = idata.posterior
    alpha = posterior["alpha"].values.reshape(-1)
    beta = posterior["beta"].values.reshape(len(alpha), -1)
    sigma = posterior["sigma"].values.reshape(-1)
    rng = np.random.default_rng(seed)
    tail = (1 - interval) / 2
    rows = []
    for question_id in questions:
        index = ids.index(question_id)
        s, observed = probabilities[index], counts[index]
        options = len(s)
        noise = rng.normal(size=(len(alpha), options)) * sigma[:, None]
        noise -= noise.mean(axis=1, keepdims=True)  # a zero-sum effect, as in the fit
        logits = alpha[:, None] * np.log(s) + beta + noise
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        shares = np.array([rng.multinomial(observed.sum(), row) for row in p]) / observed.sum()
        human_share = observed / observed.sum()
        codes = [o.code for o in human.questionnaire.question(question_id).options]  # type: ignore[union-attr]
        for k, code in enumerate(codes):
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
                }
            )
    return pl.DataFrame(rows)


def held_out_coverage(
    simulated: pl.DataFrame,
    human: HumanResponses,
    *,
    folds: int = 3,
    interval: float = 0.9,
    seed: int = 0,
    **sampling: int,
) -> pl.DataFrame:
    """Calibrated predictions for every question, each from a fit without it (k-fold).

    The share of ``covered`` rows is the held-out interval coverage: near ``interval``
    means the calibrated predictions for unfielded questions can be trusted at face value.
    """
    ids, _, _ = alignment_data(simulated, human)
    order = np.random.default_rng(seed).permutation(len(ids))
    parts = []
    for fold in range(folds):
        held_out = [ids[i] for i in order[fold::folds]]
        train = [question_id for question_id in ids if question_id not in held_out]
        idata = fit_calibration(simulated, human, questions=train, seed=seed + fold, **sampling)
        predictions = predict_calibrated(
            idata, simulated, human, held_out, interval=interval, seed=seed + fold
        )
        parts.append(predictions.with_columns(fold=pl.lit(fold)))
    return pl.concat(parts)
