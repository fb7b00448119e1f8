"""What exact prefix reuse must know about a model's layers.

The embedded engine runs many sequences in one pass by letting each token attend only to
its own ancestors (a tree-shaped attention mask), and it samples many completions over one
copy of a prompt the same way. That is exact only when every layer sees earlier tokens
through a mask the engine can rebuild:

* full causal attention: every earlier position;
* sliding-window attention: the last ``window`` positions (Mistral, Qwen2's upper layers,
  five of every six Gemma-3 layers);
* chunked attention: the earlier positions of its own chunk (Llama 4).

Recurrent layers (Mamba, linear attention, short convolutions: Jamba, Bamba, Zamba,
Qwen3-Next, LFM2...) carry a state along the sequence that no mask can branch. On those
models the prompt is computed once and the model's own state after it (recurrent states and
key/values) is copied to every option or completion, which then advance a token per step as
in generation; or every sequence is computed whole.

Layer types and windows are read with transformers' own ``get_layer_types_and_kwargs``, the
function its caches are built from, so they are the ones the model's own masks use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from transformers import PreTrainedModel
from transformers.cache_utils import get_layer_types_and_kwargs

Strategy = Literal["cache", "request", "state", "none"]
"""How scoring reuses shared prompt tokens (see :mod:`survey_sim.engines.transformers`)."""

MASKED_LAYER_TYPES = frozenset({"full_attention", "sliding_attention", "chunked_attention"})
RECURRENT_LAYER_TYPES = frozenset({"conv", "linear_attention", "hybrid", "hybrid_sliding"})
MASK_HONOURING_ATTENTION = frozenset({"eager", "sdpa"})
"""Attention implementations that apply a custom 4D mask as given (flash attention does not)."""

Masks = torch.Tensor | dict[str, torch.Tensor]
"""One additive mask for every layer, or one per layer type (models with mixed layers)."""


@dataclass(frozen=True)
class Architecture:
    """How a loaded model's layers see earlier tokens.

    Attributes:
        model_type: The config's ``model_type`` (``"qwen2"``, ``"jamba"``...).
        layer_types: Each decoder layer's type, as transformers' caches read it.
        spans: The window of each sliding layer type and the chunk of each chunked one.
        attention: The attention implementation the model runs (``"sdpa"``, ``"eager"``...).
        context_length: The most positions the model was built for (``None``: not stated).
        tree_problem: Why a tree-shaped pass would not be exact on this model (``None``
            when it is).
    """

    model_type: str
    layer_types: tuple[str, ...]
    spans: Mapping[str, int]
    attention: str
    context_length: int | None
    tree_problem: str | None

    @classmethod
    def of(cls, model: PreTrainedModel) -> Architecture:
        """Read a loaded model's architecture from its config."""
        config = model.config.get_text_config(decoder=True)
        layer_types, layer_kwargs = get_layer_types_and_kwargs(config)
        # transformers before 5.2x returned one kwargs dict shared by every layer; later
        # versions return one per layer.
        per_layer = (
            layer_kwargs if isinstance(layer_kwargs, list) else [layer_kwargs] * len(layer_types)
        )
        spans: dict[str, int] = {}
        problems = []
        for layer_type, kwargs in zip(layer_types, per_layer, strict=True):
            span = kwargs.get("sliding_window")
            windowed = layer_type in ("sliding_attention", "chunked_attention")
            if windowed and span is not None and spans.setdefault(layer_type, span) != span:
                problems.append(f"its {layer_type} layers have different windows")
        recurrent = sorted({t for t in layer_types if t in RECURRENT_LAYER_TYPES})
        unknown = sorted(set(layer_types) - MASKED_LAYER_TYPES - RECURRENT_LAYER_TYPES)
        if recurrent:
            problems.append(
                f"its {'/'.join(recurrent)} layers carry a state along the sequence that an "
                "attention mask cannot branch"
            )
        if unknown:
            problems.append(f"its layer types {unknown} are not ones a tree mask can express")
        attention = str(model.config._attn_implementation)
        if attention not in MASK_HONOURING_ATTENTION:
            problems.append(f"its attention implementation {attention!r} ignores custom masks")
        if getattr(config, "use_bidirectional_attention", False):
            problems.append("its attention is bidirectional")
        context = getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )
        return cls(
            model_type=str(config.model_type),
            layer_types=tuple(layer_types),
            spans=spans,
            attention=attention,
            context_length=int(context) if context else None,
            tree_problem="; ".join(problems) or None,
        )

    @property
    def recurrent(self) -> bool:
        """Whether some layer carries a recurrent state (Mamba, linear attention, conv)."""
        return any(t in RECURRENT_LAYER_TYPES for t in self.layer_types)

    @property
    def strategies(self) -> tuple[Strategy, ...]:
        """The scoring strategies that are exact on this model, the fastest first."""
        return ("state", "none") if self.tree_problem else ("cache", "request", "state", "none")

    def masks(
        self,
        visible: torch.Tensor,
        query_positions: torch.Tensor,
        key_positions: torch.Tensor,
        dtype: torch.dtype,
    ) -> Masks:
        """Additive ``[1, 1, queries, keys]`` masks for a pass in which query ``i`` may see
        key ``j`` where ``visible[i, j]`` (its ancestors and itself), narrowed by each layer
        type's window or chunk over the tokens' positions in their own sequences."""
        queries, keys = query_positions[:, None], key_positions[None, :]
        per_type = {}
        for layer_type in dict.fromkeys(self.layer_types):
            allowed = visible
            span = self.spans.get(layer_type)
            if layer_type == "sliding_attention" and span is not None:
                allowed = allowed & (keys > queries - span)
            elif layer_type == "chunked_attention" and span is not None:
                allowed = allowed & (keys // span == queries // span)
            mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
            per_type[layer_type] = mask.masked_fill_(~allowed, torch.finfo(dtype).min)[None, None]
        if len(per_type) == 1:
            return next(iter(per_type.values()))
        return per_type

    def describe(self) -> dict[str, object]:
        """The facts a manifest records (JSON-serialisable)."""
        return {
            "model_type": self.model_type,
            "layer_types": sorted(set(self.layer_types)),
            "windows": dict(self.spans),
            "attention": self.attention,
            "context_length": self.context_length,
            "tree_masks_exact": self.tree_problem is None,
        }
