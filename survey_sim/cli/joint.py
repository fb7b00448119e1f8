"""``survey-sim joint``: exact joint distributions of question pairs."""

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
from survey_sim.questionnaire import Questionnaire, load_questionnaire
from survey_sim.runs.joints import CHAIN_LIMIT, chain, joint
from survey_sim.runs.results import ResultFiles


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the command with the ``survey-sim`` parser."""
    parser = commands.add_parser(
        "joint",
        help="exact joint distributions of question pairs, per persona and population",
        description="Read P(a, b | persona) = P(a | persona) x P(b | persona, answered a) "
        "exactly for each pair, in both asking orders and their average, and write the "
        "tidy joint tables to --out (FILE.population.parquet: weighted over the personas). "
        "Each pair is asked back to back in the listed option order. --chain reads the joint "
        f"of three or more questions asked in one order (at most {CHAIN_LIMIT:,} cells).",
    )
    parser.add_argument("questionnaire", type=Path, help="questionnaire YAML file")
    parser.add_argument(
        "--personas", type=Path, required=True, help="persona table (.csv or .yaml)"
    )
    chosen = parser.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--pairs", metavar="A:B,C:D", help="question pairs")
    chosen.add_argument("--block", metavar="NAME", help="every pair of the block's questions")
    chosen.add_argument(
        "--chain",
        metavar="A,B,C",
        help="the joint of these questions asked in this order, back to back",
    )
    parser.add_argument("--out", type=RESULTS_FILE, required=True, help="joints file (.parquet)")
    add_model_arguments(parser)
    parser.set_defaults(handler=joint_command, permute=False, balance="auto", method="exact")


def _pairs(args: argparse.Namespace, questionnaire: Questionnaire) -> list[tuple[str, str]]:
    if args.block is not None:
        blocks = {block.id: block for block in questionnaire.flow_blocks}
        if args.block not in blocks:
            raise SurveySimError(
                f"--block {args.block}: no such block (blocks: {', '.join(blocks)})"
            )
        ids = blocks[args.block].questions
        return [(a, b) for index, a in enumerate(ids) for b in ids[index + 1 :]]
    pairs = []
    for written in args.pairs.split(","):
        parts = written.strip().split(":")
        if len(parts) != 2 or not all(parts):
            raise SurveySimError(f"--pairs: {written!r} is not A:B (two question ids)")
        pairs.append((parts[0], parts[1]))
    return pairs


def joint_command(args: argparse.Namespace) -> int:
    """``survey-sim joint``."""
    started = time.perf_counter()
    check_outputs(ResultFiles.at(args.out), [args.questionnaire, args.personas])
    questionnaire = load_questionnaire(args.questionnaire)
    population = Population.from_file(args.personas)
    settings = simulation_settings(args)
    load_engine = engine_loader(args)
    cache = open_cache(args)
    if args.chain is not None:
        ids = [q.strip() for q in args.chain.split(",") if q.strip()]
        chained = chain(
            questionnaire,
            population,
            load_engine(),
            ids,
            settings,
            progress=not args.quiet,
            cache=cache,
        )
        written = write_run(chained, args.out)
        if not args.quiet:
            with pl.Config(tbl_hide_dataframe_shape=True, float_precision=4):
                print(f"P({', '.join(ids)}), asked in this order; the 10 most likely answers:")
                print(chained.table().head(10))
        assert chained.manifest is not None
        print(
            f"Chain of {len(ids)} questions x {len(population)} personas; "
            f"{cache_summary(chained.manifest.cache)}; {time.perf_counter() - started:.1f} s.\n"
            f"Wrote {', '.join(str(path) for path in written)}."
        )
        return 0
    pairs = _pairs(args, questionnaire)
    engine = load_engine()
    result = joint(
        questionnaire, population, engine, pairs, settings, progress=not args.quiet, cache=cache
    )
    written = write_run(result, args.out)
    if not args.quiet:
        with pl.Config(
            tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True, float_precision=3
        ):
            for first, second in list(dict.fromkeys(pairs))[:3]:
                print(f"P({first}, {second}), both asking orders averaged ({first} in rows):")
                print(result.table(first, second))
    assert result.manifest is not None
    print(
        f"{len(set(pairs))} pair(s) x {len(population)} personas on {engine.model_id}; "
        f"{cache_summary(result.manifest.cache)}; {time.perf_counter() - started:.1f} s.\n"
        f"Wrote {', '.join(str(path) for path in written)}."
    )
    return 0
