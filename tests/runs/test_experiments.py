"""Order experiments: a question's distribution in an arm is the exact sum over the answer
paths before it, equal to the marginal of the exact joint (and to the population run where
it is asked first); effects are the differences between arms; arms too long to enumerate
are refused before any model work."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from survey_sim import (
    ExperimentResult,
    InputError,
    Population,
    after_related,
    early_late,
    experiment,
    joint,
    simulate,
)


@pytest.fixture(scope="module")
def two_personas(demo_population):
    return Population(list(demo_population)[:2], id="two")


@pytest.fixture(scope="module")
def early_or_late(gss, two_personas, tiny_engine):
    arms = early_late("natfare", ["natenvir"])
    return experiment(gss, two_personas, tiny_engine, arms, progress=False, cache=False)


def test_an_arm_reads_each_question_summed_over_the_paths_before_it(
    gss, two_personas, tiny_engine, early_or_late
):
    exact = joint(gss, two_personas, tiny_engine, [("natenvir", "natfare")], progress=False)
    joints = exact.joints.filter(pl.col("asked") == "first, second")
    after = joints.group_by("persona_id", "second_code").agg(pl.col("prob").sum())
    late = early_or_late.responses.filter(
        pl.col("arm") == "late", pl.col("question_id") == "natfare"
    )
    merged = late.join(
        after, left_on=["persona_id", "option_code"], right_on=["persona_id", "second_code"]
    )
    assert merged.height == 2 * 3
    assert np.allclose(merged["prob"], merged["prob_right"], atol=1e-6)
    plain = simulate(gss.select(["natfare"]), two_personas, tiny_engine, progress=False).responses
    early = early_or_late.responses.filter(
        pl.col("arm") == "early", pl.col("question_id") == "natfare"
    )
    both = early.join(plain, on=["persona_id", "option_code"])
    assert np.allclose(both["prob"], both["prob_right"], atol=1e-5)
    assert early_or_late.responses.group_by("arm", "persona_id", "question_id").agg(
        pl.col("prob").sum()
    )["prob"].to_numpy() == pytest.approx(1.0)


def test_effects_are_differences_between_arms(early_or_late, tmp_path):
    effects = early_or_late.effects(resamples=200)
    population = early_or_late.population
    for question in ("natfare", "natenvir"):
        rows = effects.filter(pl.col("question_id") == question)
        late = population.filter(pl.col("arm") == "late", pl.col("question_id") == question)
        early = population.filter(pl.col("arm") == "early", pl.col("question_id") == question)
        difference = late["prob"].to_numpy() - early["prob"].to_numpy()
        shown = rows.filter(pl.col("measure") == "difference")["effect"].to_numpy()
        assert np.allclose(shown, difference)
        total = rows.filter(pl.col("measure") == "total_variation").row(0, named=True)
        assert total["effect"] == pytest.approx(np.abs(difference).sum() / 2)
        assert total["lower"] <= total["upper"]
        assert rows["position"][0] != rows["reference_position"][0]
    early_or_late.write_parquet(tmp_path / "arms.parquet")
    again = ExperimentResult.read_parquet(tmp_path / "arms.parquet")
    assert again.responses.equals(early_or_late.responses)


def test_bad_arms_are_refused_before_any_model_work(gss, two_personas, tiny_engine):
    def refused(arms, match):
        before = tiny_engine.stats.requests
        with pytest.raises(InputError, match=match):
            experiment(gss, two_personas, tiny_engine, arms, progress=False, cache=False)
        assert tiny_engine.stats.requests == before

    refused({"only": ["natfare"]}, "at least two arms")
    refused({"a": ["natfare"], "b": ["nope"]}, "'nope' is not a question")
    refused({"a": ["natfare", "natfare"], "b": ["natfare"]}, "natfare twice")
    ids = list(gss.listed_order)
    refused({"a": ids[:10], "b": ids[:1]}, r"needs 29,524 prompts per persona")
    assert after_related("natfare", "natsoc", "natspac") == {
        "after_related": ["natsoc", "natfare"],
        "after_unrelated": ["natspac", "natfare"],
    }
