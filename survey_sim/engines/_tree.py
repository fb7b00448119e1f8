"""Scoring on the embedded engine: requests grouped by shared prompt prefixes and each
group scored in one tree-shaped forward pass (:func:`score_group`), or, on models a tree
mask cannot branch, from the model's own state (:func:`score_from_state`), or every option's
full sequence from scratch (:func:`score_full_sequences`, the plain reference). See
:mod:`survey_sim.engines.transformers` for when each applies."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

from survey_sim.engines._architecture import Masks
from survey_sim.engines._hf import TokenizedRequest, common_prefix_length
from survey_sim.engines._runner import ForwardRunner
from survey_sim.engines.base import ScoreResult
from survey_sim.engines.prefix_cache import PrefixState


def groups(
    items: Iterable[TokenizedRequest], *, sharing: bool, max_batch_tokens: int
) -> Iterator[list[TokenizedRequest]]:
    """Runs of consecutive requests scored in one pass (``sharing``: requests that share
    prompt tokens are grouped; otherwise each request is a group of its own).

    A run ends where the next request shares less with the run's first request than the
    run's members share with each other (it would recompute tokens its predecessor
    could have shared), or where the pass would exceed ``max_batch_tokens``.
    """
    group: list[TokenizedRequest] = []
    common = 0  # prompt tokens all members of the group share
    for item in items:
        if group and sharing:
            shared = common_prefix_length(group[0].shared, item.shared)
            keeps_sharing = len(group) == 1 or shared >= common
            joint = shared if len(group) == 1 else common
            if keeps_sharing and (pass_tokens([*group, item], joint) <= max_batch_tokens):
                group.append(item)
                common = joint
                continue
        if group:
            yield group
        group, common = [item], 0
    if group:
        yield group


def score_group(runner: ForwardRunner, group: list[TokenizedRequest]) -> list[ScoreResult]:
    """Score a group of requests in one tree-shaped forward pass (see
    :mod:`survey_sim.engines.transformers`)."""
    common = min(len(item.shared) for item in group) - 1  # each request keeps >= 1 token
    for item in group[1:]:
        common = min(common, common_prefix_length(group[0].shared, item.shared))
    use_cache = runner.uses_cache
    cached, reused = (
        runner.prefix_cache.longest_match(group[0].shared[:common]) if use_cache else (None, 0)
    )
    past = cached.truncated(reused) if cached is not None and reused > 0 else ()

    layout = TreeLayout(start=reused)
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
    output = runner.forward(
        layout.tokens,
        past,
        layout.positions,
        layout.masks(runner),
        keep=kept,
    )
    token_logprobs = torch.log_softmax(output.logits[0].float(), dim=-1)
    kept_index = {row: i for i, row in enumerate(kept)}

    if use_cache and common > reused:
        trunk = tuple(  # copies: a view would keep the whole pass's tensors alive
            (layer.keys[:, :, :common].clone(), layer.values[:, :, :common].clone())
            for layer in runner.cache_of(output).layers
        )
        runner.prefix_cache.put(PrefixState(tuple(group[0].shared[:common]), trunk))

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


def score_from_state(runner: ForwardRunner, item: TokenizedRequest) -> ScoreResult:
    """Score a request on a model a tree mask cannot branch: its prompt once, the model's
    state after it copied to every option, and the options fed a token per step (the way
    the model generates, so recurrent layers continue from the prompt's state)."""
    options = item.continuations
    steps = max(len(tokens) for tokens in options)
    # Shorter options are padded by repeating their last token; their log-probs stop
    # at their own length, and a row's padding only ever precedes its own later steps.
    grid = torch.tensor([tokens + tokens[-1:] * (steps - len(tokens)) for tokens in options])
    live = torch.tensor([[step < len(tokens) for step in range(steps)] for tokens in options])
    decoder = runner.decoder(runner.prefill(item.shared), len(options))
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


def score_full_sequences(
    runner: ForwardRunner, item: TokenizedRequest, *, max_batch_tokens: int
) -> ScoreResult:
    """Reference path: run each option's whole sequence from scratch, batched and padded."""
    shared = item.shared
    sequences = [shared + tokens for tokens in item.continuations]
    per_batch = max(1, max_batch_tokens // max(len(s) for s in sequences))
    logprobs: list[float] = []
    for start in range(0, len(sequences), per_batch):
        batch = sequences[start : start + per_batch]
        length = max(len(s) for s in batch)
        ids = torch.zeros(len(batch), length, dtype=torch.long, device=runner.device)
        attention = torch.zeros_like(ids)
        for row, sequence in enumerate(batch):
            ids[row, : len(sequence)] = torch.tensor(sequence)
            attention[row, : len(sequence)] = 1
        runner.stats.forward_passes += 1
        logits = runner.model(input_ids=ids, attention_mask=attention).logits
        token_logprobs = torch.log_softmax(logits.float(), dim=-1)
        for row, sequence in enumerate(batch):
            targets = torch.tensor(sequence[len(shared) :], device=runner.device)
            predicted_by = torch.arange(len(shared) - 1, len(sequence) - 1, device=runner.device)
            logprobs.append(token_logprobs[row, predicted_by, targets].sum().item())
    return ScoreResult(
        logprobs=tuple(logprobs),
        continuation_tokens=tuple(len(t) for t in item.continuations),
        prompt_tokens=len(shared),
        reused_tokens=0,
        computed_tokens=sum(len(s) for s in sequences),
    )


def pass_tokens(group: list[TokenizedRequest], common: int) -> int:
    """Tokens a tree pass over ``group`` runs when ``common`` prompt tokens are shared."""
    own = sum(
        len(item.shared) - common + sum(len(t) - 1 for t in item.continuations) for item in group
    )
    return common + own


@dataclass
class TreeLayout:
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

    def masks(self, runner: ForwardRunner) -> Masks:
        """The attention masks of this tree-shaped pass, each layer type's pattern applied."""
        positions = torch.tensor(self.positions, device=runner.device)
        past = torch.arange(self.start, device=runner.device)
        return runner.masks(self.visible(runner.device), positions, torch.cat([past, positions]))
