"""Tiny random models of the architecture families users plug in, for testing engines.

Each stands for the real models of its family (``Spectrum-Qwen3-14B``, ``Qwen2-0.5B``,
``Mistral-7B``, ``Gemma-3``, ``Jamba Mini``...) with the same layer structure at a size that
runs in milliseconds on a CPU: the windows of sliding-window families are made *shorter* than
test prompts, so that prompts cross them as real few-shot prompts cross real windows. Nothing
is downloaded: the models are built from configs, with random weights.

Used by survey-sim's own tests and ``benchmarks/architectures.py``; an engine of your own
can be checked against the same matrix. :func:`assert_same_results` compares two runs'
results as far as survey-sim promises they agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
import polars.testing
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from survey_sim.engines.base import ResultsCallback, ScoreRequest, ScoreResult
from survey_sim.engines.transformers import TransformersEngine

RECOMPUTED_TOLERANCE = 1e-4
"""How far a result computed in another forward pass may move (float32): a resumed run, a
rerun that reads part of its results from the store, another ``--threads``. Measured on the
default model: up to 1.5e-5 in log-prob (``benchmarks/resume.py``)."""


def assert_same_results(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    """Two responses frames the same in every row and label, and in their numbers up to
    :data:`RECOMPUTED_TOLERANCE` (absolute)."""
    polars.testing.assert_frame_equal(got, expected, rel_tol=0, abs_tol=RECOMPUTED_TOLERANCE)


class InterruptedAfter:
    """An engine that stops, as if by Ctrl-C, once ``passes`` batches of score results were
    handed over (over all its calls): a run killed at a chosen point, for resume tests."""

    def __init__(self, engine: TransformersEngine, passes: int) -> None:
        self.engine, self.passes, self.handed = engine, passes, 0
        self.model_id, self.stats = engine.model_id, engine.stats
        self.fingerprint, self.describe = engine.fingerprint, engine.describe
        self.render_chat, self.sample = engine.render_chat, engine.sample
        self.context_length, self.sequence_tokens = engine.context_length, engine.sequence_tokens

    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_results: ResultsCallback[ScoreResult] | None = None,
    ) -> list[ScoreResult]:
        def forward(batch: list[tuple[int, ScoreResult]]) -> None:
            if on_results is not None:
                on_results(batch)
            self.handed += 1
            if self.handed == self.passes:
                raise KeyboardInterrupt

        return self.engine.score(requests, on_results=forward)


CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""A ChatML chat template (Qwen's markup)."""


def train_tokenizer(texts: Iterable[str], *, vocab_size: int = 600) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on ``texts``, with ChatML special tokens and template."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


WINDOW = 8
"""The sliding window (or attention chunk) of the windowed families: shorter than any test
prompt."""

TINY_LAYERS: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "max_position_embeddings": 4096,
    "initializer_range": 0.2,
}
"""Layer sizes every tiny family shares (4 layers of width 64; large init so that random
models make sharp, position-sensitive predictions)."""


@dataclass(frozen=True)
class Family:
    """One architecture family: what it stands for and how to build a tiny config of it."""

    name: str
    stands_for: str
    config: Callable[[int], PretrainedConfig]

    def build(self, vocab_size: int, *, seed: int = 0) -> PreTrainedModel:
        """A random model of this family over a vocabulary of ``vocab_size`` tokens."""
        torch.manual_seed(seed)
        model: PreTrainedModel = AutoModelForCausalLM.from_config(self.config(vocab_size))
        model.eval()
        return model


FAMILIES = {
    family.name: family
    for family in [
        Family(
            "llama",
            "Llama-3.1 (Spectrum Llama), SmolLM2",
            lambda vocab: transformers.LlamaConfig(vocab_size=vocab, **TINY_LAYERS),
        ),
        Family(
            "qwen2",
            "Qwen2-0.5B instruct (full attention)",
            lambda vocab: transformers.Qwen2Config(vocab_size=vocab, **TINY_LAYERS),
        ),
        Family(
            "qwen2-sliding",
            "Qwen2 with use_sliding_window (window from max_window_layers up)",
            lambda vocab: transformers.Qwen2Config(
                vocab_size=vocab,
                use_sliding_window=True,
                sliding_window=WINDOW,
                max_window_layers=1,
                **TINY_LAYERS,
            ),
        ),
        Family(
            "qwen3",
            "Spectrum-Qwen3-14B",
            lambda vocab: transformers.Qwen3Config(vocab_size=vocab, **TINY_LAYERS),
        ),
        Family(
            "mistral-sliding",
            "Mistral-7B (v0.1 window 4096 on every layer)",
            lambda vocab: transformers.MistralConfig(
                vocab_size=vocab, sliding_window=WINDOW, **TINY_LAYERS
            ),
        ),
        Family(
            "gemma3-mixed",
            "Gemma-3 / Spectrum Gemma (sliding and full layers interleaved)",
            lambda vocab: transformers.Gemma3TextConfig(
                vocab_size=vocab,
                sliding_window=WINDOW,
                layer_types=["sliding_attention", "full_attention"] * 2,
                query_pre_attn_scalar=16,
                **TINY_LAYERS,
            ),
        ),
        Family(
            "llama4-chunked",
            "Llama 4 (chunked attention on three of four layers, mixture of experts)",
            lambda vocab: transformers.Llama4TextConfig(
                vocab_size=vocab,
                attention_chunk_size=WINDOW,
                no_rope_layers=[1, 1, 1, 0],
                num_local_experts=2,
                num_experts_per_tok=1,
                interleave_moe_layer_step=2,
                intermediate_size_mlp=128,
                **TINY_LAYERS,
            ),
        ),
        Family(
            "jamba-hybrid",
            "Jamba Mini (Mamba and attention layers, mixture of experts)",
            lambda vocab: transformers.JambaConfig(
                vocab_size=vocab,
                attn_layer_period=2,
                attn_layer_offset=1,
                expert_layer_period=2,
                expert_layer_offset=1,
                num_experts=4,
                num_experts_per_tok=2,
                mamba_d_state=8,
                mamba_dt_rank=8,
                **TINY_LAYERS,
            ),
        ),
    ]
}
"""Every family, by name (the names tests are parametrised with)."""


@torch.inference_mode()
def full_pass_logprobs(model: PreTrainedModel, ids: list[int]) -> torch.Tensor:
    """Next-token log-probabilities at every position of ``ids`` from one plain forward pass
    (the model's own masks, no cache): the reference every fast path is checked against."""
    device = next(model.parameters()).device
    logits = model(torch.tensor([ids], device=device)).logits[0]
    return torch.log_softmax(logits.float(), dim=-1).cpu()


def reference_logprob(model: PreTrainedModel, ids: list[int], scored_from: int) -> float:
    """Log-probability of ``ids[scored_from:]`` after ``ids[:scored_from]``, from one plain
    forward pass."""
    logprobs = full_pass_logprobs(model, ids)
    return sum(logprobs[i - 1, ids[i]].item() for i in range(scored_from, len(ids)))
