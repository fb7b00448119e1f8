"""Exactness on every architecture family users plug in: sliding windows, mixed layer types,
hybrid Mamba models. Each family's tiny random model (``survey_sim.testing``) is checked
against an independent full forward pass on prompts longer than its window, for every
scoring strategy the engine accepts and for the sampling path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import PreTrainedTokenizerFast

from survey_sim import EngineSettings, ScoringError, TransformersEngine
from survey_sim.asking.formats import get_format
from survey_sim.asking.kinds import choice_request
from survey_sim.engines import ScoreRequest
from survey_sim.testing import (
    FAMILIES,
    WINDOW,
    full_pass_logprobs,
    reference_logprob,
    train_tokenizer,
)

TOLERANCE = 1e-4
CORPUS = Path(__file__).parents[1] / "tokenizer_corpus.json"
ATTENTION_ONLY = [name for name in FAMILIES if name != "jamba-hybrid"]


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    return train_tokenizer(json.loads(CORPUS.read_text()))


@pytest.fixture(scope="module", params=list(FAMILIES))
def family_engine(request, tokenizer) -> TransformersEngine:
    family = FAMILIES[request.param]
    return TransformersEngine(family.build(len(tokenizer)), tokenizer, model_id=family.name)


def engine_with(engine: TransformersEngine, prefix_reuse: str) -> TransformersEngine:
    return TransformersEngine(
        engine.model,
        engine.tokenizer,
        model_id=engine.model_id,
        settings=EngineSettings(prefix_reuse=prefix_reuse),
    )


def survey_requests(engine, gss, demo_population) -> list[ScoreRequest]:
    requests = [
        choice_request(q, get_format("chat", answer=answer), description=p.description, chat=engine)
        for p in list(demo_population)[:2]
        for q in gss.questions[:2]
        for answer in ("label", "text")
    ]
    return [*requests, ScoreRequest("Question: how many?\nAnswer: ", ("1", "10", "one hundred"))]


def test_the_engine_picks_an_exact_strategy(family_engine):
    expected = "state" if family_engine.model_id == "jamba-hybrid" else "cache"
    assert family_engine.strategy == expected
    assert family_engine.describe().strategy == expected
    assert f"strategy={expected!r}" in repr(family_engine)


def test_every_accepted_strategy_matches_a_full_pass(family_engine, gss, demo_population):
    requests = survey_requests(family_engine, gss, demo_population)
    assert min(len(family_engine.tokenize(r.prefix)) for r in requests) > 2 * WINDOW
    for strategy in family_engine.architecture.strategies:
        engine = engine_with(family_engine, strategy)
        for request, result in zip(requests, engine.score(requests), strict=True):
            for continuation, logprob in zip(request.continuations, result.logprobs, strict=True):
                ids = engine.tokenize(request.prefix + continuation)
                reference = reference_logprob(engine.model, ids, result.prompt_tokens)
                assert abs(logprob - reference) <= TOLERANCE, (strategy, continuation)


@torch.inference_mode()
def test_the_sampling_path_matches_a_full_pass(family_engine, gss, demo_population):
    """Completions decoded side by side (branches over one prompt, or copies of a recurrent
    state) give each completion the next-token distribution of a plain full pass."""
    engine = engine_with(family_engine, "auto")
    question = gss.questions[0]
    base = choice_request(
        question,
        get_format("chat"),
        description=next(iter(demo_population)).description,
        chat=engine,
    ).prefix
    engine.score([ScoreRequest(base[:-10], ("x",))])  # a shorter prefix in the prefix cache
    prompt = engine.tokenize(base)
    forced = torch.tensor([[5, 9, 30, 41, 7, 12], [5, 88, 2, 41, 3, 64], [200, 9, 30, 41, 7, 1]])
    decoder = engine.runner.decoder(engine.runner.prefill(prompt), len(forced))
    logits = decoder.logits
    for step in range(forced.shape[1] + 1):
        for row, tokens in enumerate(forced.tolist()):
            expected = full_pass_logprobs(engine.model, prompt + tokens[:step])[-1]
            got = torch.log_softmax(logits[row].float(), dim=-1)
            assert torch.allclose(got, expected, atol=TOLERANCE), (step, row)
        if step < forced.shape[1]:
            logits = decoder.step(forced[:, step])


@pytest.mark.parametrize("strategy", ["cache", "request"])
def test_a_strategy_that_would_be_wrong_is_refused(tokenizer, strategy):
    model = FAMILIES["jamba-hybrid"].build(len(tokenizer))
    with pytest.raises(ScoringError, match=r"linear_attention.*Exact here: state, none"):
        TransformersEngine(
            model, tokenizer, model_id="jamba", settings=EngineSettings(prefix_reuse=strategy)
        )


def test_the_architecture_is_read_from_the_config(tokenizer):
    gemma = TransformersEngine(
        FAMILIES["gemma3-mixed"].build(len(tokenizer)), tokenizer, model_id="gemma"
    ).architecture
    assert gemma.layer_types == ("sliding_attention", "full_attention") * 2
    assert gemma.spans == {"sliding_attention": WINDOW}
    assert gemma.context_length == 4096
    assert gemma.describe()["tree_masks_exact"] is True


def test_an_engine_that_ignores_masks_is_scored_whole(tokenizer):
    model = FAMILIES["llama"].build(len(tokenizer))
    model.config._attn_implementation = "flash_attention_2"  # never run: only read
    engine = TransformersEngine(model, tokenizer, model_id="llama-flash")
    assert engine.strategy == "state"
    assert "ignores custom masks" in str(engine.architecture.tree_problem)
