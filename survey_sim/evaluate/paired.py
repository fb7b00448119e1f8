"""Paired comparisons: is method A better than method B on the same units?

Two methods scored on the same questions (or respondents) are compared on their
*difference*, unit by unit, and the units are resampled together (a paired bootstrap):
reading "A beats B" off two overlapping marginal intervals ignores that both were scored on
the same units, which usually makes the difference far more precise than either score.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from survey_sim.data.splits import seeded_rng

LOWER_IS_BETTER = {
    "representativeness": False,
    "jensen_shannon": True,
    "total_variation": True,
    "kl": True,
    "log_loss": True,
    "accuracy": False,
    "brier": True,
    "ece": True,
}
"""Direction of every metric survey-sim reports."""

MIN_UNITS = 5
"""Fewest units (questions, respondents) a paired bootstrap interval is computed from: with
fewer, resampling them says nothing (two questions have three distinct resamples)."""


def resampled_means(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted means of ``values`` (one per unit) under each row of bootstrap ``weights``
    (counts per unit, as drawn by :func:`bootstrap_weights`)."""
    means: np.ndarray = (weights @ values) / weights.sum(axis=1)
    return means


CHUNK_BYTES = 256 * 2**20
"""Most memory one block of bootstrap counts may take (:func:`bootstrap_weight_chunks`)."""


def bootstrap_weights(units: int, resamples: int, seed: int) -> np.ndarray:
    """How often each of ``units`` is drawn in each of ``resamples`` bootstrap samples.

    The draws come from a stream of their own (``seed`` and the purpose, hashed), never from
    ``default_rng(seed)`` itself: data drawn with ``default_rng(seed)`` (a split, a
    simulated sample) would otherwise share its random numbers with the resampling, and the
    two would be far from independent (a planted sample's Democrats all got weight 0)."""
    return np.vstack(list(bootstrap_weight_chunks(units, resamples, seed)))


def bootstrap_weight_chunks(units: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """The rows of :func:`bootstrap_weights` in blocks of at most :data:`CHUNK_BYTES` (the
    same rows: the generator draws them in sequence), so that resampling a large survey
    many times never holds every count at once."""
    rng = seeded_rng(seed, "bootstrap")
    rows = max(1, CHUNK_BYTES // (8 * max(units, 1)))
    for start in range(0, resamples, rows):
        yield rng.multinomial(units, np.full(units, 1 / units), size=min(rows, resamples - start))


def interval_of(resampled: np.ndarray, interval: float) -> tuple[float, float]:
    """The central ``interval`` of resampled values (percentile bootstrap)."""
    tail = (1 - interval) / 2
    lower, upper = np.quantile(resampled, [tail, 1 - tail])
    return float(lower), float(upper)


def verdict(metric: str, lower: float, upper: float) -> str:
    """Whether the first of two methods is ``better``, ``worse`` or neither, from the
    interval of (first − second) on ``metric``: better only when the whole interval lies on
    the metric's good side of zero."""
    lower_is_better = LOWER_IS_BETTER[metric]
    if upper < 0:
        return "better" if lower_is_better else "worse"
    if lower > 0:
        return "worse" if lower_is_better else "better"
    return "no clear difference"
