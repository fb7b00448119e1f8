"""People's association between question pairs with posterior uncertainty, beside the
simulation's exact association (PyMC, ArviZ).

Per pair, people's cross-tab cells get a flat Dirichlet prior and the likelihood of their
weighted shares at the pair's effective sample size (Kish):

    cells_pair ~ Dirichlet(1),   Σ n_eff · share_ij · log cells_ij

so the posterior is Dirichlet(1 + n_eff · shares): weights widen it as they shrink the
sample. ``people`` is the chosen measure (:mod:`survey_sim._association`) of each posterior
table, ``simulated`` the same measure of the simulation's population joint (exact for its
personas, so a constant), and ``difference`` = simulated − people: where its interval
excludes zero, the simulated association is credibly different from people's. Pairs are
fitted side by side, each from its own respondents (pairs that share a question are not
independent; the model does not pool them).

Cramér's V is at least 0, so near independence its posterior, like a sample's V, sits above
the true value (about 0.04 for independent 5 × 5 items and 3,000 respondents): there a
``difference`` below zero is not evidence. ``auto`` reads tau-b, which has no such floor,
wherever both questions are ordinal. :func:`~survey_sim.evaluate.joints.compare_joints`
bias-corrects V.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Unpack

import numpy as np

from survey_sim._association import ORDINAL_ONLY, cramers_v, measures_of, tau_b
from survey_sim.analysis.backend import SamplingOptions, sample
from survey_sim.data.crosstabs import CrossTabs
from survey_sim.data.responses import HumanResponses
from survey_sim.errors import InputError
from survey_sim.questionnaire import ChoiceQuestion
from survey_sim.runs.joints import JointResult

if TYPE_CHECKING:
    import arviz as az

MODEL_MEASURES = ("auto", "cramers_v", "tau_b")
"""Measures the model computes (the polychoric correlation has no closed form to sample
through). ``auto``: tau-b where both questions are ordinal, Cramér's V otherwise."""


class Association:
    """People's and the simulation's association per question pair (module docstring).

    Args:
        joints: Exact joints of question pairs (:func:`~survey_sim.runs.joints.joint`).
        human: People's answers (weighted if they carry weights).
        measure: One of :data:`MODEL_MEASURES`; ``tau_b`` leaves out pairs with a
            nominal question.
        asked: The joints' asking order used.
        pairs: The pairs to fit (default: every pair of ``joints`` people answered).

    Raises:
        InputError: an unknown measure, or no pair left to fit.
    """

    def __init__(
        self,
        joints: JointResult,
        human: HumanResponses,
        *,
        measure: str = "auto",
        asked: str = "average",
        pairs: Sequence[tuple[str, str]] | None = None,
    ) -> None:
        if measure not in MODEL_MEASURES:
            raise InputError(
                "Association",
                f"measure must be one of {', '.join(MODEL_MEASURES)}, not {measure!r}",
            )
        crosstabs = CrossTabs(human)
        listed = pairs or joints.joints.select("first", "second").unique(maintain_order=True).rows()
        self.pairs: list[_Pair] = []
        for first_id, second_id in listed:
            if not (crosstabs.answered(first_id) and crosstabs.answered(second_id)):
                continue
            first, second = (human.questionnaire.question(q) for q in (first_id, second_id))
            if not (isinstance(first, ChoiceQuestion) and isinstance(second, ChoiceQuestion)):
                continue
            applicable = {name: (r, c) for name, r, c in measures_of(first, second)}
            chosen = measure
            if measure == "auto":
                chosen = "tau_b" if "tau_b" in applicable else "cramers_v"
            if chosen not in applicable:
                continue
            weights, tables = joints.tables(first, second, asked)
            crosstab = crosstabs.of(first, second)
            self.pairs.append(
                _Pair(
                    f"{first_id} × {second_id}",
                    chosen,
                    *applicable[chosen],
                    np.einsum("p,pij->ij", weights, tables),
                    crosstab.shares * crosstab.n_effective,
                )
            )
        if not self.pairs:
            raise InputError(
                human.source,
                f"no pair of these joints has people's answers to both questions and the "
                f"measure {measure!r}"
                + (" (tau_b needs two ordinal questions)" if measure in ORDINAL_ONLY else ""),
            )

    def fit(self, **sampling: Unpack[SamplingOptions]) -> az.InferenceData:
        """Posterior with ``people`` and ``difference`` over ``pair`` (``simulated`` in
        ``constant_data``), and each pair's ``cells``."""
        import pymc as pm
        import pytensor.tensor as pt

        coords = {"pair": [pair.name for pair in self.pairs]}
        with pm.Model(coords=coords):
            people = []
            for index, pair in enumerate(self.pairs):
                size = pair.counts.size
                cells = pm.Dirichlet(f"cells_{index}", a=np.ones(size))
                pm.Potential(f"answers_{index}", (pair.counts.ravel() * pt.log(cells)).sum())
                table = cells.reshape(pair.counts.shape)[pair.rows][:, pair.columns]
                people.append(_measure(pair.measure, table / table.sum()))
            simulated = pm.Data(
                "simulated", np.array([pair.simulated_value for pair in self.pairs]), dims="pair"
            )
            estimate = pm.Deterministic("people", pt.stack(people), dims="pair")
            pm.Deterministic("difference", simulated - estimate, dims="pair")
            return sample(
                ["people"],
                sampling,
                {"measures": ", ".join(f"{p.name}: {p.measure}" for p in self.pairs)},
            )


class _Pair:
    """One pair's data: the measure and the rows and columns it is computed over, the
    simulation's population joint, and people's counts at the effective n."""

    def __init__(
        self,
        name: str,
        measure: str,
        rows: list[int],
        columns: list[int],
        simulated: np.ndarray,
        counts: np.ndarray,
    ) -> None:
        self.name, self.measure, self.rows, self.columns = name, measure, rows, columns
        self.counts = counts
        part = simulated[np.ix_(rows, columns)]
        self.simulated_value = float(_measure(measure, part / part.sum(), np))


def _measure(name: str, table: Any, xp: Any = None) -> Any:
    """Cramér's V or tau-b of ``table`` (PyTensor unless ``xp`` says otherwise)."""
    if xp is None:
        import pytensor.tensor

        xp = pytensor.tensor
    return cramers_v(table, xp) if name == "cramers_v" else tau_b(table, xp)
