"""``survey-sim population``: persona cells weighted like a real sample."""

from __future__ import annotations

import argparse

import polars as pl

from survey_sim.cli._common import add_human_arguments, check_outputs, load_human, output_file


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the command with the ``survey-sim`` parser."""
    building = commands.add_parser(
        "population",
        help="build persona cells, weighted like a real sample, from respondents' demographics",
        description="Group the respondents of --human by demographic attributes into persona "
        "cells weighted by their share of the sample, and write them as a persona CSV for "
        "run --personas. Simulating that population gives a post-stratified zero-shot "
        "distribution to compare with the same data.",
    )
    add_human_arguments(building)
    building.add_argument(
        "--by",
        default=None,
        help="comma-separated attributes (default: the mapping's population.by)",
    )
    building.add_argument(
        "--min-respondents",
        type=int,
        default=None,
        help="drop cells with fewer respondents (default: the mapping's, else 1)",
    )
    building.add_argument(
        "--out",
        type=output_file(".csv", "persona cells"),
        required=True,
        help="persona table (.csv)",
    )

    building.set_defaults(handler=population_command)


def population_command(args: argparse.Namespace) -> int:
    check_outputs([args.out], [args.human, args.mapping, args.questionnaire])
    human = load_human(args)
    by = None if args.by is None else [name.strip() for name in args.by.split(",")]
    cells = human.cells(by, args.min_respondents)
    population = human.population(by, min_respondents=args.min_respondents)
    population.write_csv(args.out)
    kept = cells["respondents"].sum()
    everyone = human.frame["respondent_id"].n_unique()
    with pl.Config(tbl_rows=-1, float_precision=3, tbl_hide_dataframe_shape=True):
        print(cells)
    print(
        f"{len(population)} persona cells cover {kept} of {everyone} respondents (the rest "
        f"lack an attribute or fall in cells below the minimum). Example description:\n"
        f"  {next(iter(population)).description}\nWrote {args.out}."
    )
    return 0
