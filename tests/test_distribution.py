"""The one weighted aggregation against a plain reference computation."""

from __future__ import annotations

import random
from collections import defaultdict

import polars as pl
import pytest

from survey_sim._distribution import weighted_distribution


def reference(rows: list[dict], by: str | None) -> dict[tuple, float]:
    """Per (group, question, option): Σ_units w · mean over the unit's rows / Σ_units w, over
    the units that answered the question; written as loops."""
    per_unit: dict[tuple, list[float]] = defaultdict(list)
    weight: dict[str, float] = {}
    answered: dict[tuple, set[str]] = defaultdict(set)
    for row in rows:
        group = row[by] if by else None
        per_unit[(group, row["question_id"], row["option_code"], row["unit"])].append(row["prob"])
        weight[row["unit"]] = row["weight"]
        answered[(group, row["question_id"])].add(row["unit"])
    result: dict[tuple, float] = defaultdict(float)
    for (group, question, option, unit), probs in per_unit.items():
        total = sum(weight[u] for u in answered[(group, question)])
        result[(group, question, option)] += weight[unit] * sum(probs) / len(probs) / total
    return result


@pytest.mark.parametrize("by", [None, "party"])
def test_matches_a_plain_computation(by):
    rng = random.Random(7)
    rows = []
    for unit in range(30):
        weight, party = rng.uniform(0.2, 3.0), rng.choice(["D", "R"])
        for question in ("q1", "q2"):
            if rng.random() < 0.2:
                continue  # not asked
            orders = rng.choice([1, 2, 3])  # several rows per option: option orders
            for _ in range(orders):
                probs = [rng.random() for _ in range(3)]
                for option, prob in zip("abc", probs, strict=True):
                    rows.append(
                        {
                            "unit": f"u{unit}",
                            "weight": weight,
                            "party": party,
                            "question_id": question,
                            "option_code": option,
                            "prob": prob / sum(probs),
                        }
                    )
    frame = pl.DataFrame(rows)
    got = weighted_distribution(frame, unit="unit", outcome=["option_code"], by=[by] if by else [])
    expected = reference(rows, by)
    assert got.height == len(expected)
    for row in got.iter_rows(named=True):
        key = (row[by] if by else None, row["question_id"], row["option_code"])
        assert row["prob"] == pytest.approx(expected[key], abs=1e-12)


def test_sparse_answers_and_outcomes_nobody_chose():
    """Respondents as units with one answer each; options nobody chose get 0, in order."""
    frame = pl.DataFrame(
        {
            "respondent_id": ["1", "2", "3"],
            "weight": [1.0, 3.0, 1.0],
            "question_id": ["q"] * 3,
            "option_code": ["yes", "yes", "no"],
            "prob": [1.0] * 3,
        }
    )
    options = pl.DataFrame({"question_id": ["q"] * 3, "option_code": ["no", "maybe", "yes"]})
    got = weighted_distribution(
        frame, unit="respondent_id", outcome=["option_code"], outcomes=options
    )
    assert got["option_code"].to_list() == ["no", "maybe", "yes"]
    assert got["prob"].to_list() == pytest.approx([0.2, 0.0, 0.8])
    assert got["units"].to_list() == [3, 3, 3]
    assert got["n_effective"][0] == pytest.approx(25 / 11)
