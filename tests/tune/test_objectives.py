"""The tuning losses equal the comparison's own metrics on the same distributions, and a
batch reads what plain forward passes read."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from survey_sim.engines._hf import TokenizedRequest
from survey_sim.evaluate.metrics import kl_divergence, representativeness
from survey_sim.testing import reference_logprob
from survey_sim.tune._examples import Example, Span, _interview_example, _options_example
from survey_sim.tune._objectives import collate, loss, model_slot_logprobs


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


def test_an_answer_whose_tokens_are_not_the_interviews_beginning_gets_its_own_row(tiny_engine):
    """Both ways an interview's answers are read (inside the one sequence, or in a row of
    their own when the tokens merge with what follows) give each answer's log-prob after
    exactly its own prompt, as a plain forward pass of that sequence alone does."""
    first = TokenizedRequest(shared=[5, 6, 7], continuations=[[8, 9], [10]])
    merged = TokenizedRequest(shared=[5, 6, 7, 11], continuations=[[12], [13]])  # not 5 6 7 8 9
    last = TokenizedRequest(shared=[5, 6, 7, 11, 12, 14, 15], continuations=[[16], [17, 18]])
    example = _interview_example([(first, 0), (merged, 0), (last, 1)], label="r")
    assert len(example.rows) == 2  # the interview, and the first answer's own row
    got = _read(tiny_engine, [example])[0].tolist()
    expected = [
        reference_logprob(
            tiny_engine.model, [*item.shared, *item.continuations[chosen]], len(item.shared)
        )
        for item, chosen in ((first, 0), (merged, 0), (last, 1))
    ]
    assert got == pytest.approx(expected, abs=1e-5)


def test_a_row_that_begins_another_is_read_from_it(tiny_engine):
    """An interview's questions as option examples (each prompt the beginning of the next):
    one batch runs the longest row only, and every option's log-prob is the one each
    example gets in a batch of its own."""
    shared = [5, 6, 7, 8, 9, 10, 11, 12]
    examples = [
        _options_example(
            TokenizedRequest(shared=shared[:length], continuations=[[20], [21], [22, 23]]),
            target=(0.2, 0.3, 0.5),
            ranks=(),
            label=f"after {length}",
        )
        for length in (3, 6, 8)
    ]
    for extra in ([], [examples[0]]):  # a repeated row is read once too
        batch = collate([*examples, *extra])
        # Of 6 rows (each prompt, and each prompt + 22), 3 run: every prompt is read from
        # the longest prompt + 22, the shorter prompts + 22 are rows of their own.
        assert batch["input_ids"].shape[0] == 3
        together = _read(tiny_engine, [*examples, *extra])
        alone = torch.cat([_read(tiny_engine, [example]) for example in [*examples, *extra]])
        torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def _read(engine, examples: list[Example]) -> torch.Tensor:
    with torch.inference_mode():
        return model_slot_logprobs(engine.model, collate(examples))
