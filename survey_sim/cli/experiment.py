"""``survey-sim experiment``: question order as a split-ballot experiment, read exactly."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import polars as pl

from survey_sim.cli._common import (
    RESULTS_FILE,
    add_model_arguments,
    cache_summary,
    check_outputs,
    engine_loader,
    open_cache,
    simulation_settings,
    write_run,
)
from survey_sim.errors import SurveySimError
from survey_sim.population import Population
from survey_sim.questionnaire import load_questionnaire
from survey_sim.runs.experiments import PROMPT_LIMIT, experiment
from survey_sim.runs.results import ResultFiles


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the command with the ``survey-sim`` parser."""
    parser = commands.add_parser(
        "experiment",
        help="question order as a split-ballot experiment, every arm read exactly",
        description="Each --arm asks its questions in its own order, back to back, with "
        "the interview in context. Every question's distribution in every arm is exact: "
        "summed over the answer paths before it (one prompt per path; at most "
        f"{PROMPT_LIMIT:,} per arm and persona). Prints the order effects against the first "
        "arm (per option and total variation, with 90% intervals over the personas) and "
        "writes the distributions to --out.",
    )
    parser.add_argument("questionnaire", type=Path, help="questionnaire YAML file")
    parser.add_argument(
        "--personas", type=Path, required=True, help="persona table (.csv or .yaml)"
    )
    parser.add_argument(
        "--arm",
        action="append",
        required=True,
        metavar="NAME=Q,Q,...",
        help="an arm and the questions it asks, in order (give two or more), e.g. "
        "--arm early=natfare,natenvir --arm late=natenvir,natfare",
    )
    parser.add_argument(
        "--out", type=RESULTS_FILE, required=True, help="distributions per arm (.parquet)"
    )
    add_model_arguments(parser)
    parser.set_defaults(handler=experiment_command, permute=False, balance="auto", method="exact")


def _arms(written: list[str]) -> dict[str, list[str]]:
    arms: dict[str, list[str]] = {}
    for arm in written:
        name, _, questions = arm.partition("=")
        ids = [q.strip() for q in questions.split(",") if q.strip()]
        if not name.strip() or not ids:
            raise SurveySimError(f"--arm {arm!r} is not NAME=Q,Q,... (an arm and its questions)")
        if name.strip() in arms:
            raise SurveySimError(f"--arm: two arms are named {name.strip()!r}")
        arms[name.strip()] = ids
    return arms


def experiment_command(args: argparse.Namespace) -> int:
    """``survey-sim experiment``."""
    started = time.perf_counter()
    check_outputs(ResultFiles.at(args.out), [args.questionnaire, args.personas])
    questionnaire = load_questionnaire(args.questionnaire)
    population = Population.from_file(args.personas)
    arms = _arms(args.arm)
    settings = simulation_settings(args)
    load_engine = engine_loader(args)
    cache = open_cache(args)
    engine = load_engine()
    result = experiment(
        questionnaire, population, engine, arms, settings, progress=not args.quiet, cache=cache
    )
    written = write_run(result, args.out)
    effects = result.effects()
    with pl.Config(
        tbl_rows=-1,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_width_chars=140,
        float_precision=3,
    ):
        print(
            f"Order effects against arm {effects['reference'][0]!r} (effect: the other arm "
            "minus it; 90% intervals from resampling the personas):"
        )
        print(effects.drop("reference").rename({"reference_position": "position_there"}))
    assert result.manifest is not None
    print(
        f"{len(arms)} arms x {len(population)} personas on {engine.model_id}; "
        f"{cache_summary(result.manifest.cache)}; {time.perf_counter() - started:.1f} s.\n"
        f"Wrote {', '.join(str(path) for path in written)}."
    )
    return 0
