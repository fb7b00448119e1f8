"""The planted-signal survey: its exact distributions, its draws, and a small model trained to
be it, through the pipeline."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from survey_sim import (
    TransformersEngine,
    compare,
    paired_differences,
    simulate,
    simulate_respondents,
    subgroup_gaps,
)
from survey_sim.engines._hf import HFTokenizer
from survey_sim.engines.registry import load_local_model
from survey_sim.planted import (
    ATTRIBUTES,
    PLANTED_ITEMS,
    PlantedSurvey,
    _interview_examples,
    build_planted_base,
    null_pair,
    train_planted_model,
    trait_gap,
    trait_pair,
)
from survey_sim.runs.settings import SimulationSettings

CELL = {"party": "a Democrat", "age": "aged 18 to 34", "sex": "a woman"}


@pytest.fixture(scope="module")
def survey() -> PlantedSurvey:
    return PlantedSurvey()


def test_exact_distributions_and_the_weighted_data_that_carry_them(survey):
    for item in PLANTED_ITEMS:
        probs = survey.distribution(item.id, CELL)
        assert probs.sum() == pytest.approx(1) and (probs > 0).all()
    exact = survey.exact()
    by_cell = exact.distribution(list(ATTRIBUTES)).filter(
        *(pl.col(k) == v for k, v in CELL.items()), pl.col("question_id") == "taxes"
    )
    shares = by_cell.sort(pl.col("option_code").cast(pl.Int64))["prob"].to_numpy()
    assert shares == pytest.approx(survey.distribution("taxes", CELL), abs=1e-12)
    overall = exact.distribution().filter(pl.col("question_id") == "guns")
    assert overall.sort(pl.col("option_code").cast(pl.Int64))["prob"].to_numpy() == pytest.approx(
        survey.population_distribution("guns"), abs=1e-12
    )


def test_the_latent_trait_ties_two_items_and_nothing_else(survey):
    """Given a high answer on taxes, welfare moves up (shared trait); weather does not."""

    def mean(item, given=None):
        probs = survey.distribution(item, CELL, given)
        return probs @ np.arange(1, len(probs) + 1)

    assert (
        mean("welfare", {"taxes": 4}) > mean("welfare") + 0.3 > mean("welfare", {"taxes": 0}) + 0.6
    )
    assert mean("weather", {"taxes": 4}) == pytest.approx(mean("weather"), abs=1e-12)
    assert mean("guns", {"taxes": 4}) == pytest.approx(mean("guns"), abs=1e-12)


def test_a_large_sample_recovers_every_planted_quantity(survey):
    people = survey.sample(20_000, seed=1)
    scores = people.frame.with_columns(score=pl.col("option_code").cast(pl.Int64))
    for row in survey.planted_quantities().iter_rows(named=True):
        if not row["quantity"].startswith("party gap"):
            continue
        by_party = (
            scores.filter(pl.col("question_id") == row["item"])
            .group_by("party")
            .agg(pl.col("score").mean(), se=pl.col("score").std() / pl.len().sqrt())
        )
        means = {p: (m, se) for p, m, se in by_party.iter_rows()}
        (dem, se_d), (rep, se_r) = means["a Democrat"], means["a Republican"]
        assert abs(dem - rep - row["planted"]) < 4 * (se_d**2 + se_r**2) ** 0.5, row
    null = survey.planted_quantities().filter(pl.col("item") == "weather")["planted"][0]
    assert null == 0
    wide = scores.pivot(on="question_id", index="respondent_id", values="score")
    residual = {item: wide[item] - wide[item].mean() for item in ("taxes", "welfare", "weather")}
    assert np.corrcoef(residual["taxes"], residual["welfare"])[0, 1] > 0.3
    assert abs(np.corrcoef(residual["taxes"], residual["weather"])[0, 1]) < 0.03


@pytest.mark.slow
def test_a_model_trained_to_be_the_process_shows_its_signal_through_the_pipeline(tmp_path):
    """A small model trained from scratch on three items (the party effect, the interaction
    and the null item) for a short while is the process cell by cell (every cell × item
    within 0.05 total variation); through simulate, compare and subgroup gaps it shows the
    planted party gap with its sign and size, no gap on the null item, and beats the
    no-model baselines against a sample of people."""
    items = [item for item in PLANTED_ITEMS if item.id in ("taxes", "military", "weather")]
    small = PlantedSurvey(items)
    base = build_planted_base(tmp_path / "base", small)
    training = train_planted_model(
        base,
        tmp_path / "model",
        small,
        steps=150,
        batch_size=10_000,
        learning_rate=1e-3,
        progress=False,
    )
    assert training.losses[-1] < training.losses[0] / 3
    engine = TransformersEngine.from_pretrained(tmp_path / "model")
    people = small.sample(3000, seed=2)
    result = simulate(small.questionnaire, people.population(), engine, progress=False)
    distances = small.cell_distances(result.subgroups(list(ATTRIBUTES)))
    assert max(distances) < 0.05  # measured: mean 0.004, max 0.010
    gaps = subgroup_gaps(result.subgroups(["party"]), people, ["party"]).filter(
        pl.col("group_a").is_in(["a Democrat", "a Republican"])
        & pl.col("group_b").is_in(["a Democrat", "a Republican"])
    )
    by_item = {row["question_id"]: row for row in gaps.iter_rows(named=True)}
    assert by_item["taxes"]["model"] > 0.2 and by_item["taxes"]["same_direction"]
    assert by_item["weather"]["model"] < 0.05
    comparison = compare(result.population, people)
    versus = paired_differences(comparison, metrics=["total_variation"], versus=["uniform"])
    assert versus["difference"][0] < 0

    # Simulated respondents drawn from the model carry the same persona effects: per party,
    # their answer shares are the model's party distributions within sampling error.
    population = people.population()
    sample = simulate_respondents(
        small.questionnaire, population, engine, 3000, seed=4, progress=False, cache=False
    )
    parties = population.frame.select("persona_id", pl.col("party").cast(pl.String))
    answered = sample.microdata.join(parties, on="persona_id")
    asked = answered.group_by("party", "question_id").agg(n=pl.len())
    counts = answered.group_by("party", "question_id", "answer_code").len()
    model = (
        result.subgroups(["party"])
        .join(asked, on=["party", "question_id"])
        .join(
            counts.rename({"answer_code": "option_code"}),
            on=["party", "question_id", "option_code"],
            how="left",
        )
        .with_columns(share=pl.col("len").fill_null(0) / pl.col("n"))
    )
    error = (pl.col("prob") * (1 - pl.col("prob")) / pl.col("n")).sqrt()
    assert model.select(((pl.col("share") - pl.col("prob")).abs() < 4 * error + 1e-9).all()).item()
    taxes = model.filter(pl.col("question_id") == "taxes", pl.col("option_code") == "1")
    by_party = dict(taxes.select("party", "share").iter_rows())
    assert abs(by_party["a Democrat"] - by_party["a Republican"]) > 0.2


def test_trait_interviews_ask_the_two_trait_items_given_the_first_answer(survey, tmp_path):
    """The curriculum's interviews: per cell, the trait items alone, in both orders, the
    first targeted at the cell's distribution and the second at the distribution given the
    first answer (which is what makes the trait learnable)."""
    assert survey.trait_items == ("taxes", "welfare")
    base = build_planted_base(tmp_path / "base", survey)
    text = HFTokenizer(load_local_model(base).tokenizer, model_id="planted")
    exact = survey.exact()
    personas = list(exact.population(list(ATTRIBUTES)))[:2]
    prompt_format = SimulationSettings(format="chat").prompt_format()
    groups = _interview_examples(survey, exact, personas, prompt_format, text, 6, [0], trait_pair)
    assert len(groups) == 12
    firsts = set()
    for index, (first, second) in enumerate(groups):
        cell = {name: str(personas[index // 6].attributes[name]) for name in ATTRIBUTES}
        first_item, _ = first.label.split(" after ")
        second_item, answer = second.label.split(" after ")
        assert {first_item, second_item} == set(survey.trait_items)
        firsts.add(first_item)
        np.testing.assert_allclose(first.target, survey.distribution(first_item, cell))
        given = {first_item: int(answer) - 1}
        np.testing.assert_allclose(second.target, survey.distribution(second_item, cell, given))
        assert not np.allclose(second.target, survey.distribution(second_item, cell), atol=0.02)
    assert firsts == set(survey.trait_items)


def test_null_pairs_and_gap_interviews_ask_what_they_say():
    """A null pair never holds both trait items, so its second answer's target is its
    cell's distribution; a gap interview has the trait items at its ends, others between."""
    survey = PlantedSurvey()
    rng = np.random.default_rng(0)
    pairs = [null_pair(survey, rng) for _ in range(300)]
    assert all(len(set(pair)) == 2 for pair in pairs)
    assert not any(set(pair) == set(survey.trait_items) for pair in pairs)
    assert any(pair[0] in survey.trait_items for pair in pairs)
    cell = PlantedSurvey.cell_of(next(iter(survey.shares)))
    for first, second in pairs[:20]:
        np.testing.assert_allclose(
            survey.distribution(second, cell, {first: 0}), survey.distribution(second, cell)
        )
    for _ in range(100):
        asked = trait_gap(survey, rng)
        assert {asked[0], asked[-1]} == set(survey.trait_items)
        assert 3 <= len(asked) == len(set(asked)) <= len(survey.items)
        assert not set(asked[1:-1]) & set(survey.trait_items)


def test_interview_kinds_a_survey_cannot_make_are_refused_before_training(tmp_path):
    rng = np.random.default_rng(0)
    untraited = PlantedSurvey([dataclasses.replace(item, loading=0.0) for item in PLANTED_ITEMS])
    with pytest.raises(ValueError, match="exactly two items that load on the trait"):
        trait_pair(untraited, rng)
    assert len(set(null_pair(untraited, rng))) == 2  # no trait: every pair is a null pair
    trait_only = PlantedSurvey(PLANTED_ITEMS[:2])
    with pytest.raises(ValueError, match="null pairs need two items"):
        null_pair(trait_only, rng)
    with pytest.raises(ValueError, match="gap interviews need an item"):
        trait_gap(trait_only, rng)
    with pytest.raises(ValueError, match="set trait_interviews too"):
        train_planted_model(tmp_path, tmp_path / "out", warm_up_steps=10, progress=False)
