"""Exactness and speed of every scoring strategy on every architecture family.

For each family in :data:`survey_sim.testing.FAMILIES` (tiny random models; sliding windows
of 8 tokens, shorter than every prompt), scores survey prompts with every strategy the
engine accepts, and decodes forced completions through the sampling path, and compares both
with one plain full forward pass per sequence. Prints the largest |Δ log-prob|, the tokens
run through the model and the seconds each strategy took, the strategy ``auto`` picks, and
the strategies refused. (Tiny models are dominated by per-pass overhead: tokens, not
seconds, say what a strategy saves on a real model.)

    python benchmarks/architectures.py                         # CPU, float32
    python benchmarks/architectures.py --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from survey_sim import (
    EngineSettings,
    Population,
    ScoringError,
    TransformersEngine,
    bundled_file,
    load_questionnaire,
)
from survey_sim.asking.formats import get_format
from survey_sim.asking.kinds import choice_request
from survey_sim.engines import ScoreRequest
from survey_sim.testing import FAMILIES, full_pass_logprobs, reference_logprob, train_tokenizer

CORPUS = Path(__file__).parents[1] / "tests" / "tokenizer_corpus.json"
STRATEGIES = ("cache", "request", "state", "none")


def survey_requests(engine: TransformersEngine, personas: int) -> list[ScoreRequest]:
    questionnaire = load_questionnaire(bundled_file("questionnaires", "gss_spending_2018.yaml"))
    population = Population.from_file(bundled_file("personas", "us_adults_demo.yaml"))
    chat = get_format("chat", answer="text")
    return [
        choice_request(question, chat, description=persona.description, chat=engine)
        for persona in list(population)[:personas]
        for question in questionnaire
    ]


def score_error(engine: TransformersEngine, requests: list[ScoreRequest]) -> tuple[float, float]:
    """Largest |Δ log-prob| against a full pass, and the seconds scoring took (the tokens
    run are in ``engine.stats``)."""
    started = time.perf_counter()
    results = engine.score(requests)
    seconds = time.perf_counter() - started
    worst = 0.0
    for request, result in zip(requests, results, strict=True):
        for continuation, logprob in zip(request.continuations, result.logprobs, strict=True):
            ids = engine.tokenize(request.prefix + continuation)
            worst = max(
                worst, abs(logprob - reference_logprob(engine.model, ids, result.prompt_tokens))
            )
    return worst, seconds


@torch.inference_mode()
def sampling_error(engine: TransformersEngine, prefix: str, steps: int = 6) -> float:
    """Largest |Δ log-prob| over the vocabulary, at every step of three forced completions
    decoded side by side through the sampling path, against a full pass."""
    prompt = engine.tokenize(prefix)
    generator = torch.Generator().manual_seed(0)
    vocabulary = engine.model.config.get_text_config(decoder=True).vocab_size
    forced = torch.randint(3, vocabulary, (3, steps), generator=generator)
    decoder = engine.runner.decoder(engine.runner.prefill(prompt), len(forced))
    logits, worst = decoder.logits, 0.0
    for step in range(steps + 1):
        for row, tokens in enumerate(forced.tolist()):
            expected = full_pass_logprobs(engine.model, prompt + tokens[:step])[-1]
            got = torch.log_softmax(logits[row].float(), dim=-1).cpu()
            worst = max(worst, (got - expected).abs().max().item())
        if step < steps:
            logits = decoder.step(forced[:, step])
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--personas", type=int, default=4, help="personas x 10 GSS questions")
    args = parser.parse_args()
    tokenizer = train_tokenizer(json.loads(CORPUS.read_text()))
    print(
        f"device {args.device}, {args.dtype}; per strategy: max |dlogp| against a full pass, "
        "tokens run, seconds\n"
    )
    header = f"{'family':<16} {'auto':<6}" + "".join(f"{s:>23}" for s in STRATEGIES)
    print(f"{header}{'sampling path':>16}")
    for family in FAMILIES.values():
        model = family.build(len(tokenizer))
        cells = []
        auto = None
        for strategy in STRATEGIES:
            settings = EngineSettings(prefix_reuse=strategy, device=args.device, dtype=args.dtype)
            try:
                engine = TransformersEngine(
                    model, tokenizer, model_id=family.name, settings=settings
                )
            except ScoringError:
                cells.append(f"{'refused':>23}")
                continue
            auto = auto or TransformersEngine(
                model,
                tokenizer,
                model_id=family.name,
                settings=settings.model_copy(update={"prefix_reuse": "auto"}),
            )
            worst, seconds = score_error(engine, survey_requests(engine, args.personas))
            tokens = engine.stats.computed_tokens
            cells.append(f"{worst:>9.1e} {tokens:>6} {seconds:>5.2f}s")
        assert auto is not None
        sampled = sampling_error(auto, survey_requests(auto, 1)[0].prefix)
        print(f"{family.name:<16} {auto.strategy:<6}{''.join(cells)}{sampled:>16.1e}")


if __name__ == "__main__":
    main()
