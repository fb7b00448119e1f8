"""A bounded, longest-prefix-match store of key/value states for token prefixes."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from survey_sim.engines._hf import common_prefix_length

KeyValues = tuple[tuple[torch.Tensor, torch.Tensor], ...]
"""Per layer, the (keys, values) tensors of shape ``[1, heads, tokens, head_dim]``."""


@dataclass(frozen=True)
class PrefixState:
    """The model's key/value states after reading ``tokens``."""

    tokens: tuple[int, ...]
    key_values: KeyValues

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for layer in self.key_values for t in layer)

    def truncated(self, length: int) -> KeyValues:
        """Key/values of the first ``length`` tokens (views, no copy)."""
        return tuple((k[:, :, :length], v[:, :, :length]) for k, v in self.key_values)


class PrefixCache:
    """Least-recently-used prefix states, bounded by total bytes.

    Lookup returns the stored state sharing the longest token prefix with the query; the
    caller reuses its key/values up to that length and computes only the rest. Prompts put
    persona and question preamble first, so consecutive requests share long prefixes and a
    handful of entries is enough.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._states: OrderedDict[tuple[int, ...], PrefixState] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._states)

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._bytes

    def longest_match(self, tokens: Sequence[int]) -> tuple[PrefixState | None, int]:
        """The state sharing the longest prefix with ``tokens``, and that prefix's length."""
        best: PrefixState | None = None
        best_length = 0
        for state in self._states.values():
            length = common_prefix_length(state.tokens, tokens)
            if length > best_length:
                best, best_length = state, length
        if best is not None:
            self._states.move_to_end(best.tokens)
        return best, best_length

    def put(self, state: PrefixState) -> None:
        """Store a state, evicting the least recently used ones beyond the byte budget."""
        if state.nbytes > self.max_bytes:
            return
        previous = self._states.pop(state.tokens, None)
        if previous is not None:
            self._bytes -= previous.nbytes
        self._states[state.tokens] = state
        self._bytes += state.nbytes
        while self._bytes > self.max_bytes:
            _, evicted = self._states.popitem(last=False)
            self._bytes -= evicted.nbytes

    def clear(self) -> None:
        """Drop every stored state."""
        self._states.clear()
        self._bytes = 0
