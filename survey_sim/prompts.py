"""Prompt formats: how a persona and a question become a prefix plus one answer per option.

A format renders the text the model reads up to the answer (the *prefix*) and, for each
option, the answer text that follows it (the *continuation*). Engines score each
continuation's exact probability after the prefix. Prompts put the parts shared by many
requests first (persona, then instructions and question preamble, then the item), so that
engines can reuse the prefix's key/value cache across questions.

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
from survey_sim.questionnaire import ChoiceQuestion

AnswerMode = Literal["label", "text"]


class ChatRenderer(Protocol):
    """Anything that renders chat messages with a model's template (every Engine does)."""

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool) -> str:
        """Render ``messages`` as the model's prompt text."""
        ...


@runtime_checkable
class PromptFormat(Protocol):
    """Turns a persona description and a question into a :class:`ScoreRequest`."""

    @property
    def name(self) -> str:
        """Short name recorded in results (e.g. ``"chat"``)."""
        ...

    def render(
        self,
        question: ChoiceQuestion,
        *,
        description: str,
        instructions: str | None,
        chat: ChatRenderer,
    ) -> ScoreRequest:
        """The prefix and one continuation per option, in the question's option order."""
        ...


def question_body(question: ChoiceQuestion, instructions: str | None, answer: AnswerMode) -> str:
    """The question as read: instructions, preamble, item, options, how to answer."""
    if answer == "label":
        options = "\n".join(f"{o.label}. {o.text}" for o in question.options)
        tag = "number" if question.label_style == "number" else "letter"
        how = f"Answer with the {tag} of one option only."
    else:
        options = "\n".join(f"- {o.text}" for o in question.options)
        how = "Answer with one of the options, exactly as written."
    parts = [instructions, question.preamble, question.text, options, how]
    return "\n\n".join(part.strip() for part in parts if part)


def answers(question: ChoiceQuestion, answer: AnswerMode) -> list[str]:
    """The answer text of each option, in option order."""
    return [o.label if answer == "label" else o.text for o in question.options]  # type: ignore[misc]


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

    def render(
        self,
        question: ChoiceQuestion,
        *,
        description: str,
        instructions: str | None,
        chat: ChatRenderer,
    ) -> ScoreRequest:
        messages: list[ChatMessage] = [
            {"role": "system", "content": description},
            {"role": "user", "content": question_body(question, instructions, self.answer)},
        ]
        prefix = chat.render_chat(messages, add_generation_prompt=True)
        texts = answers(question, self.answer)
        terminate = self._terminates(texts)
        continuations = []
        for text in texts:
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


@dataclass(frozen=True)
class _TextTemplateFormat(_FormatOptions):
    """A format written out as text: a prefix template, then each answer and an end marker."""

    prefix_template: ClassVar[str]  # fields: {description}, {body}
    answer_lead: ClassVar[str]
    end_of_answer: ClassVar[str]

    def render(
        self,
        question: ChoiceQuestion,
        *,
        description: str,
        instructions: str | None,
        chat: ChatRenderer,
    ) -> ScoreRequest:
        body = question_body(question, instructions, self.answer)
        prefix = self.prefix_template.format(description=description, body=body)
        texts = answers(question, self.answer)
        end = self.end_of_answer if self._terminates(texts) else ""
        return ScoreRequest(prefix, tuple(f"{self.answer_lead}{text}{end}" for text in texts))


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
