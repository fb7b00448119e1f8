"""Simulated respondents walk the instrument: filters skip (and nothing is asked of a
skipped question), pipes fill, orders and answers are seeded and reproducible, skipped
questions never enter memory, the model work grows with distinct paths and not with n, and
the microdata's marginals match the exact distributions the answers came from."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
import pytest
from scipy import stats

from survey_sim import (
    InputError,
    LastAnswers,
    RespondentsResult,
    ResultsCache,
    SimulationSettings,
    load_questionnaire,
    simulate,
    simulate_respondents,
)
from survey_sim.errors import FlowWarning
from survey_sim.flow import interview_order
from survey_sim.runs.respondents import (
    _Answer,
    _Interview,
    _Interviewer,
    _Outcome,
    _refuse_beyond_memory,
    allocate,
    chi_square_survival,
    draw,
)
from survey_sim.testing import InterruptedAfter


@pytest.fixture(scope="module")
def sample(instrument, demo_population, tiny_engine):
    return simulate_respondents(
        instrument, demo_population, tiny_engine, 400, seed=3, progress=False, cache=False
    )


def test_a_sample_too_large_for_memory_is_refused_with_the_numbers(
    instrument, demo_population, tiny_engine
):
    with pytest.raises(InputError, match=r"need about .* GiB .* Simulate fewer at a time"):
        _refuse_beyond_memory(10_000_000, 7, available=8 * 2**30)
    _refuse_beyond_memory(10_000, 7, available=8 * 2**30)
    with pytest.raises(InputError, match="need about"):
        simulate_respondents(instrument, demo_population, tiny_engine, 10**12, progress=False)


def test_the_chi_square_p_value_is_scipys():
    for df in range(1, 12):
        for statistic in (0.0, 0.01, 0.5, 2.7, 10.0, 50.0, 700.0):
            expected = stats.chi2.sf(statistic, df)
            assert chi_square_survival(statistic, df) == pytest.approx(expected, abs=1e-12)


def test_allocation_is_largest_remainder_or_a_seeded_multinomial(demo_population):
    personas = allocate(demo_population, 10, "proportional", 0)
    counts = {p.id: sum(1 for q in personas if q.id == p.id) for p in demo_population}
    total = sum(p.weight for p in demo_population)
    for persona in demo_population:
        assert abs(counts[persona.id] - 10 * persona.weight / total) < 1
    assert len(personas) == 10
    drawn = allocate(demo_population, 1000, "multinomial", 5)
    assert drawn == allocate(demo_population, 1000, "multinomial", 5) and len(drawn) == 1000
    assert draw(["a", "b", "c"], [0.2, 0.3, 0.5], 0.19) == "a"
    assert draw(["a", "b", "c"], [0.2, 0.3, 0.5], 0.2) == "b"
    assert draw(["a", "b", "c"], [0.2, 0.3, 0.4999], 0.99995) == "c"


def test_the_flow_decides_who_is_asked_what(instrument, demo_population, sample):
    data = sample.microdata
    assert data.height == 400 * len(instrument)
    wide = sample.wide
    assert wide.height == 400 and wide.columns[2:] == list(instrument.listed_order)
    ages = {p.id: p.attributes["age"] for p in demo_population}
    for row in wide.iter_rows(named=True):
        voted = row["voted16"] == "4"
        assert (row["vote16"] is not None) == voted
        assert (row["prefer16"] is not None) == (not voted)
        assert (row["vote16_strength"] is not None) == (voted and row["vote16"] in ("1", "2"))
        assert (row["natsoc"] is not None) == (ages[row["persona_id"]] >= 40)
    skipped = data.filter(~pl.col("asked"))
    assert skipped["answer_code"].is_null().all()
    reasons = dict(skipped.select("question_id", "skipped_because").unique().iter_rows())
    assert reasons["vote16"] == 'voted16 == "4"' and reasons["natsoc"] == "persona.age >= 40"
    for respondent, group in data.group_by("respondent_id"):
        order = tuple(group.sort("position")["question_id"])
        assert order == interview_order(instrument, 3, respondent[0])
    assert data.filter(pl.col("block") == "spending")["position"].n_unique() == 3


def test_the_sample_as_survey_data_holds_every_coded_answer_with_its_persona(
    instrument, demo_population, sample
):
    responses = sample.as_responses(instrument)
    coded = sample.microdata.filter(pl.col("asked"), pl.col("answer_code").is_not_null())
    assert responses.frame.height == coded.height
    assert set(responses.frame["weight"]) == {1.0}
    by_id = {p.id: p for p in demo_population}
    personas = dict(coded.select("respondent_id", "persona_id").unique().iter_rows())
    for row in responses.frame.head(50).iter_rows(named=True):
        persona = by_id[personas[row["respondent_id"]]]
        assert row["age"] == str(persona.attributes["age"])
    observed = (
        responses.distribution()
        .join(
            sample.marginals.rename({"option_code": "code"}),
            left_on=["question_id", "option_code"],
            right_on=["question_id", "code"],
        )
        .select((pl.col("prob") - pl.col("observed")).abs().max())
        .item()
    )
    assert observed < 1e-12
    edited = instrument.model_copy(update={"title": "edited"})
    with pytest.raises(InputError, match="differs from it"):
        sample.as_responses(edited)


def test_answers_are_reproducible_and_a_rerun_from_the_store_does_no_model_work(
    instrument, demo_population, tiny_engine, sample, tmp_path
):
    store = ResultsCache(tmp_path / "store.sqlite")
    first = simulate_respondents(
        instrument, demo_population, tiny_engine, 400, seed=3, progress=False, cache=store
    )
    # a run through the store batches the prompts differently: the same answers, with
    # probabilities equal to float precision
    assert first.microdata.drop("prob").equals(sample.microdata.drop("prob"))
    assert (first.microdata["prob"] - sample.microdata["prob"]).abs().max() < 1e-5
    again = simulate_respondents(
        instrument, demo_population, tiny_engine, 400, seed=3, progress=False, cache=store
    )
    assert again.microdata.equals(first.microdata)
    assert again.manifest.cache.misses == 0 and again.manifest.cache.hits > 0
    other = simulate_respondents(
        instrument, demo_population, tiny_engine, 400, seed=4, progress=False, cache=store
    )
    assert not other.microdata["answer_code"].equals(sample.microdata["answer_code"])

    again.write_parquet(tmp_path / "r.parquet")
    back = RespondentsResult.read_parquet(tmp_path / "r.parquet")
    assert back.microdata.equals(again.microdata) and back.wide.equals(again.wide)
    assert back.manifest.respondents.respondents == 400


def test_model_work_grows_with_distinct_paths_not_respondents(
    instrument, demo_population, tiny_engine, sample
):
    small = simulate_respondents(
        instrument, demo_population, tiny_engine, 40, seed=3, progress=False, cache=False
    )
    before = tiny_engine.stats.requests
    large = simulate_respondents(
        instrument, demo_population, tiny_engine, 2000, seed=3, progress=False, cache=False
    )
    requests = tiny_engine.stats.requests - before
    old = sum(1 for p in demo_population if p.attributes["age"] >= 40)
    # per persona: voted16, vote16, prefer16, natfare, natenvir, natsoc (if 40+), and the
    # strength question once per candidate it can pipe
    most = 5 * len(demo_population) + old + 2 * len(demo_population)
    assert large.manifest.respondents.distinct_prompts == requests <= most
    assert small.manifest.respondents.distinct_prompts <= most
    assert sample.manifest.respondents.distinct_prompts <= most


def test_marginals_match_the_exact_distributions(instrument, demo_population, tiny_engine):
    n = 3000
    with pytest.warns(FlowWarning):
        exact = simulate(instrument, demo_population, tiny_engine, progress=False, cache=False)
    sample = simulate_respondents(
        instrument, demo_population, tiny_engine, n, seed=11, progress=False, cache=False
    )
    per_persona = sample.microdata.filter(pl.col("asked"), pl.col("question_id") == "natfare")
    counts = per_persona.group_by("persona_id").len()
    expected = (
        exact.responses.filter(pl.col("question_id") == "natfare")
        .join(counts, on="persona_id")
        .group_by("option_code")
        .agg((pl.col("prob") * pl.col("len")).sum().alias("expected"))
    )
    observed = per_persona.group_by("answer_code").len().rename({"answer_code": "option_code"})
    table = expected.join(observed, on="option_code", how="left").fill_null(0)
    chi_square = ((table["len"] - table["expected"]) ** 2 / table["expected"]).sum()
    assert stats.chi2.sf(chi_square, df=table.height - 1) > 1e-3
    assert sample.marginals["p_value"].min() > 1e-4
    gap = (sample.marginals["observed"] - sample.marginals["expected"]).abs().max()
    assert gap < 0.05
    print("\n" + sample.summary())


def test_memory_shows_earlier_answers_and_never_skipped_questions(
    instrument, demo_population, tiny_engine
):
    remembering = instrument.model_copy(update={"memory": "full"})
    settings = SimulationSettings()
    interviewer = _Interviewer(
        remembering, demo_population, tiny_engine, settings, settings.prompt_format(), None
    )
    interviews = [
        _Interview(f"r{index}", persona, interview_order(remembering, 1, f"r{index}"))
        for index, persona in enumerate(allocate(demo_population, 30, "proportional", 1))
    ]
    for step in range(len(remembering) - 1):  # every question but the last
        interviewer.step(interviews, step, time.time())
    for interview in interviews:
        last = interview.order[-1]
        history = interviewer._prompt(interview, last)[1]().context.history
        assert len(history) == len(interview.answers) >= 2
        shown = "\n".join(turn.question for turn in history)
        for question_id in interview.order[:-1]:
            text = remembering.question(question_id).text.split("{")[0]
            assert (text in shown) == (question_id in interview.answers), question_id
        assert [turn.answer for turn in history] == [
            answer.outcome.written for answer in interview.answers.values()
        ]
    last_two = remembering.model_copy(update={"memory": LastAnswers(last=2)})
    sample = simulate_respondents(
        last_two, demo_population, tiny_engine, 20, seed=1, progress=False, cache=False
    )
    assert sample.microdata.height == 20 * len(instrument)


def test_kinds_without_an_exact_distribution_are_sampled_one_answer_per_respondent(
    demo_population, tiny_engine
):
    kinds = load_questionnaire(Path(__file__).parents[2] / "questionnaires/question_kinds.yaml")
    kinds = kinds.model_copy(update={"memory": "full"})
    n = 24
    sample = simulate_respondents(
        kinds, demo_population, tiny_engine, n, seed=2, progress=False, cache=False
    )
    data = sample.microdata
    methods = dict(data.select("question_id", "method").unique().iter_rows())
    assert methods == {
        "polint": "exact",
        "tvhours": "exact",
        "news_sources": "sample",
        "news_trust": "sample",
        "mip": "sample",
    }
    rankings = {o.code for o in kinds.question("news_trust").outcomes}
    trusted = data.filter(pl.col("question_id") == "news_trust", pl.col("problem").is_null())
    assert trusted.height > 0 and set(trusted["answer_code"]) <= rankings
    news = data.filter(pl.col("question_id") == "news_sources", pl.col("problem").is_null())
    codes = {o.code for o in kinds.question("news_sources").options}
    for answer in news["answer_code"]:
        assert answer == "" or set(answer.split("|")) <= codes
    assert news.height > n // 2 and data["prob"].filter(data["method"] == "sample").is_null().all()
    mip = data.filter(pl.col("question_id") == "mip")
    assert mip["answer_code"].is_null().all()
    assert (mip["answer_text"].is_not_null() | mip["problem"].is_not_null()).all()
    again = simulate_respondents(
        kinds, demo_population, tiny_engine, n, seed=2, progress=False, cache=False
    )
    assert again.microdata.drop("prob").equals(data.drop("prob"))


def test_numeric_answers_are_drawn_as_values_and_read_by_conditions_and_pipes(
    demo_population, tiny_engine, tmp_path
):
    path = tmp_path / "tv.yaml"
    path.write_text(
        """\
id: tv
memory: full
questions:
  - id: tvhours
    kind: numeric
    text: On the average day, about how many hours do you personally watch television?
    minimum: 0
    maximum: 24
    bins: [{code: few, min: 0, max: 2}, {code: many, min: 3, max: 24}]
  - id: toomuch
    kind: single_choice
    ask_if: tvhours >= 3
    text: "You said {tvhours}. Is that too much?"
    options: [{code: y, text: "Yes"}, {code: n, text: "No"}]
"""
    )
    questionnaire = load_questionnaire(path)
    sample = simulate_respondents(
        questionnaire, demo_population, tiny_engine, 200, seed=5, progress=False, cache=False
    )
    hours = sample.microdata.filter(pl.col("question_id") == "tvhours")
    values = hours["answer_text"].cast(pl.Int64)
    assert values.is_between(0, 24).all() and values.n_unique() > 3
    expected_codes = pl.when(values >= 3).then(pl.lit("many")).otherwise(pl.lit("few"))
    assert hours.select((pl.col("answer_code") == expected_codes).all()).item()
    wide = sample.wide
    assert ((wide["tvhours"] == "many") == wide["toomuch"].is_not_null()).all()
    interviewer = _Interviewer(
        questionnaire,
        demo_population,
        tiny_engine,
        SimulationSettings(),
        SimulationSettings().prompt_format(),
        None,
    )
    interview = _Interview("r1", next(iter(demo_population)), ("tvhours", "toomuch"))
    interview.answers["tvhours"] = _Answer(
        questionnaire.question("tvhours"), None, _Outcome("many", "7", "7", 7, 0.1)
    )
    cell = interviewer._prompt(interview, "toomuch")[1]()
    assert "You said 7. Is that too much?" in cell.context.history[0].question + cell.question.text
    assert sample.marginals.filter(pl.col("question_id") == "tvhours")["option_code"].to_list() == [
        "few",
        "many",
    ]


@pytest.mark.parametrize("format_name", ["chat", "spectrum", "xml", "plain"])
def test_a_pipe_shows_the_earlier_answer_in_every_format(
    instrument, demo_population, tiny_engine, format_name
):
    settings = SimulationSettings(format=format_name)
    interviewer = _Interviewer(
        instrument, demo_population, tiny_engine, settings, settings.prompt_format(), None
    )
    persona = next(iter(demo_population))
    interview = _Interview("r1", persona, instrument.listed_order)
    for question_id, code, text in (
        ("voted16", "4", "I am sure I voted"),
        ("vote16", "2", "Donald Trump"),
    ):
        outcome = _Outcome(code, text, "", code, 1.0)
        interview.answers[question_id] = _Answer(instrument.question(question_id), None, outcome)
    _, build = interviewer._prompt(interview, "vote16_strength")
    cell = build()
    (request,) = cell.asking.exact_requests(cell.context)
    assert "your preference for Donald Trump was strong" in request.prefix
    assert "{vote16}" not in request.prefix


def test_a_stopped_run_resumes_with_only_the_missing_work_and_the_same_answers(
    instrument, demo_population, tiny_engine, sample, tmp_path
):
    store = ResultsCache(tmp_path / "stopped.sqlite")
    stopping = InterruptedAfter(tiny_engine, passes=3)
    with pytest.raises(KeyboardInterrupt):
        simulate_respondents(
            instrument, demo_population, stopping, 400, seed=3, progress=False, cache=store
        )
    stored = store.info()["entries"]
    resumed = simulate_respondents(
        instrument, demo_population, tiny_engine, 400, seed=3, progress=False, cache=store
    )
    prompts = resumed.manifest.respondents.distinct_prompts
    assert 0 < stored < prompts
    assert resumed.manifest.cache.hits == stored
    assert resumed.manifest.cache.misses == prompts - stored
    assert resumed.microdata.drop("prob").equals(sample.microdata.drop("prob"))
