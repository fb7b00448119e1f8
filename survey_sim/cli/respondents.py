"""``survey-sim respondents``: a synthetic sample that walks the whole questionnaire."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import polars as pl

from survey_sim.cli._common import (
    RESULTS_FILE,
    add_model_arguments,
    add_order_arguments,
    cache_summary,
    check_outputs,
    engine_loader,
    open_cache,
    positive_int,
    simulation_settings,
    write_run,
)
from survey_sim.population import Population
from survey_sim.questionnaire import load_questionnaire
from survey_sim.runs.respondents import simulate_respondents
from survey_sim.runs.results import ResultFiles


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the command with the ``survey-sim`` parser."""
    parser = commands.add_parser(
        "respondents",
        help="simulate N respondents who walk the questionnaire (microdata)",
        description="Allocate N respondents to the personas by weight and interview each "
        "one as the questionnaire's flow says: its own seeded order of blocks and "
        "questions, conditions that skip, pipes filled with its earlier answers, what "
        "`memory` shows of the interview so far. Each answer is drawn from the exact "
        "distribution of the question given the persona and what it sees. Writes tidy "
        "microdata (one row per respondent x question) to --out, the wide form "
        "(*.wide.parquet: one row per respondent, one column per question), and a check of "
        "the marginals against the distributions drawn from (*.marginals.parquet).",
    )
    parser.add_argument("questionnaire", type=Path, help="questionnaire YAML file")
    parser.add_argument(
        "--personas", type=Path, required=True, help="persona table (.csv or .yaml)"
    )
    parser.add_argument("--n", type=positive_int, required=True, help="respondents to simulate")
    parser.add_argument("--out", type=RESULTS_FILE, required=True, help="microdata file (.parquet)")
    parser.add_argument(
        "--allocation",
        choices=["proportional", "multinomial"],
        default="proportional",
        help="respondents per persona: proportional to the weights (largest remainder) or "
        "a seeded multinomial draw (default: proportional)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the respondents' orders, option orders and answers (default: 0)",
    )
    add_model_arguments(parser)
    add_order_arguments(parser)
    parser.set_defaults(handler=respondents_command)


def respondents_command(args: argparse.Namespace) -> int:
    """``survey-sim respondents``."""
    started = time.perf_counter()
    check_outputs(ResultFiles.at(args.out), [args.questionnaire, args.personas])
    questionnaire = load_questionnaire(args.questionnaire)
    population = Population.from_file(args.personas)
    settings = simulation_settings(args, seed=args.seed)
    load_engine = engine_loader(args)
    cache = open_cache(args)
    engine = load_engine()
    result = simulate_respondents(
        questionnaire,
        population,
        engine,
        args.n,
        settings,
        allocation=args.allocation,
        progress=not args.quiet,
        cache=cache,
    )
    written = write_run(result, args.out)
    assert result.manifest is not None and result.manifest.respondents is not None
    if not args.quiet:
        with pl.Config(
            tbl_rows=10,
            tbl_cols=-1,
            tbl_hide_dataframe_shape=True,
            tbl_hide_column_data_types=True,
            tbl_width_chars=160,
        ):
            print("First respondents (answer codes; null: skipped by the flow):")
            print(result.wide.head(5))
    record = result.manifest.respondents
    print(result.summary())
    print(
        f"{record.distinct_prompts:,} distinct prompts for {record.respondents:,} respondents "
        f"on {engine.model_id}; {cache_summary(result.manifest.cache)}; "
        f"{time.perf_counter() - started:.1f} s.\nWrote {', '.join(str(p) for p in written)}."
    )
    return 0
