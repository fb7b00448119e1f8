"""Seeded, recorded splits for the few-shot individual evaluation.

Respondents are split into **train** (everything fitted: baselines, regressions,
calibration) and **test** (everything reported). Within every respondent, the questions
they answered are put in a seeded order: the last ``held_out`` are the questions to predict,
and the first ``k`` of the others are the answers shown, for every ``k`` in the learning
curve. Shown answers are nested (the 2 shown at k = 2 are the first 2 of the 4 at k = 4) and
the held-out questions are the same at every k, so the curve compares like with like, and
the history of a smaller k is a prefix of the next one's prompt.

Only answered questions take part: a skip or a "not asked" split-ballot gap is never shown
and never predicted. A respondent is eligible when they answered enough questions for the
largest k plus the held-out ones (and, with demographics, has every demographic attribute).

Everything is derived from the seed and the respondent ids, and :meth:`IndividualSplit.record`
writes it down, so a run's manifest says exactly which answers were shown and predicted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict

from survey_sim.data.responses import HumanResponses
from survey_sim.errors import InputError


def learning_curve(largest: int) -> tuple[int, ...]:
    """0, 1, 2, 4, 8, ... up to ``largest`` (which is included)."""
    shots = [0]
    while shots[-1] * 2 <= largest and shots[-1] < largest:
        shots.append(max(1, shots[-1] * 2))
    if shots[-1] != largest:
        shots.append(largest)
    return tuple(shots)


class IndividualSplit(BaseModel):
    """Which respondents train and test, and per respondent which answers are shown and
    which are predicted.

    Attributes:
        seed: What every random choice was derived from.
        shots: The k of the learning curve (answers shown), ascending.
        train: Training respondent ids.
        test: Test respondent ids.
        shown: Per respondent, the questions shown, in order (the first k at each k).
        held_out: Per respondent, the questions predicted.
        demographics: The attributes put in each respondent's description (none: the
            description says nothing about them).
        eligible: Respondents who could take part, before sampling train and test.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int
    shots: tuple[int, ...]
    train: tuple[str, ...]
    test: tuple[str, ...]
    shown: dict[str, tuple[str, ...]]
    held_out: dict[str, tuple[str, ...]]
    demographics: tuple[str, ...]
    eligible: int

    @property
    def respondents(self) -> tuple[str, ...]:
        """Training, then test respondents."""
        return (*self.train, *self.test)

    def role(self, respondent: str) -> str:
        """``"train"`` or ``"test"``."""
        return "test" if respondent in set(self.test) else "train"

    @classmethod
    def draw(
        cls,
        human: HumanResponses,
        *,
        shots: Sequence[int] | None = None,
        held_out: int | Sequence[str] = 2,
        shown: Sequence[str] | None = None,
        train: int | None = 200,
        test: int | None = 200,
        demographics: Sequence[str] | bool = True,
        seed: int = 0,
        exclude: Collection[str] = (),
        weighted_data: Literal["refuse", "ignore"] = "refuse",
    ) -> IndividualSplit:
        """A seeded split of ``human``'s respondents and their questions.

        Args:
            shots: The learning curve's k (default 0, 1, 2, 4, ... up to what the survey
                allows: every question but the held-out ones).
            held_out: How many of each respondent's answered questions to predict (chosen
                at random per respondent), or a fixed list of question ids.
            shown: A fixed order of questions to show (default: a random order per
                respondent). Unanswered ones are left out.
            train: Training respondents to sample (``None``: every eligible one not in test).
            test: Test respondents to sample (``None``: half the eligible ones).
            demographics: Attributes to describe respondents with: ``True`` for the mapping's
                population attributes (else every attribute), ``False`` for none, or names.
            seed: Seed of every choice.
            exclude: Respondents never to take (e.g. those a tuned model was trained on:
                ``TuningResult.split``).
            weighted_data: The individual mode counts every respondent once; weighted
                data are refused unless ``"ignore"`` accepts that.

        Raises:
            InputError: unknown questions or attributes, shots the survey cannot allow, too
                few eligible respondents, or weighted data (``weighted_data="refuse"``).
        """
        human.refuse_weights(weighted_data, "the individual mode")
        source = human.source
        questions = [q.id for q in human.questionnaire if q.id in set(human.frame["question_id"])]
        attributes = described_by(human, demographics)
        fixed_held_out = None if isinstance(held_out, int) else tuple(held_out)
        n_held_out = held_out if isinstance(held_out, int) else len(held_out)
        for name, chosen in (("held_out", fixed_held_out), ("shown", shown)):
            unknown = sorted(set(chosen or ()) - set(questions))
            if unknown:
                raise InputError(
                    source,
                    f"{name} names questions without answers here: {', '.join(unknown)} "
                    f"(questions: {', '.join(questions)})",
                )
        if n_held_out < 1:
            raise InputError(source, "hold out at least one question per respondent")
        available = len(questions) - n_held_out
        if shown is not None:
            available = len(set(shown) - set(fixed_held_out or ()))
        shots = learning_curve(available) if shots is None else tuple(sorted(set(shots)))
        if shots[0] < 0 or shots[-1] > available:
            raise InputError(
                source,
                f"shots must be between 0 and {available} (the survey's {len(questions)} "
                f"questions less {n_held_out} held out); got {', '.join(map(str, shots))}",
            )
        answered = answered_questions(human, attributes)
        excluded = set(exclude)
        plans: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        for respondent, their in answered.items():
            if respondent in excluded:
                continue
            order = seeded_rng(seed, respondent).permutation(their).tolist()
            if fixed_held_out is not None:
                if not set(fixed_held_out) <= set(their):
                    continue
                predicted = fixed_held_out
                rest = [q for q in order if q not in fixed_held_out]
            else:
                predicted, rest = tuple(order[-n_held_out:]), order[:-n_held_out]
            if shown is not None:
                rest = [q for q in shown if q in set(rest)]
            if len(rest) >= shots[-1] and len(predicted) == n_held_out:
                plans[respondent] = (tuple(rest[: shots[-1]]), predicted)
        eligible = sorted(plans)
        order = np.random.default_rng(seed).permutation(len(eligible)).tolist()
        shuffled = [eligible[i] for i in order]
        n_test = len(shuffled) // 2 if test is None else test
        n_train = len(shuffled) - n_test if train is None else train
        if n_test < 1 or n_train < 1 or n_test + n_train > len(shuffled):
            raise InputError(
                source,
                f"{len(shuffled)} respondents answered at least {shots[-1] + n_held_out} "
                f"questions{' and have every demographic' if attributes else ''}; "
                f"cannot take {n_train} for training and {n_test} for testing",
            )
        test_ids = tuple(sorted(shuffled[:n_test]))
        train_ids = tuple(sorted(shuffled[n_test : n_test + n_train]))
        return cls(
            seed=seed,
            shots=shots,
            train=train_ids,
            test=test_ids,
            shown={r: plans[r][0] for r in (*train_ids, *test_ids)},
            held_out={r: plans[r][1] for r in (*train_ids, *test_ids)},
            demographics=attributes,
            eligible=len(eligible),
        )

    def pool(self, human: HumanResponses) -> list[str]:
        """The respondents outside the split who would have been eligible for it (enough
        answers for the largest k plus the held-out ones, and every demographic): the
        people a baseline may be fitted on, alike in completeness to those it predicts."""
        needed = self.shots[-1] + max(len(q) for q in self.held_out.values())
        taken = set(self.respondents)
        return sorted(
            respondent
            for respondent, their in answered_questions(human, self.demographics).items()
            if respondent not in taken and len(their) >= needed
        )

    def frame(self) -> pl.DataFrame:
        """The split as a table: ``respondent_id``, ``role`` (train/test), ``part``
        (shown/held_out), ``position`` (1-based order within the part), ``question_id``."""
        rows = [
            {
                "respondent_id": respondent,
                "role": self.role(respondent),
                "part": part,
                "position": position,
                "question_id": question,
            }
            for respondent in self.respondents
            for part, questions in (
                ("shown", self.shown[respondent]),
                ("held_out", self.held_out[respondent]),
            )
            for position, question in enumerate(questions, start=1)
        ]
        return pl.DataFrame(
            rows,
            schema={
                "respondent_id": pl.String,
                "role": pl.String,
                "part": pl.String,
                "position": pl.Int32,
                "question_id": pl.String,
            },
        )

    def record(self) -> dict[str, Any]:
        """Everything about the split, as JSON-ready data (for a manifest)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> IndividualSplit:
        """The split :meth:`record` wrote."""
        return cls.model_validate(record)


def described_by(human: HumanResponses, chosen: Sequence[str] | bool) -> tuple[str, ...]:
    """The attributes that describe respondents: ``True`` for the mapping's population
    attributes (else every attribute), ``False`` for none, or the names given (checked)."""
    if chosen is False:
        return ()
    if chosen is True:
        recipe = human.recipe.by if human.recipe is not None else None
        return tuple(recipe or human.attributes)
    unknown = [name for name in chosen if name not in human.attributes]
    if unknown:
        raise InputError(
            human.source,
            f"no demographic attribute {', '.join(unknown)} "
            f"(attributes: {', '.join(human.attributes) or 'none'})",
        )
    return tuple(chosen)


def answered_questions(
    human: HumanResponses, attributes: Sequence[str] = ()
) -> dict[str, list[str]]:
    """Each respondent's answered questions in questionnaire order (respondents missing a
    demographic attribute left out)."""
    rank = {q.id: i for i, q in enumerate(human.questionnaire)}
    people = human.frame.drop_nulls(list(attributes)) if attributes else human.frame
    grouped = people.group_by("respondent_id").agg(pl.col("question_id"))
    return {
        respondent: sorted(questions, key=rank.__getitem__)
        for respondent, questions in grouped.iter_rows()
    }


def seeded_rng(seed: int, key: str) -> np.random.Generator:
    """A generator of ``key``'s own (a respondent, a question): adding respondents changes
    no one else's order."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))
