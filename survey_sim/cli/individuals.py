"""``survey-sim individuals`` (few-shot simulation of real respondents) and ``survey-sim
evaluate`` (its held-out evaluation against the baselines)."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import polars as pl

from survey_sim._io import write_parquet_atomic
from survey_sim.cli._common import (
    PLOT_FILE,
    RESULTS_FILE,
    add_human_arguments,
    add_model_arguments,
    add_sampling_arguments,
    cache_summary,
    check_outputs,
    engine_loader,
    load_human,
    open_cache,
    output_file,
    sampling_options,
    write_run,
)
from survey_sim.data.splits import IndividualSplit
from survey_sim.errors import SurveySimError
from survey_sim.evaluate.individuals import METHODS
from survey_sim.runs.individuals import IndividualResult, simulate_individuals
from survey_sim.runs.results import ResultFiles, beside
from survey_sim.runs.settings import SimulationSettings


def _add_unweighted(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--unweighted",
        action="store_true",
        help="accept weighted data and count every respondent once (the individual mode "
        "does not use survey weights; without this, weighted data are refused)",
    )


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register both commands with the ``survey-sim`` parser."""
    individuals = commands.add_parser(
        "individuals",
        help="predict real respondents' held-out answers from k of their own answers",
        description="Split the respondents of --human into training and test respondents "
        "(seeded); show each of them k of their own answers as earlier turns of the "
        "conversation, for every k of a learning curve, and write the exact distribution of "
        "each held-out answer to --out. Evaluate it with survey-sim evaluate.",
    )
    add_human_arguments(individuals)
    individuals.add_argument(
        "--shots",
        type=_integers,
        default=None,
        metavar="K,K,...",
        help="answers shown (default: 0,1,2,4,... up to all but the held-out questions)",
    )
    individuals.add_argument(
        "--held-out",
        default="2",
        metavar="N|QUESTION,...",
        help="questions to predict per respondent: a number (chosen at random per "
        "respondent, default 2) or a fixed list of question ids",
    )
    individuals.add_argument(
        "--train", type=int, default=200, help="training respondents to simulate (default 200)"
    )
    individuals.add_argument(
        "--test", type=int, default=200, help="test respondents to simulate (default 200)"
    )
    individuals.add_argument(
        "--demographics",
        default="auto",
        metavar="ATTR,...|none",
        help="attributes to describe respondents with (default: the mapping's population "
        "attributes; 'none': say nothing about them)",
    )
    individuals.add_argument("--seed", type=int, default=0, help="seed of the split (default: 0)")
    _add_unweighted(individuals)
    individuals.add_argument(
        "--out", type=RESULTS_FILE, required=True, help="results file (.parquet)"
    )
    add_model_arguments(individuals)
    individuals.set_defaults(handler=individuals_command)

    evaluating = commands.add_parser(
        "evaluate",
        help="score few-shot predictions on held-out respondents against baselines",
        description="Score the test respondents' held-out answers in RESULTS (from survey-sim "
        "individuals) for the model and the baselines (uniform, marginal, demographic cell, "
        "logistic regression, model + regression, PyMC calibration): log-loss, accuracy, "
        "Brier score and calibration error per k with bootstrap intervals, paired differences "
        "between methods, and the population view with its noise floor. Writes the report, "
        "the population view and the differences as Parquet and plots the learning curve.",
    )
    evaluating.add_argument("results", type=Path, help="results file from survey-sim individuals")
    add_human_arguments(evaluating)
    evaluating.add_argument(
        "--methods",
        type=lambda text: text.split(","),
        default=list(METHODS),
        metavar="METHOD,...",
        help=f"methods to score (default: all of {', '.join(METHODS)})",
    )
    evaluating.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)"
    )
    evaluating.add_argument(
        "--seed", type=int, default=0, help="seed of baselines and bootstrap (default: 0)"
    )
    add_sampling_arguments(evaluating, "the calibrated method")
    evaluating.add_argument(
        "--out",
        type=output_file(".parquet", "the report"),
        default=None,
        help="report (default: RESULTS.evaluation.parquet)",
    )
    evaluating.add_argument(
        "--plot", type=PLOT_FILE, default=None, help="learning curve (default: RESULTS.png)"
    )
    evaluating.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_unweighted(evaluating)
    evaluating.add_argument(
        "--verbose", action="store_true", help="the PyMC sampler's messages for the calibration"
    )
    evaluating.set_defaults(handler=evaluate_command)


def _integers(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None


def individuals_command(args: argparse.Namespace) -> int:
    """``survey-sim individuals``."""
    check_outputs(ResultFiles.at(args.out), [args.human, args.mapping, args.questionnaire])
    human = load_human(args)
    held_out: int | list[str] = (
        int(args.held_out) if args.held_out.isdecimal() else args.held_out.split(",")
    )
    demographics: bool | list[str] = (
        True
        if args.demographics == "auto"
        else False
        if args.demographics == "none"
        else args.demographics.split(",")
    )
    split = IndividualSplit.draw(
        human,
        shots=args.shots,
        held_out=held_out,
        train=args.train,
        test=args.test,
        demographics=demographics,
        seed=args.seed,
        weighted_data="ignore" if args.unweighted else "refuse",
    )
    settings = SimulationSettings.of(format=args.format, answer=args.answer)
    load_engine = engine_loader(args)
    cache = open_cache(args)
    engine = load_engine()
    result = simulate_individuals(
        human,
        engine,
        split,
        settings,
        progress=not args.quiet,
        cache=cache,
    )
    written = write_run(result, args.out)
    manifest = result.manifest
    work = manifest.work
    reuse = "" if work.hit_rate is None else f"; {work.hit_rate:.0%} of prompt tokens reused"
    stored = f"; {cache_summary(manifest.cache)}"
    print(
        f"{len(split.train)} training and {len(split.test)} test respondents (of "
        f"{split.eligible} eligible), k = {', '.join(map(str, split.shots))}, "
        f"{len(next(iter(split.held_out.values())))} held-out questions each, on "
        f"{engine.model_id} ({manifest.settings.prompt_format().name} format): "
        f"{manifest.seconds:.1f} s, {manifest.seconds_per_respondent or 0:.2f} s per "
        f"respondent{stored}{reuse}.\nWrote {', '.join(str(path) for path in written)}."
    )
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    """``survey-sim evaluate``."""
    from survey_sim.analysis.plots import plot_learning_curve
    from survey_sim.evaluate.individuals import evaluate_individuals

    if not args.results.is_file():
        raise SurveySimError(f"{args.results}: no such results file")
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise SurveySimError(f"unknown method {', '.join(unknown)} (methods: {', '.join(METHODS)})")
    if args.bootstrap < 10:
        raise SurveySimError("--bootstrap needs at least 10 resamples")
    report_path = args.out or beside(args.results, "evaluation")
    plot_path = args.plot or args.results.with_suffix(".png")
    check_outputs(
        [
            report_path,
            beside(report_path, "population"),
            beside(report_path, "differences"),
            plot_path,
        ],
        [args.results, *ResultFiles.at(args.results), args.human, args.mapping],
    )
    result = IndividualResult.read_parquet(args.results)
    human = load_human(args)
    if "calibrated" in args.methods:
        from survey_sim.analysis.backend import sampler_messages

        sampler_messages(args.verbose)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn's API transitions
        evaluation = evaluate_individuals(
            result,
            human,
            methods=args.methods,
            bootstrap=args.bootstrap,
            seed=args.seed,
            progress=not args.quiet,
            sampling={**sampling_options(args), "seed": args.seed},
            weighted_data="ignore" if args.unweighted else "refuse",
        )
    written = [
        write_parquet_atomic(evaluation.report, report_path),
        write_parquet_atomic(evaluation.population, beside(report_path, "population")),
        write_parquet_atomic(evaluation.differences, beside(report_path, "differences")),
        plot_learning_curve(
            evaluation.report,
            plot_path,
            title=f"{result.manifest.model.model_id} "
            f"({result.manifest.settings.prompt_format().name} format) on {human.source}",
        ),
    ]
    _print_report(evaluation.report, evaluation.population)
    _print_differences(evaluation.report, evaluation.differences)
    if evaluation.calibration is not None:
        import arviz as az

        print("\nRespondent-level calibration (alpha per k: 1 = trust the model's log-odds):")
        summary = az.summary(evaluation.calibration, var_names=["alpha", "sigma"], kind="stats")
        print(summary.to_string(float_format="{:.3f}".format))
    print(
        f"\nBaselines fitted on {evaluation.pool} respondents outside the simulated ones.\n"
        f"Wrote {', '.join(str(path) for path in written)}."
    )
    return 0


MODEL_FREE = ("uniform", "marginal", "cell", "regression")


def _print_differences(report: pl.DataFrame, differences: pl.DataFrame) -> None:
    """Each model-based method against the best model-free one at each k (log-loss),
    paired on the same test respondents."""
    log_loss = report.filter(pl.col("metric") == "log_loss")
    free = log_loss.filter(pl.col("method").is_in(MODEL_FREE))
    if free.is_empty():
        return
    best = free.sort("estimate").group_by("shots", maintain_order=True).first()
    strongest = dict(best.select("shots", "method").iter_rows())
    paired = differences.filter(
        pl.col("metric") == "log_loss",
        ~pl.col("method").is_in(MODEL_FREE),
        pl.col("versus") == pl.col("shots").replace_strict(strongest, default=None),
    )
    if paired.is_empty():
        return
    with pl.Config(tbl_rows=-1, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        print(
            "\nAgainst the strongest method without the model at each k (log-loss difference, "
            "paired on the same test respondents, 90% interval; negative is better):"
        )
        print(
            paired.sort("shots").select(
                "shots",
                "method",
                "versus",
                pl.col("difference", "lower", "upper").round(4),
                "verdict",
            )
        )


def _print_report(report: pl.DataFrame, population: pl.DataFrame) -> None:
    def cell(metric: str) -> pl.Expr:
        return pl.format(
            "{} [{}, {}]",
            *(pl.col(c).round(3) for c in ("estimate", "lower", "upper")),
        ).alias(metric)

    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_width_chars=200,
        fmt_str_lengths=40,
    ):
        print("Log-loss on held-out answers of test respondents (90% bootstrap intervals):")
        log_loss = report.filter(pl.col("metric") == "log_loss").with_columns(cell("log_loss"))
        print(log_loss.pivot(on="shots", index="method", values="log_loss", maintain_order=True))
        top = int(report["shots"].max())  # type: ignore[arg-type]
        print(f"\nEvery metric at k = {top}:")
        at_top = report.filter(pl.col("shots") == top).with_columns(cell("value"))
        print(at_top.pivot(on="metric", index="method", values="value", maintain_order=True))
        print(
            f"\nPopulation view at k = {top} (predictions averaged per question; noise_floor: "
            "what the true distribution would score against so few answers):"
        )
        view = population.filter(pl.col("shots") == top)
        print(view.pivot(on="metric", index="method", values="estimate", maintain_order=True))
