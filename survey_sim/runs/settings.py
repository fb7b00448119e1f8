"""How a simulation asks and reads its questions: one typed object, which is both what
:func:`survey_sim.simulate` takes and what the run manifest records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

from survey_sim.asking.formats import AnswerMode, PromptFormat, Termination, get_format
from survey_sim.asking.orders import Balance
from survey_sim.errors import InputError, MethodError, input_error
from survey_sim.questionnaire import QUESTION_KINDS

Method = Literal["exact", "sample"]
METHODS: tuple[Method, ...] = ("exact", "sample")
KIND_DEFAULTS: dict[str, Method] = {"free_text": "sample"}
"""Methods of the question kinds that only one method can answer, unless chosen."""


class SimulationSettings(BaseModel):
    """Settings of one simulation.

    Attributes:
        format: ``"chat"``, ``"spectrum"`` (or ``"spectrum:gemma"`` etc. to choose its
            markup), ``"xml"``, ``"plain"`` or a :class:`~survey_sim.asking.PromptFormat`
            instance (recorded by its name).
        answer: Answer with the option ``"label"`` (letter/number) or its ``"text"``.
        terminated: Score the end-of-answer marker (see :mod:`survey_sim.asking.formats`).
        permute: Ask every question with options in balanced option orders (``balance``;
            see :mod:`survey_sim.asking.orders`). Each order is a row set of its own; the
            population distribution averages over them.
        balance: With ``permute``: ``"auto"`` asks an ordinal scale in its listed order
            and reversed, and nominal options in all orders up to 4 options, cyclic
            shifts above; ``"reverse"`` or ``"shift"`` asks every question so.
        relabel: With ``permute``, default labels follow screen position (the first shown
            is "A"); labels the questionnaire gives always stay with their options.
        method: ``"exact"`` reads every outcome's probability from log-probabilities;
            ``"sample"`` draws ``samples`` answers per prompt under the answer's JSON schema
            and reports frequencies. A mapping sets it per question kind, e.g.
            ``{"default": "exact", "numeric": "sample"}`` (kinds left out take
            ``"default"``, else exact). Free-text questions, which only sampling can
            answer, are sampled unless the mapping names ``free_text``
            (:data:`KIND_DEFAULTS`).
        samples: Answers drawn per prompt when sampling.
        temperature: Sampling temperature.
        seed: Sampling seed. Each prompt's draws are seeded from this seed and what the
            prompt asks (persona, question, option order), so adding a persona or a
            question changes no other prompt's draws.
        max_new_tokens: Token limit per sampled answer; by default the most a valid answer
            can need (draws that hit it are counted as truncated, never dropped).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    format: str | PromptFormat = "chat"
    answer: AnswerMode = "label"
    terminated: Termination = "auto"
    permute: bool = False
    balance: Balance = "auto"
    relabel: bool = True
    method: str | dict[str, str] = "exact"
    samples: int = Field(default=100, ge=1)
    temperature: float = Field(default=1.0, gt=0)
    seed: int = 0
    max_new_tokens: int | None = Field(default=None, ge=1)

    @classmethod
    def of(cls, base: SimulationSettings | None = None, **changes: Any) -> SimulationSettings:
        """``base`` (or the defaults) with ``changes``, validated; a bad value is an
        :class:`~survey_sim.errors.InputError` naming the setting."""
        data = {} if base is None else dict(base)
        settings = validated(cls, {**data, **changes}, "simulation settings")
        settings.methods()  # unknown kinds or methods fail here, before any work
        settings.prompt_format()
        return settings

    def prompt_format(self) -> PromptFormat:
        """The prompt format these settings name."""
        try:
            return get_format(self.format, answer=self.answer, terminated=self.terminated)
        except ValueError as error:
            raise InputError("simulation settings", str(error), location="format") from error

    def methods(self) -> dict[str, Method]:
        """The method for every question kind.

        Raises:
            MethodError: an unknown question kind or method.
        """
        chosen = {"default": self.method} if isinstance(self.method, str) else dict(self.method)
        for kind, value in chosen.items():
            if kind != "default" and kind not in QUESTION_KINDS:
                raise MethodError(
                    f"unknown question kind {kind!r} in method (kinds: {QUESTION_KINDS})"
                )
            if value not in METHODS:
                raise MethodError(f"method must be 'exact' or 'sample', got {value!r}")
        default = chosen.pop("default", "exact")
        return {
            kind: cast(Method, chosen.get(kind, KIND_DEFAULTS.get(kind, default)))
            for kind in QUESTION_KINDS
        }

    @field_serializer("format")
    def _format_name(self, value: str | PromptFormat) -> str:
        return value if isinstance(value, str) else value.name

    def record(self) -> dict[str, Any]:
        """The settings as the manifest records them (the format by its full name)."""
        return {**self.model_dump(), "format": self.prompt_format().name, "methods": self.methods()}


SettingsT = TypeVar("SettingsT", bound=BaseModel)


def validated(model: type[SettingsT], data: Mapping[str, Any], what: str) -> SettingsT:
    """``data`` as the settings ``model``; the first problem is an
    :class:`~survey_sim.errors.InputError` from ``what``, naming the setting."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise input_error(
            what, error, describe=lambda loc: ".".join(str(part) for part in loc)
        ) from error
