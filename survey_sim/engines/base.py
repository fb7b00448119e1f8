"""The Engine protocol: what survey-sim needs from a language model.

Engines know nothing about surveys: they score text continuations after a text prefix and
render chat messages with the model's own template. Everything survey-specific (questions,
personas, prompt layouts) lives above them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypedDict, runtime_checkable

from survey_sim.errors import ScoringError


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


ProgressCallback = Callable[[int], None]
"""Called with the number of requests just finished (for progress bars)."""


@runtime_checkable
class Engine(Protocol):
    """A language model that scores continuations exactly and samples under a JSON schema.

    Implementations: :class:`~survey_sim.engines.transformers.TransformersEngine` (embedded,
    CPU or GPU). A user's own engine only needs these members.
    """

    @property
    def model_id(self) -> str:
        """Identity of the model (a name, path or weights fingerprint), recorded in results."""
        ...

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool) -> str:
        """Render messages with the model's own chat template, as text."""
        ...

    def score(
        self, requests: Sequence[ScoreRequest], *, progress: ProgressCallback | None = None
    ) -> list[ScoreResult]:
        """Exact log-probability of every continuation of every request, in order."""
        ...

    def sample(self, request: SampleRequest) -> SampleResult:
        """Draw completions under the request's JSON schema; invalid output is impossible."""
        ...


def split_shared_tokens(
    prefix_ids: Sequence[int], full_ids: Sequence[Sequence[int]]
) -> tuple[list[int], list[list[int]]]:
    """Split tokenised ``prefix + continuation`` sequences into a shared part and the rest.

    BPE tokenisers may merge characters across the prefix/continuation boundary (a prompt
    ending in ``"Answer: "`` followed by ``"A"`` tokenises as ``"Answer", ":", " A"``). Scoring
    must use the tokens the model would really see, so the shared part is the longest run of
    leading tokens that the prefix's own tokenisation and every full sequence agree on; the
    boundary tokens that differ are scored as part of each continuation.

    Returns:
        The shared token ids and, for each full sequence, its remaining (scored) token ids.
    """
    shared_length = len(prefix_ids)
    for ids in full_ids:
        common = 0
        for a, b in zip(prefix_ids, ids, strict=False):
            if a != b:
                break
            common += 1
        shared_length = min(shared_length, common)
    rest = [list(ids[shared_length:]) for ids in full_ids]
    if shared_length == 0:
        raise ScoringError("the prompt prefix tokenises to nothing; it must not be empty")
    if any(not tokens for tokens in rest):
        raise ScoringError("a continuation tokenises to nothing after the shared prefix")
    return list(prefix_ids[:shared_length]), rest
