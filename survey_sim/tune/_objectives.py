"""The two training objectives, on batches of :class:`~survey_sim.tune._examples.Example`.

* ``kl`` (population, SubPOP): forward KL(human ‖ model), the model's distribution being
  its exact option probabilities renormalised over the options, as ``simulate`` reads them.
* ``emd`` (population, ordinal scales): the earth-mover's distance between the two
  distributions along the scale (the sum of their cumulative differences), divided by the
  scale's length, so that it is 1 − representativeness.
* ``nll`` (individual, Spectrum Tuning): the negative log-probability of the answers the
  respondents gave, per answer; nothing else in the sequence is scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from survey_sim.tune._examples import Example

Loss = Literal["kl", "emd", "nll"]


def collate(examples: Sequence[Example]) -> dict[str, torch.Tensor]:
    """A batch: the rows padded on the right (a row that begins another is read from
    it, not run twice), and where each scored token is.

    Keys: ``input_ids`` and ``attention_mask`` (rows × longest row); per scored token its
    ``row``, ``position`` and ``token`` and the ``slot`` it adds to (example × ``width`` +
    its slot); ``kept``, the positions whose logits are needed (pass it to the model as
    ``logits_to_keep``: the vocabulary-wide logits of every other position are never made),
    and ``kept_index``, each scored token's place among them; ``targets`` and ``ranks``
    (examples × ``width``; zeros and positions where an example has fewer slots or no
    target) and ``present`` (which slots exist).
    """
    rows, read_from = _shared_rows([row for example in examples for row in example.rows])
    longest = max(len(row) for row in rows)
    input_ids = torch.zeros(len(rows), longest, dtype=torch.long)
    attention_mask = torch.zeros(len(rows), longest, dtype=torch.long)
    for index, tokens in enumerate(rows):
        input_ids[index, : len(tokens)] = torch.tensor(tokens)
        attention_mask[index, : len(tokens)] = 1
    width = max(example.slots for example in examples)
    targets = torch.zeros(len(examples), width)
    ranks = torch.arange(width).repeat(len(examples), 1)
    present = torch.zeros(len(examples), width, dtype=torch.bool)
    scored: list[tuple[int, int, int, int]] = []
    first_row = 0
    for index, example in enumerate(examples):
        present[index, : example.slots] = True
        targets[index, : len(example.target)] = torch.tensor(example.target)
        ranks[index, : len(example.ranks)] = torch.tensor(example.ranks, dtype=torch.long)
        for span in example.spans:
            scored.extend(
                (
                    read_from[first_row + span.row],
                    span.start + offset,
                    token,
                    index * width + span.slot,
                )
                for offset, token in enumerate(span.tokens)
            )
        first_row += len(example.rows)
    where = zip(("row", "position", "token", "slot"), zip(*scored, strict=True), strict=True)
    columns = {name: torch.tensor(column) for name, column in where}
    kept, kept_index = torch.unique(columns["position"] - 1, return_inverse=True)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        **columns,
        "kept": kept,
        "kept_index": kept_index,
        "targets": targets,
        "ranks": ranks,
        "present": present,
    }


def _shared_rows(
    rows: Sequence[tuple[int, ...]],
) -> tuple[list[tuple[int, ...]], list[int]]:
    """The rows to run, and which of them each of ``rows`` is read from: a row that is the
    beginning of another row (an interview's earlier questions, a repeated prompt) is read
    from the longer one, whose logits at those positions are the same (causal attention,
    padding on the right)."""
    # In sorted order, a row that begins any later row begins the very next one, so one
    # backward pass (n log n, not n²) finds the longest row each is read from.
    kept: list[tuple[int, ...]] = []
    read_from = [0] * len(rows)
    for index in sorted(range(len(rows)), key=lambda i: rows[i], reverse=True):
        row = rows[index]
        if not kept or kept[-1][: len(row)] != row:
            kept.append(row)
        read_from[index] = len(kept) - 1
    return kept, read_from


def slot_logprobs(kept_logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Log-probability of every slot's tokens (examples × width; -inf where no slot), each
    token predicted by the logits one position before it. ``kept_logits`` are the model's
    logits at the batch's ``kept`` positions (rows × kept × vocabulary)."""
    predicting = kept_logits[batch["row"], batch["kept_index"]].float()
    token_logprobs = torch.log_softmax(predicting, dim=-1)
    scored = token_logprobs.gather(1, batch["token"].unsqueeze(1)).squeeze(1)
    present = batch["present"]
    totals = torch.zeros(present.numel(), dtype=scored.dtype, device=scored.device)
    totals = totals.index_add(0, batch["slot"], scored).view(present.shape)
    return totals.masked_fill(~present, float("-inf"))


def model_slot_logprobs(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """:func:`slot_logprobs` of ``model`` (a causal language model) on a :func:`collate`
    batch, from one forward pass that makes only the kept positions' logits."""
    outputs = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        logits_to_keep=batch["kept"],
    )
    return slot_logprobs(outputs.logits, batch)


def loss(kind: Loss, logprobs: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The batch's mean loss of ``kind`` from :func:`slot_logprobs`."""
    present = batch["present"]
    if kind == "nll":
        return -logprobs[present].mean()
    model = torch.log_softmax(logprobs, dim=1)
    human = batch["targets"]
    if kind == "kl":
        # Finite stand-ins where a term is 0 (no human share, no slot) keep gradients finite.
        human_log = torch.log(human.clamp_min(torch.finfo(human.dtype).tiny))
        terms = human * (human_log - model.masked_fill(~present, 0.0))
        return terms.sum(dim=1).mean()
    on_scale = torch.zeros_like(human)
    model_on_scale = on_scale.scatter(1, batch["ranks"], torch.exp(model))
    human_on_scale = on_scale.scatter(1, batch["ranks"], human)
    gaps = (torch.cumsum(human_on_scale - model_on_scale, dim=1)).abs()
    lengths = present.sum(dim=1) - 1
    return (gaps.sum(dim=1) / lengths).mean()
