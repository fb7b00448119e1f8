"""Association in a two-way table of probabilities (rows: the first question's options,
columns: the second's), the population versions of the usual measures:

* Cramér's V: √(φ² / min(R − 1, C − 1)) with φ² = Σ (p_ij − r_i c_j)² / (r_i c_j), in [0, 1]
  (0: independent); any pair of questions.
* Kendall's tau-b: 2 (P_c − P_d) / √((1 − Σ r_i²)(1 − Σ c_j²)), with P_c (P_d) the
  probability that two draws from the table are ordered the same (opposite) way on both
  questions, in [−1, 1]; ordinal pairs. On a table of counts divided by their total it is
  exactly the sample tau-b (the ``n(n − 1)`` terms cancel).
* The polychoric correlation: the correlation of a standard bivariate normal whose
  thresholds, cut at the table's marginal shares, give the table (two-step estimate:
  thresholds from the marginals, then the correlation that maximises Σ p_ij log π_ij);
  ordinal pairs.

Cramér's V and tau-b take the table in the last two axes (leading axes are batches) and are
written with array methods only, so the same function computes them on NumPy arrays and on
PyTensor tensors inside a PyMC model (``xp``: the module with ``sqrt``, ``cumsum``,
``minimum``). Rows and columns of zero probability must be left out by the caller.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from types import ModuleType
from typing import Any

import numpy as np

from survey_sim.questionnaire import ChoiceQuestion

ASSOCIATIONS = ("cramers_v", "tau_b", "polychoric")
"""Every association measure, by name."""
ORDINAL_ONLY = frozenset({"tau_b", "polychoric"})
"""Measures that need both questions on an ordinal scale."""


def phi_squared(table: Any) -> Any:
    """φ² = Σ (p_ij − r_i c_j)² / (r_i c_j) of ``table`` (last two axes)."""
    rows = table.sum(axis=-1)
    columns = table.sum(axis=-2)
    expected = rows[..., :, None] * columns[..., None, :]
    return ((table - expected) ** 2 / expected).sum(axis=(-2, -1))


def cramers_v_of(phi: Any, shape: tuple[int, ...], xp: ModuleType = np) -> Any:
    """Cramér's V from φ² of a table of ``shape`` (last two axes)."""
    return xp.sqrt(phi / (min(shape[-2], shape[-1]) - 1))


def cramers_v(table: Any, xp: ModuleType = np) -> Any:
    """Cramér's V of ``table`` (last two axes)."""
    return cramers_v_of(phi_squared(table), table.shape, xp)


def tau_b(table: Any, xp: ModuleType = np) -> Any:
    """Kendall's tau-b of ``table`` (last two axes; rows and columns in scale order)."""
    below = xp.cumsum(table[..., ::-1, :], axis=-2)[..., ::-1, :]
    below_right = xp.cumsum(below[..., ::-1], axis=-1)[..., ::-1]
    below_left = xp.cumsum(below, axis=-1)
    concordant = (table[..., :-1, :-1] * below_right[..., 1:, 1:]).sum(axis=(-2, -1))
    discordant = (table[..., :-1, 1:] * below_left[..., 1:, :-1]).sum(axis=(-2, -1))
    rows = table.sum(axis=-1)
    columns = table.sum(axis=-2)
    ties = (1 - (rows**2).sum(axis=-1)) * (1 - (columns**2).sum(axis=-1))
    return 2 * (concordant - discordant) / xp.sqrt(ties)


_NORMAL = NormalDist()
_THRESHOLD_LIMIT = 10.0
"""Thresholds at ±infinity are put here: Φ(10) is 1 and the bivariate density's tails are
below 1e-21 in double precision."""
_NODES, _NODE_WEIGHTS = np.polynomial.legendre.leggauss(64)
_SEARCH_LIMIT = 0.999
_SEARCH_STEPS = 60


def _thresholds(shares: np.ndarray) -> np.ndarray:
    """The standard normal cut points that give ``shares`` (the outer two at ±limit)."""
    inner = np.cumsum(shares)[:-1]
    cuts = [_NORMAL.inv_cdf(min(max(p, 1e-15), 1 - 1e-15)) for p in inner]
    limit = _THRESHOLD_LIMIT
    return np.clip([-limit, *cuts, limit], -limit, limit)


def bivariate_normal_cdf(h: np.ndarray, k: np.ndarray, rho: float) -> np.ndarray:
    """P(X ≤ h, Y ≤ k) for a standard bivariate normal with correlation ``rho``:
    Φ(h)Φ(k) + (1/2π) ∫₀^asin(rho) exp(−(h² − 2hk sin θ + k²) / (2 cos² θ)) dθ, by 64-point
    Gauss-Legendre quadrature (the integrand is smooth in θ; accurate to about 1e-10 for
    |rho| ≤ 0.99). ``h`` and ``k`` broadcast."""
    h, k = np.broadcast_arrays(np.asarray(h, dtype=float), np.asarray(k, dtype=float))
    cdf: np.ndarray = _normal_cdf(h) * _normal_cdf(k) + _correlated_part(h, k, rho)
    return cdf


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    values: np.ndarray = np.vectorize(lambda value: _NORMAL.cdf(float(value)), otypes=[float])(x)
    return values


def _correlated_part(h: np.ndarray, k: np.ndarray, rho: float) -> np.ndarray:
    """The bivariate normal CDF minus its value at correlation 0 (the integral)."""
    end = math.asin(rho)
    theta = end / 2 * (_NODES + 1)
    sin, cos_squared = np.sin(theta), np.cos(theta) ** 2
    h, k = h[..., None], k[..., None]
    integrand = np.exp(-(h**2 - 2 * h * k * sin + k**2) / (2 * cos_squared))
    part: np.ndarray = (integrand * _NODE_WEIGHTS).sum(axis=-1) * end / (4 * math.pi)
    return part


def polychoric(table: np.ndarray) -> float:
    """The polychoric correlation of a two-way probability table (module docstring), by a
    golden-section search over rho in [−0.999, 0.999]."""
    table = np.asarray(table, dtype=float)
    table = table / table.sum()
    rows = _thresholds(table.sum(axis=1))
    columns = _thresholds(table.sum(axis=0))
    grid_rows, grid_columns = np.meshgrid(rows, columns, indexing="ij")
    independent = _normal_cdf(grid_rows) * _normal_cdf(grid_columns)
    occupied = table > 0

    def log_likelihood(rho: float) -> float:
        cdf = independent + _correlated_part(grid_rows, grid_columns, rho)
        cells = cdf[1:, 1:] - cdf[:-1, 1:] - cdf[1:, :-1] + cdf[:-1, :-1]
        return float((table[occupied] * np.log(np.maximum(cells[occupied], 1e-300))).sum())

    golden = (math.sqrt(5) - 1) / 2
    low, high = -_SEARCH_LIMIT, _SEARCH_LIMIT
    left, right = high - golden * (high - low), low + golden * (high - low)
    at_left, at_right = log_likelihood(left), log_likelihood(right)
    for _ in range(_SEARCH_STEPS):
        if at_left < at_right:
            low, left, at_left = left, right, at_right
            right = low + golden * (high - low)
            at_right = log_likelihood(right)
        else:
            high, right, at_right = right, left, at_left
            left = high - golden * (high - low)
            at_left = log_likelihood(left)
    return (low + high) / 2


def association(measure: str, table: np.ndarray) -> Any:
    """One measure (:data:`ASSOCIATIONS`, by name) of a 2-D table (a float), or of each
    table along the first axis of a 3-D array (an array)."""
    if measure == "cramers_v":
        return cramers_v(table)
    if measure == "tau_b":
        return tau_b(table)
    if measure == "polychoric":
        return polychoric(table) if table.ndim == 2 else np.array([polychoric(t) for t in table])
    raise ValueError(f"unknown association measure {measure!r}; known: {', '.join(ASSOCIATIONS)}")


def measures_of(
    first: ChoiceQuestion, second: ChoiceQuestion
) -> list[tuple[str, list[int], list[int]]]:
    """Each measure that applies to a pair of questions, with the rows and columns (option
    indices) it is computed over: Cramér's V over every option; the ordinal measures, when
    both questions are ordinal, over the options on each scale in scale order."""
    scales = [first.scale(), second.scale()]
    measures = [("cramers_v", list(range(len(first.options))), list(range(len(second.options))))]
    if scales[0] is not None and scales[1] is not None:
        measures += [
            (measure, list(scales[0]), list(scales[1]))
            for measure in ASSOCIATIONS
            if measure in ORDINAL_ONLY
        ]
    return measures
