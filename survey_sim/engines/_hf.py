"""What every engine that reads text with a Hugging Face tokenizer shares: tokenisation
(with the BOS token the model was trained with), chat rendering with the model's template,
the split of ``prefix + continuation`` into shared and scored tokens, and reading sampled
completions back as JSON values.

Engines that run the model elsewhere (a server) tokenise locally with the same code, so the
token sequences they score are exactly those the embedded engine scores.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from survey_sim.engines.base import ChatMessage, SampleRequest, SampleResult, ScoreRequest
from survey_sim.engines.validation import conforms
from survey_sim.errors import ScoringError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class TokenizedRequest:
    """A score request as token ids: the shared prompt tokens and each option's scored tokens."""

    shared: list[int]
    continuations: list[list[int]]

    @property
    def length(self) -> int:
        """Tokens of the request's longest sequence (the prompt and its longest option)."""
        return len(self.shared) + max(len(tokens) for tokens in self.continuations)


class HFTokenizer:
    """A Hugging Face tokenizer as survey-sim engines use it."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, *, model_id: str) -> None:
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.bos = _bos_to_prepend(tokenizer)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` as the model reads it (with BOS if the model expects one)."""
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        if self.bos is not None and (not ids or ids[0] != self.bos):
            ids.insert(0, self.bos)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of generated token ids."""
        return str(self.tokenizer.decode(list(ids)))

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool) -> str:
        """Render messages with the tokenizer's chat template."""
        if not self.tokenizer.chat_template:
            raise ScoringError(
                f"model {self.model_id!r} has no chat template; use format 'plain' or 'spectrum'"
            )
        text = self.tokenizer.apply_chat_template(
            [{"role": m["role"], "content": m["content"]} for m in messages],
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
        )
        return str(text)

    def tokenize_request(self, request: ScoreRequest) -> TokenizedRequest:
        """The shared and scored tokens of a request (see :func:`split_shared_tokens`)."""
        prefix_ids = self.tokenize(request.prefix)
        full_ids = [self.tokenize(request.prefix + text) for text in request.continuations]
        shared, continuations = split_shared_tokens(prefix_ids, full_ids)
        return TokenizedRequest(shared, continuations)

    def sequence_tokens(self, request: ScoreRequest | SampleRequest) -> int:
        """Tokens of the longest sequence a request makes the model read: the prompt and its
        longest option, or the prompt and ``max_new_tokens`` generated tokens."""
        if isinstance(request, SampleRequest):
            return len(self.tokenize(request.prefix)) + request.max_new_tokens
        item = self.tokenize_request(request)
        return item.length

    def identity(self) -> str:
        """Everything about the tokenizer that changes token sequences: vocabulary, merges,
        normalisation and the chat template (for fingerprints)."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        vocabulary = backend.to_str() if backend is not None else repr(self.tokenizer.get_vocab())
        return f"{vocabulary}\n{self.tokenizer.chat_template}\n{self.bos}"


def check_fits(tokens: int, limit: int | None, model_id: str) -> None:
    """Refuse a sequence longer than the model's context (its numbers would mean nothing).
    Runs check every request before any model work; engines check again on direct calls."""
    if limit is not None and tokens > limit:
        raise ScoringError(
            f"a sequence of {tokens:,} tokens is longer than the context of model "
            f"{model_id!r} ({limit:,} tokens)"
        )


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Number of leading tokens ``a`` and ``b`` share."""
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


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
    shared_length = min([len(prefix_ids), *(common_prefix_length(prefix_ids, i) for i in full_ids)])
    rest = [list(ids[shared_length:]) for ids in full_ids]
    if shared_length == 0:
        raise ScoringError("the prompt prefix tokenises to nothing; it must not be empty")
    if any(not tokens for tokens in rest):
        raise ScoringError("a continuation tokenises to nothing after the shared prefix")
    return list(prefix_ids[:shared_length]), rest


def read_completions(
    texts: Sequence[str],
    truncated: Sequence[bool],
    schema: Mapping[str, Any],
    *,
    generated_tokens: int,
    prompt_tokens: int,
    reused_tokens: int,
) -> SampleResult:
    """Sampled completions parsed as JSON and checked against ``schema`` once more.

    Truncated completions carry no value. A complete one that breaks the schema (the
    grammar engine let it through) is flagged invalid and carries no value either.
    """
    parsed = [
        None if cut else _parse_json(text, schema)
        for text, cut in zip(texts, truncated, strict=True)
    ]
    invalid = [
        not cut and not conforms(value, schema)
        for value, cut in zip(parsed, truncated, strict=True)
    ]
    return SampleResult(
        texts=tuple(texts),
        values=tuple(None if bad else value for value, bad in zip(parsed, invalid, strict=True)),
        truncated=tuple(truncated),
        invalid=tuple(invalid),
        generated_tokens=generated_tokens,
        prompt_tokens=prompt_tokens,
        reused_tokens=reused_tokens,
    )


def _parse_json(text: str, schema: Mapping[str, Any]) -> Any:
    # strict=False: xgrammar 0.2.8's rule for length-bounded strings admits raw control
    # characters (its unbounded string rule does not); they are data, not broken syntax.
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError as error:
        raise ScoringError(
            f"model output {text!r} is not valid JSON for schema {dict(schema)}: {error}"
        ) from error


def _bos_to_prepend(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The BOS id if the tokenizer adds one by default (the model was trained with it)."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return None
    probe = tokenizer("a")["input_ids"]
    return int(bos) if probe and probe[0] == bos else None
