"""What a tuned model learned from, and the refusal to evaluate it there.

An adapter made by :func:`survey_sim.tune.tune` records the questions and respondents it was
trained on (validation ones included: early stopping chose the adapter by them) in
:class:`~survey_sim.engines.records.TrainedOn`. Engines carry that record in
``describe().adapter.trained_on`` (:class:`~survey_sim.engines.records.EngineDescription`), and
every run that would read such a model's answers where it was trained refuses before any
model work, so no comparison with people can score an adapter on what it was fitted to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

from survey_sim.data.responses import HumanResponses
from survey_sim.engines.records import EngineDescription
from survey_sim.errors import InputError

SHOWN_AT_MOST = 8
"""Trained-on items an error lists before it says how many more there are."""


def data_hash(human: HumanResponses) -> str:
    """SHA-256 of the answers (every row, sorted, as CSV): the same data, the same hash."""
    rows = human.frame.sort("respondent_id", "question_id").write_csv()
    return hashlib.sha256(rows.encode()).hexdigest()


def fitted_questions(engine: EngineDescription, questionnaire: str) -> tuple[str, ...]:
    """The questions of ``questionnaire`` a tuned model saw in training (none for a model
    survey-sim did not tune, or tuned on another questionnaire)."""
    record = engine.adapter.trained_on if engine.adapter else None
    if record is None or record.questionnaire != questionnaire:
        return ()
    return record.questions


def refuse_trained(
    engine: EngineDescription,
    questionnaire: str,
    *,
    questions: Collection[str] = (),
    respondents: Collection[str] = (),
) -> None:
    """Refuse to read a tuned model's answers to ``questions`` of ``questionnaire`` (or of
    ``respondents``) that it was trained on.

    Raises:
        InputError: naming the trained-on questions or respondents, and what to use instead.
    """
    record = engine.adapter.trained_on if engine.adapter else None
    if record is None or record.questionnaire != questionnaire:
        return
    for kind, asked, trained in (
        ("questions", questions, record.questions),
        ("respondents", respondents, record.respondents),
    ):
        overlap = sorted(set(asked) & set(trained))
        if not overlap:
            continue
        shown = ", ".join(overlap[:SHOWN_AT_MOST])
        more = f" and {len(overlap) - SHOWN_AT_MOST} more" if len(overlap) > SHOWN_AT_MOST else ""
        untouched = "questions" if kind == "questions" else "respondents"
        raise InputError(
            f"adapter {engine.adapter.path if engine.adapter else ''}".strip(),
            f"it was trained on {len(overlap)} of the {kind} asked here ({shown}{more}) of "
            f"{questionnaire!r} ({record.source}): its answers there say how well it was "
            f"fitted, not how well it simulates people. Ask only the {untouched} it never "
            "saw (the adapter's survey_sim.json lists the split)",
        )
