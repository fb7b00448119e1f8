"""Exactness of the embedded engine: every reuse strategy equals a plain full forward pass."""

from __future__ import annotations

import math

import pytest
import torch

from survey_sim import EngineSettings, ScoringError, TransformersEngine
from survey_sim.asking.formats import get_format
from survey_sim.asking.kinds import choice_request
from survey_sim.engines import ScoreRequest, split_shared_tokens
from survey_sim.engines.transformers import Float32Output
from survey_sim.errors import PrecisionWarning
from survey_sim.testing import reference_logprob

TOLERANCE = 1e-4


def with_settings(engine: TransformersEngine, **settings) -> TransformersEngine:
    """Another engine over the same loaded weights (no reload)."""
    return TransformersEngine(
        engine.model,
        engine.tokenizer,
        model_id=engine.model_id,
        settings=EngineSettings(**settings),
    )


def survey_requests(engine, gss, population, format_name: str, answer: str) -> list[ScoreRequest]:
    prompt_format = get_format(format_name, answer=answer)
    return [
        choice_request(q, prompt_format, description=p.description, chat=engine)
        for p in list(population)[:2]
        for q in gss.questions[:3]
    ]


def boundary_requests() -> list[ScoreRequest]:
    """Multi-token options, options that are prefixes of others, a trailing-space prefix."""
    return [
        ScoreRequest("Question: how many?\nAnswer: ", ("1", "10", "100", "one hundred")),
        ScoreRequest("Question: how many?\nAnswer:", (" 1", " 10", " 100\n", " 1\n")),
        ScoreRequest("The colour is", (" red", " green and blue", " purple")),
    ]


def assert_all_strategies_exact(engine: TransformersEngine, requests: list[ScoreRequest]) -> None:
    results = {
        mode: with_settings(engine, prefix_reuse=mode).score(requests)
        for mode in ("cache", "request", "state", "none")
    }
    for index, request in enumerate(requests):
        cached = results["cache"][index]
        for mode in ("request", "state", "none"):
            other = results[mode][index]
            assert other.prompt_tokens == cached.prompt_tokens
            for a, b in zip(cached.logprobs, other.logprobs, strict=True):
                assert abs(a - b) <= TOLERANCE, (mode, index, a, b)
        for continuation, logprob in zip(request.continuations, cached.logprobs, strict=True):
            ids = engine.tokenize(request.prefix + continuation)
            expected = reference_logprob(engine.model, ids, cached.prompt_tokens)
            assert abs(logprob - expected) <= TOLERANCE, (index, continuation, logprob, expected)


@pytest.mark.parametrize("format_name", ["chat", "spectrum", "xml", "plain"])
@pytest.mark.parametrize("answer", ["label", "text"])
def test_tiny_model_all_strategies_match_full_forward(
    tiny_engine, gss, demo_population, format_name, answer
):
    requests = survey_requests(tiny_engine, gss, demo_population, format_name, answer)
    assert_all_strategies_exact(tiny_engine, requests + boundary_requests())


@pytest.mark.slow
@pytest.mark.parametrize("format_name", ["chat", "plain"])
def test_default_model_all_strategies_match_full_forward(
    default_engine, gss, demo_population, format_name
):
    requests = survey_requests(default_engine, gss, demo_population, format_name, "text")
    assert_all_strategies_exact(default_engine, requests[:4] + boundary_requests())


@pytest.mark.slow
def test_default_model_label_answers_are_exact(default_engine, gss, demo_population):
    requests = survey_requests(default_engine, gss, demo_population, "spectrum", "label")
    assert_all_strategies_exact(default_engine, requests[:3])


def test_probabilities_and_coverage(tiny_engine):
    result = tiny_engine.score([ScoreRequest("The colour is", (" red", " green", " blue"))])[0]
    assert math.isclose(sum(result.probs), 1.0, abs_tol=1e-9)
    assert 0 < result.coverage <= 1
    expected = [math.exp(lp) / result.coverage for lp in result.logprobs]
    assert result.probs == pytest.approx(expected)


def test_prefix_cache_reuses_shared_tokens(tiny_engine, gss, demo_population):
    engine = with_settings(tiny_engine, prefix_reuse="cache")
    requests = survey_requests(engine, gss, demo_population, "chat", "label")
    results = engine.score(requests)
    assert results[0].reused_tokens == 0
    # Same persona and preamble: the second question shares at least the system turn.
    assert results[1].reused_tokens > 50
    # Two personas -> two groups -> two forward passes for six requests.
    assert engine.stats.forward_passes == 2
    again = engine.score(requests[:1])[0]
    assert again.reused_tokens >= results[1].reused_tokens  # the persona trunk was kept
    assert again.computed_tokens < results[0].computed_tokens
    uncached = with_settings(tiny_engine, prefix_reuse="request")
    uncached_results = uncached.score(requests)
    assert all(r.reused_tokens == 0 for r in uncached_results)
    assert uncached.stats.forward_passes == len(requests)
    assert sum(r.computed_tokens for r in results) < sum(
        r.computed_tokens for r in uncached_results
    )


def test_group_size_follows_the_token_budget(tiny_engine, gss, demo_population):
    requests = survey_requests(tiny_engine, gss, demo_population, "chat", "label")
    longest_prompt = max(r.prompt_tokens for r in tiny_engine.score(requests))
    one_each = with_settings(tiny_engine, max_batch_tokens=longest_prompt)
    one_each.score(requests)
    assert one_each.stats.forward_passes == len(requests)


def test_prefix_cache_memory_is_bounded(tiny_engine, gss, demo_population):
    prompt_format = get_format("chat")
    requests = [
        choice_request(q, prompt_format, description=p.description, chat=tiny_engine)
        for p in demo_population
        for q in gss.questions[:2]
    ]
    unbounded = with_settings(tiny_engine)
    unbounded.score(requests)
    groups = len(demo_population)
    assert len(unbounded.prefix_cache) == groups
    entry_bytes = unbounded.prefix_cache.nbytes / groups
    budget_mb = 2.5 * entry_bytes / 2**20  # room for two entries
    bounded = with_settings(tiny_engine, cache_mb=budget_mb)
    results = bounded.score(requests)
    assert 0 < bounded.prefix_cache.nbytes <= budget_mb * 2**20
    assert len(bounded.prefix_cache) == 2
    unbounded_results = unbounded.score(requests)
    for a, b in zip(results, unbounded_results, strict=True):
        assert a.logprobs == pytest.approx(b.logprobs, abs=TOLERANCE)


def test_token_boundary_merge_is_scored_as_the_model_sees_it(tiny_engine):
    request = ScoreRequest("Answer: ", ("A", "B"))
    prefix_ids = tiny_engine.tokenize(request.prefix)
    full_ids = [tiny_engine.tokenize(request.prefix + c) for c in request.continuations]
    shared, rest = split_shared_tokens(prefix_ids, full_ids)
    for ids, tail in zip(full_ids, rest, strict=True):
        assert shared + tail == ids  # exactly the sequence the model would read
    result = tiny_engine.score([request])[0]
    assert result.prompt_tokens == len(shared)


def test_split_shared_tokens_cases():
    assert split_shared_tokens([1, 2, 3], [[1, 2, 3, 4], [1, 2, 3, 5, 6]]) == (
        [1, 2, 3],
        [[4], [5, 6]],
    )
    # The prefix's last token merged with the continuation in one sequence only.
    assert split_shared_tokens([1, 2, 3], [[1, 2, 9], [1, 2, 3, 5]]) == ([1, 2], [[9], [3, 5]])
    with pytest.raises(ScoringError):
        split_shared_tokens([1], [[2, 3]])


def test_bad_requests_fail_clearly():
    with pytest.raises(ScoringError):
        ScoreRequest("prefix", ())
    with pytest.raises(ScoringError):
        ScoreRequest("prefix", ("a", ""))


def test_lower_precision_computes_logits_in_float32_and_says_it_is_not_exact(tiny_model_dir):
    with pytest.warns(PrecisionWarning, match="use float32"):
        engine = TransformersEngine.from_pretrained(
            tiny_model_dir, settings=EngineSettings(dtype="bfloat16")
        )
    head = engine.model.get_output_embeddings()
    assert isinstance(head, Float32Output) and head.weight.dtype == torch.bfloat16
    ids = torch.tensor([engine.tokenize("You are taking part in a survey.")])
    with torch.inference_mode():
        output = engine.model(ids, output_hidden_states=True)
    assert output.logits.dtype == torch.float32
    hidden = output.hidden_states[-1]
    expected = torch.nn.functional.linear(hidden.float(), head.weight.float())
    assert torch.equal(output.logits, expected)
    with pytest.warns(PrecisionWarning):
        again = TransformersEngine(
            engine.model,
            engine.tokenizer,
            model_id="again",
            settings=EngineSettings(dtype="bfloat16"),
        )
    assert again.model.get_output_embeddings() is head  # wrapped once
