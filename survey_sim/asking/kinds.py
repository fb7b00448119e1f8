"""How each kind of question is put to a model and how its answers are read back.

For every question kind, an :class:`Asking` knows

* the question's text as the respondent reads it (instructions, preamble, item, listed
  options, and how to answer);
* for the **exact** method, the score requests whose exact probabilities give the answer
  distribution, and how to read them;
* for the **sample** method, the JSON schema answers are drawn under
  (:func:`survey_sim.asking.schemas.value_schema`), and how to tally the draws.

Both methods report a probability per *outcome*: the options of choice and multi-select
questions, the bins of numeric questions. Free-text questions have no outcomes: their
answers are the draws themselves.

============== =================================== =========================================
kind           exact                               sample
============== =================================== =========================================
single choice  one request, every option scored    enum of labels; option frequencies
multi-select   one yes/no request per option:      array of distinct labels; how often
               P(selected) = P(Yes) / P(Yes, No)   each option is in the selection
rank           a chain of choices, one request     array of ``rank`` distinct labels in
               per ranking begun: P(ranking) =     rank order; ranking frequencies
               P(1st) · P(2nd | 1st) · ...
numeric        integers only: every value scored,  integer/number within bounds; bin
               probabilities summed per bin        frequencies
free text      (cannot apply)                      bounded string; draws only
============== =================================== =========================================
"""

from __future__ import annotations

import itertools
import json
import math
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from survey_sim.asking.formats import ChatRenderer, PromptContext, PromptFormat, Turn
from survey_sim.asking.schemas import (
    JsonSchema,
    answer_texts,
    answer_values,
    option_for_value,
    value_schema,
)
from survey_sim.engines.base import SampleResult, ScoreRequest, ScoreResult
from survey_sim.errors import MethodError, ScoringError
from survey_sim.questionnaire import (
    RANK_SEPARATOR,
    ChoiceQuestion,
    FreeTextQuestion,
    MultiSelectQuestion,
    NumericQuestion,
    Option,
    OptionsQuestion,
    Question,
    RankQuestion,
)

MAX_EXACT_VALUES = 1000
"""Most integer values a numeric question may have for the exact method."""

NUMBER_CHARS = 24
"""Characters allowed for a sampled non-integer number (the grammar has no length bound)."""

YES, NO = "Yes", "No"


@dataclass(frozen=True)
class Distribution:
    """One prompt's answer distribution over the question's outcomes, in outcome order.

    Attributes:
        logprobs: Exact log-probability per outcome (``None`` when sampled).
        probs: Probability per outcome: renormalised over the outcomes for single-choice
            and numeric questions; the probability of being selected for multi-select.
        coverage: Probability mass the scored answers held, per outcome (``None`` when
            sampled).
        samples: Valid draws behind ``probs`` (sampling only).
        truncated: Draws cut off by the token limit (sampling only).
        invalid: Complete draws that broke the schema (sampling only; see
            :mod:`survey_sim.engines.validation`).
    """

    logprobs: Sequence[float | None]
    probs: Sequence[float]
    coverage: Sequence[float | None]
    samples: int | None = None
    truncated: int | None = None
    invalid: int | None = None


class Asking(Protocol):
    """A question of one kind, in one prompt format: what to ask and how to read answers."""

    @property
    def outcomes(self) -> tuple[Option, ...]:
        """What probabilities are reported for (empty for free text)."""
        ...

    def exact_requests(self, context: PromptContext) -> list[ScoreRequest]:
        """Score requests whose exact probabilities make the distribution, asked in
        ``context`` (who answers, after which earlier answers).

        Raises:
            MethodError: when the question cannot be read exactly.
        """
        ...

    def read_scores(self, results: Sequence[ScoreResult]) -> Distribution:
        """The distribution from the results of :meth:`exact_requests`."""
        ...

    def sample_prompt(self, context: PromptContext) -> str:
        """The prompt sampled answers follow, in ``context``."""
        ...

    def schema(self) -> JsonSchema:
        """The JSON schema every sampled answer satisfies."""
        ...

    def read_draws(self, draws: SampleResult) -> Distribution | None:
        """Outcome frequencies among the valid draws (``None`` without outcomes)."""
        ...

    def token_limit(self) -> int:
        """Tokens enough for any valid answer (a token is at least one character)."""
        ...

    def turn(self, answer: str, *, instructions: str | None = None) -> Turn:
        """This question answered with ``answer`` (written as the format writes answers:
        a label, an option's text, a number), as a turn of a respondent's history."""
        ...

    def outcome_codes(self, value: object) -> list[str]:
        """The codes of the outcomes a valid sampled answer counts for (the options a
        multi-select answer names, a number's bin; none for free text)."""
        ...


def ask(question: Question, format: PromptFormat) -> Asking:
    """The :class:`Asking` for ``question`` in ``format``."""
    match question:
        case ChoiceQuestion():
            return _ChoiceAsking(question, format)
        case MultiSelectQuestion():
            return _MultiSelectAsking(question, format)
        case RankQuestion():
            return _RankAsking(question, format)
        case NumericQuestion():
            return _NumericAsking(question, format)
        case FreeTextQuestion():
            return _FreeTextAsking(question, format)
    raise TypeError(f"not a question: {question!r}")


def choice_request(
    question: ChoiceQuestion,
    format: PromptFormat,
    *,
    description: str,
    chat: ChatRenderer,
    instructions: str | None = None,
) -> ScoreRequest:
    """The one score request of a single-choice question: its prompt, one answer per option."""
    context = PromptContext(description, chat, instructions)
    (request,) = ask(question, format).exact_requests(context)
    return request


def answered_turn(
    question: ChoiceQuestion, format: PromptFormat, code: str, *, instructions: str | None = None
) -> Turn:
    """``question`` answered with option ``code``, as a turn of a respondent's history in
    ``format``: the question as it is asked, the answer as the format writes it.

    Raises:
        ValueError: the question has no option ``code``.
    """
    return _ChoiceAsking(question, format).answered(code, instructions=instructions)


@dataclass(frozen=True)
class _AskingBase(ABC):
    question: Question
    format: PromptFormat

    @property
    def outcomes(self) -> tuple[Option, ...]:
        return self.question.outcomes

    def _body(self, instructions: str | None, *parts: str | None) -> str:
        """The question as read: instructions, preamble, item, then ``parts``."""
        texts = [instructions, self.question.preamble, self.question.text, *parts]
        return "\n\n".join(text.strip() for text in texts if text)

    @abstractmethod
    def _answer_instruction(self) -> str:
        """How to answer, as the last line of the question."""

    def sample_prompt(self, context: PromptContext) -> str:
        return self.format.prompt(self._sample_body(context.instructions), context)

    def _sample_body(self, instructions: str | None) -> str:
        return self._body(instructions, self._answer_instruction())

    def turn(self, answer: str, *, instructions: str | None = None) -> Turn:
        return Turn(self._sample_body(instructions), answer)

    def schema(self) -> JsonSchema:
        return value_schema(self.question, self.format.answer)

    def token_limit(self) -> int:
        return self._longest_answer() + 1  # + the end-of-sequence token

    @abstractmethod
    def _longest_answer(self) -> int:
        """Characters in the longest valid JSON answer."""

    def read_draws(self, draws: SampleResult) -> Distribution | None:
        if not self.outcomes:
            return None
        values = [
            value for value, cut in zip(draws.values, draws.truncated, strict=True) if not cut
        ]
        if not values:
            raise ScoringError(
                f"question {self.question.id!r}: every sampled answer hit the token limit; "
                "raise max_new_tokens"
            )
        counts = Counter(code for value in values for code in self.outcome_codes(value))
        return Distribution(
            logprobs=[None] * len(self.outcomes),
            probs=[counts[outcome.code] / len(values) for outcome in self.outcomes],
            coverage=[None] * len(self.outcomes),
            samples=len(values),
            truncated=sum(draws.truncated),
            invalid=sum(draws.invalid),
        )

    @abstractmethod
    def outcome_codes(self, value: object) -> list[str]:
        """The codes of the outcomes a valid sampled value counts for."""


@dataclass(frozen=True)
class _OptionsAsking(_AskingBase):
    question: ChoiceQuestion | MultiSelectQuestion | RankQuestion

    def _listing(self) -> str:
        if self.format.answer == "label":
            return "\n".join(f"{o.label}. {o.text}" for o in self.question.options)
        return "\n".join(f"- {o.text}" for o in self.question.options)

    def _sample_body(self, instructions: str | None) -> str:
        return self._body(instructions, self._listing(), self._answer_instruction())

    def _longest_answer(self) -> int:
        values = answer_values(self.question, self.format.answer)
        if isinstance(self.question, MultiSelectQuestion | RankQuestion):
            return len(json.dumps(values, separators=(",", ":")))
        return max(len(json.dumps(value)) for value in values)


@dataclass(frozen=True)
class _ChoiceAsking(_OptionsAsking):
    question: ChoiceQuestion

    def _answer_instruction(self) -> str:
        return _one_option(self.question, self.format)

    def exact_requests(self, context: PromptContext) -> list[ScoreRequest]:
        body = self._sample_body(context.instructions)
        answers = answer_texts(self.question, self.format.answer)
        return [self.format.render(body, answers, context)]

    def answered(self, code: str, *, instructions: str | None) -> Turn:
        """This question answered with option ``code``, as a turn of a respondent's
        history: the question as read, and the answer as the format writes it."""
        codes = [option.code for option in self.question.options]
        if code not in codes:
            raise ValueError(
                f"question {self.question.id!r} has no option {code!r} (options: "
                f"{', '.join(codes)})"
            )
        answer = answer_texts(self.question, self.format.answer)[codes.index(code)]
        return self.turn(answer, instructions=instructions)

    def read_scores(self, results: Sequence[ScoreResult]) -> Distribution:
        (result,) = results
        coverage = result.coverage
        return Distribution(result.logprobs, result.probs, [coverage] * len(result.logprobs))

    def outcome_codes(self, value: object) -> list[str]:
        return [option_for_value(self.question, value, self.format.answer).code]


@dataclass(frozen=True)
class _MultiSelectAsking(_OptionsAsking):
    question: MultiSelectQuestion

    def _answer_instruction(self) -> str:
        question = self.question
        if self.format.answer == "label":
            how = f"Answer with the {question.label_kind}s of all options that apply, as a list."
        else:
            how = "Answer with all options that apply, exactly as written, as a list."
        if question.min_selected > 0:
            how += f" Choose at least {question.min_selected}."
        if question.max_selected is not None:
            how += f" Choose at most {question.max_selected}."
        return how

    def exact_requests(self, context: PromptContext) -> list[ScoreRequest]:
        listing = self._listing()
        requests = []
        for option in self.question.options:
            named = f'option {option.label}, "{option.text}"'
            if self.format.answer == "text":
                named = f'"{option.text}"'
            judgement = f"Would you select {named}? Answer {YES} or {NO}."
            body = self._body(context.instructions, listing, judgement)
            requests.append(self.format.render(body, [YES, NO], context))
        return requests

    def read_scores(self, results: Sequence[ScoreResult]) -> Distribution:
        return Distribution(
            logprobs=[result.logprobs[0] for result in results],
            probs=[result.probs[0] for result in results],
            coverage=[result.coverage for result in results],
        )

    def outcome_codes(self, value: object) -> list[str]:
        assert isinstance(value, list)
        return [option_for_value(self.question, item, self.format.answer).code for item in value]


def _one_option(question: OptionsQuestion, format: PromptFormat) -> str:
    """How to answer with one option."""
    if format.answer == "label":
        return f"Answer with the {question.label_kind} of one option only."
    return "Answer with one of the options, exactly as written."


ORDINALS = ("first", "second", "third", "fourth", "fifth")


def ordinal_word(place: int) -> str:
    """``1`` → ``"first"``, ... beyond five, ``"6th"``."""
    return ORDINALS[place - 1] if place <= len(ORDINALS) else f"{place}th"


@dataclass(frozen=True)
class _RankAsking(_OptionsAsking):
    """A ranking asked as one list (sampled) or, exactly, as a chain of choices: after the
    options and the task, each request says which options are ranked so far and asks for
    the next among the rest, so every request of a persona shares the question's prefix."""

    question: RankQuestion

    def _task(self) -> str:
        count, total = self.question.ranked, len(self.question.options)
        which = "all of these options" if count == total else f"the {count} options you prefer"
        return f"Rank {which}, from first (most preferred) to {ordinal_word(count)}."

    def _answer_instruction(self) -> str:
        kind = self.question.label_kind if self.format.answer == "label" else None
        written = f"with their {kind}s" if kind else "with the options exactly as written"
        return f"{self._task()} Answer {written}, in rank order, as a list."

    def _steps(self) -> list[tuple[int, ...]]:
        """Every ranking begun that leaves a choice: its options so far (indices), shortest
        first. With every option ranked, the last one is left: no choice."""
        question, total = self.question, len(self.question.options)
        last = min(question.ranked, total - 1)
        return [
            begun
            for length in range(last)
            for begun in itertools.permutations(range(total), length)
        ]

    def exact_requests(self, context: PromptContext) -> list[ScoreRequest]:
        listed = self._listing().splitlines()
        answers = answer_texts(self.question, self.format.answer)
        shared = self._body(context.instructions, self._listing(), self._task())
        how = _one_option(self.question, self.format)
        requests = []
        for begun in self._steps():
            so_far = [
                f"{place}. {listed[i].removeprefix('- ')}" for place, i in enumerate(begun, 1)
            ]
            ranked = "So far you have ranked:\n" + "\n".join(so_far) if so_far else None
            asked = f"Which option do you rank {ordinal_word(len(begun) + 1)}? {how}"
            body = "\n\n".join(part for part in (shared, ranked, asked) if part)
            rest = [answers[i] for i in range(len(answers)) if i not in begun]
            requests.append(self.format.render(body, rest, context))
        return requests

    def read_scores(self, results: Sequence[ScoreResult]) -> Distribution:
        steps = dict(zip(self._steps(), results, strict=True))
        total = len(self.question.options)
        logprobs, probs, coverage = [], [], []
        for ranking in self.question.rankings():
            logprob, prob, held = 0.0, 1.0, 1.0
            for place in range(min(len(ranking), total - 1)):
                begun = ranking[:place]
                result = steps[begun]
                rest = [i for i in range(total) if i not in begun]
                choice = rest.index(ranking[place])
                logprob += result.logprobs[choice]
                prob *= result.probs[choice]
                held *= result.coverage
            logprobs.append(logprob)
            probs.append(prob)
            coverage.append(held)
        return Distribution(logprobs, probs, coverage)

    def outcome_codes(self, value: object) -> list[str]:
        assert isinstance(value, list)
        chosen = [option_for_value(self.question, item, self.format.answer) for item in value]
        return [RANK_SEPARATOR.join(option.code for option in chosen)]


@dataclass(frozen=True)
class _NumericAsking(_AskingBase):
    question: NumericQuestion

    def _answer_instruction(self) -> str:
        question = self.question
        number = "a whole number" if question.integer else "a number"
        unit = f" ({question.unit})" if question.unit else ""
        return f"Answer with {number} from {question.minimum:g} to {question.maximum:g}{unit}."

    def _longest_answer(self) -> int:
        if self.question.integer:
            return max(
                len(str(value)) for value in (self.question.values()[0], self.question.values()[-1])
            )
        return NUMBER_CHARS

    def exact_requests(self, context: PromptContext) -> list[ScoreRequest]:
        question = self.question
        if not question.integer:
            raise MethodError(
                f"question {question.id!r} takes any number, which cannot be scored exactly; "
                "make it an integer question or sample it (method='sample')"
            )
        if len(question.values()) > MAX_EXACT_VALUES:
            raise MethodError(
                f"question {question.id!r} has {len(question.values())} possible values; the "
                f"exact method scores at most {MAX_EXACT_VALUES}: sample it (method='sample')"
            )
        if not self.outcomes:
            raise MethodError(
                f"question {question.id!r} has more than 101 values and no bins to report "
                "them in; declare bins"
            )
        body = self._sample_body(context.instructions)
        values = [str(value) for value in question.values()]
        return [self.format.render(body, values, context)]

    def read_scores(self, results: Sequence[ScoreResult]) -> Distribution:
        (result,) = results
        per_bin: dict[str, list[float]] = {outcome.code: [] for outcome in self.outcomes}
        for value, logprob in zip(self.question.values(), result.logprobs, strict=True):
            bin_ = self.question.bin_of(value)
            assert bin_ is not None  # bins cover the range (checked on load)
            per_bin[bin_.code].append(logprob)
        logprobs = [_logsumexp(per_bin[outcome.code]) for outcome in self.outcomes]
        total = _logsumexp(logprobs)
        return Distribution(
            logprobs=logprobs,
            probs=[math.exp(logprob - total) for logprob in logprobs],
            coverage=[result.coverage] * len(logprobs),
        )

    def outcome_codes(self, value: object) -> list[str]:
        assert isinstance(value, int | float)
        bin_ = self.question.bin_of(value)
        return [] if bin_ is None else [bin_.code]


@dataclass(frozen=True)
class _FreeTextAsking(_AskingBase):
    question: FreeTextQuestion

    def _answer_instruction(self) -> str:
        return f"Answer in your own words, in at most {self.question.max_chars} characters."

    def _longest_answer(self) -> int:
        # Quotes around the text; escaped characters take more, and are flagged if cut.
        return self.question.max_chars + 2

    def exact_requests(self, context: PromptContext) -> list[ScoreRequest]:
        raise MethodError(
            f"question {self.question.id!r} is free text: its answers can only be sampled "
            "(method='sample', or method={'free_text': 'sample'})"
        )

    def read_scores(self, results: Sequence[ScoreResult]) -> Distribution:
        raise MethodError(f"question {self.question.id!r} is free text: nothing to score")

    def outcome_codes(self, value: object) -> list[str]:
        return []  # free-text answers count for no outcome: they are reported as draws


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(value - top) for value in values))
