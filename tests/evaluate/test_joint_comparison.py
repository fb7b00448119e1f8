"""Joints against people: association measures against SciPy and plain computations; people's
weighted cross-tabs against a loop; the comparison's verdicts on people sampled from the
model's own joint (no difference) and from independent answers (a difference); the PyMC
Association model against the Dirichlet posterior drawn directly; the heat-maps."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import optimize, stats

from survey_sim import InputError, load_questionnaire
from survey_sim._association import (
    bivariate_normal_cdf,
    cramers_v,
    measures_of,
    polychoric,
    tau_b,
)
from survey_sim.data.crosstabs import CrossTabs
from survey_sim.data.responses import HumanResponses
from survey_sim.evaluate import paired
from survey_sim.evaluate.joints import compare_joints
from survey_sim.evaluate.paired import bootstrap_weight_chunks, bootstrap_weights
from survey_sim.runs.joints import JOINT_SCHEMA, JointResult

QUESTIONNAIRE = """
id: pairs
title: Pairs
questions:
  - id: trust
    kind: ordinal
    text: How much do you trust the news?
    options:
      - {code: 1, text: A lot}
      - {code: 2, text: Some}
      - {code: 3, text: Not at all}
      - {code: 9, text: Don't know, substantive: false}
  - id: often
    kind: ordinal
    text: How often do you read the news?
    options:
      - {code: d, text: Daily}
      - {code: w, text: Weekly}
      - {code: r, text: Rarely}
      - {code: n, text: Never}
  - id: paper
    kind: single_choice
    text: Which do you read most?
    options:
      - {code: l, text: Local}
      - {code: n, text: National}
"""


@pytest.fixture(scope="module")
def questionnaire(tmp_path_factory):
    path = tmp_path_factory.mktemp("pairs") / "pairs.yaml"
    path.write_text(QUESTIONNAIRE)
    return load_questionnaire(path)


def expanded(table: np.ndarray) -> tuple[list[int], list[int]]:
    """One (row, column) observation per count."""
    rows, columns = [], []
    for (i, j), count in np.ndenumerate(table.astype(int)):
        rows += [i] * count
        columns += [j] * count
    return rows, columns


def test_tau_b_and_cramers_v_equal_scipy_on_count_tables():
    rng = np.random.default_rng(3)
    for shape in [(2, 2), (3, 4), (5, 3)]:
        counts = rng.integers(1, 40, size=shape).astype(float)
        counts[0, 0] += 60
        rows, columns = expanded(counts)
        assert tau_b(counts / counts.sum()) == pytest.approx(
            stats.kendalltau(rows, columns).statistic, abs=1e-12
        )
        assert cramers_v(counts / counts.sum()) == pytest.approx(
            stats.contingency.association(counts.astype(int), method="cramer"), abs=1e-12
        )
        batch = np.stack([counts, counts.T.T[::-1]]) / counts.sum()
        assert np.allclose(tau_b(batch), [tau_b(batch[0]), tau_b(batch[1])])


def test_bivariate_normal_cdf_and_polychoric_against_scipy():
    rng = np.random.default_rng(0)
    for rho in (-0.95, -0.4, 0.0, 0.3, 0.8, 0.99):
        h, k = rng.normal(size=2)
        reference = stats.multivariate_normal(cov=[[1, rho], [rho, 1]]).cdf([h, k])
        assert bivariate_normal_cdf(h, k, rho) == pytest.approx(reference, abs=1e-8)
    latent = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], size=100_000)
    table = np.zeros((3, 4))
    np.add.at(
        table,
        (np.digitize(latent[:, 0], [-0.5, 0.8]), np.digitize(latent[:, 1], [-1, 0, 1.2])),
        1,
    )
    shares = table / table.sum()

    def cell_probs(rho: float) -> np.ndarray:
        cuts = [
            np.r_[-10, stats.norm.ppf(np.cumsum(shares.sum(axis=axis))[:-1]), 10] for axis in (1, 0)
        ]
        law = stats.multivariate_normal(cov=[[1, rho], [rho, 1]])
        cdf = np.array([[law.cdf([a, b]) for b in cuts[1]] for a in cuts[0]])
        return cdf[1:, 1:] - cdf[:-1, 1:] - cdf[1:, :-1] + cdf[:-1, :-1]

    fitted = optimize.minimize_scalar(
        lambda rho: -(shares * np.log(cell_probs(rho))).sum(),
        bounds=(-0.99, 0.99),
        method="bounded",
        options={"xatol": 1e-8},
    ).x
    assert polychoric(shares) == pytest.approx(fitted, abs=1e-4)
    assert polychoric(shares) == pytest.approx(0.6, abs=0.02)
    assert polychoric(np.outer(shares.sum(axis=1), shares.sum(axis=0))) == pytest.approx(
        0.0, abs=1e-6
    )


def test_ordinal_measures_only_where_both_questions_are_ordinal(questionnaire):
    trust, often, paper = (questionnaire.question(q) for q in ("trust", "often", "paper"))
    assert [m for m, _, _ in measures_of(trust, often)] == ["cramers_v", "tau_b", "polychoric"]
    assert measures_of(trust, often)[1][1] == [0, 1, 2]  # "Don't know" is off the scale
    assert [m for m, _, _ in measures_of(trust, paper)] == ["cramers_v"]


def people(questionnaire, answers: list[tuple[str, str, str]], weights: list[float]):
    """Respondents with weights; each answers the three questions (None: skipped)."""
    rows = [
        {"respondent_id": str(i), "weight": w, "question_id": q, "option_code": code}
        for i, (codes, w) in enumerate(zip(answers, weights, strict=True))
        for q, code in zip(("trust", "often", "paper"), codes, strict=True)
        if code is not None
    ]
    return HumanResponses(pl.DataFrame(rows), questionnaire, "people")


def test_weighted_cross_tabs_equal_a_plain_loop(questionnaire):
    rng = np.random.default_rng(1)
    trust_codes = ["1", "2", "3", "9"]
    often_codes = [o.code for o in questionnaire.question("often").options]
    answers = [
        (
            str(rng.choice(trust_codes)),
            None if rng.random() < 0.2 else str(rng.choice(often_codes)),
            "l",
        )
        for _ in range(300)
    ]
    weights = list(rng.uniform(0.2, 3, size=300))
    crosstabs = CrossTabs(people(questionnaire, answers, weights))
    counts = rng.integers(0, 3, size=(4, crosstabs.respondents))
    blocks = [counts[:1], counts[1:]]  # bootstrap counts arrive in blocks of rows
    tab = crosstabs.of(questionnaire.question("trust"), questionnaire.question("often"), blocks)
    expected = np.zeros((4, 4))
    resampled = np.zeros((4, 4, 4))
    answered = []
    for index, ((trust, often, _), weight) in enumerate(zip(answers, weights, strict=True)):
        if often is None:
            continue
        cell = (trust_codes.index(trust), often_codes.index(often))
        expected[cell] += weight
        answered.append(weight)
        for draw in range(4):
            resampled[(draw, *cell)] += counts[draw, index] * weight
    assert np.allclose(tab.shares, expected / expected.sum())
    assert np.allclose(tab.resampled, resampled / resampled.sum(axis=(1, 2), keepdims=True))
    assert tab.n == len(answered)
    assert tab.n_effective == pytest.approx(sum(answered) ** 2 / sum(w * w for w in answered))


def test_bootstrap_counts_in_blocks_are_the_same_rows(monkeypatch):
    whole = bootstrap_weights(50, 30, seed=4)
    monkeypatch.setattr(paired, "CHUNK_BYTES", 8 * 50 * 7)  # 7 rows a block
    blocks = list(bootstrap_weight_chunks(50, 30, seed=4))
    assert [len(block) for block in blocks] == [7, 7, 7, 7, 2]
    assert (np.vstack(blocks) == whole).all()


PLANTED = np.array([[0.25, 0.075, 0.025], [0.0625, 0.25, 0.0625], [0.025, 0.0625, 0.1875]])
"""A joint of trust (rows: 1, 2, 3) × often (Daily, Weekly, Rarely), strongly associated;
"Don't know" with "Never" gets 0.1 of the mass below."""


def planted_joints(questionnaire) -> tuple[JointResult, np.ndarray]:
    """A joint result with a planted table for two personas (the second shifted), and the
    population table."""
    trust = [o.code for o in questionnaire.question("trust").options]
    often = [o.code for o in questionnaire.question("often").options]
    full = np.zeros((4, 4))
    full[:3, :3] = PLANTED * 0.9
    full[3, 3] = 0.1
    personas = {"a": (0.7, full), "b": (0.3, full.T)}
    rows = [
        {
            "persona_id": persona,
            "weight": weight,
            "first": "trust",
            "second": "often",
            "asked": asked,
            "first_code": trust[i],
            "second_code": often[j],
            "prob": float(table[i, j]),
            "first_prob": None,
            "conditional_prob": None,
            "model": "planted",
            "format": "chat",
        }
        for persona, (weight, table) in personas.items()
        for asked in ("first, second", "second, first", "average")
        for i in range(4)
        for j in range(4)
    ]
    population = 0.7 * full + 0.3 * full.T
    return JointResult(pl.DataFrame(rows, schema=JOINT_SCHEMA)), population


def sampled_people(questionnaire, table: np.ndarray, n: int, seed: int) -> HumanResponses:
    rng = np.random.default_rng(seed)
    trust = [o.code for o in questionnaire.question("trust").options]
    often = [o.code for o in questionnaire.question("often").options]
    cells = rng.choice(table.size, size=n, p=table.ravel() / table.sum())
    answers = [(trust[c // 4], often[c % 4], "l") for c in cells]
    return people(questionnaire, answers, [1.0] * n)


def test_people_sampled_from_the_models_joint_show_no_association_difference(questionnaire):
    joints, population = planted_joints(questionnaire)
    compared = compare_joints(joints, sampled_people(questionnaire, population, 4000, seed=2))
    associations = compared.associations
    assert set(associations["measure"]) == {"cramers_v", "tau_b", "polychoric"}
    for row in associations.iter_rows(named=True):
        standard_error = (row["people_upper"] - row["people_lower"]) / 3.29
        assert abs(row["difference"]) < 4 * standard_error, row
    tau = associations.filter(pl.col("measure") == "tau_b").row(0, named=True)
    on_scale = population[:3, :3]
    assert tau["model"] == pytest.approx(tau_b(on_scale / on_scale.sum()), abs=1e-12)
    scores = {row["source"]: row for row in compared.scores.iter_rows(named=True)}
    assert scores["model"]["jensen_shannon"] < 5 * scores["noise_floor"]["jensen_shannon"]
    assert scores["model_independence"]["jensen_shannon"] > 10 * scores["model"]["jensen_shannon"]
    # Both personas hold the association themselves: independence within personas loses it.
    assert scores["personas_only"]["total_variation"] > 0.1
    assert compared.paired.filter(pl.col("versus") == "model_independence")["pairs"].to_list() == [
        1,
        1,
    ]


def test_a_joint_that_is_not_a_distribution_is_refused(questionnaire):
    joints, _ = planted_joints(questionnaire)
    halved = JointResult(
        joints.joints.with_columns(
            prob=pl.when(pl.col("persona_id") == "b").then(pl.col("prob") / 2).otherwise("prob")
        )
    )
    with pytest.raises(InputError, match=r"persona 'b' sums to 0\.5"):
        halved.tables(questionnaire.question("trust"), questionnaire.question("often"))


def test_people_answering_independently_are_told_apart_from_the_model(questionnaire):
    joints, population = planted_joints(questionnaire)
    independent = np.outer(population.sum(axis=1), population.sum(axis=0))
    compared = compare_joints(joints, sampled_people(questionnaire, independent, 4000, seed=3))
    verdicts = dict(compared.associations.select("measure", "verdict").iter_rows())
    assert verdicts == {m: "model higher" for m in ("cramers_v", "tau_b", "polychoric")}
    scores = {row["source"]: row for row in compared.scores.iter_rows(named=True)}
    assert scores["model_independence"]["jensen_shannon"] < scores["model"]["jensen_shannon"]
    with pytest.raises(InputError, match="asked must be one of"):
        compare_joints(joints, sampled_people(questionnaire, independent, 50, seed=4), asked="x")


def test_association_model_matches_the_dirichlet_posterior(questionnaire):
    from survey_sim.analysis import Association

    joints, population = planted_joints(questionnaire)
    human = sampled_people(questionnaire, population, 600, seed=5)
    model = Association(joints, human)
    (pair,) = model.pairs
    assert pair.measure == "tau_b"
    idata = model.fit(draws=1000, tune=500, chains=2)
    people = idata.posterior["people"].sel(pair="trust × often").values.ravel()
    draws = np.random.default_rng(0).dirichlet(1 + pair.counts.ravel(), size=20_000)
    tables = draws.reshape(-1, 4, 4)[:, :3, :3]
    direct = tau_b(tables / tables.sum(axis=(1, 2), keepdims=True))
    assert people.mean() == pytest.approx(direct.mean(), abs=0.01)
    assert people.std() == pytest.approx(direct.std(), rel=0.15)
    difference = idata.posterior["difference"].sel(pair="trust × often").values.ravel()
    assert np.allclose(difference + people, pair.simulated_value)
    with pytest.raises(InputError, match="measure must be one of"):
        Association(joints, human, measure="polychoric")


def test_association_heat_maps(questionnaire, tmp_path):
    from survey_sim.analysis import plot_associations

    joints, population = planted_joints(questionnaire)
    compared = compare_joints(joints, sampled_people(questionnaire, population, 500, seed=6))
    path = plot_associations(compared.associations, tmp_path / "a.png", measure="tau_b")
    assert path.stat().st_size > 10_000
    with pytest.raises(InputError, match="no pair has the measure"):
        plot_associations(compared.associations, tmp_path / "b.png", measure="kappa")
