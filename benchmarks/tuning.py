"""Does tuning on survey data bring the default model closer to people where it never trained?

    python benchmarks/tuning.py [--objective population|individual|both] [--epochs 2]
        [--train-respondents 60] [--seed 0] [--model PATH]

On GSS 2018 spending (the ``data`` extra), with a fixed seed:

* **population objective**: the mapping's persona cells (party × age × sex) × the training
  questions, every question in its three cyclic option orders; a third of the questions is
  held out (never seen), a sixth validates (early stopping). On the held-out questions: the
  base model (before), the tuned one (after), uniform, the human marginal of the other
  questions, the fitted marginal (of the questions the tuning saw: what the same data gives
  without a model) and the noise floor (JS, TV, representativeness), per question and
  paired over questions; and the Democrat-Republican gap each shows beside people's;
* **individual objective**: training respondents' interviews (loss on their answers);
  held-out respondents' held-out answers predicted after k of their own answers by the base
  and the tuned model, beside the baselines of ``evaluate_individuals`` (log-loss), and the
  tuned model against each of them paired on the same respondents;
* **cost**: training tokens per second against the same model's plain forward throughput
  (inference, the same batches, measured in the same process), the process's peak memory
  beside its budget and the peak estimated before training, the batches the budget chose,
  the adapter's size.

Writes ``benchmarks/results/tuning.csv`` (every number) and ``tuning.md``. Nothing is chosen
on what is reported: the settings are fixed here, and the only choice made by data (when to
stop) uses validation questions or respondents.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import polars as pl
import torch

RESULTS = Path(__file__).with_name("results")
METRICS = ("representativeness", "jensen_shannon", "total_variation")
PARTIES = ["a Democrat", "a Republican"]


def forward_throughput(result, model, batches: int = 8) -> float:  # type: ignore[no-untyped-def]
    """Tokens per second of plain inference over the first training batches."""
    from survey_sim import HUMAN_DATASETS
    from survey_sim.engines.registry import load_local_model
    from survey_sim.tune import TuningSettings
    from survey_sim.tune._objectives import collate
    from survey_sim.tune._train import _chat_renderer, _examples

    human = HUMAN_DATASETS["gss_spending_2018"]()
    settings = TuningSettings.model_validate(result.record.settings)
    loaded = load_local_model(model)
    examples = _examples(human, result.split.train, settings, _chat_renderer(loaded))
    size = settings.batch_size
    chosen = [
        collate(examples[i : i + size]) for i in range(0, min(len(examples), size * batches), size)
    ]
    tokens = 0
    started = time.perf_counter()
    with torch.inference_mode():
        for batch in chosen:
            loaded.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            tokens += int(batch["attention_mask"].sum())
    return tokens / (time.perf_counter() - started)


def cost_rows(result, model, objective: str) -> list[dict]:  # type: ignore[no-untyped-def]
    work = result.record.work.model_dump()
    forward = forward_throughput(result, model)
    size = sum(p.stat().st_size for p in result.adapter.iterdir() if p.is_file())
    facts = {
        "training tokens/s": work["tokens_per_second"],
        "forward tokens/s": forward,
        "training / forward": work["tokens_per_second"] / forward,
        "training seconds (steps only)": work["step_seconds"],
        "seconds with validation and checkpoints": work["seconds"],
        "steps": work["steps"],
        "trained tokens": work["trained_tokens"],
        "peak memory MiB": work["peak_memory_mib"],
        "memory budget MiB": work["memory_budget_mib"],
        "peak estimated before training MiB": work["estimated_peak_mib"],
        "examples at a time": work["batch_size"],
        "batches per optimiser step": work["gradient_accumulation"],
        "adapter MiB": size / 2**20,
        "best validation loss": result.record.best.validation_loss,
    }
    return [
        {"objective": objective, "part": "cost", "method": name, "metric": name, "estimate": value}
        for name, value in facts.items()
    ]


def population(model, epochs: float, seed: int, folder: Path) -> list[dict]:  # type: ignore[no-untyped-def]
    from survey_sim import gss_spending_2018, subgroup_gaps
    from survey_sim.tune import tune
    from survey_sim.tune.evaluation import held_out_report, held_out_simulations

    human = gss_spending_2018()
    result = tune(human, model, out=folder / "population", epochs=epochs, seed=seed)
    simulations = held_out_simulations(human, result, model)
    report = held_out_report(human, simulations, result)
    rows = [
        {
            "objective": "population",
            "part": "held-out questions",
            "method": row["source"],
            "metric": metric,
            "estimate": row[metric],
        }
        for row in report.summary.iter_rows(named=True)
        for metric in METRICS
    ]
    rows += [
        {
            "objective": "population",
            "part": "held-out questions, per question (Jensen-Shannon)",
            "method": row["source"],
            "metric": row["question_id"],
            "estimate": row["jensen_shannon"],
        }
        for row in report.questions.iter_rows(named=True)
    ]
    rows += [
        {
            "objective": "population",
            "part": "paired over held-out questions (first - second)",
            "method": f"{row['source']} - {row['versus']}",
            "metric": row["metric"],
            "estimate": row["difference"],
            "lower": row["lower"],
            "upper": row["upper"],
            "verdict": row["verdict"],
        }
        for row in report.paired.iter_rows(named=True)
        if row["metric"] in METRICS
    ]
    for label, simulated in simulations.items():
        gaps = subgroup_gaps(simulated.subgroups(["party"]), human, ["party"]).filter(
            pl.col("group_a").is_in(PARTIES) & pl.col("group_b").is_in(PARTIES)
        )
        for source in ("people", "model"):
            rows.append(
                {
                    "objective": "population",
                    "part": "Democrat-Republican gap (TV)",
                    "method": "people" if source == "people" else label,
                    "metric": "mean TV between the parties",
                    "estimate": float(gaps[source].mean()),
                }
            )
        rows.append(
            {
                "objective": "population",
                "part": "Democrat-Republican gap (TV)",
                "method": label,
                "metric": "questions moving the way people do",
                "estimate": float(gaps["same_direction"].cast(pl.Float64).mean()),
            }
        )
    rows += cost_rows(result, model, "population")
    return [dict(row, note=f"held out: {', '.join(result.split.held_out)}") for row in rows]


def individual(  # type: ignore[no-untyped-def]
    model, epochs: float, seed: int, train: int, folder: Path
) -> list[dict]:
    from survey_sim import (
        IndividualSplit,
        TransformersEngine,
        evaluate_individuals,
        gss_spending_2018,
        simulate_individuals,
    )
    from survey_sim.tune import tune

    human = gss_spending_2018()
    result = tune(
        human,
        model,
        out=folder / "individual",
        objective="individual",
        train=train,
        validation_at_most=30,
        batch_size=4,
        gradient_accumulation=2,
        epochs=epochs,
        seed=seed,
    )
    trained = (*result.split.train, *result.split.validation)
    split = IndividualSplit.draw(
        human, train=40, test=60, held_out=2, shots=[0, 4], seed=seed, exclude=trained
    )
    rows = []
    losses = {}
    for label, adapter in (("before", None), ("after", result.adapter)):
        engine = TransformersEngine.from_pretrained(model, adapter=adapter)
        simulated = simulate_individuals(human, engine, split)
        methods = (
            ("uniform", "marginal", "regression", "model") if label == "before" else ("model",)
        )
        evaluation = evaluate_individuals(simulated, human, methods=methods, seed=seed)
        report, pool = evaluation.report, evaluation.pool
        for method in methods:
            losses[label if method == "model" else method] = respondent_log_loss(
                evaluation.predictions.filter(pl.col("method") == method)
            )
        for row in report.filter(pl.col("metric") == "log_loss").iter_rows(named=True):
            rows.append(
                {
                    "objective": "individual",
                    "part": f"held-out respondents, k = {row['shots']}",
                    "method": label if row["method"] == "model" else row["method"],
                    "metric": "log_loss",
                    "estimate": row["estimate"],
                    "lower": row["lower"],
                    "upper": row["upper"],
                }
            )
    rows += paired_rows(losses, seed)
    rows += cost_rows(result, model, "individual")
    note = (
        f"{len(result.split.train)} training and {len(result.split.validation)} validation "
        "respondents; evaluated on 60 test respondents never trained on, 2 held-out answers "
        f"each; the baselines are fitted on {pool} other respondents who answered as many "
        "questions"
    )
    return [dict(row, note=note) for row in rows]


def respondent_log_loss(predictions: pl.DataFrame) -> pl.DataFrame:
    """Mean log-loss per test respondent and k, from ``evaluate_individuals`` predictions."""
    from survey_sim._distribution import PROBABILITY_FLOOR

    return (
        predictions.filter(pl.col("option_code") == pl.col("answer"))
        .group_by("respondent_id", "shots")
        .agg(log_loss=(-pl.col("prob").clip(PROBABILITY_FLOOR).log()).mean())
        .sort("shots", "respondent_id")
    )


def paired_rows(losses: dict[str, pl.DataFrame], seed: int) -> list[dict]:  # type: ignore[type-arg]
    """``after`` against ``before`` and each baseline, paired on test respondents."""
    from survey_sim.evaluate.paired import (
        bootstrap_weights,
        interval_of,
        resampled_means,
        verdict,
    )

    rows = []
    for other in ("before", "uniform", "marginal", "regression"):
        both = losses["after"].join(losses[other], on=["respondent_id", "shots"], suffix="_o")
        for (k,), group in both.partition_by("shots", as_dict=True).items():
            difference = (group["log_loss"] - group["log_loss_o"]).to_numpy()
            weights = bootstrap_weights(len(difference), 2000, seed)
            lower, upper = interval_of(resampled_means(difference, weights), 0.9)
            rows.append(
                {
                    "objective": "individual",
                    "part": f"paired on test respondents, k = {k} (log-loss, first - second)",
                    "method": f"after - {other}",
                    "metric": "log_loss",
                    "estimate": float(difference.mean()),
                    "lower": lower,
                    "upper": upper,
                    "verdict": verdict("log_loss", lower, upper),
                }
            )
    return rows


def markdown(frame: pl.DataFrame) -> str:
    lines = ["# Tuning the default model on GSS 2018 spending (benchmarks/tuning.py)", ""]
    for (objective, part), group in frame.group_by(["objective", "part"], maintain_order=True):
        lines += [f"## {objective}: {part}", "", f"{group['note'][0]}", ""]
        if part == "cost":
            lines += ["| quantity | value |", "|---|---|"]
            lines += [
                f"| {r['metric']} | {r['estimate']:.4g} |" for r in group.iter_rows(named=True)
            ]
            lines.append("")
            continue
        metrics = list(dict.fromkeys(group["metric"]))
        lines += ["| method | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
        for (method,), rows in group.group_by(["method"], maintain_order=True):
            values = {r["metric"]: r for r in rows.iter_rows(named=True)}
            cells = []
            for metric in metrics:
                row = values.get(metric)
                if row is None or row["estimate"] is None:
                    cells.append("")
                elif row.get("lower") is not None:
                    cells.append(
                        f"{row['estimate']:.4f} [{row['lower']:.4f}, {row['upper']:.4f}]"
                        + (f" {row['verdict']}" if row.get("verdict") else "")
                    )
                elif row.get("verdict"):
                    cells.append(f"{row['estimate']:.4f} ({row['verdict']})")
                else:
                    cells.append(f"{row['estimate']:.4g}")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--objective", choices=["population", "individual", "both"], default="both")
    parser.add_argument("--model", default=None, help="model folder (default: the default model)")
    parser.add_argument("--epochs", type=float, default=2, help="training epochs")
    parser.add_argument("--train-respondents", type=int, default=60, help="individual objective")
    parser.add_argument("--seed", type=int, default=0, help="seed of every split")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the tables")
    args = parser.parse_args()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="tuning-") as scratch:
        folder = Path(scratch)
        if args.objective in ("population", "both"):
            rows += population(args.model, args.epochs, args.seed, folder)
        if args.objective in ("individual", "both"):
            rows += individual(args.model, args.epochs, args.seed, args.train_respondents, folder)
    schema = {
        "objective": pl.String,
        "part": pl.String,
        "method": pl.String,
        "metric": pl.String,
        "estimate": pl.Float64,
        "lower": pl.Float64,
        "upper": pl.Float64,
        "verdict": pl.String,
        "note": pl.String,
    }
    frame = pl.DataFrame([{key: row.get(key) for key in schema} for row in rows], schema=schema)
    args.results.mkdir(exist_ok=True, parents=True)
    suffix = "" if args.objective == "both" else f".{args.objective}"
    frame.write_csv(args.results / f"tuning{suffix}.csv")
    (args.results / f"tuning{suffix}.md").write_text(markdown(frame))
    print(markdown(frame))
    print(json.dumps({"torch threads": torch.get_num_threads(), "seed": args.seed}))


if __name__ == "__main__":
    main()
