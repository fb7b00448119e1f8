"""The tuning losses equal the comparison's own metrics on the same distributions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from survey_sim.evaluate.metrics import kl_divergence, representativeness
from survey_sim.tune._examples import Example, Span
from survey_sim.tune._objectives import collate, loss


def _examples(rng: np.random.Generator) -> tuple[list[Example], torch.Tensor]:
    """Three and four option examples with random targets and shown orders, and random
    option log-probs (as slot_logprobs returns them: -inf past an example's options)."""
    examples = []
    logprobs = torch.full((4, 4), float("-inf"), dtype=torch.float64)
    for index, options in enumerate((3, 4, 3, 4)):
        target = rng.dirichlet(np.ones(options))
        target[rng.integers(options)] = 0.0  # a share nobody chose
        target /= target.sum()
        ranks = rng.permutation(options)
        spans = tuple(Span(0, 1, (option,), option) for option in range(options))
        examples.append(Example(((1,),), spans, tuple(target), tuple(ranks), f"e{index}"))
        logprobs[index, :options] = torch.from_numpy(rng.normal(size=options) - 3)
    return examples, logprobs


def test_the_losses_are_the_metrics_people_are_compared_with():
    rng = np.random.default_rng(0)
    examples, logprobs = _examples(rng)
    batch = collate(examples)
    batch["targets"] = batch["targets"].double()
    model = torch.softmax(logprobs, dim=1).numpy()
    kl, emd = [], []
    for index, example in enumerate(examples):
        people = list(example.target)
        simulated = model[index, : len(people)].tolist()
        kl.append(kl_divergence(people, simulated))
        on_scale = np.argsort(example.ranks)  # slots in scale order
        emd.append(
            1
            - representativeness(
                [people[slot] for slot in on_scale], [simulated[slot] for slot in on_scale]
            )
        )
    # Targets travel as float32 in a batch: agreement to 1e-6.
    assert loss("kl", logprobs, batch).item() == pytest.approx(np.mean(kl), abs=1e-6)
    assert loss("emd", logprobs, batch).item() == pytest.approx(np.mean(emd), abs=1e-6)
    assert loss("nll", logprobs, batch).item() == pytest.approx(
        -logprobs[batch["present"]].mean().item()
    )


def test_the_losses_have_finite_gradients_where_shares_are_zero():
    examples, logprobs = _examples(np.random.default_rng(1))
    batch = collate(examples)
    batch["targets"] = batch["targets"].double()
    for kind in ("kl", "emd"):
        leaf = logprobs.clone().requires_grad_(True)
        loss(kind, leaf, batch).backward()
        present = batch["present"]
        assert leaf.grad is not None and torch.isfinite(leaf.grad[present]).all()
