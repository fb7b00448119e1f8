"""``survey-sim tune``: a LoRA adapter trained on real survey answers, then scored on what it
never saw."""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from survey_sim.cli._common import add_human_arguments, load_human, positive_float, positive_int
from survey_sim.engines.registry import locate_model

if TYPE_CHECKING:
    from survey_sim.tune import TuningResult


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the command with the ``survey-sim`` parser."""
    tuning = commands.add_parser(
        "tune",
        help="train a LoRA adapter on real survey answers, held out by construction",
        description="Train a LoRA adapter on the answers of --human. population: persona "
        "cells' option distributions are pulled toward their people's (forward KL, or the "
        "earth-mover's distance on ordinal scales), every question asked in every cyclic "
        "option order. individual: training respondents' own answer sequences, loss on "
        "the answers only. A seeded share of the questions (population) or respondents "
        "(individual) is held out and never seen; the adapter records it, and runs refuse "
        "to score the adapter where it was trained. Rerun the same command to resume a "
        "stopped run from its last checkpoint. Afterwards the held-out items are scored "
        "before and after tuning. Several GPUs: accelerate launch -m survey_sim.cli tune ...",
    )
    add_human_arguments(tuning)
    tuning.add_argument(
        "--objective",
        choices=["population", "individual"],
        default="population",
        help="what the adapter learns (default: population)",
    )
    tuning.add_argument("--out", type=Path, required=True, help="the adapter's folder")
    tuning.add_argument(
        "--model",
        default=None,
        help="base model: local directory or .gguf file (default: SmolLM2-135M-Instruct)",
    )
    tuning.add_argument("--format", default="chat", help="prompt format trained (default: chat)")
    tuning.add_argument(
        "--loss", choices=["kl", "emd"], default="kl", help="population loss (default: kl)"
    )
    tuning.add_argument(
        "--by", default=None, help="population: cell attributes (default: the mapping's)"
    )
    tuning.add_argument(
        "--held-out", type=float, default=1 / 3, help="share never seen (default: 1/3)"
    )
    tuning.add_argument(
        "--validation", type=float, default=1 / 6, help="share for early stopping (default: 1/6)"
    )
    tuning.add_argument(
        "--train",
        type=positive_int,
        default=None,
        help="most training questions (population: each gives persona cells × option "
        "orders examples) or respondents (individual) (default: all not held out)",
    )
    tuning.add_argument(
        "--epochs", type=float, default=3, help="passes over the training data (default: 3)"
    )
    tuning.add_argument(
        "--learning-rate", type=float, default=2e-4, help="AdamW learning rate (default: 2e-4)"
    )
    tuning.add_argument(
        "--batch-size",
        type=positive_int,
        default=8,
        help="examples per batch (default: 8; an optimiser step sees batch size x "
        "accumulation); on CPUs fewer at a time, with more accumulation, when --max-memory "
        "needs it",
    )
    tuning.add_argument(
        "--gradient-accumulation",
        type=positive_int,
        default=1,
        help="batches added up before each optimiser step (a large batch in small memory; "
        "default: 1)",
    )
    tuning.add_argument(
        "--max-memory",
        type=positive_float,
        default=None,
        metavar="GIB",
        help="CPUs: the most memory training may use, in GiB; measured before training, a "
        "batch that needs more is split, one example that needs more is refused (default: "
        "80%% of the memory free when tuning starts)",
    )
    tuning.add_argument(
        "--checkpoint-activations",
        action="store_true",
        help="recompute activations in the backward pass: far less memory for long "
        "sequences (individual objective), about a third more time",
    )
    tuning.add_argument("--rank", type=positive_int, default=8, help="LoRA rank (default: 8)")
    tuning.add_argument(
        "--evaluate-every",
        type=positive_int,
        default=None,
        help="steps between validation losses and checkpoints (default: twice an epoch)",
    )
    tuning.add_argument(
        "--seed", type=int, default=0, help="seed of the split and training (default: 0)"
    )
    tuning.add_argument("--bf16", action="store_true", help="bfloat16 mixed precision")
    tuning.add_argument(
        "--threads", type=positive_int, default=None, help="CPU threads (default: torch's)"
    )
    tuning.add_argument(
        "--no-evaluate",
        action="store_true",
        help="skip scoring the held-out questions before and after (population)",
    )
    tuning.add_argument("--quiet", action="store_true", help="no progress bar")
    tuning.set_defaults(handler=tune_command)


def tune_command(args: argparse.Namespace) -> int:
    from survey_sim.tune import TuningSettings, tune
    from survey_sim.tune.evaluation import held_out_report, held_out_simulations

    settings = TuningSettings.of(
        objective=args.objective,
        loss=args.loss,
        format=args.format,
        by=None if args.by is None else tuple(name.strip() for name in args.by.split(",")),
        held_out=args.held_out,
        validation=args.validation,
        train=args.train,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        gradient_accumulation=args.gradient_accumulation,
        gradient_checkpointing=args.checkpoint_activations,
        rank=args.rank,
        evaluate_every=args.evaluate_every,
        seed=args.seed,
        bf16=args.bf16,
        threads=args.threads,
        max_memory=args.max_memory,
    )
    locate_model(args.model)
    human = load_human(args)
    result = tune(human, args.model, out=args.out, settings=settings, progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # several processes (accelerate, torchrun): the first one reports
    work, best = result.record.work, result.record.best
    loss = "none" if best.validation_loss is None else f"{best.validation_loss:.4f}"
    print(
        f"Wrote the adapter to {result.adapter} ({_size(result.adapter)}): best validation "
        f"loss {loss}; {work.steps} steps, "
        f"{work.trained_tokens:,} tokens in {work.seconds:.0f} s "
        f"({work.tokens_per_second or 0:,.0f} tokens/s), peak memory {work.peak_memory_mib} MiB."
    )
    plot = _loss_plot(result)
    print(f"Loss history: {plot}" if plot else "(the analysis extra draws the loss history)")
    if args.objective == "population" and not args.no_evaluate:
        simulations = held_out_simulations(human, result, args.model, progress=not args.quiet)
        report = held_out_report(human, simulations, result)
        with pl.Config(
            tbl_rows=-1,
            float_precision=4,
            tbl_hide_dataframe_shape=True,
            tbl_hide_column_data_types=True,
        ):
            print(
                f"Held-out questions ({', '.join(result.split.held_out)}), mean over them "
                "(before: the base model; fitted_marginal: the mean human distribution of the "
                "questions the tuning saw):"
            )
            print(report.summary)
            print("Per question:")
            print(report.questions.drop("coverage"))
            print(
                "Paired over the held-out questions (difference = first - second, 90% "
                "interval resampling the questions together):"
            )
            print(
                report.paired.filter(pl.col("metric") == "jensen_shannon").select(
                    "source", "versus", "difference", "lower", "upper", "verdict"
                )
            )
    print(f"Use it: survey-sim run ... --model {args.model or 'default'} --adapter {args.out}")
    return 0


def _loss_plot(result: TuningResult) -> Path | None:
    """``loss.png`` in the adapter folder (``None`` without matplotlib)."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    from survey_sim.analysis.plots import plot_loss_history

    return plot_loss_history(
        result.history, result.adapter / "loss.png", best=result.record.best.step
    )


def _size(folder: Path) -> str:
    total = sum(path.stat().st_size for path in folder.iterdir() if path.is_file())
    return f"{total / 2**20:.1f} MiB"
