"""A population run over a whole instrument: personas are not asked what their attributes
rule out, questions that depend on the interview's path are left out by name, and each
persona's chance of being asked a question is the enumeration of its own answers."""

from __future__ import annotations

import polars as pl
import pytest

from survey_sim import SimulationSettings, simulate
from survey_sim.errors import FlowWarning
from survey_sim.runs.plan import Plan


@pytest.fixture(scope="module")
def flow_result(instrument, demo_population, tiny_engine):
    with pytest.warns(FlowWarning, match=r"vote16_strength depend\(s\) on earlier answers"):
        return simulate(instrument, demo_population, tiny_engine, progress=False, cache=False)


def test_a_persona_is_not_asked_what_its_attributes_rule_out(
    instrument, demo_population, tiny_engine, flow_result
):
    with pytest.warns(FlowWarning):
        plan = Plan.build(instrument, demo_population, SimulationSettings(), chat=tiny_engine)
    asked = {(cell.persona.id, cell.question.id) for cell, _ in plan.exact}
    for persona in demo_population:
        old_enough = persona.attributes["age"] >= 40
        assert ((persona.id, "natsoc") in asked) == old_enough
        assert (persona.id, "vote16_strength") not in asked
        assert (persona.id, "vote16") in asked
    pairs = flow_result.responses.select("persona_id", "question_id").unique()
    assert set(pairs.iter_rows()) == asked


def test_p_asked_is_each_personas_own_chance_of_reaching_the_question(demo_population, flow_result):
    responses = flow_result.responses
    voted = dict(
        responses.filter(pl.col("question_id") == "voted16", pl.col("option_code") == "4")
        .select("persona_id", "prob")
        .iter_rows()
    )
    asked = responses.unique(["persona_id", "question_id"]).select(
        "persona_id", "question_id", "p_asked"
    )
    for persona_id, question_id, p_asked in asked.iter_rows():
        expected = {"vote16": voted[persona_id], "prefer16": 1 - voted[persona_id]}
        assert p_asked == pytest.approx(expected.get(question_id, 1.0), abs=1e-12)

    population = flow_result.population
    weights = {p.id: p.weight for p in demo_population}
    total = sum(weights.values())
    share = population.filter(pl.col("question_id") == "vote16")["p_asked"][0]
    assert share == pytest.approx(sum(weights[p] * voted[p] for p in weights) / total)
    old = [p.id for p in demo_population if p.attributes["age"] >= 40]
    natsoc = population.filter(pl.col("question_id") == "natsoc")
    assert natsoc["p_asked"][0] == pytest.approx(sum(weights[p] for p in old) / total)
    assert natsoc["personas"][0] == len(old)

    # the distribution among those asked weights each persona by its chance of being asked
    prefer = responses.filter(pl.col("question_id") == "prefer16", pl.col("option_code") == "1")
    mass = sum(
        weights[p] * (1 - voted[p]) * q for p, q in prefer.select("persona_id", "prob").iter_rows()
    )
    among = mass / sum(weights[p] * (1 - voted[p]) for p in weights)
    reported = population.filter(pl.col("question_id") == "prefer16", pl.col("option_code") == "1")
    assert reported["prob"][0] == pytest.approx(among, abs=1e-12)


def test_flow_results_round_trip(flow_result, tmp_path):
    from survey_sim import SimulationResult

    flow_result.write_parquet(tmp_path / "flow.parquet")
    back = SimulationResult.read_parquet(tmp_path / "flow.parquet")
    assert back.responses.equals(flow_result.responses)
    assert back.population.equals(flow_result.population)
