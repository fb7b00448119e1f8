"""The SGLang engine: a model served by an SGLang server, for real studies on GPUs.

The server runs the model; this client speaks its native ``/generate`` API over HTTP:

* **Exact scoring.** Every option of a request is sent as token ids (tokenised here, by the
  code the embedded engine uses, with the server's own tokenizer): the shared prompt and the
  option, ``max_new_tokens: 0``, ``return_logprob: true`` and ``logprob_start_len`` = shared
  length − 1. The server returns the log-probability of every token from there on; the first
  entry (the last prompt token) is null and dropped, and the count of the rest must equal
  the option's tokens, or the reply is refused. Many sequences go in one HTTP call.
* **Prefix cache.** Requests are sent in plan order (persona-major, then questions, then
  options), so consecutive sequences share the longest prefixes and the server's radix
  cache serves them. Each call goes in waves (the prompt part its requests share, then
  every request's first option, then the others), because sequences in one batch are
  prefilled side by side and would each compute what they share.
  ``meta_info.cached_tokens`` feeds the engine statistics. Because the
  server reads every option's sequence, prompt tokens here count every sequence sent, and
  the hit rate is the share of them served from the cache.
* **Constrained sampling** with ``json_schema``, ``n``, ``temperature`` and
  ``sampling_seed``. Seeds are honoured only by servers started with
  ``--enable-deterministic-inference``; :attr:`SGLangEngine.reproducible_draws` says whether
  this one was, and the manifest records it.
* **Concurrency and faults.** An asynchronous HTTP client runs on a loop thread of its own
  (so notebooks work), with a bounded number of calls in flight, timeouts, and retries with
  backoff on transient failures (connection refused, 5xx, 429). Results are handed to the
  caller as each call returns, so a run stores them before the rest are done.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from survey_sim.engines._hf import (
    HFTokenizer,
    TokenizedRequest,
    check_fits,
    common_prefix_length,
    read_completions,
)
from survey_sim.engines._sglang_client import INFO_PATHS, SGLangClient
from survey_sim.engines.base import (
    EngineBase,
    ResultsCallback,
    SampleRequest,
    SampleResult,
    ScoreRequest,
    ScoreResult,
)
from survey_sim.engines.records import AdapterDescription
from survey_sim.errors import ScoringError, ServerError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

T = TypeVar("T")
PRIMED_PREFIX_MIN = 32
"""Shared prompt tokens worth a request of their own to put them in the radix cache."""
PROBE = "Probe: how many café visits? 10, 100 or 1,000 ✓\nAnswer:"
"""A prompt whose tokenisation tells tokenizers apart (digits, accents, symbols, newline)."""
SERVER_FACTS = (
    "dtype",
    "quantization",
    "kv_cache_dtype",
    "attention_backend",
    "sampling_backend",
    "enable_deterministic_inference",
    "revision",
)
"""Server settings that change the numbers it returns (part of the fingerprint)."""


class SGLangSettings(BaseModel):
    """Settings of the SGLang client.

    Attributes:
        concurrency: HTTP calls in flight at once.
        sequences_per_call: Scored sequences (one per option) sent in one ``/generate`` call.
        timeout_s: Seconds one call may take.
        retries: Times a call is sent again after a transient failure.
        backoff_s: Wait before the first retry; doubled for each one after.
        connect_timeout_s: Seconds to wait for a server that is still starting.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    concurrency: int = Field(default=8, ge=1)
    sequences_per_call: int = Field(default=64, ge=1)
    timeout_s: float = Field(default=600, gt=0)
    retries: int = Field(default=5, ge=0)
    backoff_s: float = Field(default=0.5, ge=0)
    connect_timeout_s: float = Field(default=60, ge=0)


class SGLangEngine(EngineBase):
    """Exact option scoring and constrained sampling on an SGLang server.

    Connect with :meth:`connect` (``SGLangEngine.connect("http://127.0.0.1:30000")``), which
    makes the network calls and checks; the constructor takes what it found and makes none.
    Its statistics are the server's work: prompt tokens count every sequence sent.
    """

    text: HFTokenizer

    def __init__(
        self,
        client: SGLangClient,
        *,
        model_info: dict[str, Any],
        server_info: dict[str, Any],
        tokenizer: PreTrainedTokenizerBase,
        fingerprint: str | None = None,
        adapter: str | Path | None = None,
    ) -> None:
        self.client, self.url, self.settings = client, client.url, client.settings
        self.client.on_retry = self._count_retry
        self.model_info, self.server_info = model_info, server_info
        self._model_id = str(model_info.get("model_path", ""))
        self.text = HFTokenizer(tokenizer, model_id=self._model_id)
        if fingerprint is not None:  # the user's fingerprint stands in for the computed one
            self.__dict__["fingerprint"] = fingerprint
        self._warned_seeds = False
        self.adapter = self._served_adapter(adapter) if adapter is not None else None
        self._lora = {"lora_path": Path(adapter).name} if adapter is not None else {}

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        model: str | None = None,
        tokenizer: str | Path | None = None,
        settings: SGLangSettings | None = None,
        fingerprint: str | None = None,
        adapter: str | Path | None = None,
    ) -> SGLangEngine:
        """Connect to the server at ``url`` (waiting up to ``connect_timeout_s`` for one that
        is starting), check it and the local tokenizer, and return the engine.

        Args:
            url: The server (or router), e.g. ``"http://127.0.0.1:30000"``.
            model: The model the server must be running (its path or name as the server
                reports it); a server running another model is refused. ``None`` accepts
                the server's.
            tokenizer: A local tokenizer directory (default: the model path the server
                reports, when it exists on this machine). It must tokenise exactly as the
                server does; this is checked here.
            settings: Client settings (concurrency, timeouts, retries...).
            fingerprint: Overrides the fingerprint the results cache keys on (see
                :attr:`fingerprint`).
            adapter: A LoRA adapter folder the server serves (started with ``survey-sim
                serve MODEL --adapter FOLDER``, or ``--lora-paths NAME=FOLDER`` where NAME is
                the folder's name): every request asks for it, and the fingerprint covers it.

        Raises:
            ServerError: the server cannot be reached, is not an SGLang server, runs another
                model than ``model``, or does not serve ``adapter``.
            InputError: ``adapter`` is not an adapter folder, or was trained on another model.
            ScoringError: the local tokenizer does not tokenise as the server does.
        """
        client = SGLangClient(url, settings or SGLangSettings())
        try:
            model_info: dict[str, Any] = client.run(client.wait_until_up())
            server_info: dict[str, Any] = client.run(client.get(*INFO_PATHS["server"]))
            served = str(model_info.get("model_path", ""))
            if model is not None and model not in (served, Path(served).name):
                raise ServerError(
                    f"the SGLang server at {client.url} runs model {served!r}, not {model!r}; "
                    "start it with that model or connect to the server that runs it"
                )
            engine = cls(
                client,
                model_info=model_info,
                server_info=server_info,
                tokenizer=_load_tokenizer(tokenizer, model_info),
                fingerprint=fingerprint,
                adapter=adapter,
            )
            engine._check_tokenizer()
        except BaseException:
            client.close()
            raise
        return engine

    def _count_retry(self) -> None:
        self.stats.retries += 1

    def _served_adapter(self, adapter: str | Path) -> AdapterDescription:
        from survey_sim.engines.registry import describe_adapter, locate_adapter

        path = locate_adapter(adapter)
        served = str(self.server_info.get("lora_paths") or "")
        if path.name not in served:
            raise ServerError(
                f"the SGLang server at {self.url} does not serve adapter {path.name!r} (it "
                f"serves: {served or 'none'}); start it with: survey-sim serve {self.model_id} "
                f"--adapter {path}"
            )
        return describe_adapter(path, self._served_weights())

    def _served_weights(self) -> str | None:
        """The weight files' hash of the served model, when it is a folder on this machine."""
        from survey_sim.engines.registry import weights_fingerprint

        model_dir = Path(self.model_id)
        return weights_fingerprint(model_dir) if model_dir.is_dir() else None

    @property
    def model_id(self) -> str:
        """The model path the server reports."""
        return self._model_id

    @property
    def behind_router(self) -> bool:
        """Whether ``url`` is a router: it reports no server settings of its own (numbers
        then depend on the workers' settings, which the fingerprint cannot see; pass
        ``fingerprint=`` to pin them)."""
        return "version" not in self.server_info

    @property
    def reproducible_draws(self) -> bool:
        """Whether the server honours sampling seeds (``--enable-deterministic-inference``)."""
        return bool(self.server_info.get("enable_deterministic_inference", False))

    @functools.cached_property
    def context_length(self) -> int | None:
        """The most tokens one sequence may hold: the server's ``--context-length``, else
        the served model's ``max_position_embeddings`` (from its config on this machine)."""
        if self.server_info.get("context_length"):
            return int(self.server_info["context_length"])
        model_dir = Path(self.model_id)
        if not (model_dir / "config.json").exists():
            return None
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model_dir).get_text_config(decoder=True)
        value = getattr(config, "max_position_embeddings", None)
        return int(value) if value else None

    def fingerprint_parts(self) -> Iterator[str]:
        """What the server's numbers depend on: the model it runs (path, and the weight
        files' hash when that path is a directory on this machine), the server settings that
        change numbers (dtype, quantisation, kv-cache dtype, attention backend,
        deterministic inference), the SGLang version, the adapter, and the tokenizer with
        its chat template. A server restarted with another model gets another fingerprint,
        so the results cache never answers for it (``fingerprint=`` overrides it)."""
        facts = {key: self.server_info.get(key) for key in SERVER_FACTS}
        facts["version"] = self.server_info.get("version")
        facts["model_path"] = self.model_id
        facts["weights"] = self._served_weights()
        if self.adapter is not None:
            facts["adapter"] = self.adapter.fingerprint
        yield json.dumps(facts, sort_keys=True, default=str)
        yield self.text.identity()

    def settings_record(self) -> dict[str, Any]:
        """The client settings."""
        return self.settings.model_dump()

    def details(self) -> dict[str, Any]:
        """The server, its settings that change numbers, whether it is a router, and whether
        draws are reproducible."""
        return {
            "url": self.url,
            "server": {key: self.server_info.get(key) for key in (*SERVER_FACTS, "version")},
            "behind_router": self.behind_router,
            "reproducible_draws": self.reproducible_draws,
        }

    def __repr__(self) -> str:
        return f"SGLangEngine(url={self.url!r}, model_id={self.model_id!r})"

    def close(self) -> None:
        """Close the HTTP client and stop its loop thread."""
        self.client.close()

    def score(
        self,
        requests: Sequence[ScoreRequest],
        *,
        on_results: ResultsCallback[ScoreResult] | None = None,
    ) -> list[ScoreResult]:
        """Exact log-probability of every option of every request (module docstring); the
        results of each HTTP call are handed to ``on_results`` as it returns."""
        items = [self.text.tokenize_request(request) for request in requests]
        for item in items:
            check_fits(item.length, self.context_length, self.model_id)
        calls = {
            self.client.submit(self._score_call([items[i] for i in indices])): indices
            for indices in _calls(items, self.settings.sequences_per_call)
        }
        return self._collect(calls, len(items), on_results)

    def sample(
        self,
        requests: Sequence[SampleRequest],
        *,
        on_results: ResultsCallback[SampleResult] | None = None,
    ) -> list[SampleResult]:
        """Draw completions under each request's JSON schema (module docstring); each
        request's draws are handed to ``on_results`` as they return."""
        if requests and not self.reproducible_draws and not self._warned_seeds:
            warnings.warn(
                f"the SGLang server at {self.url} runs without "
                "--enable-deterministic-inference: sampling seeds are not honoured, so a "
                "rerun draws different answers",
                stacklevel=2,
            )
            self._warned_seeds = True
        calls = {
            self.client.submit(self._sample_call(request)): [index]
            for index, request in enumerate(requests)
        }
        return self._collect(calls, len(requests), on_results)

    def _collect(
        self,
        calls: dict[concurrent.futures.Future[list[T]], list[int]],
        total: int,
        on_results: ResultsCallback[T] | None,
    ) -> list[T]:
        """Wait for every call; hand each call's results over (on this thread) as it ends.
        On a failure, calls still waiting are cancelled and the error is raised: what was
        handed over is kept by the caller."""
        results: list[T | None] = [None] * total
        try:
            for future in concurrent.futures.as_completed(calls):
                batch = list(zip(calls[future], future.result(), strict=True))
                for index, result in batch:
                    results[index] = result
                    self.stats.requests += 1
                if on_results is not None:
                    on_results(batch)
        finally:
            for future in calls:
                future.cancel()
        return [result for result in results if result is not None]

    async def _score_call(self, items: list[TokenizedRequest]) -> list[ScoreResult]:
        """Score every option of ``items`` in waves, so that the server's radix cache holds
        what each wave shares before the wave runs (sequences in one batch are prefilled
        side by side, each computing their shared prefix): first the prompt part all
        ``items`` share (a persona's description, when they are its questions), then every
        request's first option, then the others."""
        await self._prime(items)
        options = [(i, j) for i, item in enumerate(items) for j in range(len(item.continuations))]
        metas: dict[tuple[int, int], dict[str, Any]] = {}
        for wave in ([o for o in options if o[1] == 0], [o for o in options if o[1] > 0]):
            # A router takes one logprob_start_len per call: one call per prompt length.
            parts = _by_start(wave, items) if self.behind_router else [wave]
            for part in filter(None, parts):
                starts = [len(items[i].shared) - 1 for i, _ in part]
                replies = await self._post(
                    "/generate",
                    {
                        "input_ids": [items[i].shared + items[i].continuations[j] for i, j in part],
                        "sampling_params": {"max_new_tokens": 0, "temperature": 0},
                        "return_logprob": True,
                        "logprob_start_len": starts[0] if len(set(starts)) == 1 else starts,
                    },
                )
                if not isinstance(replies, list) or len(replies) != len(part):
                    raise ScoringError(
                        f"malformed reply from {self.url}: expected {len(part)} results"
                    )
                metas.update(
                    (option, _meta(reply, self.url))
                    for option, reply in zip(part, replies, strict=True)
                )
        results = []
        for i, item in enumerate(items):
            replies_of_item = [metas[(i, j)] for j in range(len(item.continuations))]
            cached = sum(int(meta.get("cached_tokens", 0)) for meta in replies_of_item)
            sent = sum(len(item.shared) + len(tokens) for tokens in item.continuations)
            self.stats.prompt_tokens += sent
            self.stats.reused_tokens += cached
            self.stats.computed_tokens += sent - cached
            results.append(
                ScoreResult(
                    logprobs=tuple(
                        _option_logprob(meta, tokens, self.url)
                        for meta, tokens in zip(replies_of_item, item.continuations, strict=True)
                    ),
                    continuation_tokens=tuple(len(t) for t in item.continuations),
                    prompt_tokens=len(item.shared),
                    reused_tokens=cached,
                    computed_tokens=sent - cached,
                )
            )
        return results

    async def _prime(self, items: list[TokenizedRequest]) -> None:
        """Put the prompt part all ``items`` share into the radix cache (when it is long
        enough to matter); its tokens count as prompt tokens sent."""
        shared = items[0].shared
        length = min(common_prefix_length(shared, item.shared) for item in items)
        if len(items) < 2 or length < PRIMED_PREFIX_MIN:
            return
        reply = await self._post(
            "/generate", {"input_ids": shared[:length], "sampling_params": {"max_new_tokens": 0}}
        )
        cached = int(_meta(reply, self.url).get("cached_tokens", 0))
        self.stats.prompt_tokens += length
        self.stats.reused_tokens += cached
        self.stats.computed_tokens += length - cached

    async def _sample_call(self, request: SampleRequest) -> list[SampleResult]:
        """One ``/generate`` call drawing ``n`` completions under the request's schema."""
        tokens = self.text.tokenize(request.prefix)
        check_fits(len(tokens) + request.max_new_tokens, self.context_length, self.model_id)
        reply = await self._post(
            "/generate",
            {
                "input_ids": tokens,
                "sampling_params": {
                    "json_schema": json.dumps(request.json_schema),
                    "n": request.n,
                    "temperature": request.temperature,
                    "max_new_tokens": request.max_new_tokens,
                    "sampling_seed": request.seed,
                },
            },
        )
        outputs = reply if isinstance(reply, list) else [reply]
        if len(outputs) != request.n:
            raise ScoringError(f"malformed reply from {self.url}: expected {request.n} draws")
        metas = [_meta(output, self.url) for output in outputs]
        texts = [str(output.get("text", "")) for output in outputs]
        truncated = [_finish(meta) == "length" for meta in metas]
        cached = max(int(meta.get("cached_tokens", 0)) for meta in metas)
        generated = sum(int(meta.get("completion_tokens", 0)) for meta in metas)
        self.stats.prompt_tokens += len(tokens)
        self.stats.reused_tokens += cached
        self.stats.computed_tokens += len(tokens) - cached
        self.stats.decode_tokens += generated
        return [
            read_completions(
                texts,
                truncated,
                request.json_schema,
                generated_tokens=generated,
                prompt_tokens=len(tokens),
                reused_tokens=cached,
            )
        ]

    async def _post(self, path: str, payload: dict[str, Any]) -> Any:
        """POST ``payload``; generation calls ask for the adapter when there is one."""
        return await self.client.post(path, {**payload, **self._lora})

    def _check_tokenizer(self) -> None:
        """Refuse a local tokenizer that does not tokenise as the server does: compare the
        token ids the server reads for a probe prompt with the local ones."""
        reply = self.client.run(
            self._post(
                "/generate",
                {
                    "text": PROBE,
                    "sampling_params": {"max_new_tokens": 0},
                    "return_logprob": True,
                    "logprob_start_len": 0,
                },
            )
        )
        served = [entry[1] for entry in _meta(reply, self.url).get("input_token_logprobs", [])]
        local = self.text.tokenize(PROBE)
        if served != local:
            raise ScoringError(
                f"the local tokenizer does not match the one the SGLang server at {self.url} "
                f"uses ({len(local)} vs {len(served)} tokens for a probe prompt): pass the "
                "served model's tokenizer directory as tokenizer="
            )


def _by_start(
    options: list[tuple[int, int]], items: list[TokenizedRequest]
) -> list[list[tuple[int, int]]]:
    """``options`` grouped by the length of their request's prompt."""
    groups: dict[int, list[tuple[int, int]]] = {}
    for option in options:
        groups.setdefault(len(items[option[0]].shared), []).append(option)
    return list(groups.values())


def _calls(items: list[TokenizedRequest], sequences_per_call: int) -> Iterator[list[int]]:
    """Consecutive request indices, at most ``sequences_per_call`` sequences per call (a
    request with more options than that goes alone)."""
    call: list[int] = []
    count = 0
    for index, item in enumerate(items):
        size = len(item.continuations)
        if call and count + size > sequences_per_call:
            yield call
            call, count = [], 0
        call.append(index)
        count += size
    if call:
        yield call


def _meta(reply: Any, url: str) -> dict[str, Any]:
    meta = reply.get("meta_info") if isinstance(reply, dict) else None
    if not isinstance(meta, dict):
        raise ScoringError(f"malformed reply from {url}: no meta_info in {str(reply)[:200]}")
    return meta


def _option_logprob(meta: dict[str, Any], tokens: list[int], url: str) -> float:
    """The summed log-probability of an option's tokens from a reply whose logprobs start
    at the last prompt token (that first entry is null and dropped)."""
    entries = meta.get("input_token_logprobs")
    if not isinstance(entries, list) or len(entries) != len(tokens) + 1:
        got = len(entries) - 1 if isinstance(entries, list) else "no"
        raise ScoringError(
            f"the SGLang server at {url} returned {got} log-probs for an option of "
            f"{len(tokens)} tokens (did it truncate the input?)"
        )
    scored = entries[1:]
    if [entry[1] for entry in scored] != tokens or any(entry[0] is None for entry in scored):
        raise ScoringError(f"malformed reply from {url}: log-probs for other tokens than sent")
    return float(sum(entry[0] for entry in scored))


def _finish(meta: dict[str, Any]) -> str | None:
    reason = meta.get("finish_reason")
    return reason.get("type") if isinstance(reason, dict) else reason


def _load_tokenizer(tokenizer: str | Path | None, model_info: dict[str, Any]) -> Any:
    """A local tokenizer: the one given, or the one at the served model's path."""
    from transformers import AutoTokenizer

    source = tokenizer or model_info.get("tokenizer_path") or model_info.get("model_path")
    if source is None or not Path(source).is_dir():
        raise ScoringError(
            f"no local tokenizer for the served model {model_info.get('model_path')!r}: pass "
            "tokenizer= a directory holding the model's tokenizer files"
        )
    return AutoTokenizer.from_pretrained(source)
