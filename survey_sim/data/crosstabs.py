"""People's weighted cross-tabs of question pairs, and the same under bootstrap resamples
of the respondents."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import polars as pl

from survey_sim.data.responses import HumanResponses
from survey_sim.questionnaire import OptionsQuestion


@dataclass(frozen=True)
class CrossTab:
    """One pair's cross-tab.

    Attributes:
        shares: Weighted shares, rows the first question's options and columns the
            second's, in questionnaire order (summing to one).
        resampled: The shares under each row of the bootstrap counts given (resamples ×
            rows × columns); empty without counts.
        n: Respondents who answered both questions.
        n_effective: Their Kish effective sample size.
    """

    shares: np.ndarray
    resampled: np.ndarray
    n: int
    n_effective: float


class CrossTabs:
    """People's answers, one row per respondent, for the cross-tab of any pair."""

    def __init__(self, human: HumanResponses) -> None:
        self.wide = human.frame.pivot(
            on="question_id", index=["respondent_id", "weight"], values="option_code"
        )
        self.weights = self.wide["weight"].to_numpy().astype(float)

    @property
    def respondents(self) -> int:
        """Respondents with at least one answer (the units bootstrap counts are over)."""
        return self.wide.height

    def answered(self, question: str) -> bool:
        """Whether anyone answered ``question``."""
        return question in self.wide.columns

    def of(
        self,
        first: OptionsQuestion,
        second: OptionsQuestion,
        counts: Iterable[np.ndarray] = (),
    ) -> CrossTab:
        """The weighted cross-tab of ``first`` × ``second`` over the respondents who
        answered both, and under each row of bootstrap ``counts`` (blocks of rows: how often
        each respondent is drawn; :attr:`respondents` columns)."""
        indices = [self._option_indices(question) for question in (first, second)]
        both = (indices[0] >= 0) & (indices[1] >= 0)
        shape = (len(first.options), len(second.options))
        one_hot = np.zeros((int(both.sum()), shape[0] * shape[1]))
        one_hot[np.arange(one_hot.shape[0]), indices[0][both] * shape[1] + indices[1][both]] = 1
        weights = self.weights[both]
        shares = (weights @ one_hot).reshape(shape) / weights.sum()
        blocks = [np.empty((0, *shape))]
        for block in counts:
            drawn = block[:, both] * weights
            blocks.append((drawn @ one_hot).reshape(-1, *shape) / drawn.sum(axis=1)[:, None, None])
        resampled = np.concatenate(blocks)
        n_effective = float(weights.sum() ** 2 / (weights**2).sum())
        return CrossTab(shares, resampled, int(both.sum()), n_effective)

    def _option_indices(self, question: OptionsQuestion) -> np.ndarray:
        """Each respondent's answer to ``question`` as its option's index (−1: none)."""
        indices: np.ndarray = (
            self.wide[question.id]
            .replace_strict(
                [option.code for option in question.options],
                list(range(len(question.options))),
                default=-1,
                return_dtype=pl.Int64,
            )
            .fill_null(-1)
            .to_numpy()
        )
        return indices
