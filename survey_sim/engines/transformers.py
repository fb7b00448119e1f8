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

import copy
import functools
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import Cache, DynamicCache, PreTrainedModel, PreTrainedTokenizerBase

from survey_sim.engines._architecture import Architecture, Masks, Strategy
from survey_sim.engines._hf import (
    HFTokenizer,
    TokenizedRequest,
    check_fits,
    common_prefix_length,
    read_completions,
)
from survey_sim.engines.base import (
    ChatMessage,
    EngineStats,
    ResultsCallback,
    SampleRequest,
    SampleResult,
    ScoreRequest,
    ScoreResult,
)
from survey_sim.engines.prefix_cache import KeyValues, PrefixCache, PrefixState
from survey_sim.errors import ScoringError

PrefixReuse = Literal["auto", "cache", "request", "state", "none"]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class EngineSettings(BaseModel):
    """Settings of the embedded engine.

    Attributes:
        threads: CPU threads for torch (``None`` keeps torch's default).
        dtype: Weights and activations dtype. ``bfloat16`` is about twice as fast on CPUs
            with AVX-512 and changes log-probs slightly.
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


class TransformersEngine:
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

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        model_id: str,
        settings: EngineSettings | None = None,
        weights_fingerprint: str | None = None,
        adapter: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings or EngineSettings()
        if self.settings.threads is not None:
            torch.set_num_threads(self.settings.threads)
        self._default_threads = torch.get_num_threads()
        # transformers types its `to` through a decorator that mypy cannot call correctly.
        self.model = model.to(device=self.settings.device, dtype=DTYPES[self.settings.dtype])  # type: ignore[call-arg]
        self.model.eval()
        self.architecture = Architecture.of(self.model)
        self.strategy = _exact_strategy(self.settings.prefix_reuse, self.architecture, model_id)
        self.tokenizer = tokenizer
        self.text = HFTokenizer(tokenizer, model_id=model_id)
        self._model_id = model_id
        self._weights_fingerprint = weights_fingerprint
        self.adapter = adapter
        self._device = torch.device(self.settings.device)
        self.prefix_cache = PrefixCache(int(self.settings.cache_mb * 2**20))
        self._grammars: dict[str, Any] = {}
        self._grammar_compiler: Any = None
        self._stats = EngineStats()

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
    def stats(self) -> EngineStats:
        """Running totals of the work done."""
        return self._stats

    @property
    def context_length(self) -> int | None:
        """The most positions the model was built for (its config's
        ``max_position_embeddings``)."""
        return self.architecture.context_length

    def sequence_tokens(self, request: ScoreRequest | SampleRequest) -> int:
        """Tokens of the longest sequence ``request`` makes the model read."""
        return self.text.sequence_tokens(request)

    def describe(self) -> dict[str, Any]:
        """Engine type, model name and fingerprint, settings, the scoring strategy in use,
        the model's architecture as the engine read it, and its adapter if it has one (for
        run manifests)."""
        description = {
            "engine": type(self).__name__,
            "model_id": self.model_id,
            "fingerprint": self.fingerprint,
            "settings": self.settings.model_dump(),
            "strategy": self.strategy,
            "architecture": self.architecture.describe(),
        }
        return {**description, "adapter": self.adapter} if self.adapter else description

    def __repr__(self) -> str:
        return (
            f"TransformersEngine(model_id={self.model_id!r}, strategy={self.strategy!r}, "
            f"settings={self.settings!r})"
        )

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of everything the results depend on: the weights (their files' hash, or
        every tensor when the model did not come straight from files), the tokenizer and
        chat template, and the settings that change numbers (not threads or the cache
        budget). The results store keys on it."""
        digest = hashlib.blake2b(digest_size=20)
        if self._weights_fingerprint is not None:
            digest.update(f"files:{self._weights_fingerprint}".encode())
        else:
            for name, tensor in self.model.state_dict().items():
                digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
                digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
        digest.update(self.text.identity().encode())
        numbers_settings = self.settings.model_copy(update={"prefix_reuse": self.strategy})
        digest.update(numbers_settings.model_dump_json(exclude={"threads", "cache_mb"}).encode())
        return digest.hexdigest()

    def render_chat(self, messages: Sequence[ChatMessage], *, add_generation_prompt: bool) -> str:
        """Render messages with the tokenizer's chat template."""
        return self.text.render_chat(messages, add_generation_prompt=add_generation_prompt)

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
        for group in self._groups(tokenized):
            if self.strategy == "none":
                scored = [self._score_full_sequences(item) for item in group]
            elif self.strategy == "state":
                scored = [self._score_from_state(item) for item in group]
            else:
                scored = self._score_group(group)
            for result in scored:
                self._stats.requests += 1
                self._stats.prompt_tokens += result.prompt_tokens
                self._stats.computed_tokens += result.computed_tokens
                self._stats.reused_tokens += result.reused_tokens
            if on_results is not None:
                on_results(list(enumerate(scored, start=len(results))))
            results.extend(scored)
        return results

    def _fitting(self, item: TokenizedRequest) -> TokenizedRequest:
        check_fits(item.length, self.context_length, self.model_id)
        return item

    def _groups(self, items: Iterable[TokenizedRequest]) -> Iterator[list[TokenizedRequest]]:
        """Runs of consecutive requests scored in one pass.

        A run ends where the next request shares less with the run's first request than the
        run's members share with each other (it would recompute tokens its predecessor
        could have shared), or where the pass would exceed ``max_batch_tokens``.
        """
        group: list[TokenizedRequest] = []
        common = 0  # prompt tokens all members of the group share
        for item in items:
            if group and self.strategy == "cache":
                shared = common_prefix_length(group[0].shared, item.shared)
                keeps_sharing = len(group) == 1 or shared >= common
                joint = shared if len(group) == 1 else common
                if keeps_sharing and (
                    _pass_tokens([*group, item], joint) <= self.settings.max_batch_tokens
                ):
                    group.append(item)
                    common = joint
                    continue
            if group:
                yield group
            group, common = [item], 0
        if group:
            yield group

    def _score_group(self, group: list[TokenizedRequest]) -> list[ScoreResult]:
        """Score a group of requests in one tree-shaped forward pass (module docstring)."""
        common = min(len(item.shared) for item in group) - 1  # each request keeps >= 1 token
        for item in group[1:]:
            common = min(common, common_prefix_length(group[0].shared, item.shared))
        use_cache = self.strategy == "cache"
        cached, reused = (
            self.prefix_cache.longest_match(group[0].shared[:common]) if use_cache else (None, 0)
        )
        past = cached.truncated(reused) if cached is not None and reused > 0 else ()

        layout = _TreeLayout(start=reused)
        layout.add(group[0].shared[reused:common], request=-1, branch=-1)
        predicting_rows: list[list[list[int]]] = []  # per request, per option
        for index, item in enumerate(group):
            layout.add(item.shared[common:], request=index, branch=-1)
            last_prompt_row = len(layout.tokens) - 1
            option_rows = []
            for branch, tokens in enumerate(item.continuations):
                layout.add(tokens[:-1], request=index, branch=branch)
                option_rows.append([last_prompt_row, *layout.rows(index, branch)])
            predicting_rows.append(option_rows)
        # Logits only where a scored token is predicted: the vocabulary projection is costly.
        kept = sorted({row for rows in predicting_rows for option in rows for row in option})
        output = self._forward(
            layout.tokens,
            past,
            layout.positions,
            self._tree_masks(layout),
            keep=kept,
        )
        token_logprobs = torch.log_softmax(output.logits[0].float(), dim=-1)
        kept_index = {row: i for i, row in enumerate(kept)}

        if use_cache and common > reused:
            trunk = tuple(  # copies: a view would keep the whole pass's tensors alive
                (layer.keys[:, :, :common].clone(), layer.values[:, :, :common].clone())
                for layer in output.past_key_values.layers
            )
            self.prefix_cache.put(PrefixState(tuple(group[0].shared[:common]), trunk))

        results = []
        for index, item in enumerate(group):
            logprobs = []
            for tokens, rows in zip(item.continuations, predicting_rows[index], strict=True):
                targets = torch.tensor(tokens, device=token_logprobs.device)
                picked = token_logprobs[[kept_index[row] for row in rows]]
                logprobs.append(picked.gather(1, targets[:, None]).sum().item())
            own = len(item.shared) - common + sum(len(t) - 1 for t in item.continuations)
            trunk_computed = common - reused if index == 0 else 0
            results.append(
                ScoreResult(
                    logprobs=tuple(logprobs),
                    continuation_tokens=tuple(len(t) for t in item.continuations),
                    prompt_tokens=len(item.shared),
                    reused_tokens=reused if index == 0 else common,
                    computed_tokens=own + trunk_computed,
                )
            )
        return results

    def _score_from_state(self, item: TokenizedRequest) -> ScoreResult:
        """Score a request on a model a tree mask cannot branch: its prompt once, the model's
        state after it copied to every option, and the options fed a token per step (the way
        the model generates, so recurrent layers continue from the prompt's state)."""
        options = item.continuations
        steps = max(len(tokens) for tokens in options)
        # Shorter options are padded by repeating their last token; their log-probs stop
        # at their own length, and a row's padding only ever precedes its own later steps.
        grid = torch.tensor([tokens + tokens[-1:] * (steps - len(tokens)) for tokens in options])
        live = torch.tensor([[step < len(tokens) for step in range(steps)] for tokens in options])
        decoder = self._decoder(self._prefill(item.shared), len(options))
        logits = decoder.logits
        total = torch.zeros(len(options), dtype=torch.float64)
        for step in range(steps):
            token_logprobs = torch.log_softmax(logits.float(), dim=-1)
            picked = token_logprobs.gather(1, grid[:, step : step + 1].to(logits.device))[:, 0]
            total += torch.where(live[:, step], picked.cpu().double(), 0.0)
            if step + 1 < steps:
                logits = decoder.step(grid[:, step])
        return ScoreResult(
            logprobs=tuple(total.tolist()),
            continuation_tokens=tuple(len(tokens) for tokens in options),
            prompt_tokens=len(item.shared),
            reused_tokens=0,
            computed_tokens=len(item.shared) + len(options) * (steps - 1),
        )

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
            self._stats.requests += 1
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
        prompt = self._prefill(tokens)
        self._stats.prompt_tokens += len(tokens)
        self._stats.computed_tokens += len(tokens) - prompt.reused
        self._stats.reused_tokens += prompt.reused
        grammar = self._compiled_grammar(request.json_schema)
        generator = torch.Generator().manual_seed(request.seed)
        texts: list[str] = []
        truncated: list[bool] = []
        generated = 0
        for start in range(0, request.n, self.settings.sample_batch):
            size = min(self.settings.sample_batch, request.n - start)
            completions, finished, steps = self._sample_batch(
                self._decoder(prompt, size), grammar, size, request, generator
            )
            texts.extend(self.text.decode(ids) for ids in completions)
            truncated.extend(not done for done in finished)
            generated += steps
        return read_completions(
            texts,
            truncated,
            request.json_schema,
            generated_tokens=generated,
            prompt_tokens=len(tokens),
            reused_tokens=prompt.reused,
        )

    def _prefill(self, tokens: list[int]) -> _Prompt:
        """The model's state after ``tokens`` and its next-token logits.

        On models a tree mask can branch, the state is the prompt's key/values, reused from
        and stored into the prefix cache; otherwise it is the model's own cache (recurrent
        states included), computed whole.
        """
        if self.architecture.tree_problem:
            cache = DynamicCache(config=self.model.config)
            self._stats.forward_passes += 1
            output = self.model(
                input_ids=torch.tensor([tokens], device=self._device),
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            state: KeyValues | Cache = output.past_key_values
            reused = 0
        else:
            use_cache = self.strategy == "cache"
            cached, reused = (
                self.prefix_cache.longest_match(tokens[:-1]) if use_cache else (None, 0)
            )
            past = cached.truncated(reused) if cached is not None and reused > 0 else ()
            output = self._forward(
                tokens[reused:],
                past,
                range(reused, len(tokens)),
                None,
                keep=[len(tokens) - reused - 1],
            )
            state = tuple((layer.keys, layer.values) for layer in output.past_key_values.layers)
            if use_cache:
                self.prefix_cache.put(PrefixState(tuple(tokens), state))
        return _Prompt(len(tokens), state, output.logits[0, -1].float(), reused)

    def _decoder(self, prompt: _Prompt, size: int) -> _Decoder:
        """``size`` completions continuing ``prompt``, one token per step each."""
        if isinstance(prompt.state, Cache):
            return _CopiedStates(self, prompt, size)
        return _SharedPrompt(self, prompt, size)

    def _sample_batch(
        self,
        decoder: _Decoder,
        grammar: Any,
        size: int,
        request: SampleRequest,
        generator: torch.Generator,
    ) -> tuple[list[list[int]], list[bool], int]:
        """One batch of constrained completions; returns token ids, finished flags, steps."""
        xgrammar = _xgrammar()
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
                self._stats.decode_tokens += size
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

    def _tree_masks(self, layout: _TreeLayout) -> Masks:
        """The attention masks of a tree-shaped pass, each layer type's pattern applied."""
        positions = torch.tensor(layout.positions, device=self._device)
        past = torch.arange(layout.start, device=self._device)
        return self.architecture.masks(
            layout.visible(self._device),
            positions,
            torch.cat([past, positions]),
            self.model.dtype,
        )

    def _compiled_grammar(self, schema: Mapping[str, Any]) -> Any:
        """The xgrammar grammar for a JSON schema (compiled once per schema)."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            xgrammar = _xgrammar()
            if self._grammar_compiler is None:
                info = xgrammar.TokenizerInfo.from_huggingface(
                    self.tokenizer, vocab_size=self.model.config.vocab_size
                )
                self._grammar_compiler = xgrammar.GrammarCompiler(info)
            try:
                self._grammars[key] = self._grammar_compiler.compile_json_schema(
                    key, any_whitespace=False
                )
            except RuntimeError as error:
                raise ScoringError(f"cannot compile JSON schema {key}: {error}") from None
        return self._grammars[key]

    def _score_full_sequences(self, item: TokenizedRequest) -> ScoreResult:
        """Reference path: run each option's whole sequence from scratch, batched and padded."""
        shared = item.shared
        sequences = [shared + tokens for tokens in item.continuations]
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
            self._stats.forward_passes += 1
            logits = self.model(input_ids=ids, attention_mask=attention).logits
            token_logprobs = torch.log_softmax(logits.float(), dim=-1)
            for row, sequence in enumerate(batch):
                targets = torch.tensor(sequence[len(shared) :], device=self._device)
                predicted_by = torch.arange(len(shared) - 1, len(sequence) - 1, device=self._device)
                logprobs.append(token_logprobs[row, predicted_by, targets].sum().item())
        return ScoreResult(
            logprobs=tuple(logprobs),
            continuation_tokens=tuple(len(t) for t in item.continuations),
            prompt_tokens=len(shared),
            reused_tokens=0,
            computed_tokens=sum(len(s) for s in sequences),
        )

    def _forward(
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
        self._stats.forward_passes += 1
        return self.model(
            input_ids=torch.tensor([tokens], device=self._device),
            position_ids=torch.tensor([list(positions)], device=self._device),
            attention_mask=masks,
            past_key_values=DynamicCache(ddp_cache_data=past or None),
            use_cache=True,
            logits_to_keep=torch.tensor(keep, device=self._device),
        )


@dataclass(frozen=True)
class _Prompt:
    """A sampling prompt computed once: its length, the model's state after it, the
    next-token logits and how many of its tokens came from the prefix cache."""

    length: int
    state: KeyValues | Cache
    logits: torch.Tensor
    reused: int


class _Decoder(Protocol):
    """Completions continuing one prompt, all advanced one token per step."""

    logits: torch.Tensor
    """Next-token logits of every completion before the first step, ``[completions,
    vocabulary]``."""

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Append one token to each completion; the next-token logits of each."""
        ...


class _SharedPrompt:
    """Completions as branches of one sequence over a single copy of the prompt's
    key/values; each branch sees the prompt and its own tokens, through the masks of each
    layer type (so sliding windows hold across the prompt and the completion)."""

    def __init__(self, engine: TransformersEngine, prompt: _Prompt, size: int) -> None:
        assert not isinstance(prompt.state, Cache)
        self.engine, self.prompt, self.size = engine, prompt, size
        self.cache = DynamicCache(ddp_cache_data=prompt.state)
        self.logits = prompt.logits.expand(size, -1).clone()
        self.fed = 0

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        engine, device, size = self.engine, self.engine._device, self.size
        position = self.prompt.length + self.fed
        own = torch.eye(size, dtype=torch.bool, device=device).repeat(1, self.fed + 1)
        prompt = torch.ones(size, self.prompt.length, dtype=torch.bool, device=device)
        generated = torch.arange(self.fed + 1, device=device).repeat_interleave(size)
        key_positions = torch.cat(
            [torch.arange(self.prompt.length, device=device), self.prompt.length + generated]
        )
        masks = engine.architecture.masks(
            torch.cat([prompt, own], dim=1),
            torch.full((size,), position, device=device),
            key_positions,
            engine.model.dtype,
        )
        engine._stats.forward_passes += 1
        output = engine.model(
            input_ids=tokens[None, :].to(device),
            position_ids=torch.full((1, size), position, device=device),
            attention_mask=masks,
            past_key_values=self.cache,
            use_cache=True,
        )
        self.fed += 1
        logits: torch.Tensor = output.logits[0].float()
        return logits


class _CopiedStates:
    """Completions as rows of a batch, each from its own copy of the prompt's state: the
    model's own masks and recurrent layers apply unchanged (models a mask cannot branch)."""

    def __init__(self, engine: TransformersEngine, prompt: _Prompt, size: int) -> None:
        assert isinstance(prompt.state, Cache)
        self.engine, self.prompt, self.size = engine, prompt, size
        self.cache = copy.deepcopy(prompt.state)
        first_row = torch.zeros(size, dtype=torch.long, device=engine._device)
        self.cache.reorder_cache(cast(torch.LongTensor, first_row))
        self.logits = prompt.logits.expand(size, -1).clone()
        self.fed = 0

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        engine, device = self.engine, self.engine._device
        engine._stats.forward_passes += 1
        output = engine.model(
            input_ids=tokens[:, None].to(device),
            position_ids=torch.full((self.size, 1), self.prompt.length + self.fed, device=device),
            past_key_values=self.cache,
            use_cache=True,
        )
        self.fed += 1
        logits: torch.Tensor = output.logits[:, -1].float()
        return logits


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


def _xgrammar() -> Any:
    """The xgrammar module, or a clear error saying how to install it."""
    try:
        import xgrammar
    except ImportError:
        raise ScoringError(
            "constrained sampling needs xgrammar: pip install 'survey-sim[sample]' "
            "(CPU only: pip install --no-deps xgrammar==0.2.8 apache-tvm-ffi)"
        ) from None
    return xgrammar


def _pass_tokens(group: list[TokenizedRequest], common: int) -> int:
    """Tokens a tree pass over ``group`` runs when ``common`` prompt tokens are shared."""
    own = sum(
        len(item.shared) - common + sum(len(t) - 1 for t in item.continuations) for item in group
    )
    return common + own


@dataclass
class _TreeLayout:
    """Tokens of one tree-shaped pass, with what each token may attend to.

    Every token belongs to a request (``-1``: the trunk, shared by all) and a branch
    (``-1``: the request's prompt, ``j``: its option ``j``). A token sees the cached past,
    the trunk, and the earlier tokens of its own request's prompt and of its own branch.
    """

    start: int
    tokens: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    branches: list[int] = field(default_factory=list)
    _next_position: dict[tuple[int, int], int] = field(default_factory=dict)

    def add(self, tokens: Sequence[int], *, request: int, branch: int) -> None:
        """Append a segment; positions continue from its parent segment."""
        if request == -1:
            first = self.start
        elif branch == -1:
            first = self._next_position.get((-1, -1), self.start)
        else:
            first = self._next_position[(request, -1)]
        self.tokens.extend(tokens)
        self.positions.extend(range(first, first + len(tokens)))
        self.requests.extend([request] * len(tokens))
        self.branches.extend([branch] * len(tokens))
        self._next_position[(request, branch)] = first + len(tokens)

    def rows(self, request: int, branch: int) -> list[int]:
        """Row indices of one option's tokens."""
        return [
            row
            for row, (r, b) in enumerate(zip(self.requests, self.branches, strict=True))
            if r == request and b == branch
        ]

    def visible(self, device: torch.device) -> torch.Tensor:
        """Which keys each token may see, ``[tokens, start + tokens]``: the cached past, the
        trunk, and the earlier tokens of its own request's prompt and of its own branch."""
        request = torch.tensor(self.requests, device=device)
        branch = torch.tensor(self.branches, device=device)
        row = torch.arange(len(self.tokens), device=device)
        trunk = request[None, :] == -1
        same_request = request[:, None] == request[None, :]
        visible_branch = (branch[None, :] == -1) | (branch[:, None] == branch[None, :])
        causal = row[None, :] <= row[:, None]
        allowed = causal & (trunk | (same_request & visible_branch))
        past = torch.ones(len(self.tokens), self.start, dtype=torch.bool, device=device)
        return torch.cat([past, allowed], dim=1)
