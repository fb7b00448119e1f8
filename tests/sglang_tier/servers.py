"""Starting SGLang for the test tier: this machine's flags, free ports."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from survey_sim.engines.sglang_server import SGLangServer, launch

SUPPORT = Path(__file__).with_name("support")
ON_CPU = shutil.which("nvidia-smi") is None
SERVER_ARGS = (
    [
        *("--device", "cpu", "--attention-backend", "torch_native", "--dtype", "float32"),
        *("--max-total-tokens", "131072"),  # a small KV pool: several servers share 24 GiB
    ]
    if ON_CPU
    else ["--dtype", "float32"]
)
SERVER_ENV = (
    {
        "SGLANG_USE_CPU_ENGINE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SUPPORT), os.environ.get("PYTHONPATH")])),
    }
    if ON_CPU
    else {}
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(model: Path, **options: object) -> SGLangServer:
    """A server for ``model`` on a free port, with this machine's flags."""
    port = options.pop("port", None) or free_port()
    return launch(model, port=port, extra_args=SERVER_ARGS, env=SERVER_ENV, **options)  # type: ignore[arg-type]
