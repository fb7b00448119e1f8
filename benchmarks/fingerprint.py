"""Weights fingerprint: every tensor hashed in memory (before 2026-11-22) vs the weight
files hashed (now: in full the first time, then from the memo kept in the cache folder),
side by side in one process.

    python benchmarks/fingerprint.py            # the default model
    python benchmarks/fingerprint.py PATH       # a local model directory
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable

import torch

from survey_sim import TransformersEngine
from survey_sim.engines.registry import resolve_model, weights_fingerprint


def tensor_hash(engine: TransformersEngine) -> str:
    """The earlier fingerprint's weights part: every tensor's bytes."""
    digest = hashlib.blake2b(digest_size=20)
    for name, tensor in engine.model.state_dict().items():
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def seconds(function: Callable[..., object], *args: object) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def main() -> None:
    model = sys.argv[1] if len(sys.argv) > 1 else None
    engine = TransformersEngine.from_pretrained(model)
    path, _ = resolve_model(model)
    by_tensor = seconds(tensor_hash, engine)
    os.environ["SURVEY_SIM_CACHE_DIR"] = tempfile.mkdtemp()  # an empty memo
    first = seconds(weights_fingerprint, path)
    memoised = seconds(weights_fingerprint, path)
    size = sum(f.stat().st_size for f in path.glob("*.safetensors"))
    print(f"{engine.model_id}: {size / 2**20:.0f} MiB of weight files")
    print(f"  every tensor hashed (before):  {by_tensor:8.3f} s")
    print(f"  weight files, first time:      {first:8.3f} s  ({by_tensor / first:.1f}x faster)")
    print(
        f"  weight files, memoised:        {memoised:8.4f} s  ({by_tensor / memoised:.0f}x faster)"
    )


if __name__ == "__main__":
    main()
