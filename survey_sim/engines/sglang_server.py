"""Starting SGLang servers (and a router in front of several) from survey-sim.

``survey-sim serve`` and the SGLang test tier use :func:`launch`: the server binds to
127.0.0.1, always with ``--constrained-json-disable-any-whitespace`` (without it some JSON
answers run to the token limit in whitespace), and :class:`SGLangServer` waits until it
answers and stops every child process it started, on exit or on Ctrl-C.

SGLang lives in an environment of its own (``bash scripts/setup-sglang.sh`` makes
``.venv-sglang``): it pins torch, transformers and xgrammar versions of its own, and talks
to the client only over HTTP.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from survey_sim.errors import ServerError

ENVIRONMENT = ".venv-sglang"


def sglang_python() -> str:
    """The Python interpreter that has SGLang: ``$SURVEY_SIM_SGLANG_PYTHON``, else
    ``.venv-sglang/bin/python`` in the working directory or beside this checkout, else this
    interpreter if it can import SGLang."""
    chosen = os.environ.get("SURVEY_SIM_SGLANG_PYTHON")
    if chosen:
        return chosen
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = root / ENVIRONMENT / "bin" / "python"
        if candidate.exists():
            return str(candidate)
    probe = subprocess.run(
        [sys.executable, "-c", "import sglang"], capture_output=True, check=False
    )
    if probe.returncode == 0:
        return sys.executable
    raise ServerError(
        "no SGLang installation found: run `bash scripts/setup-sglang.sh` (an environment of "
        f"its own in {ENVIRONMENT}/), `pip install 'survey-sim[sglang]'` on a GPU machine, or "
        "set SURVEY_SIM_SGLANG_PYTHON to a Python that has sglang"
    )


@dataclass
class SGLangServer:
    """Running SGLang processes: one server, or several workers behind a router.

    Use as a context manager, or call :meth:`stop`. ``url`` is what clients connect to.
    """

    url: str
    processes: list[subprocess.Popen[bytes]]
    log: Path
    worker_urls: list[str] = field(default_factory=list)

    def __enter__(self) -> SGLangServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self, grace_s: float = 15) -> None:
        """Stop every process (and its children): SIGTERM, then SIGKILL after ``grace_s``."""
        for process in reversed(self.processes):
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(process, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the processes printed."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def launch(
    model: str | Path,
    *,
    port: int = 30000,
    dp_size: int = 1,
    workers: int = 1,
    deterministic: bool = False,
    adapter: Path | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    python: str | None = None,
    timeout_s: float = 900,
    log: Path | None = None,
) -> SGLangServer:
    """Start SGLang serving ``model`` on 127.0.0.1 and wait until it answers.

    Args:
        model: A local model directory (or a name the server can resolve itself).
        port: Where clients connect (the router's port when ``workers`` > 1).
        dp_size: Data-parallel replicas inside one server (``--dp-size``).
        workers: Separate servers behind a cache-aware router (ports after ``port``).
        deterministic: Start with ``--enable-deterministic-inference`` so sampling seeds
            are honoured (GPU attention backends only).
        adapter: A LoRA adapter folder to serve (``--enable-lora --lora-paths NAME=FOLDER``,
            NAME being the folder's name, which :class:`SGLangEngine` asks for). SGLang's LoRA
            layers need CUDA: on a CPU the server fails to start.
        extra_args: More ``sglang.launch_server`` arguments (e.g. ``--tp-size 2``).
        env: More environment variables for the processes.
        python: The interpreter with SGLang (default: :func:`sglang_python`).
        timeout_s: Seconds to wait for the server to answer.
        log: File the processes write to (default: a temporary file).

    Raises:
        ServerError: a process exited, or the server did not answer within ``timeout_s``.
    """
    worker_ports = [port] if workers == 1 else [port + 1 + i for i in range(workers)]
    _refuse_ports_in_use(sorted({port, *worker_ports}), port)
    python = python or sglang_python()
    if log is None:
        log = Path(tempfile.mkstemp(prefix="survey-sim-sglang-", suffix=".log")[1])
    environment = {**os.environ, **(env or {})}
    server_args = [
        "--model-path",
        str(model),
        "--host",
        "127.0.0.1",
        "--constrained-json-disable-any-whitespace",
        "--dp-size",
        str(dp_size),
        *(["--enable-deterministic-inference"] if deterministic else []),
        *(["--enable-lora", "--lora-paths", f"{adapter.name}={adapter}"] if adapter else []),
        *extra_args,
    ]
    commands = [
        [python, "-m", "sglang.launch_server", *server_args, "--port", str(worker_port)]
        for worker_port in worker_ports
    ]
    worker_urls = [f"http://127.0.0.1:{worker_port}" for worker_port in worker_ports]
    if workers > 1:
        commands.append(_router_command(python, worker_urls, port))
    handle = log.open("ab")
    processes = [
        subprocess.Popen(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )
        for command in commands
    ]
    server = SGLangServer(f"http://127.0.0.1:{port}", processes, log, worker_urls)
    try:
        for url in [*worker_urls, server.url] if workers > 1 else [server.url]:
            _wait_until_healthy(url, server, timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def _refuse_ports_in_use(ports: list[int], port: int) -> None:
    """SGLang binds its HTTP port only after loading the model; a port taken by then leaves a
    server that never answers, so a port in use now is refused before anything starts."""
    for candidate in ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError as error:
                raise ServerError(
                    f"port {candidate} on 127.0.0.1 is in use ({error.strerror}); choose another "
                    f"port (now {port}; several workers take the ports after it)"
                ) from error


def _router_command(python: str, worker_urls: list[str], port: int) -> list[str]:
    """The cache-aware router (sglang-router, installed with SGLang's extra and by
    scripts/setup-sglang.sh) in front of ``worker_urls``."""
    probe = subprocess.run([python, "-c", "import sglang_router"], capture_output=True, check=False)
    if probe.returncode != 0:
        raise ServerError("several workers need a router: pip install sglang-router")
    return [
        *(python, "-m", "sglang_router.launch_router", "--worker-urls", *worker_urls),
        *("--policy", "cache_aware", "--host", "127.0.0.1", "--port", str(port)),
    ]


def _wait_until_healthy(url: str, server: SGLangServer, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for process in server.processes:
            if process.poll() is not None:
                raise ServerError(
                    f"SGLang exited (code {process.returncode}) before {url} answered; its "
                    f"log ({server.log}) ends:\n{server.log_tail()}"
                )
        with contextlib.suppress(httpx.HTTPError):
            if any(
                httpx.get(f"{url}{path}", timeout=5).status_code == 200
                for path in ("/model_info", "/get_model_info")
            ):
                return
        time.sleep(1)
    raise ServerError(f"SGLang did not answer at {url} within {timeout_s:.0f} s; log: {server.log}")


def _signal_group(process: subprocess.Popen[bytes], signal_number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal_number)
