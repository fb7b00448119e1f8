"""The PyMC side of the analysis models: the calibration likelihood, NUTS sampling,
diagnostics, and the one place InferenceData gets its attributes.

Model objects (:mod:`survey_sim.analysis.models`) speak the survey's language; this module
keeps PyMC details to itself.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import numpy as np

from survey_sim._version import VERSION
from survey_sim.errors import SurveySimError

if TYPE_CHECKING:
    import arviz as az


class DiagnosticWarning(UserWarning):
    """The sampler's diagnostics say the posterior may not be trustworthy."""


class SamplingOptions(TypedDict, total=False):
    """NUTS settings every fit takes as keyword arguments."""

    draws: int
    """Kept draws per chain (default 1000)."""
    tune: int
    """Tuning steps per chain (default 1000)."""
    chains: int
    """Chains (default 2; r-hat needs at least 2)."""
    seed: int
    """Random seed (default 0)."""
    sampler: Literal["pymc", "nutpie"]
    """``"pymc"`` (default) or ``"nutpie"``: compiled to Rust, several times faster once
    compiled (``pip install 'survey-sim[fast]'``)."""
    target_accept: float
    """NUTS target acceptance rate (default 0.8; 0.95 for subgroups). Raise it when a fit
    reports divergences."""
    progress: bool
    """Show the sampler's progress bar (default off)."""


def sampler_messages(shown: bool) -> None:
    """Show or hide PyMC's per-fit log lines ("Initializing NUTS ...", "Sampling 2 chains")."""
    import pymc  # noqa: F401  (importing pymc sets its logger's level; set it after)

    logging.getLogger("pymc").setLevel(logging.INFO if shown else logging.WARNING)


def sample(
    variables: list[str], options: SamplingOptions, attributes: dict[str, Any]
) -> az.InferenceData:
    """NUTS on the model in context; the diagnostics of ``variables`` checked, and
    ``attributes`` (plus the survey-sim version) stamped on every group."""
    import pymc as pm

    sampler = options.get("sampler", "pymc")
    if sampler == "nutpie" and importlib.util.find_spec("nutpie") is None:
        raise SurveySimError("sampler='nutpie' needs nutpie: pip install 'survey-sim[fast]'")
    idata = pm.sample(
        draws=options.get("draws", 1000),
        tune=options.get("tune", 1000),
        chains=options.get("chains", 2),
        random_seed=options.get("seed", 0),
        progressbar=options.get("progress", False),
        nuts_sampler=sampler,
        target_accept=options.get("target_accept", 0.8),
        compute_convergence_checks=False,
    )
    stamped = {"survey_sim_version": VERSION, **attributes}
    for group in idata.groups():
        idata[group].attrs.update({k: v for k, v in stamped.items() if v is not None})
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
            + ". Run more draws and tuning steps (draws=, tune=; the CLI's --draws), raise "
            "target_accept for divergences (--target-accept 0.95), or inspect the model.",
            DiagnosticWarning,
            stacklevel=4,
        )


def log_odds(probabilities: np.ndarray) -> np.ndarray:
    """Log-odds of every option against the last one (the calibration models' scale)."""
    log_s: np.ndarray = np.log(probabilities)
    odds: np.ndarray = log_s[..., :-1] - log_s[..., -1:]
    return odds


def calibrated_counts(
    alpha: Any, x: np.ndarray, counts: np.ndarray, observed: np.ndarray, dims: tuple[str, ...]
) -> None:
    """The calibration likelihood in the model in context, over cells of shape ``dims``.

    Each cell's human log-odds against the last option are ``eta ~ Normal(alpha * (x -
    centre) + beta, sigma)`` and its counts Multinomial(n, softmax([eta, 0])), where ``x``
    are the simulated log-odds (``dims`` + contrast) and ``centre`` their mean over the
    ``observed`` cells (kept in ``constant_data``) so that alpha and beta are not
    confounded. Unobserved cells hold no answers (n = 0), so they add nothing. ``eta`` is
    sampled directly (the centred form) because every cell holds many answers, which pins
    it down; alpha, beta and sigma then only meet the data through a linear regression on
    ``eta``.
    """
    import pymc as pm

    centre = pm.Data("centre", x[observed].mean(axis=0), dims="contrast")
    beta = pm.Normal("beta", mu=0.0, sigma=2.0, dims="contrast")
    sigma = pm.HalfNormal("sigma", sigma=1.0)
    eta = pm.Normal("eta", mu=alpha * (x - centre) + beta, sigma=sigma, dims=(*dims, "contrast"))
    zeros = pm.math.zeros((*x.shape[:-1], 1))
    pm.Multinomial(
        "counts",
        n=counts.sum(axis=-1),
        p=pm.math.softmax(pm.math.concatenate([eta, zeros], axis=-1), axis=-1),
        observed=counts,
        dims=(*dims, "option"),
    )
