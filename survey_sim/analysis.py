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
from survey_sim.questionnaire import OptionsQuestion

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
    model = simulated.group_by("question_id", "option_code").agg(pl.col("prob").mean())
    ids, probabilities, counts = [], [], []
    for question in human.questionnaire:
        if not isinstance(question, OptionsQuestion):
            continue
        codes = pl.DataFrame({"option_code": [o.code for o in question.options]})
        simulated_q = codes.join(
            model.filter(pl.col("question_id") == question.id), on="option_code", how="left"
        )
        human_q = codes.join(
            people.filter(pl.col("question_id") == question.id), on="option_code", how="left"
        )
        if simulated_q["prob"].null_count() or human_q["prob"].null_count():
            continue
        s = np.maximum(simulated_q["prob"].to_numpy(), PROBABILITY_FLOOR)
        ids.append(question.id)
        probabilities.append(s / s.sum())
        counts.append(np.rint(human_q["prob"].to_numpy() * human_q["n_effective"][0]))
    if not ids:
        raise ValueError("the simulation and the human data have no question in common")
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
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=seed,
            progressbar=progress,
            compute_convergence_checks=False,
        )
    check_diagnostics(idata, ["log_kappa"])
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
