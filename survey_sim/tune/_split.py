"""Held-out by construction: the seeded split a tuning run learns from and is judged on.

The population objective splits **questions**: a held-out share is never seen, a
validation share chooses when to stop, the rest trains. The individual objective splits
**respondents** the same way (every question of a training respondent is trained on). The
split is drawn before anything is fitted and recorded in the adapter, with the data's hash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from survey_sim.data.responses import HumanResponses
from survey_sim.engines.records import TrainedOn
from survey_sim.errors import InputError
from survey_sim.runs.held_out import data_hash

Objective = Literal["population", "individual"]


class TuningSplit(BaseModel):
    """Which questions or respondents train, validate (early stopping) and stay held out.

    Attributes:
        objective: ``"population"`` (splits questions) or ``"individual"`` (splits
            respondents).
        seed: What every choice was derived from.
        train, validation, held_out: Question ids (population) or respondent ids
            (individual) in each part.
        source, questionnaire, data_hash: The data split (see :class:`TrainedOn`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    objective: Objective
    seed: int
    train: tuple[str, ...]
    validation: tuple[str, ...]
    held_out: tuple[str, ...]
    source: str
    questionnaire: str
    data_hash: str

    @classmethod
    def draw(
        cls,
        human: HumanResponses,
        objective: Objective,
        *,
        held_out: float = 1 / 3,
        validation: float = 1 / 6,
        validation_at_most: int | None = None,
        train: int | None = None,
        seed: int = 0,
        among: Sequence[str] | None = None,
    ) -> TuningSplit:
        """A seeded split of ``human``'s questions (population) or respondents (individual).

        Args:
            held_out: Share of the items never trained on (at least one).
            validation: Share of the items that choose when to stop (at least one).
            validation_at_most: Most validation items (a share of thousands of respondents
                would make every validation loss a long wait).
            train: Most training items to use (``None``: all the rest; respondents are
                often subsampled on CPUs).
            seed: Seed of the split.
            among: The respondents to split (individual objective; default: everyone).

        Raises:
            InputError: shares outside (0, 1), or too few items to leave one in each part.
        """
        for name, share in (("held_out", held_out), ("validation", validation)):
            if not 0 < share < 1:
                raise InputError("tuning settings", f"{name} must be a share between 0 and 1")
        if held_out + validation >= 1:
            raise InputError("tuning settings", "held_out and validation leave nothing to train")
        if objective == "population":
            items = [q.id for q in human.questionnaire if q.id in set(human.frame["question_id"])]
        else:
            items = sorted(among if among is not None else human.frame["respondent_id"].unique())
        kind = "questions" if objective == "population" else "respondents"
        n_held_out = max(1, round(len(items) * held_out))
        n_validation = max(1, round(len(items) * validation))
        if validation_at_most is not None:
            n_validation = min(n_validation, validation_at_most)
        if len(items) - n_held_out - n_validation < 1:
            raise InputError(
                human.source,
                f"{len(items)} {kind} cannot be split into training, validation and held-out "
                f"{kind} (at least one each)",
            )
        shuffled = [items[i] for i in np.random.default_rng(seed).permutation(len(items))]
        rest = shuffled[n_held_out + n_validation :]
        return cls(
            objective=objective,
            seed=seed,
            train=_in_data_order(rest[:train] if train is not None else rest, items),
            validation=_in_data_order(shuffled[n_held_out : n_held_out + n_validation], items),
            held_out=_in_data_order(shuffled[:n_held_out], items),
            source=human.source,
            questionnaire=human.questionnaire.id,
            data_hash=data_hash(human),
        )

    @property
    def trained_on(self) -> TrainedOn:
        """What the adapter must not be evaluated on: training and validation items."""
        seen = (*self.train, *self.validation)
        return TrainedOn(
            source=self.source,
            questionnaire=self.questionnaire,
            data_hash=self.data_hash,
            questions=seen if self.objective == "population" else (),
            respondents=seen if self.objective == "individual" else (),
        )

    def record(self) -> dict[str, Any]:
        """The split as JSON-ready data (for the adapter's record)."""
        return {
            **self.model_dump(mode="json"),
            "kind": "questions" if self.objective == "population" else "respondents",
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TuningSplit:
        """The split :meth:`record` wrote (``kind`` is derived from the objective)."""
        return cls.model_validate({key: value for key, value in record.items() if key != "kind"})


def _in_data_order(chosen: Sequence[str], items: Sequence[str]) -> tuple[str, ...]:
    picked = set(chosen)
    return tuple(item for item in items if item in picked)
