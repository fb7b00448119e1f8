"""``survey-sim run`` and ``survey-sim demo``: answer a questionnaire with personas."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from survey_sim.cli._common import (
    RESULTS_FILE,
    add_asking_arguments,
    add_model_arguments,
    cache_summary,
    check_outputs,
    engine_loader,
    open_cache,
    simulation_settings,
    write_run,
)
from survey_sim.data.bundled import bundled_file
from survey_sim.population import Population
from survey_sim.questionnaire import Questionnaire, load_questionnaire
from survey_sim.runs import SimulationResult, position_bias, rank_summary, simulate
from survey_sim.runs.results import LOW_COVERAGE, ResultFiles


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the command with the ``survey-sim`` parser."""
    demo = commands.add_parser(
        "demo",
        help="answer the bundled GSS spending questionnaire with the bundled personas",
        description="Answer the bundled GSS 2018 national-spending questionnaire with the "
        "bundled population of eight US-adult personas on the default model, print the "
        "per-persona and population distributions, and write Parquet.",
    )
    demo.add_argument(
        "--out",
        type=RESULTS_FILE,
        default=Path("survey-sim-demo.parquet"),
        help="results file (default: survey-sim-demo.parquet)",
    )
    add_model_arguments(demo)
    add_asking_arguments(demo)

    demo.set_defaults(handler=demo_command)

    run = commands.add_parser(
        "run",
        help="answer a questionnaire with a population of personas",
        description="Answer QUESTIONNAIRE (YAML) with every persona in --personas "
        "(CSV or YAML) and write the exact answer distributions to --out.",
    )
    run.add_argument("questionnaire", type=Path, help="questionnaire YAML file")
    run.add_argument("--personas", type=Path, required=True, help="persona table (.csv or .yaml)")
    run.add_argument("--out", type=RESULTS_FILE, required=True, help="results file (.parquet)")
    add_model_arguments(run)
    add_asking_arguments(run)

    run.set_defaults(handler=run_command)


DEMO_QUESTIONNAIRE = "gss_spending_2018.yaml"
DEMO_PERSONAS = "us_adults_demo.yaml"


def demo_command(args: argparse.Namespace) -> int:
    """``survey-sim demo``: the bundled questionnaire and personas."""
    questionnaire = bundled_file("questionnaires", DEMO_QUESTIONNAIRE)
    done = _run(questionnaire, bundled_file("personas", DEMO_PERSONAS), args)
    if args.model is None:
        print(
            "The default model is there so the machinery runs anywhere, not as a credible "
            "respondent: it barely reacts to personas and favours the option it reads first "
            "(README: 'Read this before trusting a number')."
        )
    print(f"Next, compare with people: survey-sim compare {args.out} --human gss_spending_2018")
    return done


def run_command(args: argparse.Namespace) -> int:
    """``survey-sim run``."""
    return _run(args.questionnaire, args.personas, args)


def _run(questionnaire_path: Path, personas_path: Path, args: argparse.Namespace) -> int:
    started = time.perf_counter()
    check_outputs(ResultFiles.at(args.out), [questionnaire_path, personas_path])
    questionnaire = load_questionnaire(questionnaire_path)
    population = Population.from_file(personas_path)
    settings = simulation_settings(args, samples=args.samples, seed=args.seed)
    load_engine = engine_loader(args)
    cache = open_cache(args)
    engine = load_engine()
    loaded = time.perf_counter()
    result = simulate(
        questionnaire, population, engine, settings, progress=not args.quiet, cache=cache
    )
    finished = time.perf_counter()
    result.warn_if_low_coverage()
    written = write_run(result, args.out)
    if not args.quiet:
        _print_tables(result, questionnaire, permuted=args.permute, per_persona=args.per_persona)
    assert result.manifest is not None  # simulate always records one
    work, cached = result.manifest.work, result.manifest.cache
    reuse = "" if work.hit_rate is None else f", {work.hit_rate:.0%} of prompt tokens"
    strategy = result.manifest.model.strategy
    print(
        f"{len(population)} personas x {len(questionnaire)} questions on {engine.model_id} "
        f"({result.manifest.settings.prompt_format().name} format"
        f"{f', {strategy} prefix reuse' if strategy else ''}): model loaded in "
        f"{loaded - started:.1f} s, answered in {finished - loaded:.1f} s; {cache_summary(cached)} "
        f"({work.computed_tokens} tokens computed, {work.reused_tokens} reused{reuse}).\n"
        f"Wrote {', '.join(str(path) for path in written)}."
    )
    return 0


def distribution_table(frame: pl.DataFrame, index: Sequence[str]) -> pl.DataFrame:
    """One row per ``index`` group, one column per option text (probabilities), and the mean
    coverage (multi-select questions have one per option)."""
    wide = frame.pivot(on="option_text", index=index, values="prob", maintain_order=True)
    coverage = frame.group_by(index, maintain_order=True).agg(pl.col("coverage").mean())
    return wide.join(coverage, on=index, maintain_order="left")


def _by_outcome_set(frame: pl.DataFrame) -> list[pl.DataFrame]:
    """``frame`` split into runs of questions with the same outcomes (one table each)."""
    outcomes = frame.group_by("question_id", maintain_order=True).agg(
        outcomes=pl.col("option_text").unique(maintain_order=True).str.join("|")
    )
    labelled = frame.join(outcomes, on="question_id", maintain_order="left")
    return labelled.partition_by("outcomes", maintain_order=True, include_key=False)


def _print_tables(
    result: SimulationResult, questionnaire: Questionnaire, *, permuted: bool, per_persona: bool
) -> None:
    listed = pl.col("kind") != "rank"  # rankings are summarised per option instead
    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        float_precision=3,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_width_chars=160,
        fmt_str_lengths=80,
    ):
        if per_persona and not result.responses.is_empty():
            print("Per-persona answer distributions (multi-select: P(selected) per option):")
            per_persona_rows = (
                result.responses.filter(listed)
                .group_by("persona_id", "question_id", "option_text", maintain_order=True)
                .agg(pl.col("prob").mean(), pl.col("coverage").mean())
            )
            for table in _by_outcome_set(per_persona_rows):
                print(distribution_table(table, ["persona_id", "question_id"]))
            print()
        population = result.population.filter(listed)
        if not population.is_empty():
            print("Population distribution (persona weights applied; multi-select: P(selected)):")
            for table in _by_outcome_set(population):
                print(distribution_table(table, ["question_id"]))
            print(
                "coverage: the model's probability of the listed answers before they are "
                f"renormalised to 1 (below {LOW_COVERAGE} a run warns: the model mostly "
                "answers something else)."
            )
        ranks = rank_summary(result, questionnaire)
        if not ranks.is_empty():
            print(
                "\nRank questions, per option (first: P(ranked first); ranked: P(placed in the "
                "ranking); mean_rank: 1 = first, when every option is ranked; by_rank: P(each "
                "place)). Each ranking's probability is in the results:"
            )
            print(ranks.drop("option_code"))
        if permuted:
            print("\nPosition bias (first_position_bias = P(option shown first) - 1/k):")
            print(position_bias(result.responses))
        if not result.draws.is_empty():
            print("\nSampled answers (first 3 per question):")
            first = result.draws.group_by("question_id", maintain_order=True).head(3)
            print(first.select("question_id", "persona_id", "answer", "truncated"))
