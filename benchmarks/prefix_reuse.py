"""Prefix reuse on vs off: prefilled tokens and wall time on a persona x question grid.

Runs one simulation grid three times in one process over the same loaded weights:

* ``cache``   - prefix key/values reused across requests and across a request's options;
* ``request`` - the prompt encoded once per request, shared by its options, nothing kept;
* ``none``    - every option's full sequence encoded from scratch (what re-encoding
                scorers do), the plain reference.

It prints tokens run through the model, seconds, the ratios to ``cache``, the largest
log-prob and probability differences between strategies, and throughput as a fraction of
the prefill ceiling (a plain batched forward pass) measured on this machine in the same run.
Then the demo study (the demo personas x the 18 GSS questions, through ``simulate()`` with
the default strategy), once in one option order and once permuted (two orders), against the
same ceiling.

    python benchmarks/prefix_reuse.py                   # 50 personas x 10 questions
    python benchmarks/prefix_reuse.py --personas 10 --questions 5 --modes cache request
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from survey_sim import (
    EngineSettings,
    Population,
    TransformersEngine,
    bundled_file,
    load_questionnaire,
    simulate,
)
from survey_sim.asking.formats import get_format
from survey_sim.asking.kinds import choice_request

TEMPLATE = (
    "You are a {age}-year-old {sex} living in {region} of the United States. Your highest "
    "level of education is {education}. Politically, you consider yourself {ideology}."
)


def persona_grid(count: int) -> Population:
    """``count`` distinct personas from a grid of demographic attributes."""
    grid = itertools.product(
        [23, 34, 47, 58, 71],
        ["woman", "man"],
        ["the West", "the South", "the Midwest", "the Northeast"],
        ["high school", "a bachelor's degree"],
        ["liberal", "moderate", "conservative"],
    )
    records = [
        {
            "id": f"p{index:03d}",
            "age": age,
            "sex": sex,
            "region": region,
            "education": education,
            "ideology": ideology,
        }
        for index, (age, sex, region, education, ideology) in zip(range(count), grid, strict=False)
    ]
    return Population.from_records(records, template=TEMPLATE, id="grid")


@torch.inference_mode()
def forward_ceiling(engine: TransformersEngine, batch: int = 8, length: int = 256) -> float:
    """Prefill tokens per second of a plain batched forward pass (best of three).

    Logits are computed for the last position only, as in serving prefill: the engine
    likewise projects onto the vocabulary only where a scored token is predicted.
    """
    vocabulary = engine.model.config.vocab_size
    ids = torch.randint(min(100, vocabulary // 2), min(10000, vocabulary), (batch, length))
    engine.model(ids[:1, :32])  # warm-up
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        engine.model(ids, logits_to_keep=1)
        seconds.append(time.perf_counter() - started)
    return batch * length / min(seconds)


def demo_study(engine: TransformersEngine, personas: int, ceiling: float) -> None:
    """The demo study through ``simulate()``, unpermuted and permuted: tokens/s against the
    prefill ceiling."""
    demo = Population.from_file(bundled_file("personas", "us_adults_demo.yaml"))
    population = Population(list(demo)[:personas], id="demo")
    questionnaire = load_questionnaire(bundled_file("questionnaires", "gss_spending_2018.yaml"))
    print(
        f"\ndemo study: {len(population)} personas x {len(questionnaire.questions)} questions, "
        "chat format, simulate() with the default strategy"
    )
    for permute in (False, True):
        engine.clear_cache()
        before = engine.stats.computed_tokens
        started = time.perf_counter()
        simulate(questionnaire, population, engine, permute=permute, progress=False, cache=False)
        seconds = time.perf_counter() - started
        tokens = engine.stats.computed_tokens - before
        rate = tokens / seconds
        print(
            f"{'permuted (2 orders)' if permute else 'one order':<20} {tokens:>7} tokens "
            f"{seconds:>6.1f} s {rate:>6.0f} tokens/s {100 * rate / ceiling:>4.0f}% of the ceiling"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=50)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--format", default="chat")
    parser.add_argument("--answer", default="label", choices=["label", "text"])
    parser.add_argument("--modes", nargs="+", default=["cache", "request", "none"])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--demo-personas", type=int, default=8, help="demo personas in the demo study; 0: skip"
    )
    args = parser.parse_args()

    base = TransformersEngine.from_pretrained(settings=EngineSettings(threads=args.threads))
    questionnaire = load_questionnaire(bundled_file("questionnaires", "gss_spending_2018.yaml"))
    questions = questionnaire.questions[: args.questions]
    population = persona_grid(args.personas)
    prompt_format = get_format(args.format, answer=args.answer)
    requests = [
        choice_request(q, prompt_format, description=p.description, chat=base)
        for p in population
        for q in questions
    ]
    ceiling = forward_ceiling(base)
    print(
        f"{len(population)} personas x {len(questions)} questions = {len(requests)} prompts, "
        f"{sum(len(r.continuations) for r in requests)} options; model {base.model_id}; "
        f"format {prompt_format.name}; torch threads {torch.get_num_threads()}"
    )
    print(f"prefill ceiling (plain batched forward, 8 x 256 tokens): {ceiling:.0f} tokens/s\n")

    runs = {}
    for mode in args.modes:
        engine = TransformersEngine(
            base.model,
            base.tokenizer,
            model_id=base.model_id,
            settings=EngineSettings(threads=args.threads, prefix_reuse=mode),
        )
        started = time.perf_counter()
        results = engine.score(requests)
        seconds = time.perf_counter() - started
        runs[mode] = (results, seconds, engine.stats)

    reference = args.modes[0]
    ref_results, ref_seconds, ref_stats = runs[reference]
    header = (
        f"{'strategy':<9} {'tokens run':>11} {'reused':>8} {'passes':>7} {'seconds':>8} "
        f"{'tokens vs ' + reference:>16} {'time vs ' + reference:>14} {'tokens/s':>9} "
        f"{'% ceiling':>9} {'max |dlogp|':>12} {'max |dp|':>9}"
    )
    print(header)
    print("-" * len(header))
    for mode, (results, seconds, stats) in runs.items():
        max_logprob = max(
            abs(a - b)
            for x, y in zip(results, ref_results, strict=True)
            for a, b in zip(x.logprobs, y.logprobs, strict=True)
        )
        max_prob = max(
            abs(a - b)
            for x, y in zip(results, ref_results, strict=True)
            for a, b in zip(x.probs, y.probs, strict=True)
        )
        rate = stats.computed_tokens / seconds
        print(
            f"{mode:<9} {stats.computed_tokens:>11} {stats.reused_tokens:>8} "
            f"{stats.forward_passes:>7} {seconds:>8.1f} "
            f"{stats.computed_tokens / ref_stats.computed_tokens:>15.2f}x "
            f"{seconds / ref_seconds:>13.2f}x {rate:>9.0f} {100 * rate / ceiling:>8.0f}% "
            f"{max_logprob:>12.1e} {max_prob:>9.1e}"
        )
    if args.demo_personas:
        demo_study(base, args.demo_personas, ceiling)


if __name__ == "__main__":
    main()
