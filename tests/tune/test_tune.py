"""survey-sim tune on the tiny model and the five-item attitudes survey: the objectives read
exactly what the engines read, training lowers the loss and moves held-out answers, adapters
round-trip, seeds repeat, trained-on items are refused, and a killed run resumes."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from survey_sim import (
    HumanResponses,
    IndividualSplit,
    InputError,
    TransformersEngine,
    load_questionnaire,
    simulate,
    simulate_individuals,
)
from survey_sim.data.splits import answered_questions, seeded_rng
from survey_sim.engines.records import AdapterRecord
from survey_sim.engines.registry import ADAPTER_RECORD
from survey_sim.runs.individuals import choice_question
from survey_sim.testing import RECOMPUTED_TOLERANCE
from survey_sim.tune import TuningSettings, tune
from survey_sim.tune._examples import conditional_examples
from survey_sim.tune._objectives import collate, model_slot_logprobs
from survey_sim.tune._train import _examples
from survey_sim.tune.evaluation import held_out_report, held_out_simulations

SCRIPT = str(Path(sys.executable).with_name("survey-sim"))
QUICK = {"epochs": 2, "batch_size": 4, "learning_rate": 5e-3, "evaluate_every": 1}


@pytest.fixture(scope="module")
def survey(tmp_path_factory, attitudes_writer) -> tuple[Path, Path, Path]:
    return attitudes_writer(tmp_path_factory.mktemp("attitudes"))


@pytest.fixture(scope="module")
def human(survey) -> HumanResponses:
    data, mapping, questionnaire = survey
    return HumanResponses.from_file(data, mapping, load_questionnaire(questionnaire))


@pytest.fixture(scope="module")
def population_adapter(human, tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("adapters") / "population"
    return tune(human, tiny_model_dir, out=out, progress=False, **QUICK)


def _slot_logprobs(engine: TransformersEngine, examples) -> torch.Tensor:
    with torch.inference_mode():
        return model_slot_logprobs(engine.model, collate(examples))


def _read_after(human, engine, respondent: str, shown, question: str) -> pl.DataFrame:
    """What the individual mode reads for ``question`` after the respondent's answers to
    ``shown``, in that order."""
    split = IndividualSplit(
        seed=0,
        shots=(len(shown),),
        train=(respondent,),
        test=(),
        shown={respondent: tuple(shown)},
        held_out={respondent: (question,)},
        demographics=("party",),
        eligible=1,
    )
    return simulate_individuals(human, engine, split, progress=False, cache=False).responses


def test_population_examples_score_what_simulate_reads(human, tiny_engine):
    """Every option's log-prob in a training batch (padded rows, gathered tokens) equals the
    one simulate reads for the same cell, question and option order."""
    settings = TuningSettings.of()
    questions = ["taxes", "parks"]
    examples = _examples(human, questions, settings, tiny_engine.text)
    trained = _slot_logprobs(tiny_engine, examples)
    cells = human.population()
    simulated = simulate(
        human.questionnaire.select(questions),
        cells,
        tiny_engine,
        permute=True,
        balance="shift",  # every order of 3 options, the cyclic ones training asks among them
        progress=False,
        cache=False,
    ).responses
    assert len(examples) == len(cells) * len(questions) * 3  # the three cyclic orders
    for example, logprobs in zip(examples, trained, strict=True):
        persona, question, order = example.label.split(" × ")
        shown = simulated.filter(
            (pl.col("persona_id") == persona)
            & (pl.col("question_id") == question)
            & (pl.col("order") == order)
        )
        expected = [
            shown.filter(pl.col("option_code") == c)["logprob"][0] for c in order.split("|")
        ]
        np.testing.assert_allclose(logprobs.numpy(), expected, atol=1e-5)


def test_an_interview_scores_what_simulate_individuals_reads(human, tiny_engine):
    """Each answer of a respondent's one-sequence interview has the log-prob the individual
    mode reads for it after the same earlier answers."""
    settings = TuningSettings.of(objective="individual")
    respondents = ["1", "2"]
    examples = _examples(human, respondents, settings, tiny_engine.text)
    trained = _slot_logprobs(tiny_engine, examples)
    answered = answered_questions(human)
    for respondent, example, logprobs in zip(respondents, examples, trained, strict=True):
        assert len(example.rows) == 1  # the chat format's interview is one sequence
        order = seeded_rng(settings.seed, respondent).permutation(answered[respondent]).tolist()
        for position, question in enumerate(order):
            responses = _read_after(human, tiny_engine, respondent, order[:position], question)
            answer = human.answers[(respondent, question)]
            expected = responses.filter(pl.col("option_code") == answer)["logprob"][0]
            assert logprobs[position].item() == pytest.approx(expected, abs=1e-5)


def test_an_interview_with_target_distributions_scores_what_simulate_individuals_reads(
    human, tiny_engine
):
    """conditional_examples (an interview's questions as option examples with targets) give
    every option the log-prob the individual mode reads after the same earlier answers."""
    order = ["parks", "taxes", "roads"]
    respondent = next(
        r for r, their in answered_questions(human).items() if set(order) <= set(their)
    )
    persona = {p.id: p for p in human.respondents([respondent], ("party",))}[respondent]
    questions = [choice_question(human, question) for question in order]
    codes = [human.answers[(respondent, question)] for question in order]
    prompt_format = TuningSettings.of().prompt_settings().prompt_format()
    targets = [tuple(1 / len(q.options) for _ in q.options) for q in questions]
    examples = conditional_examples(
        questions,
        codes,
        targets,
        prompt_format.describe(persona),
        prompt_format,
        tiny_engine.text,
        tiny_engine,
        human.questionnaire.instructions,
    )
    trained = _slot_logprobs(tiny_engine, examples)
    for position, (question, logprobs) in enumerate(zip(questions, trained, strict=True)):
        responses = _read_after(human, tiny_engine, respondent, order[:position], question.id)
        expected = [
            responses.filter(pl.col("option_code") == option.code)["logprob"][0]
            for option in question.options
        ]
        np.testing.assert_allclose(logprobs[: len(expected)].numpy(), expected, atol=1e-5)


def test_tuning_lowers_the_loss_and_moves_held_out_answers(
    human, population_adapter, tiny_model_dir
):
    history = population_adapter.history.filter(pl.col("split") == "train")["loss"]
    assert history[-1] < history[0]
    split = population_adapter.split
    assert set(split.held_out).isdisjoint((*split.train, *split.validation))
    simulations = held_out_simulations(human, population_adapter, tiny_model_dir, progress=False)
    report = held_out_report(human, simulations, population_adapter)
    assert report.summary["source"].to_list() == [
        "before",
        "after",
        "uniform",
        "human_marginal",
        "fitted_marginal",
        "noise_floor",
    ]
    pairs = report.paired.filter(pl.col("metric") == "total_variation")
    assert pairs.select("source", "versus").rows() == [
        ("after", "before"),
        ("after", "uniform"),
        ("after", "human_marginal"),
        ("after", "fitted_marginal"),
        ("before", "uniform"),
        ("before", "human_marginal"),
        ("before", "fitted_marginal"),
    ]
    before, after = report.summary["total_variation"][:2]
    assert pairs["difference"][0] == pytest.approx(after - before)
    assert abs(after - before) > 1e-3  # the held-out answers moved (better or worse)
    record = AdapterRecord.model_validate_json(
        (population_adapter.adapter / ADAPTER_RECORD).read_text()
    )
    assert record.trained_on.questions == (*split.train, *split.validation)
    assert record.work.trained_tokens > 0


def test_the_adapter_round_trips_merged_as_unmerged(
    population_adapter, tiny_model_dir, tiny_engine
):
    """The folder is peft's standard layout; merged into the weights (as the engine loads
    it) it gives what the unmerged adapter gives, and the fingerprint covers it."""
    tuned = TransformersEngine.from_pretrained(tiny_model_dir, adapter=population_adapter.adapter)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    unmerged = PeftModel.from_pretrained(base, population_adapter.adapter).eval()
    ids = tuned.tokenize("You are a Democrat voter. Should we spend more on taxes? Answer: A")
    with torch.inference_mode():
        merged_logits = tuned.model(torch.tensor([ids])).logits
        unmerged_logits = unmerged(torch.tensor([ids])).logits
        base_logits = tiny_engine.model(torch.tensor([ids])).logits
    merged, plain = torch.log_softmax(merged_logits, -1), torch.log_softmax(unmerged_logits, -1)
    assert torch.allclose(merged, plain, atol=RECOMPUTED_TOLERANCE)
    assert not torch.allclose(merged_logits, base_logits, atol=1e-3)
    assert tuned.fingerprint != tiny_engine.fingerprint
    assert tuned.describe().adapter.trained_on.questionnaire == "attitudes"


def test_the_same_seed_gives_the_same_adapter(human, population_adapter, tiny_model_dir, tmp_path):
    again = tune(human, tiny_model_dir, out=tmp_path / "again", progress=False, **QUICK)
    other = tune(human, tiny_model_dir, out=tmp_path / "other", progress=False, seed=1, **QUICK)
    weights = [
        load_file(result.adapter / "adapter_model.safetensors")
        for result in (population_adapter, again, other)
    ]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    assert not all(torch.equal(weights[0][name], weights[2][name]) for name in weights[0])


def test_evaluating_where_the_adapter_was_trained_is_refused(
    human, population_adapter, tiny_model_dir, tmp_path
):
    tuned = TransformersEngine.from_pretrained(tiny_model_dir, adapter=population_adapter.adapter)
    split = population_adapter.split
    with pytest.raises(InputError, match=r"trained on \d of the questions asked here"):
        simulate(human.questionnaire, human.population(), tuned, progress=False, cache=False)
    held_out = human.questionnaire.select(split.held_out)
    simulate(held_out, human.population(), tuned, progress=False, cache=False)

    individual = tune(
        human,
        tiny_model_dir,
        out=tmp_path / "individual",
        objective="individual",
        train=8,
        progress=False,
        **QUICK,
    )
    trained = (*individual.split.train, *individual.split.validation)
    assert individual.record.trained_on.respondents == tuple(trained)
    tuned = TransformersEngine.from_pretrained(tiny_model_dir, adapter=individual.adapter)
    first, second = answered_questions(human)[trained[0]][:2]
    seen = IndividualSplit(
        seed=0,
        shots=(1,),
        train=(trained[0],),
        test=(),
        shown={trained[0]: (first,)},
        held_out={trained[0]: (second,)},
        demographics=("party",),
        eligible=1,
    )
    with pytest.raises(InputError, match="respondents asked here"):
        simulate_individuals(human, tuned, seen, progress=False, cache=False)
    unseen = IndividualSplit.draw(
        human, train=5, test=5, held_out=1, shots=[1], seed=3, exclude=trained
    )
    assert set(unseen.respondents).isdisjoint(trained)
    simulate_individuals(human, tuned, unseen, progress=False, cache=False)


def test_adapters_that_do_not_fit_are_refused(population_adapter, tiny_model_dir, tmp_path):
    other_base = shutil.copytree(tiny_model_dir, tmp_path / "other-base")
    weights = load_file(other_base / "model.safetensors")
    first = next(iter(weights))
    weights[first] = weights[first] + 0.01
    save_file(weights, other_base / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(InputError, match="was trained on model"):
        TransformersEngine.from_pretrained(other_base, adapter=population_adapter.adapter)

    edited = shutil.copytree(population_adapter.adapter, tmp_path / "edited")
    adapter_weights = load_file(edited / "adapter_model.safetensors")
    save_file({k: v * 2 for k, v in adapter_weights.items()}, edited / "adapter_model.safetensors")
    with pytest.raises(InputError, match=r"changed since survey_sim\.json was written"):
        TransformersEngine.from_pretrained(tiny_model_dir, adapter=edited)

    with pytest.raises(InputError, match="not a LoRA adapter folder"):
        TransformersEngine.from_pretrained(tiny_model_dir, adapter=tmp_path)


def test_a_folder_with_an_adapter_or_another_runs_checkpoints_is_refused(
    human, population_adapter, tiny_model_dir, tmp_path
):
    with pytest.raises(InputError, match="already holds a finished adapter"):
        tune(human, tiny_model_dir, out=population_adapter.adapter, progress=False, **QUICK)
    run = tmp_path / "run" / "checkpoints"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"settings": {"seed": 99}}))
    with pytest.raises(InputError, match="holds checkpoints of a different tuning run"):
        tune(human, tiny_model_dir, out=tmp_path / "run", progress=False, **QUICK)


def test_a_killed_tuning_run_resumes_from_its_checkpoint(survey, tiny_model_dir, tmp_path):
    data, mapping, questionnaire = survey
    command = [
        SCRIPT,
        "tune",
        "--human",
        str(data),
        "--mapping",
        str(mapping),
        "--questionnaire",
        str(questionnaire),
        "--model",
        str(tiny_model_dir),
        "--objective",
        "individual",
        "--train",
        "24",
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--evaluate-every",
        "2",
        "--no-evaluate",
        "--quiet",
    ]
    whole = subprocess.run(
        [*command, "--out", "whole"], cwd=tmp_path, capture_output=True, text=True
    )
    assert whole.returncode == 0, whole.stderr
    running = subprocess.Popen([*command, "--out", "killed"], cwd=tmp_path)
    checkpoint = tmp_path / "killed" / "checkpoints" / "checkpoint-4"
    while not (checkpoint / "trainer_state.json").exists():
        assert running.poll() is None, "the run ended before its second checkpoint"
        time.sleep(0.05)
    running.send_signal(signal.SIGKILL)
    running.wait()
    assert not (tmp_path / "killed" / ADAPTER_RECORD).exists()
    resumed = subprocess.run(
        [*command, "--out", "killed"], cwd=tmp_path, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    killed, whole = (
        AdapterRecord.model_validate_json((tmp_path / run / ADAPTER_RECORD).read_text())
        for run in ("killed", "whole")
    )
    assert killed.work.steps == whole.work.steps
    assert not (tmp_path / "killed" / "checkpoints").exists()
    whole_weights = load_file(tmp_path / "whole" / "adapter_model.safetensors")
    resumed_weights = load_file(tmp_path / "killed" / "adapter_model.safetensors")
    for name, tensor in whole_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, atol=1e-5, rtol=0)


def test_the_command_trains_reports_held_out_scores_and_plots_the_loss(
    survey, tiny_model_dir, tmp_path
):
    data, mapping, questionnaire = survey
    done = subprocess.run(
        [
            *(SCRIPT, "tune", "--human", str(data), "--mapping", str(mapping)),
            *("--questionnaire", str(questionnaire), "--model", str(tiny_model_dir)),
            *("--epochs", "1", "--batch-size", "4", "--out", "adapter", "--quiet"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "Wrote the adapter to adapter" in done.stdout
    assert "Held-out questions (" in done.stdout
    for source in ("before", "after", "uniform", "fitted_marginal", "noise_floor", "verdict"):
        assert source in done.stdout
    assert (tmp_path / "adapter" / "loss.png").stat().st_size > 0
    assert "--adapter adapter" in done.stdout


def test_activation_checkpointing_trains_the_same_adapter(
    human, population_adapter, tiny_model_dir, tmp_path
):
    """Recomputing activations in the backward pass (less memory) changes no number."""
    checkpointed = tune(
        human,
        tiny_model_dir,
        out=tmp_path / "checkpointed",
        gradient_checkpointing=True,
        progress=False,
        **QUICK,
    )
    plain = load_file(population_adapter.adapter / "adapter_model.safetensors")
    recomputed = load_file(checkpointed.adapter / "adapter_model.safetensors")
    for name, tensor in plain.items():
        torch.testing.assert_close(recomputed[name], tensor, atol=1e-6, rtol=0)
