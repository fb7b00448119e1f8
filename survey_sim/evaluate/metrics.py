"""Fidelity metrics: how close simulated answer distributions are to human ones.

Per question, between a human distribution ``p`` and a simulated one ``q`` over the same
options:

* ``representativeness`` (OpinionQA): 1 − W₁(p, q) / (largest distance), with W₁ the
  Wasserstein distance between the answers under the question's distance between options.
  Ordinal questions: options N positions apart are N apart, so it is 1 − W₁ / (N − 1) over
  the substantive options (renormalised). Unordered questions (yes/no, nominal): any two
  different options are 1 apart, and W₁ is then the total variation, so it is 1 − TV. For
  two options both definitions agree, whatever their order. 1 is identical; 0 puts all mass
  as far apart as the options allow.
* ``jensen_shannon``: JS divergence in bits, in [0, 1] (0 is identical).
* ``total_variation``: half the L1 distance, in [0, 1].
* ``kl``: KL(p ‖ q) in nats, how surprised the simulation is by people (``q`` is floored at
  1e-6 so that an option the simulation rules out costs a lot, not infinity).

:func:`compare` puts every score beside references, because a number alone says little:

* ``uniform``: every option equally likely;
* ``human_marginal``: the average human distribution of every *other* question in the human
  data with the same options (what knowing the answer scale, but not the question, gives);
* ``fitted_marginal`` (when ``fitted_on`` names questions): the average human distribution of
  the questions a tuning or calibration was fitted on, with the same options. A method fitted
  on those questions must beat this: it is what the same data gives without a model;
* ``noise_floor``: the expected score of a *perfect* simulator, one that returns the
  population's true distribution, against a sample of this size: samples of the question's
  (effective) size drawn from the human distribution, each scored against it. No simulation
  can be expected to score better than this; it is not a baseline to beat.

:func:`paired_differences` says whether the model beats each baseline: the mean difference
over questions with an interval from resampling the questions together (paired).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import polars as pl

from survey_sim.data.aligned import (
    answered_option_questions,
    leave_one_out_marginal,
    option_probs,
    shared_questions,
    simulated_distribution,
)
from survey_sim.data.responses import HumanResponses
from survey_sim.data.splits import seeded_rng
from survey_sim.errors import InputError
from survey_sim.evaluate.paired import (
    LOWER_IS_BETTER,
    MIN_UNITS,
    bootstrap_weights,
    interval_of,
    resampled_means,
    verdict,
)
from survey_sim.questionnaire import ChoiceQuestion, OptionsQuestion
from survey_sim.runs.held_out import fitted_questions
from survey_sim.runs.results import SimulationResult

KL_FLOOR = 1e-6
METRICS = ("representativeness", "jensen_shannon", "total_variation", "kl")
BASELINES = ("uniform", "human_marginal", "fitted_marginal")
"""References that use no model: the ones a simulation must beat."""
SOURCES = ("model", *BASELINES, "noise_floor")


Distributions = Sequence[float] | np.ndarray
"""Probabilities in option order: one distribution, or one per row of a 2-D array (every
metric is computed along the last axis)."""


def _arrays(p: Distributions, q: Distributions) -> tuple[np.ndarray, np.ndarray]:
    first, second = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if first.shape[-1] != second.shape[-1]:
        raise ValueError(f"distributions over {first.shape[-1]} and {second.shape[-1]} options")
    return first, second


def _scalar(values: np.ndarray) -> float:
    return float(values)


def total_variation_rows(p: Distributions, q: Distributions) -> np.ndarray:
    """Half the L1 distance, along the last axis."""
    first, second = _arrays(p, q)
    distance: np.ndarray = 0.5 * np.abs(first - second).sum(axis=-1)
    return distance


def kl_rows(p: Distributions, q: Distributions) -> np.ndarray:
    """KL(p ‖ q) in nats along the last axis, with ``q`` floored at :data:`KL_FLOOR`."""
    first, second = _arrays(p, q)
    positive = first > 0
    terms = first * np.log(np.where(positive, first, 1) / np.maximum(second, KL_FLOOR))
    divergence: np.ndarray = np.where(positive, terms, 0.0).sum(axis=-1)
    return divergence


def jensen_shannon_rows(p: Distributions, q: Distributions) -> np.ndarray:
    """Jensen-Shannon divergence in bits along the last axis (0 identical, 1 disjoint)."""
    first, second = _arrays(p, q)
    middle = (first + second) / 2

    def half(x: np.ndarray) -> np.ndarray:
        positive = x > 0
        terms = x * np.log2(np.where(positive, x, 1) / np.where(positive, middle, 1))
        total: np.ndarray = np.where(positive, terms, 0.0).sum(axis=-1)
        return total

    divergence: np.ndarray = 0.5 * half(first) + 0.5 * half(second)
    return divergence


def wasserstein_rows(p: Distributions, q: Distributions) -> np.ndarray:
    """Wasserstein-1 distance along the last axis, between distributions over positions
    1..N (unit spacing)."""
    first, second = _arrays(p, q)
    distance: np.ndarray = np.abs(np.cumsum(first, axis=-1) - np.cumsum(second, axis=-1)).sum(
        axis=-1
    )
    return distance


def representativeness_rows(p: Distributions, q: Distributions) -> np.ndarray:
    """OpinionQA representativeness along the last axis: 1 − W₁ / (N − 1) over ordinal
    positions."""
    score: np.ndarray = 1 - wasserstein_rows(p, q) / (np.shape(p)[-1] - 1)
    return score


def representativeness_of_rows(
    question: OptionsQuestion, human: Distributions, simulated: Distributions
) -> np.ndarray:
    """Representativeness of one question (module docstring) along the last axis: over an
    ordinal question's substantive options in position order (renormalised), else
    1 − total variation."""
    ordinal = question.scale() if isinstance(question, ChoiceQuestion) else None
    first, second = _arrays(human, simulated)
    if ordinal is None:
        score: np.ndarray = 1 - total_variation_rows(first, second)
        return score
    return representativeness_rows(
        _renormalised_rows(first[..., ordinal]), _renormalised_rows(second[..., ordinal])
    )


def score_rows(
    question: OptionsQuestion, human: Distributions, simulated: Distributions
) -> dict[str, np.ndarray]:
    """Every metric for one question, along the last axis (options in option order)."""
    return {
        "representativeness": representativeness_of_rows(question, human, simulated),
        "jensen_shannon": jensen_shannon_rows(human, simulated),
        "total_variation": total_variation_rows(human, simulated),
        "kl": kl_rows(human, simulated),
    }


def total_variation(p: Sequence[float], q: Sequence[float]) -> float:
    """Half the L1 distance between two distributions."""
    return _scalar(total_variation_rows(p, q))


def kl_divergence(p: Sequence[float], q: Sequence[float]) -> float:
    """KL(p ‖ q) in nats, with ``q`` floored at :data:`KL_FLOOR`."""
    return _scalar(kl_rows(p, q))


def jensen_shannon(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon divergence in bits (0 identical, 1 disjoint)."""
    return _scalar(jensen_shannon_rows(p, q))


def wasserstein_ordinal(p: Sequence[float], q: Sequence[float]) -> float:
    """Wasserstein-1 distance between distributions over positions 1..N (unit spacing)."""
    return _scalar(wasserstein_rows(p, q))


def representativeness(p: Sequence[float], q: Sequence[float]) -> float:
    """OpinionQA representativeness: 1 − W₁ / (N − 1) over ordinal positions."""
    return _scalar(representativeness_rows(p, q))


def representativeness_of(
    question: OptionsQuestion, human: Sequence[float], simulated: Sequence[float]
) -> float:
    """Representativeness of one question (module docstring)."""
    return _scalar(representativeness_of_rows(question, human, simulated))


def scores(
    question: OptionsQuestion, human: Sequence[float], simulated: Sequence[float]
) -> dict[str, float]:
    """Every metric for one question (``human``/``simulated`` in option order)."""
    return {
        name: _scalar(values) for name, values in score_rows(question, human, simulated).items()
    }


def noise_floor(
    question: OptionsQuestion,
    probs: Sequence[float],
    n_effective: float,
    *,
    resamples: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    """The expected scores of a perfect simulator (one that returns the population's true
    distribution) against a sample of ``n_effective`` answers: ``resamples`` samples of that
    size drawn from ``probs`` (the sample's own distribution standing in for the truth),
    each scored against ``probs``."""
    size = max(1, round(n_effective))
    samples = rng.multinomial(size, probs, size=resamples) / size
    return {
        name: float(values.mean())
        for name, values in score_rows(question, samples, np.asarray(probs)).items()
    }


def _renormalised_rows(values: np.ndarray) -> np.ndarray:
    """Each row scaled to sum to one (uniform where a row sums to zero)."""
    total = values.sum(axis=-1, keepdims=True)
    uniform = np.full_like(values, 1 / values.shape[-1])
    scaled: np.ndarray = np.where(total > 0, values / np.where(total > 0, total, 1), uniform)
    return scaled


def compare(
    simulated: pl.DataFrame | SimulationResult,
    human: HumanResponses,
    *,
    fitted_on: Sequence[str] | None = None,
    resamples: int = 200,
    seed: int = 0,
) -> pl.DataFrame:
    """Score a simulated population distribution against human answers, with references.

    Args:
        simulated: A :class:`~survey_sim.runs.results.SimulationResult` (results asked in
            one option order warn, :class:`~survey_sim.errors.OptionOrderWarning`), or per
            question × option probabilities (``question_id``, ``option_code``, ``prob``; e.g.
            ``SimulationResult.population``). Questions the human data does not cover are
            left out.
        human: The human answers (weighted if they carry weights).
        fitted_on: Questions a tuning or calibration of the simulation was fitted on: adds
            the ``fitted_marginal`` reference (module docstring). By default, for a
            ``SimulationResult`` of a model survey-sim tuned, the questions its adapter
            was trained on (training and validation), else none.
        resamples: Samples drawn per question for the noise floor.
        seed: Seed of those samples.

    Returns:
        One row per question × source (``model``, the :data:`BASELINES`, ``noise_floor``)
        with the metrics; ``coverage`` (mean, model rows), ``n`` (respondents who
        answered) and ``n_effective`` (their Kish effective sample size: ``n`` without
        weights; what the noise floor and every interval use). A reference that does not
        exist for a question (no other question with its options) has no row.

    Raises:
        InputError: ``fitted_on`` names a question the human data does not have.
    """
    if isinstance(simulated, SimulationResult):
        simulated.warn_if_one_order()
        manifest = simulated.manifest
        if fitted_on is None and manifest is not None:
            fitted_on = fitted_questions(manifest.model, manifest.questionnaire.id)
        simulated = simulated.population
    fitted_on = fitted_on or ()
    people = human.distribution()
    model = simulated_distribution(simulated)
    shared = shared_questions(model, people, human)
    every = answered_option_questions(people, human)
    unknown = sorted(set(fitted_on) - {q.id for q in every})
    if unknown:
        raise InputError(
            human.source,
            f"fitted_on: no human answers to {', '.join(unknown)}",
        )
    fitted = [q for q in every if q.id in set(fitted_on)]
    human_probs = {q.id: option_probs(people, q) for q in every}
    rng = seeded_rng(seed, "noise floor")
    rows = []
    for question in shared:
        p = human_probs[question.id]
        answered_rows = people.filter(pl.col("question_id") == question.id)
        coverage = model.filter(pl.col("question_id") == question.id)["coverage"].mean()
        references: dict[str, list[float] | None] = {
            "model": option_probs(model, question),
            "uniform": [1 / len(p)] * len(p),
            "human_marginal": leave_one_out_marginal(question, every, human_probs),
            "fitted_marginal": leave_one_out_marginal(question, fitted, human_probs),
        }
        scored = {
            source: scores(question, p, q) for source, q in references.items() if q is not None
        }
        scored["noise_floor"] = noise_floor(
            question, p, float(answered_rows["n_effective"][0]), resamples=resamples, rng=rng
        )
        for source, values in scored.items():
            rows.append(
                {
                    "question_id": question.id,
                    "source": source,
                    **values,
                    "coverage": coverage if source == "model" else None,
                    "n": int(answered_rows["n"][0]),
                    "n_effective": float(answered_rows["n_effective"][0]),
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "question_id": pl.String,
            "source": pl.String,
            **{m: pl.Float64 for m in METRICS},
            "coverage": pl.Float64,
            "n": pl.Int64,
            "n_effective": pl.Float64,
        },
    )


def paired_differences(
    comparison: pl.DataFrame,
    source: str = "model",
    versus: Sequence[str] = BASELINES,
    *,
    metrics: Sequence[str] = METRICS,
    resamples: int = 2000,
    interval: float = 0.9,
    seed: int = 0,
    unit: str = "question_id",
) -> pl.DataFrame:
    """Whether ``source`` scores better than each of ``versus``, question by question.

    Over the questions both were scored on: the mean of each, their mean difference
    (``source`` − other) and its bootstrap interval, resampling the questions together for
    both (paired). ``verdict`` is ``better``/``worse`` (for ``source``) only when the whole
    interval lies on one side of zero. With few questions the interval is wide: read the
    per-question rows of ``comparison`` too; with fewer than
    :data:`~survey_sim.evaluate.paired.MIN_UNITS` there is no interval and the verdict is
    ``too few units``. The interval is over questions (would the
    ordering hold on other questions like these?); it leaves out the sampling error of the
    human answers, which the noise floor shows.

    Args:
        comparison: Rows of :func:`compare` (several comparisons may be concatenated with
            sources of their own, e.g. ``before`` and ``after``).
        source: The method judged.
        versus: What it is judged against; sources absent from ``comparison`` are skipped.
        unit: The column naming the units scored (questions; pairs of questions for joints).

    Returns:
        One row per other source × metric: ``source``, ``versus``, ``metric``, ``estimate``,
        ``reference``, ``difference``, ``lower``, ``upper``, ``questions``, ``verdict``.
    """
    wide = {
        name: part.select(unit, *metrics)
        for (name,), part in comparison.partition_by("source", as_dict=True).items()
    }
    if source not in wide:
        raise InputError("comparison", f"no rows of source {source!r}")
    rows = []
    for other in versus:
        if other not in wide or other == source:
            continue
        both = wide[source].join(wide[other], on=unit, suffix="_other")
        if both.is_empty():
            continue
        weights = bootstrap_weights(both.height, resamples, seed)
        for metric in metrics:
            first, second = both[metric].to_numpy(), both[f"{metric}_other"].to_numpy()
            lower: float | None = None
            upper: float | None = None
            judged = "too few units"
            if both.height >= MIN_UNITS:
                lower, upper = interval_of(resampled_means(first - second, weights), interval)
                judged = verdict(metric, lower, upper)
            rows.append(
                {
                    "source": source,
                    "versus": other,
                    "metric": metric,
                    "estimate": float(first.mean()),
                    "reference": float(second.mean()),
                    "difference": float((first - second).mean()),
                    "lower": lower,
                    "upper": upper,
                    "questions": both.height,
                    "verdict": judged,
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "source": pl.String,
            "versus": pl.String,
            "metric": pl.String,
            "estimate": pl.Float64,
            "reference": pl.Float64,
            "difference": pl.Float64,
            "lower": pl.Float64,
            "upper": pl.Float64,
            "questions": pl.Int64,
            "verdict": pl.String,
        },
    )


def strongest_baseline(comparison: pl.DataFrame, metric: str = "jensen_shannon") -> str:
    """The baseline (:data:`BASELINES`) with the best mean ``metric`` over the questions it
    was scored on, in ``comparison``."""
    means = (
        comparison.filter(pl.col("source").is_in(BASELINES))
        .group_by("source", maintain_order=True)
        .agg(pl.col(metric).mean())
    )
    best = means.sort(metric, descending=not LOWER_IS_BETTER[metric], maintain_order=True)
    return str(best["source"][0])


def compare_subgroups(
    simulated: pl.DataFrame,
    human: HumanResponses,
    by: Sequence[str],
    *,
    resamples: int = 200,
    seed: int = 0,
) -> pl.DataFrame:
    """:func:`compare` within every subgroup that both sides have: the same rows, with the
    ``by`` columns first (the references, the noise floor included, come from the subgroup's
    own respondents).

    Args:
        simulated: Distributions per ``by`` group, question and option
            (:meth:`SimulationResult.subgroups`).
        human: The human answers, with the ``by`` attributes.
    """
    parts = []
    for group in shared_subgroups(simulated, human, by):
        match = [pl.col(name) == value for name, value in zip(by, group, strict=True)]
        label = ", ".join(f"{name}={value}" for name, value in zip(by, group, strict=True))
        within = compare(
            simulated.filter(*match).drop(by),
            human.subset(pl.all_horizontal(match), label),
            resamples=resamples,
            seed=seed,
        )
        parts.append(
            within.select(*(pl.lit(v).alias(n) for n, v in zip(by, group, strict=True)), pl.all())
        )
    return pl.concat(parts)


def subgroup_gaps(
    simulated: pl.DataFrame, human: HumanResponses, by: Sequence[str]
) -> pl.DataFrame:
    """How far apart subgroups answer, among people and in the simulation.

    One row per question and pair of subgroups (``group_a``, ``group_b``: the ``by`` values
    joined by ", "): ``people`` and ``model`` are the total variation between the two
    groups' distributions (0: the groups answer alike); ``same_direction`` says whether the
    simulation moves from one group to the other the way people do (the two differences
    point the same way: their dot product is positive; null when either gap is 0). A
    simulation whose ``model`` gaps are near 0 where people's are large does not tell the
    groups apart, however well it matches the population as a whole.
    """
    people = human.distribution(by)
    model = simulated_distribution(simulated, by)
    groups = shared_subgroups(simulated, human, by)
    rows = []
    for question in shared_questions(model, people, human):
        per_group = {}
        for group in groups:
            match = [pl.col(name) == value for name, value in zip(by, group, strict=True)]
            answered = people.filter(*match, pl.col("question_id") == question.id)
            simulated_rows = model.filter(*match, pl.col("question_id") == question.id)
            if not answered.is_empty() and not simulated_rows.is_empty():
                per_group[", ".join(group)] = (
                    np.array(option_probs(answered, question)),
                    np.array(option_probs(simulated_rows, question)),
                )
        for (a, (people_a, model_a)), (b, (people_b, model_b)) in itertools.combinations(
            per_group.items(), 2
        ):
            people_shift, model_shift = people_b - people_a, model_b - model_a
            agreement = float(people_shift @ model_shift)
            rows.append(
                {
                    "question_id": question.id,
                    "group_a": a,
                    "group_b": b,
                    "people": total_variation(people_a.tolist(), people_b.tolist()),
                    "model": total_variation(model_a.tolist(), model_b.tolist()),
                    "same_direction": None if agreement == 0 else agreement > 0,
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "question_id": pl.String,
            "group_a": pl.String,
            "group_b": pl.String,
            "people": pl.Float64,
            "model": pl.Float64,
            "same_direction": pl.Boolean,
        },
    )


def shared_subgroups(
    simulated: pl.DataFrame, human: HumanResponses, by: Sequence[str]
) -> list[tuple[str, ...]]:
    """The combinations of ``by`` values both the simulation and the respondents have.

    Raises:
        InputError: an attribute one side lacks, or no combination in common.
    """
    for name in by:
        if name not in human.attributes:
            raise InputError(
                human.source,
                f"the human data have no attribute {name!r} "
                f"(attributes: {', '.join(human.attributes) or 'none'})",
            )
    simulated_groups = set(simulated.select(by).unique().rows())
    human_groups = set(human.frame.select(by).drop_nulls().unique().rows())
    shared = sorted(simulated_groups & human_groups)
    if not shared:
        raise InputError(
            human.source,
            f"no {', '.join(by)} group is in both the simulation "
            f"({'; '.join(', '.join(g) for g in sorted(simulated_groups))}) and the human data "
            f"({'; '.join(', '.join(g) for g in sorted(human_groups))})",
        )
    return shared


def summarise(comparison: pl.DataFrame) -> pl.DataFrame:
    """Mean of every metric per source over questions (the headline table): sources of
    your own (e.g. ``before``/``after``) first, in the order they appear, then
    :data:`SOURCES`."""
    return (
        comparison.group_by("source", maintain_order=True)
        .agg(pl.col(*METRICS).mean(), questions=pl.len())
        .sort(
            pl.col("source").replace_strict(
                {s: i for i, s in enumerate(SOURCES)}, default=-1, return_dtype=pl.Int32
            ),
            maintain_order=True,
        )
    )
