"""The Engine protocol: what survey-sim needs from a language model.

Engines know nothing about surveys: they score text continuations after a text prefix and
render chat messages with the model's own template. Everything survey-specific (questions,
personas, prompt layouts) lives above them.
"""

from __future__ import annotations

import functools
import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol, TypedDict, TypeVar, runtime_checkable

from survey_sim.engines.records import AdapterDescription, EngineDescription
from survey_sim.errors import MethodError, ScoringError

ResultT = TypeVar("ResultT", contravariant=True)


class ChatMessage(TypedDict):
    """One chat turn, as accepted by Hugging Face chat templates."""

    role: str
    content: str


@dataclass(frozen=True)
class ScoreRequest:
    """Score every continuation after one shared prefix.

    The log-probability of a continuation is taken over the token sequence the model would
    see for ``prefix + continuation`` as a whole (see :func:`split_shared_tokens`).
    """

    prefix: str
    continuations: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.continuations:
            raise ScoringError("a score request needs at least one continuation")
        if any(not text for text in self.continuations):
            raise ScoringError("continuations must be non-empty strings")


@dataclass(frozen=True)
class ScoreResult:
    """Exact teacher-forced log-probabilities of each continuation of a request.

    Attributes:
        logprobs: Natural-log probability of each continuation's full token sequence.
        continuation_tokens: Number of tokens scored for each continuation.
        prompt_tokens: Tokens of the shared part (the prefix, up to the token boundary).
        reused_tokens: Shared tokens whose key/value states came from the prefix cache.
        computed_tokens: Tokens actually run through the model for this request.
    """

    logprobs: tuple[float, ...]
    continuation_tokens: tuple[int, ...]
    prompt_tokens: int
    reused_tokens: int
    computed_tokens: int

    @property
    def coverage(self) -> float:
        """Total probability the listed continuations hold (1 = the model said nothing else)."""
        return sum(math.exp(lp) for lp in self.logprobs)

    @property
    def probs(self) -> tuple[float, ...]:
        """The distribution renormalised over the continuations."""
        top = max(self.logprobs)
        weights = [math.exp(lp - top) for lp in self.logprobs]
        total = sum(weights)
        return tuple(w / total for w in weights)


@dataclass(frozen=True)
class SampleRequest:
    """Draw ``n`` completions after ``prefix`` under a JSON schema (constrained decoding).

    Attributes:
        prefix: The prompt text; completions follow it directly.
        json_schema: The JSON schema every completion must satisfy.
        n: Number of completions.
        temperature: Softmax temperature (> 0; 1 samples the model's own distribution).
        seed: Seed of the random draws; the same request and seed give the same draws.
        max_new_tokens: Tokens a completion may use before it is reported as truncated.
    """

    prefix: str
    json_schema: Mapping[str, Any]
    n: int = 1
    temperature: float = 1.0
    seed: int = 0
    max_new_tokens: int = 64

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ScoringError(f"n must be at least 1, got {self.n}")
        if not self.temperature > 0:
            raise ScoringError(f"temperature must be positive, got {self.temperature}")
        if self.max_new_tokens < 1:
            raise ScoringError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")


@dataclass(frozen=True)
class SampleResult:
    """Completions drawn for a :class:`SampleRequest`, in draw order.

    Attributes:
        texts: Raw completion texts (without the end-of-sequence token).
        values: Each completion parsed as JSON; ``None`` where it was truncated or invalid.
        truncated: True where a completion hit ``max_new_tokens`` before the grammar ended.
            Such completions are kept and flagged, never dropped.
        invalid: True where a complete answer does not satisfy the schema after all (the
            grammar engine let it through; see :mod:`survey_sim.engines.validation`).
        generated_tokens: Tokens generated over all completions (end tokens included).
        prompt_tokens: Tokens of the prefix.
        reused_tokens: Prefix tokens whose key/values came from the prefix cache.
    """

    texts: tuple[str, ...]
    values: tuple[Any, ...]
    truncated: tuple[bool, ...]
    invalid: tuple[bool, ...]
    generated_tokens: int
    prompt_tokens: int
    reused_tokens: int


ResultsCallback = Callable[[list[tuple[int, ResultT]]], None]
"""Called with ``(request index, result)`` pairs as soon as they are finished, so that a run
stores them (and moves a progress bar) before the rest of the requests are done. Results
that finish together (one forward pass, one server response) are handed over in one call:
the run stores each call's results in one transaction, so a run killed midway has stored
whole passes, and a resumed run computes the rest in the same passes as an uninterrupted
run would."""


@dataclass
class EngineStats:
    """Running totals of the work an engine has done (benchmarks, run summaries, manifests).

    Attributes:
        requests: Score and sample requests finished.
        prompt_tokens: Tokens of the prompts read (shared prompt part of score requests,
            whole prompt of sample requests).
        reused_tokens: Prompt tokens whose key/values were not computed again: taken from
            a prefix cache, or shared with an earlier request in the same pass.
        computed_tokens: Tokens run through the model (prompt and option tokens).
        decode_tokens: Tokens generated one step at a time while sampling.
        retries: Requests sent again after a transient failure (remote engines).
        forward_passes: Model invocations: forward passes, or batched server calls.
    """

    requests: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0
    computed_tokens: int = 0
    decode_tokens: int = 0
    retries: int = 0
    forward_passes: int = 0

    @property
    def hit_rate(self) -> float | None:
        """Share of prompt tokens reused (``None`` before any prompt was read)."""
        return self.reused_tokens / self.prompt_tokens if self.prompt_tokens else None

    def since(self, earlier: EngineStats) -> EngineStats:
        """The work done between ``earlier`` (a :func:`dataclasses.replace` copy) and now."""
        return EngineStats(
            **{f.name: getattr(self, f.name) - getattr(earlier, f.name) for f in fields(self)}
        )

    def as_dict(self) -> dict[str, Any]:
        """The totals and the hit rate, for a manifest."""
        return {**asdict(self), "hit_rate": self.hit_rate}


@runtime_checkable
class Engine(Protocol):
    """A language model that scores continuations exactly and samples under a JSON schema.

    Implementations: :class:`~survey_sim.engines.transformers.TransformersEngine` (embedded,
    CPU or GPU) and :class:`~survey_sim.engines.sglang.SGLangEngine` (a server). A user's own
    engine needs exactly these members; :func:`survey_sim.simulate` uses nothing else, so it
    caches, resumes and records it like a built-in one. :class:`EngineBase` supplies all but
    ``model_id``, ``fingerprint_parts`` and ``score``.
    """

    @property
    def model_id(self) -> str:
        """A readable name of the model (a name or path), recorded in results."""
        ...

    @property
    def fingerprint(self) -> str:
        """A hash of everything an engine's numbers depend on (weights, tokenizer, the
        settings that change results). The results store keys on it: two engines with one
        fingerprint must return the same results for the same requests."""
        ...

    @property
    def stats(self) -> EngineStats:
        """Running totals of the work done."""
        ...

    @property
    def context_length(self) -> int | None:
        """The most tokens one sequence may hold (``None``: no stated limit)."""
        ...

    def sequence_tokens(self, request: ScoreRequest | SampleRequest) -> int:
        """Tokens of the longest sequence ``request`` makes the model read: the prompt and
        its longest option, or the prompt and ``max_new_tokens``. Runs compare it with
        :attr:`context_length` for every request before any model work."""
        ...

    def describe(self) -> EngineDescription:
        """What a run manifest records about the engine."""
        ...

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool) -> str:
        """Render messages with the model's own chat template, as text."""
        ...

    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_results: ResultsCallback[ScoreResult] | None = None,
    ) -> list[ScoreResult]:
        """Exact log-probability of every continuation of every request, in request order.

        ``on_results([(index, result), ...])`` is called with the results that finish
        together, as soon as they do (in any order of requests), before this returns.
        """
        ...

    def sample(
        self,
        requests: Sequence[SampleRequest],
        *,
        on_results: ResultsCallback[SampleResult] | None = None,
    ) -> list[SampleResult]:
        """Draw completions under each request's JSON schema, in request order;
        ``on_results`` as for :meth:`score`."""
        ...


@runtime_checkable
class CoreSharing(Protocol):
    """An engine that can share this machine's cores with other runs (optional: engines
    without it keep their threads). Runs call it before each chunk of work they claimed."""

    def share_cores(self, runs: int) -> None:
        """Use this machine's share of the cores when ``runs`` runs (this one included)
        compute at once, unless the user fixed the thread count."""
        ...


def cannot_sample(engine: object) -> MethodError:
    """The error of a run that would sample on an engine that only scores."""
    return MethodError(
        f"{type(engine).__name__} scores answers exactly but cannot sample them: use "
        "method 'exact' (free-text questions need an engine that samples)"
    )


class TextCodec(Protocol):
    """What renders chat and counts tokens for an engine (e.g. a Hugging Face tokenizer's
    :class:`~survey_sim.engines._hf.HFTokenizer`)."""

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool) -> str:
        """Render ``messages`` with the model's chat template."""
        ...

    def sequence_tokens(self, request: ScoreRequest | SampleRequest) -> int:
        """Tokens of the longest sequence ``request`` makes the model read."""
        ...


class EngineBase(ABC):
    """Defaults for an :class:`Engine`, in the manner of lm-eval's ``LM``: a subclass writes
    ``model_id``, :meth:`fingerprint_parts` and :meth:`score`, and sets ``text`` (its
    tokenizer: chat rendering and token counts); everything else has a default.

    * :attr:`fingerprint` hashes :meth:`fingerprint_parts` (computed once);
    * :meth:`describe` assembles the :class:`EngineDescription` from :meth:`settings_record`,
      ``strategy``, ``adapter`` and :meth:`details`;
    * :attr:`stats` are counted from each result's own token counts by :meth:`count`
      (engines add the work only they see: forward passes, decode steps, retries);
    * :meth:`sample` refuses clearly: a scoring-only engine leaves it out, and runs refuse
      sampled questions before any model work (:attr:`can_sample`).
    """

    text: TextCodec | None = None
    strategy: str | None = None
    adapter: AdapterDescription | None = None

    @property
    @abstractmethod
    def model_id(self) -> str:
        """A readable name of the model (a name or path), recorded in results."""

    @abstractmethod
    def fingerprint_parts(self) -> Iterable[str | bytes]:
        """Everything the engine's numbers depend on (weights or their hash, tokenizer,
        the settings that change results), hashed into :attr:`fingerprint`."""

    @abstractmethod
    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_results: ResultsCallback[ScoreResult] | None = None,
    ) -> list[ScoreResult]:
        """Exact log-probability of every continuation of every request (see
        :meth:`Engine.score`); call :meth:`count` with the results."""

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of :meth:`fingerprint_parts`: the results store keys on it."""
        digest = hashlib.blake2b(digest_size=20)
        for part in self.fingerprint_parts():
            digest.update(part.encode() if isinstance(part, str) else part)
        return digest.hexdigest()

    @functools.cached_property
    def stats(self) -> EngineStats:
        """Running totals of the work done."""
        return EngineStats()

    @property
    def context_length(self) -> int | None:
        """The most tokens one sequence may hold (default: no stated limit)."""
        return None

    @property
    def can_sample(self) -> bool:
        """Whether the engine draws answers (it overrides :meth:`sample`)."""
        return type(self).sample is not EngineBase.sample

    def settings_record(self) -> dict[str, Any]:
        """The engine's settings as the manifest records them (default: none)."""
        return {}

    def details(self) -> dict[str, Any]:
        """Engine-specific facts the manifest records (default: none)."""
        return {}

    def describe(self) -> EngineDescription:
        """What a run manifest records about the engine."""
        return EngineDescription(
            engine=type(self).__name__,
            model_id=self.model_id,
            fingerprint=self.fingerprint,
            settings=self.settings_record(),
            strategy=self.strategy,
            adapter=self.adapter,
            details=self.details(),
        )

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool) -> str:
        """Render messages with the model's chat template (through ``text``)."""
        return self._text().render_chat(messages, add_generation_prompt=add_generation_prompt)

    def sequence_tokens(self, request: ScoreRequest | SampleRequest) -> int:
        """Tokens of the longest sequence ``request`` makes the model read (through ``text``)."""
        return self._text().sequence_tokens(request)

    def sample(
        self,
        requests: Sequence[SampleRequest],
        *,
        on_results: ResultsCallback[SampleResult] | None = None,
    ) -> list[SampleResult]:
        """Refused: this engine scores only.

        Raises:
            MethodError: always, naming the engine and what to do instead.
        """
        raise cannot_sample(self)

    def count(self, results: Iterable[ScoreResult | SampleResult]) -> None:
        """Add finished results to :attr:`stats`: one request each, and its prompt, reused
        and computed prompt tokens."""
        for result in results:
            self.stats.requests += 1
            self.stats.prompt_tokens += result.prompt_tokens
            self.stats.reused_tokens += result.reused_tokens
            self.stats.computed_tokens += (
                result.computed_tokens
                if isinstance(result, ScoreResult)
                else result.prompt_tokens - result.reused_tokens
            )

    def _text(self) -> TextCodec:
        if self.text is None:
            raise ScoringError(
                f"{type(self).__name__} has no tokenizer (set its 'text', or write "
                "render_chat and sequence_tokens)"
            )
        return self.text
