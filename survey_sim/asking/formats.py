"""Prompt formats: how a persona and a question's text become a prompt and scored answers.

A format lays out the text the model reads up to the answer (the *prefix*) and, for each
possible answer, the text that follows it (the *continuation*). What the question's text
and answers are, for each kind of question, is :mod:`survey_sim.asking`'s business.
Engines score each continuation's exact probability after the prefix. Prompts put the parts
shared by many requests first (persona, then instructions and question preamble, then the
item), so that engines can reuse the prefix's key/value cache across questions.

Built-in formats:

* ``chat``: the model's own chat template; persona as system, question as user, answer as
  assistant.
* ``spectrum``: the roles of Spectrum-tuned models: ``description`` (persona), ``input``
  (question), ``output`` (answer), in Qwen3 ``<|im_start|>ROLE`` markup.
* ``plain``: a completion prompt ending in ``Answer:``.

Each takes ``answer="label"`` (answer with the option's letter or number) or
``answer="text"`` (answer with the option's wording), and ``terminated``: whether the
end-of-answer marker is scored too. ``"auto"`` (the default) scores it only when some answer
is the beginning of another ("1" and "10"), the one case where it is needed to tell answers
apart. Scoring it always (``True``) asks for "exactly this answer and nothing more", which
small chat models rarely give: they answer "A. Too little", so P("A" + end of turn) is a
tiny fraction of P("A") and ``coverage`` collapses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol, runtime_checkable

from survey_sim.engines.base import ChatMessage, ScoreRequest
from survey_sim.errors import ScoringError

AnswerMode = Literal["label", "text"]


class ChatRenderer(Protocol):
    """Anything that renders chat messages with a model's template (every Engine does)."""

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool) -> str:
        """Render ``messages`` as the model's prompt text."""
        ...


@runtime_checkable
class PromptFormat(Protocol):
    """Lays out a persona description, a question's text and its answers for a model."""

    @property
    def name(self) -> str:
        """Short name recorded in results (e.g. ``"chat"``)."""
        ...

    @property
    def answer(self) -> AnswerMode:
        """Whether listed options are answered by ``"label"`` or by ``"text"``."""
        ...

    def prompt(self, body: str, *, description: str, chat: ChatRenderer) -> str:
        """The text the model reads before its answer (for sampling)."""
        ...

    def render(
        self, body: str, answers: Sequence[str], *, description: str, chat: ChatRenderer
    ) -> ScoreRequest:
        """The prompt as prefix and each answer as a continuation to score exactly."""
        ...


Termination = bool | Literal["auto"]


def is_prefix_free(texts: Sequence[str]) -> bool:
    """True when no text is the beginning of another."""
    return not any(a != b and b.startswith(a) for a in texts for b in texts)


@dataclass(frozen=True)
class _FormatOptions:
    answer: AnswerMode = "label"
    terminated: Termination = "auto"

    base_name: ClassVar[str]

    @property
    def name(self) -> str:
        """The format's name plus its non-default options (``"spectrum:text"``)."""
        parts = [self.base_name]
        if self.answer == "text":
            parts.append("text")
        if self.terminated is True:
            parts.append("terminated")
        elif self.terminated is False:
            parts.append("open")
        return ":".join(parts)

    def _terminates(self, texts: Sequence[str]) -> bool:
        if self.terminated == "auto":
            return not is_prefix_free(texts)
        return self.terminated


@dataclass(frozen=True)
class ChatFormat(_FormatOptions):
    """The model's own chat template: persona as system, question as user, answer as assistant."""

    base_name: ClassVar[str] = "chat"

    def prompt(self, body: str, *, description: str, chat: ChatRenderer) -> str:
        return chat.render_chat(self._messages(body, description), add_generation_prompt=True)

    def render(
        self, body: str, answers: Sequence[str], *, description: str, chat: ChatRenderer
    ) -> ScoreRequest:
        messages = self._messages(body, description)
        prefix = chat.render_chat(messages, add_generation_prompt=True)
        terminate = self._terminates(answers)
        continuations = []
        for text in answers:
            full = chat.render_chat(
                [*messages, {"role": "assistant", "content": text}], add_generation_prompt=False
            )
            if not full.startswith(prefix + text):
                raise ScoringError(
                    "this model's chat template does not render an assistant answer right after "
                    "its generation prompt; use format 'spectrum' or 'plain' instead"
                )
            # Keep the end-of-turn marker (it says the answer is complete); drop the newline.
            continuation = full[len(prefix) :].rstrip() if terminate else text
            continuations.append(continuation)
        return ScoreRequest(prefix, tuple(continuations))

    @staticmethod
    def _messages(body: str, description: str) -> list[ChatMessage]:
        return [{"role": "system", "content": description}, {"role": "user", "content": body}]


@dataclass(frozen=True)
class _TextTemplateFormat(_FormatOptions):
    """A format written out as text: a prefix template, then each answer and an end marker."""

    prefix_template: ClassVar[str]  # fields: {description}, {body}
    answer_lead: ClassVar[str]
    end_of_answer: ClassVar[str]

    def prompt(self, body: str, *, description: str, chat: ChatRenderer) -> str:
        return self.prefix_template.format(description=description, body=body)

    def render(
        self, body: str, answers: Sequence[str], *, description: str, chat: ChatRenderer
    ) -> ScoreRequest:
        prefix = self.prompt(body, description=description, chat=chat)
        end = self.end_of_answer if self._terminates(answers) else ""
        return ScoreRequest(prefix, tuple(f"{self.answer_lead}{text}{end}" for text in answers))


@dataclass(frozen=True)
class SpectrumFormat(_TextTemplateFormat):
    """Spectrum-tuning roles: ``description`` (persona), ``input`` (question), ``output``."""

    base_name: ClassVar[str] = "spectrum"
    prefix_template: ClassVar[str] = (
        "<|im_start|>description\n{description}<|im_end|>\n"
        "<|im_start|>input\n{body}<|im_end|>\n"
        "<|im_start|>output\n"
    )
    answer_lead: ClassVar[str] = ""
    end_of_answer: ClassVar[str] = "<|im_end|>"


@dataclass(frozen=True)
class PlainFormat(_TextTemplateFormat):
    """A completion prompt: persona, question, then ``Answer:`` and the answer on one line."""

    base_name: ClassVar[str] = "plain"
    prefix_template: ClassVar[str] = "{description}\n\n{body}\n\nAnswer:"
    answer_lead: ClassVar[str] = " "
    end_of_answer: ClassVar[str] = "\n"


FORMATS: dict[str, type[ChatFormat | SpectrumFormat | PlainFormat]] = {
    "chat": ChatFormat,
    "spectrum": SpectrumFormat,
    "plain": PlainFormat,
}


def get_format(
    format: str | PromptFormat, *, answer: AnswerMode = "label", terminated: Termination = "auto"
) -> PromptFormat:
    """A format instance from its name (``chat``, ``spectrum``, ``plain``) or as given."""
    if not isinstance(format, str):
        return format
    if format not in FORMATS:
        raise ValueError(f"unknown prompt format {format!r}; choose one of {', '.join(FORMATS)}")
    return FORMATS[format](answer=answer, terminated=terminated)
