"""The ``survey-sim`` command line: the parser, and dispatch to one module per command."""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from collections.abc import Callable, Sequence

from survey_sim.cli import (
    cache,
    check,
    compare,
    experiment,
    export,
    importing,
    individuals,
    joint,
    population,
    preview,
    respondents,
    run,
    serve,
    tune,
)
from survey_sim.cli._common import Stopped, raise_stopped
from survey_sim.errors import SurveySimError

_DESCRIPTION = """\
Simulate survey answers with a language model answering as personas. Every option's
probability is read exactly from the model's log-probabilities (one pass per question,
shared prompt prefixes computed once). Runs offline on the embedded default model
(SmolLM2-135M-Instruct); nothing is downloaded."""

_EPILOG = """\
examples:
  survey-sim demo
  survey-sim run questionnaires/gss_spending_2018.yaml --personas personas/us_adults_demo.yaml \\
      --format spectrum --out results.parquet
  survey-sim run my_survey.yaml --personas cells.csv --model ~/models/Qwen3-1.7B --out r.parquet
  survey-sim respondents questionnaires/anes_2016_vote_flow.yaml \
      --personas personas/us_adults_demo.yaml --n 1000 --out sample.parquet
  survey-sim joint questionnaires/gss_spending_2018.yaml --personas personas/us_adults_demo.yaml \
      --pairs natfare:natenvir --out joints.parquet
  survey-sim individuals --human gss_spending_2018 --train 100 --test 100 --out ind.parquet
  survey-sim evaluate ind.parquet --human gss_spending_2018
  survey-sim tune --human gss_spending_2018 --objective population --out gss-adapter
  survey-sim run questionnaires/gss_spending_2018.yaml --personas cells.csv \
      --adapter gss-adapter --out tuned.parquet
  survey-sim serve ~/models/Qwen3-14B --port 30000     # then, in another shell:
  survey-sim run my_survey.yaml --personas cells.csv --engine sglang \
      --url http://127.0.0.1:30000 --out r.parquet

results: FILE.parquet holds one row per persona x question x option (logprob, prob,
coverage); FILE.population.parquet the weighted population distribution."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="survey-sim",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (
        run,
        respondents,
        joint,
        experiment,
        export,
        importing,
        preview,
        individuals,
        compare,
        population,
        tune,
        check,
        cache,
        serve,
    ):
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``survey-sim`` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    # Everything after a bare -- goes to the program a command starts (serve: SGLang).
    passthrough = words[words.index("--") + 1 :] if "--" in words else []
    parser = build_parser()
    args = parser.parse_args(words[: len(words) - len(passthrough) - bool(passthrough)])
    if passthrough and args.command != "serve":
        parser.error("arguments after -- are for survey-sim serve only")
    args.passthrough = passthrough
    handler: Callable[[argparse.Namespace], int] = args.handler
    warnings.formatwarning = _one_line
    # ArviZ announces its own coming refactor once a day: nothing a user of survey-sim can act on
    warnings.filterwarnings("ignore", r"\s*ArviZ is undergoing", FutureWarning)
    signal.signal(signal.SIGTERM, raise_stopped)
    try:
        return handler(args)
    except SurveySimError as error:
        print(f"survey-sim: error: {error}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Stopped) as stop:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        what = "stopped (SIGTERM)" if isinstance(stop, Stopped) else "interrupted"
        kept = "".join(f": {note}" for note in getattr(stop, "__notes__", []))
        # From the start of the line: a progress bar stopped while it was drawn stays open.
        line_start = "\r\x1b[K" if sys.stderr.isatty() else "\r"
        print(f"{line_start}survey-sim: {what}{kept}", file=sys.stderr)
        return 143 if isinstance(stop, Stopped) else 130


def _one_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    """Warnings as one line each, like errors (not Python's file:line header), however
    many lines their message has."""
    return f"survey-sim: warning: {' '.join(str(message).split())}\n"


if __name__ == "__main__":
    raise SystemExit(main())
