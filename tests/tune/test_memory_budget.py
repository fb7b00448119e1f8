"""survey-sim tune keeps to its memory budget: the step's memory is measured before
training, a batch that would go over is split (gradients accumulated), and an example that
cannot fit is refused before training, with the numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from survey_sim import HumanResponses, InputError, load_questionnaire
from survey_sim.engines.records import AdapterRecord, TrainingWork
from survey_sim.engines.registry import ADAPTER_RECORD
from survey_sim.testing import TINY_LAYERS, train_tokenizer
from survey_sim.tune import tune
from survey_sim.tune._memory import MARGIN_MIB

SCRIPT = str(Path(sys.executable).with_name("survey-sim"))
STEM = (
    "Using this card, please tell me on a score of 0 to 10 how much you personally trust "
    "each of the institutions I read out. 0 means you do not trust an institution at all, "
    "and 10 means you have complete trust. {name}?"
)


@pytest.fixture(scope="module")
def trust_survey(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Three 0-10 trust items (11 options, number labels) asked of three countries."""
    folder = tmp_path_factory.mktemp("trust")
    names = {"parliament": "The parliament", "police": "The police", "courts": "The courts"}
    scale = [{"code": str(i), "text": str(i)} for i in range(11)]
    questionnaire = {
        "id": "trust",
        "questions": [
            {"id": key, "kind": "ordinal", "label_style": "number", "text": STEM.format(name=n)}
            | {"options": scale}
            for key, n in names.items()
        ],
    }
    (folder / "trust.yaml").write_text(json.dumps(questionnaire))
    (folder / "trust.mapping.yaml").write_text(
        "questionnaire: trust\nrespondent: idno\n"
        f"questions: {{{', '.join(f'{k}: {k}' for k in names)}}}\n"
        "attributes: {country: country}\n"
        "population: {by: [country], template: 'You live in {country}.'}\n"
    )
    rows = 90
    pl.DataFrame(
        {
            "idno": list(range(rows)),
            "country": [("Germany", "France", "Spain")[i % 3] for i in range(rows)],
            **{key: [(i * (3 + j)) % 11 for i in range(rows)] for j, key in enumerate(names)},
        }
    ).write_csv(folder / "trust.csv")
    return folder / "trust.csv", folder / "trust.mapping.yaml", folder / "trust.yaml"


@pytest.fixture(scope="module")
def wide_model(tmp_path_factory) -> Path:
    """A random Llama wide enough that a training step's activations (hundreds of MiB an
    example) stand out of the process's own memory."""
    folder = tmp_path_factory.mktemp("wide")
    tokenizer = train_tokenizer([STEM, "You live in Germany, France, Spain."] * 20)
    torch.manual_seed(0)
    layers = {**TINY_LAYERS, "hidden_size": 384, "intermediate_size": 1536, "head_dim": 48}
    layers |= {"num_attention_heads": 8, "num_key_value_heads": 8}
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), **layers)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _tune(survey: tuple[Path, Path, Path], model: Path, out: Path, budget_gib: float):
    data, mapping, questionnaire = survey
    done = subprocess.run(
        [
            *(SCRIPT, "tune", "--human", str(data), "--mapping", str(mapping)),
            *("--questionnaire", str(questionnaire), "--model", str(model)),
            *("--train", "1", "--epochs", "0.25", "--max-memory", f"{budget_gib:.4f}"),
            *("--out", str(out), "--no-evaluate", "--quiet"),
        ],
        capture_output=True,
        text=True,
    )
    return done


def _work(out: Path) -> TrainingWork:
    return AdapterRecord.model_validate_json((out / ADAPTER_RECORD).read_text()).work


def test_a_batch_over_the_budget_is_split_and_the_peak_stays_within_it(
    trust_survey, wide_model, tmp_path
):
    free = _tune(trust_survey, wide_model, tmp_path / "free", budget_gib=1000)
    assert free.returncode == 0, free.stderr
    unlimited = _work(tmp_path / "free")
    assert unlimited.batch_size == 8
    assert unlimited.gradient_accumulation == 1
    assert unlimited.estimated_peak_mib is not None
    assert unlimited.memory_before_training_mib is not None
    assert unlimited.peak_memory_mib <= unlimited.estimated_peak_mib  # an upper bound
    per_example = (
        unlimited.estimated_peak_mib - unlimited.memory_before_training_mib - MARGIN_MIB
    ) / 8
    budget = unlimited.memory_before_training_mib + MARGIN_MIB + 2.5 * per_example
    # The limit matters: the batch of 8 went over it.
    assert unlimited.peak_memory_mib > budget

    limited = _tune(trust_survey, wide_model, tmp_path / "limited", budget_gib=budget / 1024)
    assert limited.returncode == 0, limited.stderr
    assert "training 2 at a time, gradients accumulated over 4 batches" in limited.stderr
    work = _work(tmp_path / "limited")
    assert (work.batch_size, work.gradient_accumulation) == (2, 4)
    assert work.peak_memory_mib <= budget


def test_an_example_that_cannot_fit_is_refused_before_training(trust_survey, wide_model, tmp_path):
    data, mapping, questionnaire = trust_survey
    human = HumanResponses.from_file(data, mapping, load_questionnaire(questionnaire))
    with pytest.raises(InputError, match=r"one training example \(up to 11 sequence") as caught:
        tune(human, wide_model, out=tmp_path / "adapter", max_memory=0.25, progress=False)
    assert "--checkpoint-activations" in str(caught.value)
    assert "memory budget of 256 MiB" in str(caught.value)
    assert not (tmp_path / "adapter" / ADAPTER_RECORD).exists()
