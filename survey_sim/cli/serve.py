"""``survey-sim serve``: start SGLang (and a router in front of several workers)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from survey_sim.cli._common import Stopped
from survey_sim.engines.registry import locate_adapter
from survey_sim.engines.sglang_server import launch


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the command with the ``survey-sim`` parser."""
    serve = commands.add_parser(
        "serve",
        help="serve a model with SGLang for --engine sglang",
        description="Start an SGLang server for MODEL bound to 127.0.0.1 (with several "
        "--workers, a cache-aware router in front of them), wait until it answers, print its "
        "URL, and keep it running until Ctrl-C, which stops every process it started. "
        "Arguments after -- go to sglang.launch_server unchanged (e.g. -- --tp-size 2). SGLang "
        "runs from its own environment: bash scripts/setup-sglang.sh, or set "
        "SURVEY_SIM_SGLANG_PYTHON.",
    )
    serve.add_argument("model", help="local model directory (or a name SGLang can resolve)")
    serve.add_argument(
        "--port", type=int, default=30000, help="where clients connect (default: 30000)"
    )
    serve.add_argument("--dp-size", type=int, default=1, help="data-parallel replicas (default: 1)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="separate servers behind a cache-aware router (default: 1)",
    )
    serve.add_argument(
        "--deterministic",
        action="store_true",
        help="--enable-deterministic-inference: sampling seeds are honoured (GPU backends)",
    )
    serve.add_argument(
        "--adapter",
        type=Path,
        default=None,
        help="also serve this LoRA adapter folder (clients: --engine sglang --adapter FOLDER; "
        "SGLang's LoRA layers need a GPU)",
    )
    serve.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    if args.adapter is not None:
        locate_adapter(args.adapter)
    started = time.perf_counter()
    server = launch(
        args.model,
        port=args.port,
        dp_size=args.dp_size,
        workers=args.workers,
        deterministic=args.deterministic,
        adapter=args.adapter,
        extra_args=args.passthrough,
    )
    adapter = f" --adapter {args.adapter}" if args.adapter else ""
    print(
        f"SGLang serves {args.model} at {server.url} (up in {time.perf_counter() - started:.0f} "
        f"s; log: {server.log}). Use it with: survey-sim run ... --engine sglang --url "
        f"{server.url}{adapter}. Ctrl-C stops it.",
        flush=True,
    )
    try:
        while all(process.poll() is None for process in server.processes):
            time.sleep(1)
        print(f"survey-sim: error: an SGLang process exited; its log ends:\n{server.log_tail()}")
        return 1
    except (KeyboardInterrupt, Stopped):
        print("stopping SGLang...", flush=True)
        return 0
    finally:
        server.stop()
