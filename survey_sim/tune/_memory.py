"""How much memory a tuning step takes, measured before training, and a batch that fits.

A training step's memory grows with the tokens of its batch: autograd keeps every layer's
activations for the backward pass. How much per token depends on the model (layers, widths,
attention kernel, adapter), so it is measured, not guessed: one forward pass of the longest
sequence training reads, in training mode, counting the bytes autograd saves for
the backward pass (weights excluded: they are resident already). A step's peak was measured
at up to :data:`STEP_OVERHEAD` times those bytes (the backward pass's gradients and the
allocator's fragments come on top; SmolLM2-135M on CPU, batches of 1 to 24 examples), plus
:data:`MARGIN_MIB`.

:func:`plan_memory` estimates a step's peak for the batch asked for; when it is over the
budget it trains fewer examples at a time and accumulates their gradients, so each optimiser
step still sees as many; when even one example does not fit, it refuses with the numbers.
The plan applies to training on CPUs (the process's resident memory); on a GPU the batch is
the one asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from survey_sim.errors import InputError
from survey_sim.tune._examples import Example

MIB = 2**20
DEFAULT_SHARE = 0.8
"""The default budget: this share of the memory the machine has free for this process (its
own resident memory and what is available) when tuning starts."""
STEP_OVERHEAD = 2.0
"""A step's peak over the activations autograd saves (measured up to 1.8 on CPU)."""
MARGIN_MIB = 512
"""Added to every estimate (the optimiser's state, the validation pass, the allocator)."""


@dataclass(frozen=True)
class MemoryPlan:
    """How tuning fits its memory budget.

    Attributes:
        budget_mib: The most resident memory the process may reach.
        resident_mib: The process's resident memory before training (model and examples).
        example_mib: A step's memory per example, for the largest one (measured
            activations × :data:`STEP_OVERHEAD`).
        batch_size: Examples run through the model at once.
        gradient_accumulation: Batches added up before each optimiser step.
    """

    budget_mib: int
    resident_mib: int
    example_mib: float
    batch_size: int
    gradient_accumulation: int

    def estimate_mib(self, batch_size: int | None = None) -> int:
        """The estimated peak resident memory of a step of ``batch_size`` examples
        (default: the plan's)."""
        examples = self.batch_size if batch_size is None else batch_size
        return round(self.resident_mib + MARGIN_MIB + examples * self.example_mib)


def default_budget_mib() -> int:
    """:data:`DEFAULT_SHARE` of this process's resident memory plus what is available."""
    available = psutil.virtual_memory().available + psutil.Process().memory_info().rss
    return int(DEFAULT_SHARE * available / MIB)


def plan_memory(
    model: Any,
    examples: Sequence[Example],
    *,
    batch_size: int,
    gradient_accumulation: int,
    budget_mib: int,
    checkpointing: bool,
) -> MemoryPlan:
    """The batch that keeps a training step of ``model`` (in training mode, its adapter
    attached) on ``examples`` within ``budget_mib``: ``batch_size`` if it fits, else the
    largest that does, with the gradient accumulation raised so that each optimiser step
    sees at least ``batch_size × gradient_accumulation`` examples.

    With ``checkpointing`` (activations recomputed in the backward pass), a step keeps each
    layer's input and one layer's activations at a time.

    Raises:
        InputError: one example alone needs more than the budget (the numbers, and what
            to change).
    """
    resident = round(psutil.Process().memory_info().rss / MIB)
    longest_row = max((row for example in examples for row in example.rows), key=len)
    rows = max(len(example.rows) for example in examples)
    per_token = _saved_bytes(model, longest_row) / len(longest_row)
    if checkpointing:
        layers = getattr(model.config, "num_hidden_layers", 1)
        inputs = layers * model.config.hidden_size * next(model.parameters()).element_size()
        per_token = per_token / layers + inputs
    example_mib = STEP_OVERHEAD * per_token * rows * len(longest_row) / MIB
    fitting = math.floor((budget_mib - resident - MARGIN_MIB) / example_mib)
    plan = MemoryPlan(budget_mib, resident, example_mib, batch_size, gradient_accumulation)
    if fitting >= batch_size:
        return plan
    if fitting < 1:
        raise InputError(
            "tuning settings",
            f"one training example (up to {rows} sequence(s) of up to {len(longest_row):,} "
            f"tokens) needs about {plan.estimate_mib(1):,} MiB, over the memory budget of "
            f"{budget_mib:,} MiB (the model and data take {resident:,} MiB already). "
            + (
                "Train with checkpoint-activations (--checkpoint-activations), "
                if not checkpointing
                else ""
            )
            + "ask questions with fewer options or a shorter prompt format, or raise the "
            "budget (--max-memory) if the machine has the memory",
            location="max_memory",
        )
    examples_per_step = batch_size * gradient_accumulation
    return MemoryPlan(
        budget_mib,
        resident,
        example_mib,
        fitting,
        math.ceil(examples_per_step / fitting),
    )


def _saved_bytes(model: Any, tokens: Sequence[int]) -> int:
    """Bytes autograd saves for the backward pass of a forward pass of ``model`` on one
    sequence of ``tokens`` (tensors that share storage counted once, the model's own
    weights not at all)."""
    import torch

    weights = {parameter.untyped_storage().data_ptr() for parameter in model.parameters()}
    saved: dict[int, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        model(input_ids=torch.tensor([list(tokens)]), logits_to_keep=1)
    return sum(saved.values())
