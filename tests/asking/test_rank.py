"""Rank questions: every ranking's exact probability as a chain of choices (P(first) ·
P(second | first) · ...), checked against plain forward passes; sampled rankings under a
grammar that lists them; summaries; refusals with the numbers."""

from __future__ import annotations

import math

import polars as pl
import pyreadstat
import pytest

from survey_sim import (
    InputError,
    Population,
    Questionnaire,
    SimulationSettings,
    rank_summary,
    simulate,
    simulate_respondents,
)
from survey_sim.asking.schemas import value_schema
from survey_sim.runs.plan import Plan
from survey_sim.testing import reference_logprob

OPTIONS = [
    {"code": "econ", "text": "The economy"},
    {"code": "health", "text": "Health care"},
    {"code": "env", "text": "The environment"},
    {"code": "crime", "text": "Crime"},
]


def ranking(**given: object) -> Questionnaire:
    question = {"id": "focus", "kind": "rank", "text": "What should the government focus on?"}
    return Questionnaire.model_validate(
        {"id": "r", "questions": [question | {"options": OPTIONS} | given]}
    )


@pytest.fixture(scope="module")
def two_people() -> Population:
    return Population.from_records(
        [{"id": "young", "age": "25", "weight": 3}, {"id": "old", "age": "70", "weight": 1}],
        template="You are {age} years old.",
    )


def test_rankings_are_the_outcomes():
    question = ranking(rank=2).question("focus")
    codes = [outcome.code for outcome in question.outcomes]
    assert len(codes) == 4 * 3 and codes[:3] == ["econ>health", "econ>env", "econ>crime"]
    assert question.outcomes[1].text == "The economy > The environment"
    schema = value_schema(question)
    assert (schema["minItems"], schema["maxItems"]) == (2, 2)
    assert schema["enum"][:2] == [["A", "B"], ["A", "C"]]
    assert len(ranking().question("focus").outcomes) == 24


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"rank": 5}, "rank is 5 but there are 4 options"),
        (
            {"options": [*OPTIONS, {"code": "dk", "text": "Don't know", "substantive": False}]},
            "options dk are non-substantive, which a ranking cannot place",
        ),
        (
            {"options": [{"code": "a>b", "text": "A"}, {"code": "c", "text": "C"}]},
            "option codes a>b contain '>'",
        ),
        (
            {"options": [{"code": str(n), "text": f"Item {n}"} for n in range(7)]},
            "ranking 7 of 7 options has 5,040 possible rankings; at most 720",
        ),
    ],
)
def test_rankings_that_cannot_be_read_are_refused_with_the_numbers(given, message):
    with pytest.raises(ValueError, match=message):
        ranking(**given)


def test_a_condition_cannot_use_a_ranking():
    follow = {"id": "why", "kind": "free_text", "text": "Why?", "ask_if": 'focus == "econ"'}
    question = {"id": "focus", "kind": "rank", "text": "Focus?", "options": OPTIONS}
    with pytest.raises(ValueError, match="'focus', a rank question"):
        Questionnaire.model_validate({"id": "r", "questions": [question, follow]})


def ranked_so_far(prompt: str) -> list[str]:
    """The lines of a step's prompt that list the options ranked so far ("1. B. Health")."""
    if "So far you have ranked:\n" not in prompt:
        return []
    listed = prompt.split("So far you have ranked:\n")[1].split("\n\n")[0]
    return listed.splitlines()


def plain_step_probs(engine, request) -> list[float]:
    """One step's probabilities from one plain forward pass per option (no prefix reuse)."""
    (scored,) = engine.score([request])
    logprobs = [
        reference_logprob(
            engine.model, engine.tokenize(request.prefix + text), scored.prompt_tokens
        )
        for text in request.continuations
    ]
    total = sum(math.exp(value) for value in logprobs)
    return [math.exp(value) / total for value in logprobs]


@pytest.mark.parametrize("rank", [None, 2])
def test_each_ranking_is_the_product_of_its_plainly_computed_choices(tiny_engine, two_people, rank):
    questionnaire = ranking(rank=rank)
    question = questionnaire.question("focus")
    texts = [option.text for option in question.options]
    result = simulate(questionnaire, two_people, tiny_engine, progress=False, cache=False)
    plan = Plan.build(questionnaire, two_people, SimulationSettings(), tiny_engine)
    for cell, requests in plan.exact:
        steps = {}
        for request in requests:  # each step's prompt lists the options ranked before it
            begun = tuple(
                texts.index(line.split(". ", 2)[2]) for line in ranked_so_far(request.prefix)
            )
            steps[begun] = plain_step_probs(tiny_engine, request)
        mine = dict(
            result.responses.filter(pl.col("persona_id") == cell.persona.id)
            .select("option_code", "prob")
            .iter_rows()
        )
        assert sum(mine.values()) == pytest.approx(1.0, abs=1e-9)
        for order in question.rankings():
            expected = 1.0
            for place in range(min(len(order), len(question.options) - 1)):
                rest = [i for i in range(len(question.options)) if i not in order[:place]]
                expected *= steps[order[:place]][rest.index(order[place])]
            code = question.ranking_outcome(order).code
            assert mine[code] == pytest.approx(expected, abs=1e-5), code
    summary = rank_summary(result, questionnaire)
    population = dict(result.population.select("option_code", "prob").iter_rows())
    econ = summary.filter(pl.col("option_code") == "econ").row(0, named=True)
    assert econ["first"] == pytest.approx(
        sum(p for code, p in population.items() if code.startswith("econ>"))
    )
    assert summary["first"].sum() == pytest.approx(1.0)
    if rank is None:
        assert summary["ranked"].to_list() == pytest.approx([1.0] * 4)
        assert summary["mean_rank"].sum() == pytest.approx(1 + 2 + 3 + 4)
    else:
        assert summary["mean_rank"].is_null().all()
        assert summary["ranked"].sum() == pytest.approx(2.0)


def test_rankings_are_sampled_and_drawn_by_respondents(tiny_engine, two_people, tmp_path):
    questionnaire = ranking(rank=3)
    codes = {outcome.code for outcome in questionnaire.question("focus").outcomes}
    sampled = simulate(
        questionnaire,
        two_people,
        tiny_engine,
        method="sample",
        samples=40,
        progress=False,
        cache=False,
    )
    assert set(sampled.population["option_code"]) == codes
    assert sampled.population["prob"].sum() == pytest.approx(1.0)
    assert sampled.draws is not None and not sampled.draws["invalid"].any()
    permuted = simulate(
        questionnaire, two_people, tiny_engine, permute=True, progress=False, cache=False
    )
    assert permuted.population["prob"].sum() == pytest.approx(1.0)
    assert permuted.responses["order"].n_unique() == 24  # every order of 4 nominal options
    people = simulate_respondents(questionnaire, two_people, tiny_engine, n=8, progress=False)
    answers = people.microdata["answer_code"].drop_nulls().to_list()
    assert answers and set(answers) <= codes
    exported = people.export(tmp_path / "sample.sav", questionnaire)
    assert exported.text_coded == ["focus"]
    data, _ = pyreadstat.read_sav(str(exported.paths[0]))
    assert set(data["focus"].dropna()) <= codes


def test_rank_summary_refuses_results_of_another_questionnaire(tiny_engine, two_people):
    result = simulate(ranking(rank=2), two_people, tiny_engine, progress=False, cache=False)
    with pytest.raises(InputError, match="the rankings in the results are not the questionnaire"):
        rank_summary(result, ranking(rank=3))


def test_a_study_with_more_prompts_than_memory_holds_is_refused_before_model_work(
    tiny_engine, two_people, monkeypatch
):
    import survey_sim.runs.plan as plan

    # 17 prompts per persona (ranking 3 of 4: 1 + 4 + 12); memory for 20 holds one persona.
    monkeypatch.setattr(plan, "most_prompts", lambda available=None: 20)
    passes = tiny_engine.stats.forward_passes
    with pytest.raises(InputError, match=r"needs more than 20 prompts.*rank fewer places"):
        simulate(ranking(rank=3), two_people, tiny_engine, progress=False, cache=False)
    assert tiny_engine.stats.forward_passes == passes
