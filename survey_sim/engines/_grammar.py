"""Constrained sampling on the embedded engine: JSON schemas compiled to xgrammar grammars
(once per schema), and batches of completions drawn under them, a token per step, from a
:class:`~survey_sim.engines._runner.ForwardRunner` decoder."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from survey_sim.engines._runner import Decoder
from survey_sim.engines.base import EngineStats, SampleRequest
from survey_sim.errors import ScoringError


class GrammarSampler:
    """Draws completions under JSON schemas for one tokenizer and vocabulary."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, vocab_size: int, stats: EngineStats):
        self.tokenizer, self.vocab_size, self.stats = tokenizer, vocab_size, stats
        self._grammars: dict[str, Any] = {}
        self._compiler: Any = None

    def grammar(self, schema: Mapping[str, Any]) -> Any:
        """The xgrammar grammar for a JSON schema (compiled once per schema)."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            xgrammar = load_xgrammar()
            if self._compiler is None:
                info = xgrammar.TokenizerInfo.from_huggingface(
                    self.tokenizer, vocab_size=self.vocab_size
                )
                self._compiler = xgrammar.GrammarCompiler(info)
            try:
                self._grammars[key] = self._compiler.compile_json_schema(key, any_whitespace=False)
            except RuntimeError as error:
                raise ScoringError(f"cannot compile JSON schema {key}: {error}") from error
        return self._grammars[key]

    def sample_batch(
        self,
        decoder: Decoder,
        grammar: Any,
        size: int,
        request: SampleRequest,
        generator: torch.Generator,
    ) -> tuple[list[list[int]], list[bool], int]:
        """One batch of constrained completions; returns token ids, finished flags, steps."""
        xgrammar = load_xgrammar()
        matchers = [xgrammar.GrammarMatcher(grammar) for _ in range(size)]
        bitmask = xgrammar.allocate_token_bitmask(size, decoder.logits.shape[-1])
        stop_tokens = set(matchers[0].stop_token_ids)
        only_stop = torch.zeros_like(bitmask[0])  # the mask of a grammar that can only end
        for token in stop_tokens:
            only_stop[token // 32] |= 1 << (token % 32)
        logits = decoder.logits.cpu()
        completions: list[list[int]] = [[] for _ in range(size)]
        finished = [False] * size
        steps = 0
        pending: torch.Tensor | None = None  # drawn tokens not yet run through the model
        for step in range(request.max_new_tokens + 1):
            for row, matcher in enumerate(matchers):
                if finished[row]:
                    bitmask[row].fill_(-1)  # finished rows: anything (their draws are ignored)
                else:
                    matcher.fill_next_token_bitmask(bitmask, row)
            active = [row for row in range(size) if not finished[row]]
            if all(torch.equal(bitmask[row], only_stop) for row in active):
                for row in active:  # the grammar can only end here: no forward pass needed
                    matchers[row].accept_token(min(stop_tokens))
                    finished[row] = True
                    steps += 1
                break
            if step == request.max_new_tokens:
                break
            if pending is not None:
                logits = decoder.step(pending).cpu()
                self.stats.decode_tokens += size
            xgrammar.apply_token_bitmask_inplace(logits, bitmask)
            probabilities = torch.softmax(logits / request.temperature, dim=-1)
            pending = torch.multinomial(probabilities, 1, generator=generator).squeeze(1)
            for row in active:
                token = int(pending[row])
                if not matchers[row].accept_token(token):
                    raise ScoringError(f"grammar rejected token {token} it had allowed")
                steps += 1
                if token not in stop_tokens:
                    completions[row].append(token)
                finished[row] = matchers[row].is_terminated()
            if all(finished):
                break
        return completions, finished, steps


def load_xgrammar() -> Any:
    """The xgrammar module, or a clear error saying how to install it."""
    try:
        import xgrammar
    except ImportError as error:
        raise ScoringError(
            "constrained sampling needs xgrammar: pip install 'survey-sim[sample]' "
            "(CPU only: pip install --no-deps xgrammar==0.2.8 apache-tvm-ffi)"
        ) from error
    return xgrammar
