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

:func:`compare` puts every score beside three references, because a number alone says
little: ``uniform`` (every option equally likely), ``human_marginal`` (the average human
distribution of the *other* questions with the same options: what knowing the answer scale
but not the question gives), and ``split_half`` (two random halves of the same human
sample compared with each other: the noise floor; no simulation can be expected to beat
it by much).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import polars as pl

from survey_sim.data.aligned import (
    leave_one_out_marginal,
    option_probs,
    renormalised,
    shared_questions,
    simulated_distribution,
)
from survey_sim.data.responses import HumanResponses, answer_distribution
from survey_sim.errors import InputError
from survey_sim.questionnaire import ChoiceQuestion, OptionsQuestion
from survey_sim.runs.results import SimulationResult

KL_FLOOR = 1e-6
METRICS = ("representativeness", "jensen_shannon", "total_variation", "kl")
SOURCES = ("model", "uniform", "human_marginal", "split_half")


def total_variation(p: Sequence[float], q: Sequence[float]) -> float:
    """Half the L1 distance between two distributions."""
    return 0.5 * sum(abs(a - b) for a, b in zip(p, q, strict=True))


def kl_divergence(p: Sequence[float], q: Sequence[float]) -> float:
    """KL(p ‖ q) in nats, with ``q`` floored at :data:`KL_FLOOR`."""
    return sum(a * math.log(a / max(b, KL_FLOOR)) for a, b in zip(p, q, strict=True) if a > 0)


def jensen_shannon(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon divergence in bits (0 identical, 1 disjoint)."""
    middle = [(a + b) / 2 for a, b in zip(p, q, strict=True)]

    def half(x: Sequence[float]) -> float:
        return sum(a * math.log2(a / m) for a, m in zip(x, middle, strict=True) if a > 0)

    return 0.5 * half(p) + 0.5 * half(q)


def wasserstein_ordinal(p: Sequence[float], q: Sequence[float]) -> float:
    """Wasserstein-1 distance between distributions over positions 1..N (unit spacing)."""
    cumulative_p = cumulative_q = distance = 0.0
    for a, b in zip(p, q, strict=True):
        cumulative_p += a
        cumulative_q += b
        distance += abs(cumulative_p - cumulative_q)
    return distance


def representativeness(p: Sequence[float], q: Sequence[float]) -> float:
    """OpinionQA representativeness: 1 − W₁ / (N − 1) over ordinal positions."""
    return 1 - wasserstein_ordinal(p, q) / (len(p) - 1)


def representativeness_of(
    question: OptionsQuestion, human: Sequence[float], simulated: Sequence[float]
) -> float:
    """Representativeness of one question (module docstring): over an ordinal question's
    substantive options in position order (renormalised), else 1 − total variation."""
    ordinal = question.scale() if isinstance(question, ChoiceQuestion) else None
    if ordinal is None:
        return 1 - total_variation(human, simulated)
    return representativeness(
        renormalised([human[i] for i in ordinal]), renormalised([simulated[i] for i in ordinal])
    )


def scores(
    question: OptionsQuestion, human: Sequence[float], simulated: Sequence[float]
) -> dict[str, float | None]:
    """Every metric for one question (``human``/``simulated`` in option order)."""
    return {
        "representativeness": representativeness_of(question, human, simulated),
        "jensen_shannon": jensen_shannon(human, simulated),
        "total_variation": total_variation(human, simulated),
        "kl": kl_divergence(human, simulated),
    }


def compare(
    simulated: pl.DataFrame | SimulationResult,
    human: HumanResponses,
    *,
    splits: int = 20,
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
        splits: Random split-halves averaged for the noise floor.
        seed: Seed of the split-halves.

    Returns:
        One row per question × source (``model``, ``uniform``, ``human_marginal``,
        ``split_half``) with the metrics; ``coverage`` (mean, model rows) and ``n``
        (respondents who answered).
    """
    if isinstance(simulated, SimulationResult):
        simulated.warn_if_one_order()
        simulated = simulated.population
    people = human.distribution()
    model = simulated_distribution(simulated)
    halves = _split_half_distributions(human, splits=splits, seed=seed)
    shared = shared_questions(model, people, human)
    human_probs = {q.id: option_probs(people, q) for q in shared}
    rows = []
    for question in shared:
        p = human_probs[question.id]
        n = int(people.filter(pl.col("question_id") == question.id)["n"][0])
        simulated_probs = option_probs(model, question)
        coverage = model.filter(pl.col("question_id") == question.id)["coverage"].mean()
        references: dict[str, list[float] | None] = {
            "model": simulated_probs,
            "uniform": [1 / len(p)] * len(p),
            "human_marginal": leave_one_out_marginal(question, shared, human_probs),
        }
        for source, q in references.items():
            if q is not None:
                rows.append(
                    {
                        "question_id": question.id,
                        "source": source,
                        **scores(question, p, q),
                        "coverage": coverage if source == "model" else None,
                        "n": n,
                    }
                )
        half_scores = [
            scores(question, a[question.id], b[question.id])
            for a, b in halves
            if question.id in a and question.id in b
        ]
        rows.append(
            {
                "question_id": question.id,
                "source": "split_half",
                **{m: _mean([s[m] for s in half_scores]) for m in METRICS},
                "coverage": None,
                "n": n,
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
        },
    )


def compare_subgroups(
    simulated: pl.DataFrame,
    human: HumanResponses,
    by: Sequence[str],
    *,
    splits: int = 20,
    seed: int = 0,
) -> pl.DataFrame:
    """:func:`compare` within every subgroup that both sides have: the same rows, with the
    ``by`` columns first (the references, split-halves included, come from the subgroup's
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
            splits=splits,
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
    """Mean of every metric per source over questions (the headline table)."""
    return (
        comparison.group_by("source", maintain_order=True)
        .agg(pl.col(*METRICS).mean(), questions=pl.len())
        .sort(
            pl.col("source").replace_strict(
                {s: i for i, s in enumerate(SOURCES)}, return_dtype=pl.Int32
            )
        )
    )


def _split_half_distributions(
    human: HumanResponses, *, splits: int, seed: int
) -> list[tuple[dict[str, list[float]], dict[str, list[float]]]]:
    respondents = human.frame["respondent_id"].unique().sort()
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(splits):
        first = set(rng.permutation(respondents.to_numpy())[: len(respondents) // 2].tolist())
        halves = []
        for in_first in (True, False):
            part = human.frame.filter(pl.col("respondent_id").is_in(first) == in_first)
            distribution = answer_distribution(part, human.questionnaire)
            answered = set(distribution["question_id"])
            halves.append(
                {
                    q.id: option_probs(distribution, q)
                    for q in human.questionnaire
                    if isinstance(q, OptionsQuestion) and q.id in answered
                }
            )
        result.append((halves[0], halves[1]))
    return result


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None
