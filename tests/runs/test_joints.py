"""Exact joints: each cell is the product of the first question's probability and the
second's conditional probability, computed here by plain forward passes without prefix
reuse; the first factor is the population run's distribution; simulated respondents with
memory reproduce the joint within sampling error."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest
from scipy import stats

from survey_sim import (
    ChainResult,
    InputError,
    JointResult,
    Population,
    chain,
    joint,
    load_questionnaire,
    simulate,
    simulate_respondents,
)
from survey_sim.asking.schemas import answer_texts
from survey_sim.runs.paths import AnswerPaths
from survey_sim.runs.respondents import interview_cell
from survey_sim.runs.settings import SimulationSettings
from survey_sim.testing import reference_logprob

PAIR = ("natfare", "natenvir")


@pytest.fixture(scope="module")
def two_personas(demo_population):
    return Population(list(demo_population)[:2], id="two")


@pytest.fixture(scope="module")
def exact_joint(gss, two_personas, tiny_engine):
    return joint(gss, two_personas, tiny_engine, [PAIR], progress=False, cache=False)


def plain_distribution(engine, cell) -> dict[str, float]:
    """A cell's option probabilities from one plain forward pass per option (no prefix
    reuse), scored from where the engine splits prompt and answer."""
    (request,) = cell.asking.exact_requests(cell.context)
    (scored,) = engine.score([request])
    logprobs = [
        reference_logprob(
            engine.model, engine.tokenize(request.prefix + text), scored.prompt_tokens
        )
        for text in request.continuations
    ]
    total = math.log(sum(math.exp(value) for value in logprobs))
    codes = [option.code for option in cell.question.options]
    return {code: math.exp(value - total) for code, value in zip(codes, logprobs, strict=True)}


def test_joint_cells_are_products_of_plainly_computed_conditionals(
    gss, two_personas, tiny_engine, exact_joint
):
    settings = SimulationSettings()
    prompt_format = settings.prompt_format()
    for persona in two_personas:
        for first_id, second_id, asked in (
            (PAIR[0], PAIR[1], "first, second"),
            (PAIR[1], PAIR[0], "second, first"),
        ):
            first, second = gss.question(first_id), gss.question(second_id)

            def cell(question, earlier, persona=persona):
                return interview_cell(
                    persona,
                    question,
                    None,
                    earlier,
                    prompt_format=prompt_format,
                    chat=tiny_engine,
                    instructions=gss.instructions,
                )

            marginal = plain_distribution(tiny_engine, cell(first, []))
            labels = answer_texts(first, prompt_format.answer)
            rows = exact_joint.joints.filter(
                pl.col("persona_id") == persona.id, pl.col("asked") == asked
            )
            for option, label in zip(first.options, labels, strict=True):
                conditional = plain_distribution(tiny_engine, cell(second, [(first, label)]))
                for other in second.options:
                    codes = (option.code, other.code)
                    if asked == "second, first":
                        codes = codes[::-1]
                    (prob,) = rows.filter(
                        pl.col("first_code") == codes[0], pl.col("second_code") == codes[1]
                    )["prob"]
                    assert prob == pytest.approx(
                        marginal[option.code] * conditional[other.code], abs=1e-5
                    )


def test_joints_sum_to_one_their_first_factor_is_the_population_run_and_orders_average(
    gss, two_personas, tiny_engine, exact_joint
):
    frame = exact_joint.joints
    sums = frame.group_by("persona_id", "asked").agg(pl.col("prob").sum())
    assert sums["prob"].to_list() == pytest.approx([1.0] * sums.height, abs=1e-9)
    assert set(frame["asked"]) == {"first, second", "second, first", "average"}
    alone = simulate(gss.select(list(PAIR)), two_personas, tiny_engine, progress=False, cache=False)
    first = (
        frame.filter(pl.col("asked") == "first, second")
        .group_by("persona_id", "first_code")
        .agg(pl.col("prob").sum())
        .rename({"first_code": "option_code"})
        .join(
            alone.responses.filter(pl.col("question_id") == PAIR[0]),
            on=["persona_id", "option_code"],
        )
    )
    assert (first["prob"] - first["prob_right"]).abs().max() < 1e-5
    wide = frame.pivot(on="asked", index=["persona_id", "first_code", "second_code"], values="prob")
    mean = (wide["first, second"] + wide["second, first"]) / 2
    assert (mean - wide["average"]).abs().max() < 1e-12
    table = exact_joint.table(*PAIR)
    assert table.height == 3 and table.width == 4


def test_respondents_with_memory_reproduce_the_exact_joint(
    gss, two_personas, tiny_engine, exact_joint, tmp_path
):
    pair = gss.select(list(PAIR)).model_copy(update={"memory": "full"})
    n = 3000
    sample = simulate_respondents(
        pair, two_personas, tiny_engine, n, seed=7, progress=False, cache=False
    )
    counts = sample.wide.group_by(*PAIR).len()
    expected = (
        exact_joint.population.filter(pl.col("asked") == "first, second")
        .join(
            counts.rename({PAIR[0]: "first_code", PAIR[1]: "second_code"}),
            on=["first_code", "second_code"],
            how="left",
        )
        .with_columns(pl.col("len").fill_null(0), expected=pl.col("prob") * n)
    )
    chi_square = ((expected["len"] - expected["expected"]) ** 2 / expected["expected"]).sum()
    assert stats.chi2.sf(chi_square, df=expected.height - 1) > 1e-3

    exact_joint.write_parquet(tmp_path / "j.parquet")
    assert JointResult.read_parquet(tmp_path / "j.parquet").joints.equals(exact_joint.joints)


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([], "at least one pair"),
        ([("natfare", "nope")], "'nope' is not a question"),
        ([("natfare", "natfare")], "paired with itself"),
    ],
)
def test_bad_pairs_are_refused_before_model_work(gss, two_personas, tiny_engine, pairs, expected):
    with pytest.raises(InputError, match=expected):
        joint(gss, two_personas, tiny_engine, pairs, progress=False)


def test_kinds_without_an_exact_distribution_are_refused(two_personas, tiny_engine):
    kinds = load_questionnaire(Path(__file__).parents[2] / "questionnaires/question_kinds.yaml")
    with pytest.raises(InputError, match="'mip' is a free_text question"):
        joint(kinds, two_personas, tiny_engine, [("polint", "mip")], progress=False)


def test_a_chain_is_the_product_of_plainly_computed_conditionals(
    gss, two_personas, tiny_engine, exact_joint, tmp_path
):
    chain_ids = [*PAIR, "natheal"]
    result = chain(gss, two_personas, tiny_engine, chain_ids, progress=False, cache=False)
    frame = result.joints
    assert frame.height == 2 * 27
    sums = frame.group_by("persona_id").agg(pl.col("prob").sum())["prob"].to_list()
    assert sums == pytest.approx([1.0, 1.0], abs=1e-9)
    # Summing out the third question gives the pair's joint asked in the same order.
    pair = (
        frame.with_columns(pl.col("codes").list.slice(0, 2))
        .group_by("persona_id", "codes")
        .agg(pl.col("prob").sum())
        .with_columns(
            first_code=pl.col("codes").list.get(0), second_code=pl.col("codes").list.get(1)
        )
        .join(
            exact_joint.joints.filter(pl.col("asked") == "first, second"),
            on=["persona_id", "first_code", "second_code"],
        )
    )
    assert pair.height == 2 * 9
    assert (pair["prob"] - pair["prob_right"]).abs().max() < 1e-6  # other batches: float noise
    # One path by plain forward passes, each question after the answers before it.
    persona = next(iter(two_personas))
    questions = [gss.question(q) for q in chain_ids]
    codes = [q.options[i].code for q, i in zip(questions, (2, 0, 1), strict=True)]
    prompt_format = SimulationSettings().prompt_format()
    expected, earlier = 1.0, []
    for question, code in zip(questions, codes, strict=True):
        cell = interview_cell(
            persona,
            question,
            None,
            earlier,
            prompt_format=prompt_format,
            chat=tiny_engine,
            instructions=gss.instructions,
        )
        expected *= plain_distribution(tiny_engine, cell)[code]
        labels = answer_texts(question, prompt_format.answer)
        earlier.append((question, labels[[o.code for o in question.options].index(code)]))
    (prob,) = frame.filter(pl.col("persona_id") == persona.id, pl.col("codes") == codes)["prob"]
    assert prob == pytest.approx(expected, abs=1e-5)
    assert result.table().columns == [*chain_ids, "prob"]
    result.write_parquet(tmp_path / "c.parquet")
    assert ChainResult.read_parquet(tmp_path / "c.parquet").joints.equals(frame)


def test_a_chain_too_large_to_enumerate_is_refused_before_model_work(
    gss, two_personas, tiny_engine
):
    before = tiny_engine.stats.requests
    with pytest.raises(InputError, match=r"has 2,187 cells, over the limit of 1,000"):
        chain(gss, two_personas, tiny_engine, list(gss.listed_order[:7]), progress=False)
    with pytest.raises(InputError, match="two or more different questions"):
        chain(gss, two_personas, tiny_engine, ["natfare", "natfare"], progress=False)
    assert tiny_engine.stats.requests == before


def test_joints_read_for_other_codes_or_incomplete_are_refused(gss, exact_joint):
    first, second = gss.question(PAIR[0]), gss.question(PAIR[1])
    recoded = JointResult(
        exact_joint.joints.with_columns(
            first_code=pl.col("first_code").replace({"1": "7"}),
        )
    )
    with pytest.raises(InputError, match="was read for the codes"):
        recoded.tables(first, second)
    missing = JointResult(exact_joint.joints.slice(1))
    with pytest.raises(InputError, match="cells, not one per persona"):
        missing.tables(first, second, "first, second")


def test_more_prompts_than_memory_holds_are_refused_before_model_work(
    gss, two_personas, tiny_engine
):
    paths = AnswerPaths(gss, two_personas, tiny_engine, SimulationSettings(), "joints", 3 * 8192)
    persona = next(iter(two_personas))
    paths.key(persona, gss.question("natfare"), ())
    paths.key(persona, gss.question("natenvir"), ())
    with pytest.raises(InputError, match="joints needs more than 2 prompts"):
        paths.key(persona, gss.question("natheal"), ())
