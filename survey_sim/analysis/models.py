"""Bayesian comparison of simulated and human answer distributions (PyMC, ArviZ).

Three models, each returning ArviZ InferenceData:

* :func:`fit_alignment`: how much do people's answers agree with the simulation overall?
* :func:`fit_calibration`: a map from simulated to human distributions, with
  :func:`predict_calibrated` intervals for questions nobody has fielded yet;
* :func:`fit_subgroups`: the calibration per demographic subgroup, partially pooled.

The alignment model treats human counts per question as

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

import importlib.util
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack

import numpy as np
import polars as pl

from survey_sim.data.responses import HumanResponses
from survey_sim.errors import SurveySimError
from survey_sim.evaluate.metrics import option_probs, shared_questions, simulated_distribution
from survey_sim.population import Population

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
    rows, probabilities, counts = _aligned(simulated, human, by=())
    return [question_id for _, question_id in rows], probabilities, counts


def _aligned(
    simulated: pl.DataFrame, human: HumanResponses, by: Sequence[str]
) -> tuple[list[tuple[tuple[str, ...], str]], np.ndarray, np.ndarray]:
    """(group, question id) per row, with the row's simulated probabilities and human
    counts; groups (values of ``by``) that only one side has are left out."""
    people = human.distribution(by)
    model = simulated_distribution(simulated, by)
    questions = shared_questions(model, people, human)
    groups = people.select(by).unique().sort(by).rows() if by else [()]
    rows, probabilities, counts = [], [], []
    for group in groups:
        match = [pl.col(name) == value for name, value in zip(by, group, strict=True)]
        group_model = model.filter(*match) if match else model
        group_people = people.filter(*match) if match else people
        for question in questions:
            answered = group_people.filter(pl.col("question_id") == question.id)
            if (
                answered.is_empty()
                or group_model.filter(pl.col("question_id") == question.id).is_empty()
            ):
                continue
            s = np.maximum(option_probs(group_model, question), PROBABILITY_FLOOR)
            probabilities.append(s / s.sum())
            n_effective = answered["n_effective"][0]
            counts.append(np.rint(np.array(option_probs(answered, question)) * n_effective))
            rows.append((tuple(group), question.id))
    if not rows:
        raise ValueError(f"the simulation and the human data share no group of {', '.join(by)}")
    sizes = {len(p) for p in probabilities}
    if len(sizes) > 1:
        raise ValueError(
            "the PyMC models need questions with the same number of options; "
            f"select them first (found {sorted(sizes)})"
        )
    return rows, np.array(probabilities), np.array(counts, dtype=np.int64)


def fit_alignment(
    simulated: pl.DataFrame,
    human: HumanResponses,
    **sampling: Unpack[SamplingOptions],
) -> az.InferenceData:
    """Posterior of the effective agreement κ between simulation and people.

    Args:
        simulated: Per question × option probabilities (e.g. ``result.population``).
        human: The human answers.
        sampling: NUTS settings (:class:`SamplingOptions`).

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
        return _sample(["log_kappa"], sampling)


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
    """NUTS target acceptance rate (default 0.8; 0.95 for :func:`fit_subgroups`). Raise it
    when a fit reports divergences."""
    progress: bool
    """Show the sampler's progress bar (default off)."""


def _sample(variables: list[str], options: SamplingOptions) -> az.InferenceData:
    """NUTS on the model in context, then the diagnostics of ``variables`` checked."""
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
    **sampling: Unpack[SamplingOptions],
) -> az.InferenceData:
    """Posterior of a calibration map from simulated to human distributions.

    On the log-odds scale (every option against the last), each question's human log-odds
    are ``alpha * x_q + beta + u_q``: ``x_q`` are the simulated log-odds (centred on the
    fitted questions' mean), ``alpha`` stretches or flattens them (0: they carry no signal,
    1: taken as they are), ``beta`` shifts each option (e.g. a simulation that overuses the
    first option), and ``u_q ~ Normal(0, sigma)`` is what is left per question. ``sigma`` is
    what makes predictions for a question nobody has fielded honest:
    :func:`predict_calibrated` draws a fresh ``u`` for it. Counts are multinomial given the
    question's human distribution.

    Args:
        questions: Fit on these question ids only (the rest can be held out).
    """
    import pymc as pm

    ids, probabilities, counts = alignment_data(simulated, human)
    keep = [i for i, question_id in enumerate(ids) if questions is None or question_id in questions]
    coords = _calibration_coords([ids[i] for i in keep], probabilities.shape[1])
    with pm.Model(coords=coords):
        alpha = pm.Normal("alpha", mu=1.0, sigma=1.0)
        _calibrated_counts(alpha, probabilities[keep], counts[keep])
        return _sample(["alpha", "beta", "sigma"], sampling)


def _calibration_coords(rows: list[str], options: int) -> dict[str, list[Any]]:
    """Rows, option positions, and contrasts (each option but the last, against the last)."""
    return {"row": rows, "option": list(range(options)), "contrast": list(range(options - 1))}


def log_odds(probabilities: np.ndarray) -> np.ndarray:
    """Log-odds of every option against the last one (the calibration models' scale)."""
    log_s = np.log(probabilities)
    return log_s[..., :-1] - log_s[..., -1:]


def _calibrated_counts(alpha: Any, probabilities: np.ndarray, counts: np.ndarray) -> None:
    """The calibration likelihood in the model in context, one row per question (or group
    and question).

    Each row's human log-odds against the last option are ``eta ~ Normal(alpha * (x - centre)
    + beta, sigma)`` and its counts Multinomial(n, softmax([eta, 0])), where ``x`` are the
    simulated log-odds and ``centre`` their mean over the fitted rows (kept in
    ``constant_data``) so that alpha and beta are not confounded. ``eta`` is sampled
    directly (the centred form) because every row holds many answers, which pins it down;
    alpha, beta and sigma then only meet the data through a linear regression on ``eta``.
    """
    import pymc as pm

    x = log_odds(probabilities)
    centre = pm.Data("centre", x.mean(axis=0), dims="contrast")
    beta = pm.Normal("beta", mu=0.0, sigma=2.0, dims="contrast")
    sigma = pm.HalfNormal("sigma", sigma=1.0)
    eta = pm.Normal("eta", mu=alpha * (x - centre) + beta, sigma=sigma, dims=("row", "contrast"))
    logits = pm.math.concatenate([eta, pm.math.zeros((len(counts), 1))], axis=1)
    pm.Multinomial(
        "counts",
        n=counts.sum(axis=1),
        p=pm.math.softmax(logits, axis=-1),
        observed=counts,
        dims=("row", "option"),
    )


def subgroup_distributions(
    responses: pl.DataFrame, population: Population, by: Sequence[str]
) -> pl.DataFrame:
    """Simulated distributions per subgroup: persona probabilities averaged with the
    personas' weights within each combination of the ``by`` attributes.

    Args:
        responses: Per-persona results (``SimulationResult.responses``).
        population: The personas that answered, with their attributes.
    """
    personas = population.frame
    absent = [name for name in by if name not in personas.columns]
    if absent:
        raise ValueError(
            f"the personas have no attribute {', '.join(absent)} "
            f"(columns: {', '.join(personas.columns)})"
        )
    attributes = personas.select("persona_id", *(pl.col(name).cast(pl.String) for name in by))
    per_persona = simulated_distribution(responses, ["persona_id", "weight"])
    return (
        per_persona.join(attributes, on="persona_id")
        .group_by(*by, "question_id", "option_code", maintain_order=True)
        .agg(prob=(pl.col("prob") * pl.col("weight")).sum() / pl.col("weight").sum())
    )


def fit_subgroups(
    simulated: pl.DataFrame,
    human: HumanResponses,
    by: Sequence[str],
    **sampling: Unpack[SamplingOptions],
) -> az.InferenceData:
    """The calibration model per demographic subgroup, with partial pooling.

    Counts of subgroup g on question q are Multinomial(n, softmax(alpha_g * log s_gq +
    beta + sigma * u_gq)), with alpha_g = alpha_mu + alpha_tau * z_g. Each subgroup's
    ``alpha`` says how far the simulation follows that subgroup (1: as is, 0: not at all);
    small subgroups borrow strength from the rest through ``alpha_mu`` and ``alpha_tau``.

    Args:
        simulated: Probabilities per ``by`` group, question and option
            (:func:`subgroup_distributions`).
        by: The attribute columns that define the subgroups, in both frames.

    Returns:
        InferenceData with ``alpha`` over the ``subgroup`` dimension (labelled by the
        attribute values), ``alpha_mu``, ``alpha_tau``, ``beta`` and ``sigma``.
    """
    import pymc as pm

    rows, probabilities, counts = _aligned(simulated, human, by)
    groups = sorted({group for group, _ in rows})
    group_of_row = np.array([groups.index(group) for group, _ in rows])
    coords = _calibration_coords(
        [f"{', '.join(group)}: {question_id}" for group, question_id in rows],
        probabilities.shape[1],
    )
    coords["subgroup"] = [", ".join(group) for group in groups]
    with pm.Model(coords=coords):
        alpha_mu = pm.Normal("alpha_mu", mu=1.0, sigma=1.0)
        alpha_tau = pm.HalfNormal("alpha_tau", sigma=0.5)
        alpha_z = pm.Normal("alpha_z", dims="subgroup")
        alpha = pm.Deterministic("alpha", alpha_mu + alpha_tau * alpha_z, dims="subgroup")
        _calibrated_counts(alpha[group_of_row, None], probabilities, counts)
        # Few subgroups leave alpha_tau loosely known: smaller steps avoid divergences.
        sampling = {"target_accept": 0.95, **sampling}
        return _sample(["alpha_mu", "alpha_tau", "alpha", "beta", "sigma"], sampling)


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
    centre = idata.constant_data["centre"].values
    rng = np.random.default_rng(seed)
    tail = (1 - interval) / 2
    rows = []
    for question_id in questions:
        index = ids.index(question_id)
        s, observed = probabilities[index], counts[index]
        eta = alpha[:, None] * (log_odds(s) - centre) + beta
        eta += rng.normal(size=eta.shape) * sigma[:, None]  # a fresh question effect
        logits = np.concatenate([eta, np.zeros((len(eta), 1))], axis=1)
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
    **sampling: Unpack[SamplingOptions],
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
