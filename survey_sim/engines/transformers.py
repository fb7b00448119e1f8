"""The embedded engine: a Hugging Face transformers causal LM, run in-process.

Scoring reads every option's exact probability with as few forward passes as possible:

1. Consecutive requests that share a token prefix (same persona, same question preamble)
   form a *group*. Key/value states of prefixes already seen are taken from a bounded
   :class:`~survey_sim.engines.prefix_cache.PrefixCache`.
2. Each group is one forward pass shaped as a tree: the group's common prefix not yet
   cached (the *trunk*), then each request's own remaining prompt tokens, then each
   option's tokens under its request. A tree-shaped attention mask lets every token see
   only its ancestors (positions restart along each branch), so the pass computes exactly
   what separate passes would, with each shared token computed once.
3. The trunk's key/values are stored in the cache for the groups that follow.

``prefix_reuse`` selects the strategy: ``"cache"`` (the above), ``"request"`` (one tree
pass per request, nothing shared between requests), ``"state"`` (each request's prompt run
once, the model's own state after it copied to every option, options fed a token per step)
or ``"none"`` (every option's full sequence run from scratch, as a plain reference). The
tree mask applies each layer's own attention pattern (full, sliding window, chunked; see
:mod:`survey_sim.engines._architecture`), so the tree strategies agree with ``"none"`` to
float rounding on attention-only models. Models with recurrent layers (Mamba, linear
attention) cannot be branched by a mask: ``"state"`` and ``"none"`` are exact there. The
tests check every strategy against an independent full forward pass on every architecture
family users plug in. ``"auto"`` (the default) takes the fastest exact strategy for the
loaded model; an explicit strategy that would be wrong for it is refused when the engine
is built.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from survey_sim.engines._architecture import Architecture, Strategy
from survey_sim.engines._grammar import GrammarSampler
from survey_sim.engines._hf import HFTokenizer, TokenizedRequest, check_fits, read_completions
from survey_sim.engines._runner import ForwardRunner
from survey_sim.engines._tree import groups, score_from_state, score_full_sequences, score_group
from survey_sim.engines.base import (
    EngineBase,
    ResultsCallback,
    SampleRequest,
    SampleResult,
    ScoreRequest,
    ScoreResult,
)
from survey_sim.engines.prefix_cache import PrefixCache
from survey_sim.engines.records import AdapterDescription
from survey_sim.errors import PrecisionWarning, ScoringError

PrefixReuse = Literal["auto", "cache", "request", "state", "none"]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class EngineSettings(BaseModel):
    """Settings of the embedded engine.

    Attributes:
        threads: CPU threads for torch (``None`` keeps torch's default).
        dtype: Weights and activations dtype. ``bfloat16`` / ``float16`` run faster but
            are not exact: on the default model (``benchmarks/dtype.py``, an AVX-512 CPU)
            ``bfloat16`` ran the demo study 1.4x as fast and moved probabilities by up to
            0.028 from ``float32``, and by up to 0.023 between prefix-reuse strategies (how
            prompts were grouped), where ``float32`` agrees to 5e-6. The output layer runs
            in ``float32`` whatever the dtype (without it: 1.5x, 0.047 and 0.046); building
            an engine in another dtype warns with these numbers.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        prefix_reuse: ``"auto"`` (the fastest exact strategy for the model), ``"cache"``,
            ``"request"``, ``"state"`` or ``"none"`` (see the module docstring).
        cache_mb: Memory budget of the prefix key/value cache, in MiB.
        max_batch_tokens: Tokens per forward pass that grouping aims to stay under (a
            single request longer than this still runs, alone).
        sample_batch: Completions drawn side by side when sampling: branches of one
            sequence over a single copy of the prompt (key/values grow by this many tokens
            per generated step), or, on models with recurrent layers, rows that each hold a
            copy of the prompt's state.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    threads: int | None = Field(default=None, ge=1)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = "cpu"
    prefix_reuse: PrefixReuse = "auto"
    cache_mb: float = Field(default=512, gt=0)
    max_batch_tokens: int = Field(default=1024, ge=1)
    sample_batch: int = Field(default=256, ge=1)


class TransformersEngine(EngineBase):
    """Exact option scoring with a local transformers model (see the module docstring).

    Build it from a model name or path with :meth:`from_pretrained`, or wrap an already
    loaded model and tokenizer.

    Args:
        model, tokenizer: The loaded model and its tokenizer.
        model_id: A readable name recorded in results.
        settings: Engine settings (threads, dtype, prefix reuse...).
        weights_fingerprint: A hash of the weight files the model was loaded from, unchanged
            since (:meth:`from_pretrained` passes it). Without it the fingerprint hashes every
            weight tensor in memory: slower, but right for a model changed after loading.
        adapter: The LoRA adapter merged into the model, as
            :func:`~survey_sim.engines.registry.load_local_model` describes it (recorded in
            :meth:`describe`, where runs find what the adapter was trained on).

    Raises:
        ScoringError: ``settings.prefix_reuse`` names a strategy that would not be exact on
            this model (e.g. ``"cache"`` on a model with Mamba layers).
    """

    text: HFTokenizer

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        model_id: str,
        settings: EngineSettings | None = None,
        weights_fingerprint: str | None = None,
        adapter: AdapterDescription | None = None,
    ) -> None:
        self.settings = settings or EngineSettings()
        if self.settings.threads is not None:
            torch.set_num_threads(self.settings.threads)
        self._default_threads = torch.get_num_threads()
        # transformers types its `to` through a decorator that mypy cannot call correctly.
        self.model = model.to(device=self.settings.device, dtype=DTYPES[self.settings.dtype])  # type: ignore[call-arg]
        self.model.eval()
        if self.settings.dtype != "float32":
            _float32_output(self.model)
            warnings.warn(
                f"{self.settings.dtype}: probabilities are not exact. On the default model "
                "bfloat16 moved them by up to 0.028 from float32, and by up to 0.023 with how "
                "prompts were grouped (benchmarks/dtype.py); use float32 (the default) for "
                "numbers you report",
                PrecisionWarning,
                stacklevel=2,
            )
        self.architecture = Architecture.of(self.model)
        self.strategy = _exact_strategy(self.settings.prefix_reuse, self.architecture, model_id)
        self.tokenizer = tokenizer
        self.text = HFTokenizer(tokenizer, model_id=model_id)
        self._model_id = model_id
        self._weights_fingerprint = weights_fingerprint
        self.adapter = adapter
        self._device = torch.device(self.settings.device)
        self.prefix_cache = PrefixCache(int(self.settings.cache_mb * 2**20))
        self.runner = ForwardRunner(
            self.model,
            self.architecture,
            self.strategy,
            self.prefix_cache,
            self.stats,
            self._device,
        )
        self.sampler = GrammarSampler(tokenizer, self.model.config.vocab_size, self.stats)

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path | None = None,
        settings: EngineSettings | None = None,
        *,
        adapter: str | Path | None = None,
    ) -> TransformersEngine:
        """Load a model by name (default: SmolLM2-135M-Instruct) or local path.

        ``model`` may be a local Hugging Face model directory, a ``.gguf`` file, or a known
        name (see :func:`survey_sim.engines.registry.resolve_model`). Nothing is downloaded.
        ``adapter`` is a LoRA adapter folder (``survey-sim tune`` makes them), merged into
        the weights; the fingerprint covers it.
        """
        from survey_sim.engines.registry import load_local_model

        loaded = load_local_model(model, adapter)
        return cls(
            loaded.model,
            loaded.tokenizer,
            model_id=loaded.model_id,
            settings=settings,
            weights_fingerprint=loaded.weights_fingerprint,
            adapter=loaded.adapter,
        )

    @property
    def model_id(self) -> str:
        """The model's readable name, recorded in results."""
        return self._model_id

    @property
    def context_length(self) -> int | None:
        """The most positions the model was built for (its config's
        ``max_position_embeddings``)."""
        return self.architecture.context_length

    def settings_record(self) -> dict[str, Any]:
        """The engine settings (the manifest records them)."""
        return self.settings.model_dump()

    def details(self) -> dict[str, Any]:
        """The model's architecture as the engine read it."""
        return {"architecture": self.architecture.describe()}

    def __repr__(self) -> str:
        return (
            f"TransformersEngine(model_id={self.model_id!r}, strategy={self.strategy!r}, "
            f"settings={self.settings!r})"
        )

    def fingerprint_parts(self) -> Iterator[str | bytes]:
        """Everything the results depend on: the weights (their files' hash, or every tensor
        when the model did not come straight from files), the tokenizer and chat template,
        and the settings that change numbers (not threads or the cache budget)."""
        if self._weights_fingerprint is not None:
            yield f"files:{self._weights_fingerprint}"
        else:
            for name, tensor in self.model.state_dict().items():
                yield f"{name}|{tensor.dtype}|{tuple(tensor.shape)}"
                yield (
                    tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                )
        yield self.text.identity()
        numbers_settings = self.settings.model_copy(update={"prefix_reuse": self.strategy})
        yield numbers_settings.model_dump_json(exclude={"threads", "cache_mb"})
        if self.settings.dtype != "float32":
            yield "logits in float32"  # results stored before the output layer ran in float32

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` as the model reads it (with BOS if the model expects one)."""
        return self.text.tokenize(text)

    def share_cores(self, runs: int) -> None:
        """Torch threads: the default count divided among ``runs`` runs at once (so that two
        runs on one machine do not oversubscribe its cores), unless ``threads`` was set."""
        if self.settings.threads is None:
            torch.set_num_threads(max(1, self._default_threads // runs))

    def clear_cache(self) -> None:
        """Forget all cached prefix states."""
        self.prefix_cache.clear()

    @torch.inference_mode()
    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_results: ResultsCallback[ScoreResult] | None = None,
    ) -> list[ScoreResult]:
        """Exact log-probability of every continuation of every request, in order; each
        group's results are handed to ``on_results`` together, as soon as its pass is done."""
        results: list[ScoreResult] = []
        tokenized = (self._fitting(self.text.tokenize_request(request)) for request in requests)
        max_batch_tokens = self.settings.max_batch_tokens
        sharing = self.runner.uses_cache
        for group in groups(tokenized, sharing=sharing, max_batch_tokens=max_batch_tokens):
            if self.strategy == "none":
                scored = [
                    score_full_sequences(self.runner, item, max_batch_tokens=max_batch_tokens)
                    for item in group
                ]
            elif self.strategy == "state":
                scored = [score_from_state(self.runner, item) for item in group]
            else:
                scored = score_group(self.runner, group)
            self.count(scored)
            if on_results is not None:
                on_results(list(enumerate(scored, start=len(results))))
            results.extend(scored)
        return results

    def _fitting(self, item: TokenizedRequest) -> TokenizedRequest:
        check_fits(item.length, self.context_length, self.model_id)
        return item

    def sample(
        self,
        requests: Sequence[SampleRequest],
        *,
        on_results: ResultsCallback[SampleResult] | None = None,
    ) -> list[SampleResult]:
        """Draw completions for each request in turn (see :meth:`sample_one`); each result is
        handed to ``on_results`` as soon as it is drawn."""
        results = []
        for index, request in enumerate(requests):
            result = self.sample_one(request)
            if on_results is not None:
                on_results([(index, result)])
            results.append(result)
        return results

    @torch.inference_mode()
    def sample_one(self, request: SampleRequest) -> SampleResult:
        """Draw completions under a JSON schema with xgrammar, in batches of ``sample_batch``.

        The prompt is computed once (and reused from the prefix cache when possible); every
        batch continues from its state. At each step the grammar masks the tokens that
        cannot continue a valid completion, so invalid output is impossible by
        construction; parsed answers are checked once more, and any the grammar let through
        wrongly are flagged invalid. Completions that hit ``max_new_tokens`` are flagged as
        truncated.
        """
        tokens = self.tokenize(request.prefix)
        check_fits(len(tokens) + request.max_new_tokens, self.context_length, self.model_id)
        prompt = self.runner.prefill(tokens)
        grammar = self.sampler.grammar(request.json_schema)
        generator = torch.Generator().manual_seed(request.seed)
        texts: list[str] = []
        truncated: list[bool] = []
        generated = 0
        for start in range(0, request.n, self.settings.sample_batch):
            size = min(self.settings.sample_batch, request.n - start)
            completions, finished, steps = self.sampler.sample_batch(
                self.runner.decoder(prompt, size), grammar, size, request, generator
            )
            texts.extend(self.text.decode(ids) for ids in completions)
            truncated.extend(not done for done in finished)
            generated += steps
        result = read_completions(
            texts,
            truncated,
            request.json_schema,
            generated_tokens=generated,
            prompt_tokens=len(tokens),
            reused_tokens=prompt.reused,
        )
        self.count([result])
        return result


class Float32Output(torch.nn.Module):
    """A model's output layer computed in float32 from lower-precision hidden states:
    bfloat16 logits keep 8 bits of mantissa, so a logit near 16 moves in steps of 1/16 and
    its probability by about 6%."""

    def __init__(self, layer: torch.nn.Linear) -> None:
        super().__init__()
        self.layer = layer

    @property
    def weight(self) -> torch.Tensor:
        """The wrapped layer's weight (tied embeddings and checks read it here)."""
        return self.layer.weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        bias = None if self.layer.bias is None else self.layer.bias.float()
        return torch.nn.functional.linear(hidden.float(), self.layer.weight.float(), bias)


def _float32_output(model: PreTrainedModel) -> None:
    """Compute ``model``'s logits in float32 (:class:`Float32Output`), once."""
    layer = model.get_output_embeddings()
    if isinstance(layer, torch.nn.Linear):
        model.set_output_embeddings(Float32Output(layer))


def _exact_strategy(requested: PrefixReuse, architecture: Architecture, model_id: str) -> Strategy:
    """The strategy to score with: ``requested``, or the fastest exact one for ``auto``.

    Raises:
        ScoringError: ``requested`` would not be exact on this model.
    """
    exact = architecture.strategies
    if requested == "auto":
        return exact[0]
    if requested not in exact:
        raise ScoringError(
            f"prefix_reuse={requested!r} would give wrong probabilities on model {model_id!r}: "
            f"{architecture.tree_problem}. Exact here: {', '.join(exact)} (or 'auto')"
        )
    return requested
