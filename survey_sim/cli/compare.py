"""``survey-sim compare``: simulated distributions against real human answers."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import polars as pl

from survey_sim._io import write_parquet_atomic
from survey_sim.cli._common import PLOT_FILE, add_human_arguments, load_human, output_file
from survey_sim.data.responses import HumanResponses
from survey_sim.errors import SurveySimError
from survey_sim.runs import SimulationResult


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the command with the ``survey-sim`` parser."""
    comparing = commands.add_parser(
        "compare",
        help="score simulated distributions against real human answers",
        description="Compare the population distribution in RESULTS (written by run or demo) "
        "with human answers: metrics per question beside uniform, human-marginal and "
        "split-half references, and a PNG of the distributions.",
    )
    comparing.add_argument("results", type=Path, help="results file (.parquet) from run/demo")
    add_human_arguments(comparing)
    comparing.add_argument(
        "--plot",
        type=PLOT_FILE,
        default=None,
        help="PNG of the distributions (default: RESULTS.png)",
    )
    comparing.add_argument(
        "--out", type=output_file(".parquet", "metrics"), default=None, help="metrics as Parquet"
    )
    comparing.add_argument(
        "--calibrate",
        type=int,
        metavar="FOLDS",
        default=None,
        help="also fit the PyMC calibration model, with held-out interval coverage over FOLDS "
        "folds of questions, and plot both (RESULTS.calibration.png); needs questions with "
        "the same number of options",
    )
    comparing.add_argument(
        "--sampler",
        choices=["pymc", "nutpie"],
        default="pymc",
        help="NUTS implementation for --calibrate (nutpie: the fast extra)",
    )

    comparing.set_defaults(handler=compare_command)


def compare_command(args: argparse.Namespace) -> int:
    from survey_sim.analysis.plots import plot_distributions
    from survey_sim.evaluate.metrics import compare, summarise

    if args.calibrate is not None and args.calibrate < 2:
        raise SurveySimError("--calibrate needs at least 2 folds")
    if not args.results.is_file():
        raise SurveySimError(f"{args.results}: no such results file")
    human = load_human(args)
    simulated = SimulationResult.read_parquet(args.results).population
    comparison = compare(simulated, human)
    plot = plot_distributions(
        simulated, human, comparison, args.plot or args.results.with_suffix(".png")
    )
    with pl.Config(tbl_rows=-1, float_precision=3, tbl_hide_dataframe_shape=True):
        print(f"{human!r}\n\nMean over questions (split_half: two halves of the same people):")
        print(summarise(comparison))
        print("\nPer question:")
        print(comparison.drop("coverage"))
    written = [plot]
    if args.out is not None:
        written.append(write_parquet_atomic(comparison, args.out))
    if args.calibrate is not None:
        written.append(_calibrate(simulated, human, args))
    print(f"Wrote {', '.join(str(path) for path in written)}.")
    return 0


def _calibrate(simulated: pl.DataFrame, human: HumanResponses, args: argparse.Namespace) -> Path:
    import arviz as az

    from survey_sim.analysis import Calibration, plot_calibration

    logging.getLogger("pymc").setLevel(logging.WARNING)  # one line per fit is enough here
    print(f"\nCalibration model: full fit, then {args.calibrate} held-out folds ...")
    calibration = Calibration(simulated, human)
    idata = calibration.fit(sampler=args.sampler)
    predictions = calibration.held_out(folds=args.calibrate, sampler=args.sampler)
    summary = az.summary(idata, var_names=["alpha", "beta", "sigma"], kind="stats")
    print(summary.to_string(float_format="{:.3f}".format))
    covered = predictions["covered"].to_numpy()
    width = (predictions["upper"] - predictions["lower"]).to_numpy()
    print(
        f"Held-out 90% intervals cover {covered.sum()} of {len(covered)} human shares "
        f"({covered.mean():.2f}); mean width {width.mean():.2f}."
    )
    return plot_calibration(idata, predictions, args.results.with_suffix(".calibration.png"))
