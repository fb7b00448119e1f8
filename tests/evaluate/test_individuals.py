"""Few-shot individuals: histories as turns, seeded splits, exact held-out distributions on
the tiny model, and the evaluation against baselines on data with a known structure."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from survey_sim import (
    HumanResponses,
    IndividualResult,
    IndividualSplit,
    InputError,
    evaluate_individuals,
    load_questionnaire,
    simulate_individuals,
)
from survey_sim.asking import answered_turn, ask, get_format
from survey_sim.asking.formats import PromptContext
from survey_sim.data.responses import ANONYMOUS
from survey_sim.data.splits import learning_curve
from survey_sim.engines.transformers import EngineSettings, TransformersEngine

QUESTIONS = ["taxes", "parks", "roads", "schools", "police"]


@pytest.fixture
def human(attitudes_files: tuple[Path, Path, Path]) -> HumanResponses:
    data, mapping, questionnaire = attitudes_files
    return HumanResponses.from_file(data, mapping, load_questionnaire(questionnaire))


# -- histories as turns ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["chat", "spectrum", "xml", "plain"])
def test_history_is_shown_as_real_turns_before_the_question(name, human, tiny_engine):
    prompt_format = get_format(name)
    taxes, parks, roads = (human.questionnaire.question(q) for q in ("taxes", "parks", "roads"))
    history = [
        answered_turn(taxes, prompt_format, "1"),
        answered_turn(parks, prompt_format, "3"),
    ]
    assert [turn.answer for turn in history] == ["A", "C"]
    (request,) = ask(roads, prompt_format).exact_requests(
        PromptContext("You are a Democrat voter.", tiny_engine, history=history)
    )
    prompt = request.prefix
    places = [
        prompt.index("more on taxes"),
        prompt.index("more on parks"),
        prompt.index("more on roads"),
    ]
    assert places == sorted(places)
    assert "None" not in prompt
    # Each answer sits between its question and the next one, as a turn of its own.
    assert "A" in prompt[places[0] : places[1]].split("Answer with the letter")[-1]
    assert "C" in prompt[places[1] : places[2]].split("Answer with the letter")[-1]


def test_chat_history_is_user_and_assistant_messages(human, tiny_engine):
    chat = get_format("chat")
    taxes, parks = human.questionnaire.question("taxes"), human.questionnaire.question("parks")
    turn = answered_turn(taxes, chat, "2")
    prompt = chat.prompt("Q2?", PromptContext("D", tiny_engine, history=[turn]))
    expected = tiny_engine.render_chat(
        [
            {"role": "system", "content": "D"},
            {"role": "user", "content": turn.question},
            {"role": "assistant", "content": "B"},
            {"role": "user", "content": "Q2?"},
        ],
        add_generation_prompt=True,
    )
    assert prompt == expected
    with pytest.raises(ValueError, match="no option '7'"):
        answered_turn(parks, chat, "7")


def test_spectrum_history_is_input_and_output_turns(human, tiny_engine):
    spectrum = get_format("spectrum:chatml")
    turn = answered_turn(human.questionnaire.question("taxes"), spectrum, "1")
    prompt = spectrum.prompt("Q2?", PromptContext("D", tiny_engine, history=[turn]))
    assert prompt == (
        "<|im_start|>description\nD<|im_end|>\n"
        f"<|im_start|>input\n{turn.question}<|im_end|>\n"
        "<|im_start|>output\nA<|im_end|>\n"
        "<|im_start|>input\nQ2?<|im_end|>\n<|im_start|>output\n"
    )


# -- splits ------------------------------------------------------------------------------


def test_learning_curve_doubles_up_to_what_the_survey_allows():
    assert learning_curve(16) == (0, 1, 2, 4, 8, 16)
    assert learning_curve(6) == (0, 1, 2, 4, 6)
    assert learning_curve(1) == (0, 1)
    assert learning_curve(0) == (0,)


def test_split_is_seeded_nested_and_never_shows_a_missing_answer(human):
    split = IndividualSplit.draw(human, train=50, test=40, seed=3)
    assert split == IndividualSplit.draw(human, train=50, test=40, seed=3)
    assert split != IndividualSplit.draw(human, train=50, test=40, seed=4)
    assert split.shots == (0, 1, 2, 3)
    assert not set(split.train) & set(split.test)
    answered = {(r, q) for r, q in human.frame.select("respondent_id", "question_id").iter_rows()}
    for respondent in split.respondents:
        shown, held_out = split.shown[respondent], split.held_out[respondent]
        assert len(shown) == 3 and len(held_out) == 2 and not set(shown) & set(held_out)
        assert all((respondent, q) in answered for q in (*shown, *held_out))
    assert IndividualSplit.from_record(split.record()) == split
    frame = split.frame()
    assert frame.height == 90 * 5 and set(frame["part"]) == {"shown", "held_out"}


def test_a_respondents_questions_do_not_depend_on_who_else_is_in_the_data(human):
    fewer = human.frame.filter(pl.col("respondent_id").cast(pl.Int64) <= 300)
    small = IndividualSplit.draw(
        HumanResponses(fewer, human.questionnaire, human.source, human.recipe),
        train=None,
        test=None,
    )
    bigger = IndividualSplit.draw(human, train=None, test=None)
    for respondent in small.respondents:
        assert small.shown[respondent] == bigger.shown[respondent]
        assert small.held_out[respondent] == bigger.held_out[respondent]


def test_fixed_held_out_questions_and_bad_requests(human):
    split = IndividualSplit.draw(human, held_out=["police"], shots=[0, 2], train=20, test=20)
    assert {q for held in split.held_out.values() for q in held} == {"police"}
    with pytest.raises(InputError, match="shots must be between 0 and 3"):
        IndividualSplit.draw(human, shots=[0, 4])
    with pytest.raises(InputError, match="without answers here: nope"):
        IndividualSplit.draw(human, held_out=["nope"])
    with pytest.raises(InputError, match="no demographic attribute age"):
        IndividualSplit.draw(human, demographics=["age"])
    with pytest.raises(InputError, match="cannot take 5000 for training"):
        IndividualSplit.draw(human, train=5000)


# -- simulation ---------------------------------------------------------------------------


def test_held_out_distributions_are_exact_after_the_shared_history(human, tiny_model_dir):
    split = IndividualSplit.draw(human, train=3, test=3, seed=0)
    fast = TransformersEngine.from_pretrained(tiny_model_dir)
    plain = TransformersEngine.from_pretrained(
        tiny_model_dir, settings=EngineSettings(prefix_reuse="none")
    )
    result = simulate_individuals(human, fast, split, cache=False, progress=False)
    reference = simulate_individuals(human, plain, split, cache=False, progress=False)
    assert result.responses.height == 6 * len(split.shots) * 2 * 3
    difference = (result.responses["logprob"] - reference.responses["logprob"]).abs().max()
    assert difference < 1e-4
    # The history is one prefix for every held-out question and the next k.
    work, plain_work = result.manifest.work, reference.manifest.work
    assert work.hit_rate > 0.3 and plain_work.reused_tokens == 0
    assert work.computed_tokens < 0.7 * plain_work.computed_tokens
    real = {
        (r, q): code
        for r, q, code in human.frame.select(
            "respondent_id", "question_id", "option_code"
        ).iter_rows()
    }
    for row in result.responses.unique(["respondent_id", "question_id"]).iter_rows(named=True):
        assert row["answer"] == real[(row["respondent_id"], row["question_id"])]
    sums = result.responses.group_by("respondent_id", "shots", "question_id").agg(
        pl.col("prob").sum()
    )
    assert sums["prob"].to_numpy() == pytest.approx(1.0)


def test_results_round_trip_with_their_split(human, tiny_engine, tmp_path):
    split = IndividualSplit.draw(human, train=2, test=2, shots=[0, 1], demographics=False)
    result = simulate_individuals(human, tiny_engine, split, format="plain", progress=False)
    described = human.respondents(split.respondents, split.demographics).frame["description"]
    assert described.unique().to_list() == [ANONYMOUS]
    result.write_parquet(tmp_path / "ind.parquet")
    back = IndividualResult.read_parquet(tmp_path / "ind.parquet")
    assert back.split == split
    assert back.responses.equals(result.responses)
    with pytest.raises(InputError, match="permute off"):
        simulate_individuals(human, tiny_engine, split, permute=True, progress=False)


def test_weighted_data_are_refused_unless_accepted_unweighted(human, tiny_engine):
    weighted = HumanResponses(
        human.frame.with_columns(weight=pl.col("respondent_id").cast(pl.Int64) % 3 + 1.0),
        human.questionnaire,
        "weighted.csv",
        weight_column="w",
    )
    with pytest.raises(InputError, match=r"weighted \(column 'w', Kish effective n \d"):
        IndividualSplit.draw(weighted, train=2, test=2, shots=[0, 1])
    split = IndividualSplit.draw(weighted, train=2, test=2, shots=[0, 1], weighted_data="ignore")
    assert split == IndividualSplit.draw(human, train=2, test=2, shots=[0, 1])
    result = simulate_individuals(weighted, tiny_engine, split, progress=False)
    with pytest.raises(InputError, match="the individual evaluation counts every respondent"):
        evaluate_individuals(result, weighted, methods=["uniform"], bootstrap=10)
    scored = evaluate_individuals(
        result, weighted, methods=["uniform"], bootstrap=10, weighted_data="ignore"
    )
    assert scored.report.height > 0


# -- evaluation ---------------------------------------------------------------------------


def test_baselines_and_metrics_on_data_with_a_known_structure(human, tiny_engine):
    split = IndividualSplit.draw(human, train=30, test=60, seed=0)
    result = simulate_individuals(human, tiny_engine, split, progress=False)
    evaluation = evaluate_individuals(
        result,
        human,
        methods=["uniform", "marginal", "cell", "regression", "model", "model+regression"],
        bootstrap=200,
        progress=False,
    )
    report = evaluation.report
    assert evaluation.pool == split.eligible - 90  # complete enough, like those predicted

    def log_loss(method: str, k: int) -> float:
        row = report.filter(
            pl.col("method") == method, pl.col("shots") == k, pl.col("metric") == "log_loss"
        )
        return float(row["estimate"][0])

    assert log_loss("uniform", 0) == pytest.approx(math.log(3))
    uniform = report.filter(pl.col("method") == "uniform")
    # A uniform prediction ties every option: expected accuracy 1/3, perfectly calibrated
    # (not the share of answers that happen to be the first option).
    accuracy = uniform.filter(pl.col("metric") == "accuracy")["estimate"]
    assert accuracy.to_list() == pytest.approx([1 / 3] * accuracy.len())
    assert uniform.filter(pl.col("metric") == "ece")["estimate"].to_list() == pytest.approx(
        [0.0] * accuracy.len(), abs=1e-12
    )
    # Party carries the leaning, and shown answers carry it better: the demographic cell
    # beats the marginal, and the regression improves as it is shown more answers.
    assert log_loss("cell", 0) < log_loss("marginal", 0) < log_loss("uniform", 0)
    assert log_loss("regression", 3) < log_loss("regression", 0) - 0.1
    for row in report.iter_rows(named=True):
        # ECE too: reported bias-corrected, inside its basic bootstrap interval
        assert row["lower"] <= row["estimate"] <= row["upper"] or row["method"] == "uniform"
        if row["metric"] in ("accuracy", "ece"):
            assert 0 <= row["estimate"] <= 1
    assert set(report["respondents"]) == {60}
    # Paired differences: the same resampled respondents for both methods.
    cell_vs_marginal = evaluation.differences.filter(
        pl.col("method") == "cell",
        pl.col("versus") == "marginal",
        pl.col("shots") == 0,
        pl.col("metric") == "log_loss",
    ).row(0, named=True)
    assert cell_vs_marginal["difference"] == pytest.approx(
        log_loss("cell", 0) - log_loss("marginal", 0)
    )
    assert cell_vs_marginal["upper"] < 0 and cell_vs_marginal["verdict"] == "better"
    assert evaluation.differences.height == 15 * 4 * 4  # pairs of 6 methods x k x metrics
    view = evaluation.population
    assert set(view["metric"]) == {"jensen_shannon", "total_variation", "representativeness"}
    # Few test answers per question: the true distribution itself scores far from 0, and
    # every method's estimate comes with an interval.
    floor = view.filter(pl.col("method") == "noise_floor", pl.col("metric") == "total_variation")
    assert (floor["estimate"] > 0.02).all()
    methods = view.filter(pl.col("method") != "noise_floor")
    assert (methods["lower"] <= methods["upper"]).all()
    predictions = evaluation.predictions
    totals = predictions.group_by("method", "respondent_id", "shots", "question_id").agg(
        pl.col("prob").sum()
    )
    assert totals["prob"].to_numpy() == pytest.approx(1.0)


@pytest.mark.slow
def test_respondent_level_calibration_fits_on_training_respondents(human, tiny_engine):
    split = IndividualSplit.draw(human, train=40, test=30, shots=[0, 2], seed=0)
    result = simulate_individuals(human, tiny_engine, split, progress=False)
    evaluation = evaluate_individuals(
        result,
        human,
        methods=["model", "calibrated"],
        bootstrap=100,
        progress=False,
        sampling={"draws": 300, "tune": 300},
    )
    idata = evaluation.calibration
    assert idata is not None
    assert list(idata.posterior["alpha"].coords["shots"].values) == [0, 2]
    assert set(idata.posterior["u"].coords["question"].values) <= set(QUESTIONS)
    calibrated = evaluation.report.filter(
        pl.col("method") == "calibrated", pl.col("metric") == "log_loss"
    )
    # The tiny random model's log-odds say nothing about people: the calibration learns the
    # questions' own leanings instead, and does better than the raw model.
    raw = evaluation.report.filter(pl.col("method") == "model", pl.col("metric") == "log_loss")
    assert (calibrated["estimate"] < raw["estimate"]).all()
