"""The embedded engine: a Hugging Face transformers causal LM, run in-process.

Scoring reads every option's exact probability from one pass over the prompt:

1. The prompt's shared tokens are run once. Their key/value states are kept in a bounded
   :class:`~survey_sim.engines.prefix_cache.PrefixCache`, so the next request that starts
   with the same tokens (same persona, same question preamble) only computes what differs.
2. All options are then scored together in one forward pass against those cached states:
   the options' tokens are laid side by side and a tree-shaped attention mask lets each
   option see the prompt and its own earlier tokens only (positions restart after the
   prompt for each option). Single-token options need no extra pass at all.

``prefix_reuse`` selects the strategy: ``"cache"`` (the above, the default), ``"request"``
(the above without reuse across requests) or ``"none"`` (every option's full sequence run
from scratch, as a plain reference). All three agree to float rounding; the tests check it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from survey_sim.engines.base import (
    ChatMessage,
    ProgressCallback,
    ScoreRequest,
    ScoreResult,
    split_shared_tokens,
)
from survey_sim.engines.prefix_cache import KeyValues, PrefixCache, PrefixState
from survey_sim.errors import ScoringError

PrefixReuse = Literal["cache", "request", "none"]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class EngineSettings(BaseModel):
    """Settings of the embedded engine.

    Attributes:
        threads: CPU threads for torch (``None`` keeps torch's default).
        dtype: Weights and activations dtype. ``bfloat16`` is about twice as fast on CPUs
            with AVX-512 and changes log-probs slightly.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        prefix_reuse: ``"cache"``, ``"request"`` or ``"none"`` (see the module docstring).
        cache_mb: Memory budget of the prefix key/value cache, in MiB.
        max_batch_tokens: Upper bound on tokens per forward pass when ``prefix_reuse`` is
            ``"none"`` (full sequences are batched up to it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    threads: int | None = Field(default=None, ge=1)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = "cpu"
    prefix_reuse: PrefixReuse = "cache"
    cache_mb: float = Field(default=512, gt=0)
    max_batch_tokens: int = Field(default=4096, ge=1)


@dataclass
class EngineStats:
    """Running totals of the work an engine has done (for benchmarks and manifests)."""

    requests: int = 0
    computed_tokens: int = 0
    reused_tokens: int = 0
    forward_passes: int = 0


class TransformersEngine:
    """Exact option scoring with a local transformers model (see the module docstring).

    Build it from a model name or path with :meth:`from_pretrained`, or wrap an already
    loaded model and tokenizer.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        model_id: str,
        settings: EngineSettings | None = None,
    ) -> None:
        self.settings = settings or EngineSettings()
        if self.settings.threads is not None:
            torch.set_num_threads(self.settings.threads)
        self.model = model.to(device=self.settings.device, dtype=DTYPES[self.settings.dtype])
        self.model.eval()
        self.tokenizer = tokenizer
        self._model_id = model_id
        self._device = torch.device(self.settings.device)
        self.prefix_cache = PrefixCache(int(self.settings.cache_mb * 2**20))
        self._bos = self._bos_to_prepend(tokenizer)
        self.stats = EngineStats()

    @classmethod
    def from_pretrained(
        cls, model: str | Path | None = None, settings: EngineSettings | None = None
    ) -> TransformersEngine:
        """Load a model by name (default: SmolLM2-135M-Instruct) or local path.

        ``model`` may be a local Hugging Face model directory, a ``.gguf`` file, or a known
        name (see :func:`survey_sim.engines.registry.resolve_model`). Nothing is downloaded.
        """
        from survey_sim.engines.registry import load_local_model

        loaded = load_local_model(model)
        return cls(loaded.model, loaded.tokenizer, model_id=loaded.model_id, settings=settings)

    @property
    def model_id(self) -> str:
        """The model's identity, recorded in results."""
        return self._model_id

    def __repr__(self) -> str:
        return f"TransformersEngine(model_id={self.model_id!r}, settings={self.settings!r})"

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool) -> str:
        """Render messages with the tokenizer's chat template."""
        if not self.tokenizer.chat_template:
            raise ScoringError(
                f"model {self.model_id!r} has no chat template; use format 'plain' or 'spectrum'"
            )
        text = self.tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
        )
        return str(text)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` as the model reads it (with BOS if the model expects one)."""
        ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        if self._bos is not None and (not ids or ids[0] != self._bos):
            ids.insert(0, self._bos)
        return ids

    def clear_cache(self) -> None:
        """Forget all cached prefix states."""
        self.prefix_cache.clear()

    @torch.inference_mode()
    def score(
        self, requests: Sequence[ScoreRequest], *, progress: ProgressCallback | None = None
    ) -> list[ScoreResult]:
        """Exact log-probability of every continuation of every request, in order."""
        results = []
        for request in requests:
            results.append(self._score_one(request))
            if progress is not None:
                progress(1)
        return results

    def _score_one(self, request: ScoreRequest) -> ScoreResult:
        prefix_ids = self.tokenize(request.prefix)
        full_ids = [self.tokenize(request.prefix + text) for text in request.continuations]
        shared, continuations = split_shared_tokens(prefix_ids, full_ids)
        if self.settings.prefix_reuse == "none":
            logprobs, computed = self._score_full_sequences(shared, continuations)
            reused = 0
        else:
            state, reused, prefix_computed = self._prefix_state(shared)
            logprobs, tree_computed = self._score_options(state, continuations)
            computed = prefix_computed + tree_computed
        self.stats.requests += 1
        self.stats.computed_tokens += computed
        self.stats.reused_tokens += reused
        return ScoreResult(
            logprobs=tuple(logprobs),
            continuation_tokens=tuple(len(c) for c in continuations),
            prompt_tokens=len(shared),
            reused_tokens=reused,
            computed_tokens=computed,
        )

    def _prefix_state(self, tokens: list[int]) -> tuple[PrefixState, int, int]:
        """State after ``tokens``; returns it with the reused and computed token counts."""
        use_cache = self.settings.prefix_reuse == "cache"
        cached, common = self.prefix_cache.longest_match(tokens) if use_cache else (None, 0)
        if cached is not None and common == len(tokens) == len(cached.tokens):
            return cached, len(tokens), 0
        # At least one token is always run: its logits predict the first option token.
        reuse = min(common, len(tokens) - 1)
        past = cached.truncated(reuse) if cached is not None and reuse > 0 else ()
        output = self._forward(tokens[reuse:], past, positions=range(reuse, len(tokens)))
        state = PrefixState(
            tokens=tuple(tokens),
            key_values=tuple((layer.keys, layer.values) for layer in output.past_key_values.layers),
            next_logprobs=torch.log_softmax(output.logits[0, -1].float(), dim=-1),
        )
        if use_cache:
            self.prefix_cache.put(state)
        return state, reuse, len(tokens) - reuse

    def _score_options(
        self, state: PrefixState, continuations: list[list[int]]
    ) -> tuple[list[float], int]:
        """Sum of token log-probs of each continuation after ``state``, in one tree pass."""
        logprobs = [state.next_logprobs[tokens[0]].item() for tokens in continuations]
        fed = [tokens[:-1] for tokens in continuations]  # the last token predicts nothing needed
        total = sum(len(tokens) for tokens in fed)
        if total == 0:
            return logprobs, 0
        prompt_length = len(state.tokens)
        positions: list[int] = []
        owner: list[int] = []
        for index, tokens in enumerate(fed):
            positions.extend(prompt_length + offset for offset in range(len(tokens)))
            owner.extend([index] * len(tokens))
        mask = self._tree_mask(owner, positions, prompt_length)
        output = self._forward(
            [token for tokens in fed for token in tokens], state.key_values, positions, mask
        )
        token_logprobs = torch.log_softmax(output.logits[0].float(), dim=-1)
        row = 0
        for index, tokens in enumerate(continuations):
            targets = torch.tensor(tokens[1:], device=token_logprobs.device)
            rows = token_logprobs[row : row + len(targets)]
            logprobs[index] += rows.gather(1, targets[:, None]).sum().item()
            row += len(targets)
        return logprobs, total

    def _tree_mask(
        self, owner: list[int], positions: list[int], prompt_length: int
    ) -> torch.Tensor:
        """Additive mask: option tokens see the prompt and their own option's earlier tokens."""
        owner_t = torch.tensor(owner, device=self._device)
        position_t = torch.tensor(positions, device=self._device)
        same_option = owner_t[:, None] == owner_t[None, :]
        causal = position_t[None, :] <= position_t[:, None]
        allowed = torch.cat(
            [
                torch.ones(len(owner), prompt_length, dtype=torch.bool, device=self._device),
                same_option & causal,
            ],
            dim=1,
        )
        dtype = self.model.dtype
        mask = torch.zeros(allowed.shape, dtype=dtype, device=self._device)
        mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        return mask[None, None]

    def _score_full_sequences(
        self, shared: list[int], continuations: list[list[int]]
    ) -> tuple[list[float], int]:
        """Reference path: run each option's whole sequence from scratch, batched and padded."""
        sequences = [shared + tokens for tokens in continuations]
        per_batch = max(1, self.settings.max_batch_tokens // max(len(s) for s in sequences))
        logprobs: list[float] = []
        for start in range(0, len(sequences), per_batch):
            batch = sequences[start : start + per_batch]
            length = max(len(s) for s in batch)
            ids = torch.zeros(len(batch), length, dtype=torch.long, device=self._device)
            attention = torch.zeros_like(ids)
            for row, sequence in enumerate(batch):
                ids[row, : len(sequence)] = torch.tensor(sequence)
                attention[row, : len(sequence)] = 1
            self.stats.forward_passes += 1
            logits = self.model(input_ids=ids, attention_mask=attention).logits
            token_logprobs = torch.log_softmax(logits.float(), dim=-1)
            for row, sequence in enumerate(batch):
                targets = torch.tensor(sequence[len(shared) :], device=self._device)
                predicted_by = torch.arange(len(shared) - 1, len(sequence) - 1, device=self._device)
                logprobs.append(token_logprobs[row, predicted_by, targets].sum().item())
        return logprobs, sum(len(s) for s in sequences)

    def _forward(
        self,
        tokens: list[int],
        past: KeyValues,
        positions: Sequence[int],
        mask: torch.Tensor | None = None,
    ) -> Any:
        """One forward pass of ``tokens`` after the ``past`` key/values (may be empty)."""
        cache = DynamicCache(ddp_cache_data=past or None, config=self.model.config)
        self.stats.forward_passes += 1
        return self.model(
            input_ids=torch.tensor([tokens], device=self._device),
            position_ids=torch.tensor([list(positions)], device=self._device),
            attention_mask=mask,
            past_key_values=cache,
            use_cache=True,
        )

    @staticmethod
    def _bos_to_prepend(tokenizer: PreTrainedTokenizerBase) -> int | None:
        """The BOS id if the tokenizer adds one by default (the model was trained with it)."""
        bos = tokenizer.bos_token_id
        if bos is None:
            return None
        probe = tokenizer("a")["input_ids"]
        return bos if probe and probe[0] == bos else None
