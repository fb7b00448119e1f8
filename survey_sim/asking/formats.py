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
  (question), ``output`` (answer), in the turn markup of the model's family (Qwen
  ``<|im_start|>ROLE``, Gemma ``<start_of_turn>ROLE``, Llama-3 header ids), read from its
  chat template or chosen with ``SpectrumFormat(markup=...)``.
* ``xml``: tagged character descriptions (Jamba Mini and other models trained on them): the
  persona as a markdown list in ``<RespondentDescription>``, what to do in
  ``<writingInstructions>``, the question in ``<question>``, through the model's chat
  template.
* ``plain``: a completion prompt ending in ``Answer:``.

A respondent's earlier answers (the few-shot individual mode) come before the question as
``history``: one :class:`Turn` per earlier question and answer, laid out as real turns of
the format (chat: user and assistant messages; spectrum: ``input`` and ``output`` turns
after the description; xml: the first question in the tagged turn, later ones in
``<question>`` turns; plain: question and ``Answer:`` lines). The history comes right after
the description, so every question asked after the same history shares it as a prefix.

Each takes ``answer="label"`` (answer with the option's letter or number) or
``answer="text"`` (answer with the option's wording), and ``terminated``: whether the
end-of-answer marker is scored too. ``"auto"`` (the default) scores it only when some answer
is the beginning of another ("1" and "10"), the one case where it is needed to tell answers
apart. Scoring it always (``True``) asks for "exactly this answer and nothing more", which
small chat models rarely give: they answer "A. Too little", so P("A" + end of turn) is a
tiny fraction of P("A") and ``coverage`` collapses.
"""

from __future__ import annotations

import contextlib
import weakref
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from survey_sim.engines.base import ChatMessage, ScoreRequest
from survey_sim.errors import ScoringError
from survey_sim.population import Persona, default_description

AnswerMode = Literal["label", "text"]


@dataclass(frozen=True)
class Turn:
    """One earlier question and its answer, shown before the question being asked.

    Attributes:
        question: The question as the respondent read it (the body a format lays out).
        answer: The answer as the format's answer mode writes it (a label or an option's
            text).
    """

    question: str
    answer: str


History = Sequence[Turn]


@dataclass(frozen=True)
class PromptContext:
    """Everything a prompt holds around the question being asked.

    Attributes:
        description: Who answers, as the format describes them
            (:meth:`PromptFormat.describe`).
        chat: What renders chat messages with the model's template (the engine).
        instructions: The questionnaire's instructions, read with this question (``None``:
            not read here, e.g. after the first question of an interview).
        history: The respondent's earlier questions and answers, shown before this question
            as turns of the format (few-shot answers, or the interview so far).
    """

    description: str
    chat: ChatRenderer
    instructions: str | None = None
    history: History = ()


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

    def describe(self, persona: Persona) -> str:
        """The persona as this format shows it (the ``description`` its prompts take)."""
        ...

    def prompt(self, body: str, context: PromptContext) -> str:
        """The text the model reads before its answer (for sampling): ``body`` (the
        question as read) after the context's description and history."""
        ...

    def render(self, body: str, answers: Sequence[str], context: PromptContext) -> ScoreRequest:
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

    def describe(self, persona: Persona) -> str:
        """The persona's description, as written."""
        return persona.description

    def _terminates(self, texts: Sequence[str]) -> bool:
        if self.terminated == "auto":
            return not is_prefix_free(texts)
        return self.terminated


@dataclass(frozen=True)
class ChatFormat(_FormatOptions):
    """The model's own chat template: persona as system, question as user, answer as assistant."""

    base_name: ClassVar[str] = "chat"

    def prompt(self, body: str, context: PromptContext) -> str:
        return context.chat.render_chat(
            self._messages(body, context.description, context.history),
            add_generation_prompt=True,
        )

    def render(self, body: str, answers: Sequence[str], context: PromptContext) -> ScoreRequest:
        chat = context.chat
        messages = self._messages(body, context.description, context.history)
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

    def _messages(self, body: str, description: str, history: History) -> list[ChatMessage]:
        messages: list[ChatMessage] = [{"role": "system", "content": description}]
        for turn in history:
            messages += [
                {"role": "user", "content": turn.question},
                {"role": "assistant", "content": turn.answer},
            ]
        return [*messages, {"role": "user", "content": body}]


XML_INSTRUCTIONS = (
    "- Answer the survey question as the respondent described above would answer it.\n"
    "- Reply with the answer only."
)


@dataclass(frozen=True)
class XmlFormat(ChatFormat):
    """Tagged character descriptions, for models trained on them (Jamba Mini's card): one
    user turn holding the persona as a markdown list in ``<RespondentDescription>``, what to
    do in ``<writingInstructions>`` and the question in ``<question>``; the answer is the
    assistant's turn."""

    base_name: ClassVar[str] = "xml"

    def describe(self, persona: Persona) -> str:
        """The persona's attributes as a markdown list, with its description as a last item
        when it says more than the attributes (a description from a template)."""
        items = [
            f"- {name.replace('_', ' ').capitalize()}: {value}"
            for name, value in persona.attributes.items()
        ]
        if not items or persona.description != default_description(persona.attributes):
            items.append(f"- Profile: {persona.description}")
        return "\n".join(items)

    def _messages(self, body: str, description: str, history: History) -> list[ChatMessage]:
        """The first question goes in the tagged turn with the description; each later one
        in a ``<question>`` turn of its own."""
        questions = [*(turn.question for turn in history), body]
        header = (
            f"<RespondentDescription>\n{description}\n</RespondentDescription>\n"
            f"<writingInstructions>\n{XML_INSTRUCTIONS}\n</writingInstructions>\n"
        )
        messages: list[ChatMessage] = []
        for index, question in enumerate(questions):
            content = f"{header if index == 0 else ''}<question>\n{question}\n</question>"
            messages.append({"role": "user", "content": content})
            if index < len(history):
                messages.append({"role": "assistant", "content": history[index].answer})
        return messages


@dataclass(frozen=True)
class Markup:
    """How a model family marks up a conversation turn: ``opening`` (with ``{role}``), the
    content, ``closing``, then ``separator`` before the next turn."""

    name: str
    opening: str
    closing: str
    separator: str

    def turn(self, role: str, content: str) -> str:
        """One whole turn."""
        return f"{self.opening.format(role=role)}{content}{self.closing}{self.separator}"


MARKUPS = {
    markup.name: markup
    for markup in [
        Markup("chatml", "<|im_start|>{role}\n", "<|im_end|>", "\n"),
        Markup("gemma", "<start_of_turn>{role}\n", "<end_of_turn>", "\n"),
        Markup("llama3", "<|start_header_id|>{role}<|end_header_id|>\n\n", "<|eot_id|>", ""),
    ]
}
"""Turn markups of the families Spectrum models exist for (Qwen3 uses ``chatml``)."""


def detect_markup(chat: ChatRenderer) -> Markup:
    """The turn markup of a model, read from how its chat template renders a user turn.

    Raises:
        ScoringError: the model has no chat template, or one in none of :data:`MARKUPS`.
    """
    try:
        rendered = chat.render_chat(
            [{"role": "user", "content": "PROBE"}], add_generation_prompt=False
        )
    except ScoringError:
        rendered = ""
    for markup in MARKUPS.values():
        if markup.opening.format(role="user") + "PROBE" + markup.closing in rendered:
            return markup
    raise ScoringError(
        "cannot tell which turn markup this model's Spectrum roles use: its chat template "
        f"renders none of {', '.join(MARKUPS)}. Choose one, e.g. "
        "SpectrumFormat(markup='chatml'), or use format 'plain'"
    )


@dataclass(frozen=True)
class _CompletionFormat(_FormatOptions, ABC):
    """A format whose prompt text the answer directly follows (no chat template around the
    answer): each answer is scored as ``answer_lead + answer``, with the format's
    end-of-answer marker when it is scored (``terminated``)."""

    answer_lead: ClassVar[str] = ""

    @abstractmethod
    def prompt(self, body: str, context: PromptContext) -> str:
        """The text the answer follows."""

    @abstractmethod
    def _answer_end(self, chat: ChatRenderer) -> str:
        """What ends an answer in this format."""

    def render(self, body: str, answers: Sequence[str], context: PromptContext) -> ScoreRequest:
        prefix = self.prompt(body, context)
        end = self._answer_end(context.chat) if self._terminates(answers) else ""
        return ScoreRequest(prefix, tuple(f"{self.answer_lead}{text}{end}" for text in answers))


@dataclass(frozen=True)
class SpectrumFormat(_CompletionFormat):
    """Spectrum-tuning roles: ``description`` (persona), ``input`` (question), ``output``,
    in the turn markup of the model's family (``markup``: a name in :data:`MARKUPS`, or
    ``"auto"`` to read it from the model's chat template)."""

    markup: str = "auto"
    _detected: list[tuple[weakref.ref[ChatRenderer], Markup]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    base_name: ClassVar[str] = "spectrum"

    def __post_init__(self) -> None:
        if self.markup != "auto" and self.markup not in MARKUPS:
            raise ValueError(
                f"unknown markup {self.markup!r}; choose 'auto' or one of {', '.join(MARKUPS)}"
            )

    @property
    def name(self) -> str:
        """The base name and options, with the markup when chosen (``"spectrum:gemma"``)."""
        options = super().name
        return options if self.markup == "auto" else f"{options}:{self.markup}"

    def prompt(self, body: str, context: PromptContext) -> str:
        markup = self._markup(context.chat)
        earlier = "".join(
            markup.turn("input", turn.question) + markup.turn("output", turn.answer)
            for turn in context.history
        )
        return (
            markup.turn("description", context.description)
            + earlier
            + markup.turn("input", body)
            + markup.opening.format(role="output")
        )

    def _answer_end(self, chat: ChatRenderer) -> str:
        return self._markup(chat).closing

    def _markup(self, chat: ChatRenderer) -> Markup:
        """The chosen markup, or the one detected for ``chat`` (detected once per renderer:
        the last renderer's markup is kept, without keeping the renderer alive)."""
        if self.markup != "auto":
            return MARKUPS[self.markup]
        if self._detected and self._detected[0][0]() is chat:
            return self._detected[0][1]
        markup = detect_markup(chat)
        with contextlib.suppress(TypeError):  # not weakly referable: detected every time
            self._detected[:] = [(weakref.ref(chat), markup)]
        return markup


@dataclass(frozen=True)
class PlainFormat(_CompletionFormat):
    """A completion prompt: persona, question, then ``Answer:`` and the answer on one line."""

    base_name: ClassVar[str] = "plain"

    answer_lead: ClassVar[str] = " "

    def prompt(self, body: str, context: PromptContext) -> str:
        earlier = "".join(
            f"{turn.question}\n\nAnswer: {turn.answer}\n\n" for turn in context.history
        )
        return f"{context.description}\n\n{earlier}{body}\n\nAnswer:"

    def _answer_end(self, chat: ChatRenderer) -> str:
        return "\n"


FORMATS: dict[str, type[ChatFormat | SpectrumFormat | PlainFormat]] = {
    "chat": ChatFormat,
    "spectrum": SpectrumFormat,
    "xml": XmlFormat,
    "plain": PlainFormat,
}


def format_names() -> list[str]:
    """The base names :func:`get_format` accepts, and ``spectrum:MARKUP`` for each turn
    markup (any name a format reports is accepted too, options included)."""
    return [*FORMATS, *(f"spectrum:{markup}" for markup in MARKUPS)]


NAME_OPTIONS: dict[str, tuple[str, AnswerMode | Termination]] = {
    "text": ("answer", "text"),
    "terminated": ("terminated", True),
    "open": ("terminated", False),
}
"""The options a format's name may carry after its base name, and the setting each makes."""


def get_format(
    format: str | PromptFormat, *, answer: AnswerMode = "label", terminated: Termination = "auto"
) -> PromptFormat:
    """A format instance from its name, or as given.

    A name is a base name (``chat``, ``spectrum``, ``xml``, ``plain``) followed by the
    options a format's :attr:`~PromptFormat.name` records, each after a colon: ``text``
    (answer with the option's text), ``terminated`` or ``open`` (see ``terminated``) and,
    for ``spectrum``, a turn markup (``spectrum:text:gemma``). So every recorded name reads
    back as the format that wrote it: ``get_format(fmt.name) == fmt``. ``answer`` and
    ``terminated`` add to the name's options; contradicting one is an error.

    Raises:
        ValueError: an unknown base name or option, or keywords that contradict the name.
    """
    if not isinstance(format, str):
        return format
    base, *options = format.split(":")
    if base not in FORMATS:
        raise ValueError(
            f"unknown prompt format {format!r}; choose one of {', '.join(format_names())}"
        )
    chosen: dict[str, Any] = {}
    for option in options:
        if option in NAME_OPTIONS:
            setting, value = NAME_OPTIONS[option]
            chosen[setting] = value
        elif base == "spectrum":
            chosen["markup"] = option  # SpectrumFormat refuses an unknown markup
        else:
            raise ValueError(
                f"unknown option {option!r} in prompt format {format!r}; a {base} format "
                f"takes {', '.join(NAME_OPTIONS)}"
            )
    for setting, given, default in (
        ("answer", answer, "label"),
        ("terminated", terminated, "auto"),
    ):
        if given == default:
            continue
        if setting in chosen and chosen[setting] != given:
            raise ValueError(
                f"prompt format {format!r} sets {setting} to {chosen[setting]!r}, "
                f"but {setting}={given!r} was asked for"
            )
        chosen[setting] = given
    return FORMATS[base](**chosen)
