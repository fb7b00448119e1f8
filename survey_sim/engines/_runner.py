"""The forward runner of the embedded engine: one model's forward passes, prompt prefills
and step-by-step decoders, shared by the tree scorer (:mod:`survey_sim.engines._tree`) and
the grammar sampler (:mod:`survey_sim.engines._grammar`). It counts its forward passes in
the engine's :class:`~survey_sim.engines.base.EngineStats`."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import torch
from transformers import Cache, DynamicCache, PreTrainedModel

from survey_sim.engines._architecture import Architecture, Masks, Strategy
from survey_sim.engines.base import EngineStats
from survey_sim.engines.prefix_cache import KeyValues, PrefixCache, PrefixState


class ForwardRunner:
    """Forward passes of ``model`` on ``device``, with the prefix cache the ``strategy``
    uses (``"cache"``: reused and filled; otherwise not used)."""

    def __init__(
        self,
        model: PreTrainedModel,
        architecture: Architecture,
        strategy: Strategy,
        prefix_cache: PrefixCache,
        stats: EngineStats,
        device: torch.device,
    ) -> None:
        self.model, self.architecture, self.strategy = model, architecture, strategy
        self.prefix_cache, self.stats, self.device = prefix_cache, stats, device
        # transformers renamed the key/value cache argument from past_key_values to cache
        parameters = inspect.signature(model.forward).parameters
        self.cache_keyword = "cache" if "cache" in parameters else "past_key_values"

    def call(self, cache: Cache, **inputs: Any) -> Any:
        """One forward pass (counted) of ``inputs`` after the key/values in ``cache``, which
        it extends."""
        self.stats.forward_passes += 1
        return self.model(**inputs, **{self.cache_keyword: cache}, use_cache=True)

    @staticmethod
    def cache_of(output: Any) -> Any:
        """The key/value cache a forward pass returned (under either name)."""
        cache = getattr(output, "cache", None)
        return cache if cache is not None else output.past_key_values

    @property
    def uses_cache(self) -> bool:
        """Whether prompt prefixes are reused from (and stored in) the prefix cache."""
        return self.strategy == "cache"

    def masks(
        self, visible: torch.Tensor, positions: torch.Tensor, key_positions: torch.Tensor
    ) -> Masks:
        """Every layer type's attention masks for queries that may see ``visible`` keys."""
        return self.architecture.masks(visible, positions, key_positions, self.model.dtype)

    def forward(
        self,
        tokens: list[int],
        past: KeyValues,
        positions: Sequence[int],
        masks: Masks | None,
        *,
        keep: list[int],
    ) -> Any:
        """One forward pass of ``tokens`` after ``past`` (may be empty); logits at ``keep``.

        The cache keeps every key/value of every layer (no config, so no sliding-window
        truncation): ``masks`` say what each token sees, and trunks are cut from it.
        """
        return self.call(
            DynamicCache(ddp_cache_data=past or None),
            input_ids=torch.tensor([tokens], device=self.device),
            position_ids=torch.tensor([list(positions)], device=self.device),
            attention_mask=masks,
            logits_to_keep=torch.tensor(keep, device=self.device),
        )

    def prefill(self, tokens: list[int]) -> Prompt:
        """The model's state after ``tokens`` and its next-token logits.

        On models a tree mask can branch, the state is the prompt's key/values, reused from
        and stored into the prefix cache; otherwise it is the model's own cache (recurrent
        states included), computed whole.
        """
        if self.architecture.tree_problem:
            output = self.call(
                DynamicCache(config=self.model.config),
                input_ids=torch.tensor([tokens], device=self.device),
                logits_to_keep=1,
            )
            state: KeyValues | Cache = self.cache_of(output)
            reused = 0
        else:
            use_cache = self.uses_cache
            cached, reused = (
                self.prefix_cache.longest_match(tokens[:-1]) if use_cache else (None, 0)
            )
            past = cached.truncated(reused) if cached is not None and reused > 0 else ()
            output = self.forward(
                tokens[reused:],
                past,
                range(reused, len(tokens)),
                None,
                keep=[len(tokens) - reused - 1],
            )
            state = tuple((layer.keys, layer.values) for layer in self.cache_of(output).layers)
            if use_cache:
                self.prefix_cache.put(PrefixState(tuple(tokens), state))
        return Prompt(len(tokens), state, output.logits[0, -1].float(), reused)

    def decoder(self, prompt: Prompt, size: int) -> Decoder:
        """``size`` completions continuing ``prompt``, one token per step each."""
        if isinstance(prompt.state, Cache):
            return CopiedStates(self, prompt, size)
        return SharedPrompt(self, prompt, size)


@dataclass(frozen=True)
class Prompt:
    """A sampling prompt computed once: its length, the model's state after it, the
    next-token logits and how many of its tokens came from the prefix cache."""

    length: int
    state: KeyValues | Cache
    logits: torch.Tensor
    reused: int


class Decoder(Protocol):
    """Completions continuing one prompt, all advanced one token per step."""

    logits: torch.Tensor
    """Next-token logits of every completion before the first step, ``[completions,
    vocabulary]``."""

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Append one token to each completion; the next-token logits of each."""
        ...


class SharedPrompt:
    """Completions as branches of one sequence over a single copy of the prompt's
    key/values; each branch sees the prompt and its own tokens, through the masks of each
    layer type (so sliding windows hold across the prompt and the completion)."""

    def __init__(self, runner: ForwardRunner, prompt: Prompt, size: int) -> None:
        assert not isinstance(prompt.state, Cache)
        self.runner, self.prompt, self.size = runner, prompt, size
        self.cache = DynamicCache(ddp_cache_data=prompt.state)
        self.logits = prompt.logits.expand(size, -1).clone()
        self.fed = 0

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        runner, device, size = self.runner, self.runner.device, self.size
        position = self.prompt.length + self.fed
        own = torch.eye(size, dtype=torch.bool, device=device).repeat(1, self.fed + 1)
        prompt = torch.ones(size, self.prompt.length, dtype=torch.bool, device=device)
        generated = torch.arange(self.fed + 1, device=device).repeat_interleave(size)
        key_positions = torch.cat(
            [torch.arange(self.prompt.length, device=device), self.prompt.length + generated]
        )
        masks = runner.masks(
            torch.cat([prompt, own], dim=1),
            torch.full((size,), position, device=device),
            key_positions,
        )
        output = runner.call(
            self.cache,
            input_ids=tokens[None, :].to(device),
            position_ids=torch.full((1, size), position, device=device),
            attention_mask=masks,
        )
        self.fed += 1
        logits: torch.Tensor = output.logits[0].float()
        return logits


class CopiedStates:
    """Completions as rows of a batch, each from its own copy of the prompt's state: the
    model's own masks and recurrent layers apply unchanged (models a mask cannot branch)."""

    def __init__(self, runner: ForwardRunner, prompt: Prompt, size: int) -> None:
        assert isinstance(prompt.state, Cache)
        self.runner, self.prompt, self.size = runner, prompt, size
        self.cache = copy.deepcopy(prompt.state)
        first_row = torch.zeros(size, dtype=torch.long, device=runner.device)
        self.cache.reorder_cache(cast(torch.LongTensor, first_row))
        self.logits = prompt.logits.expand(size, -1).clone()
        self.fed = 0

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        runner, device = self.runner, self.runner.device
        output = runner.call(
            self.cache,
            input_ids=tokens[:, None].to(device),
            position_ids=torch.full((self.size, 1), self.prompt.length + self.fed, device=device),
        )
        self.fed += 1
        logits: torch.Tensor = output.logits[:, -1].float()
        return logits
