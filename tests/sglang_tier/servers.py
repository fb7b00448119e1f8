"""Starting SGLang for the test tier: this machine's flags, free ports."""

from __future__ import annotations

import os
import random
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


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(span: int = 3) -> int:
    """A port with ``span - 1`` free ports after it (a router's workers), below the ephemeral
    range: SGLang binds its port only after loading the model, and a port the kernel hands
    out meanwhile to some connection (the next ones after a ``bind(0)`` are likely) leaves a
    worker that never answers."""
    lowest_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    while True:
        port = random.randrange(20000, lowest_ephemeral - span)
        if all(_is_free(port + offset) for offset in range(span)):
            return port


def start(model: Path, **options: object) -> SGLangServer:
    """A server for ``model`` on a free port, with this machine's flags."""
    port = options.pop("port", None) or free_port()
    return launch(model, port=port, extra_args=SERVER_ARGS, env=SERVER_ENV, **options)  # type: ignore[arg-type]
