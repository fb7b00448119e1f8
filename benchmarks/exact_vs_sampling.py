"""Cost of estimating a 5-option answer distribution: exact scoring vs constrained sampling.

The exact method reads every option's probability from one pass over the prompt. Sampling
must draw answers until their frequencies are close to those probabilities. This script
finds the number of draws whose mean total-variation error is at most 0.02 (seeded
replicates, 10 x 3,200 draws by default; the error at n is that of each replicate's first n
draws, itself an i.i.d. sample of n), then compares, side by side in one run:

* tokens a sampling engine generates (each draw: the answer's tokens and the end token;
  every one is a decode step on a typical server),
* tokens this engine actually runs through the model (the prompt, cached, plus the decode
  steps the grammar leaves open: a draw from fixed logits or a forced end needs no pass),
* wall time.

    python benchmarks/exact_vs_sampling.py --answers label
    python benchmarks/exact_vs_sampling.py --answers text --replicates 2 --max-draws 400

Text answers are slow on CPU: draws that spell an option in many small tokens run long, and
each decode step of a 256-draw batch attends over every earlier branch token.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

from survey_sim import TransformersEngine
from survey_sim.asking.formats import get_format
from survey_sim.asking.kinds import choice_request
from survey_sim.asking.schemas import answer_schema, option_for_value
from survey_sim.engines.base import SampleRequest
from survey_sim.questionnaire import ChoiceQuestion

TARGET_TV = 0.02
# Text answers may never get there: grammar-constrained draws can spell an option in
# non-canonical tokens, so their distribution differs from exact scoring's.
QUESTION = ChoiceQuestion.model_validate(
    {
        "id": "interest",
        "kind": "ordinal",
        "label_style": "number",
        "text": "How interested are you in politics and national affairs?",
        "options": [
            {"code": str(code), "text": text}
            for code, text in enumerate(
                [
                    "Very interested",
                    "Somewhat interested",
                    "Slightly interested",
                    "Not very interested",
                    "Not at all interested",
                ],
                start=1,
            )
        ],
    }
)
DESCRIPTION = "You are a 45-year-old nurse from Ohio."


def total_variation(counts: Counter[str], n: int, exact: dict[str, float]) -> float:
    return 0.5 * sum(abs(counts[code] / n - p) for code, p in exact.items())


def measure(
    engine: TransformersEngine, answer: str, replicates_wanted: int, max_draws: int
) -> None:
    request = choice_request(
        QUESTION, get_format("chat", answer=answer), description=DESCRIPTION, chat=engine
    )
    engine.clear_cache()
    before = engine.stats.computed_tokens
    started = time.perf_counter()
    scored = engine.score([request])[0]
    exact_seconds = time.perf_counter() - started
    exact_tokens = engine.stats.computed_tokens - before
    exact = {o.code: p for o, p in zip(QUESTION.options, scored.probs, strict=True)}
    schema = answer_schema(QUESTION, answer=answer, wrap=False)

    replicates = []
    for replicate in range(replicates_wanted):
        engine.clear_cache()
        prefilled, decoded = engine.stats.computed_tokens, engine.stats.decode_tokens
        started = time.perf_counter()
        draws = engine.sample_one(
            SampleRequest(request.prefix, schema, n=max_draws, seed=replicate, max_new_tokens=48)
        )
        seconds = time.perf_counter() - started
        prefilled = engine.stats.computed_tokens - prefilled
        decoded = engine.stats.decode_tokens - decoded
        replicates.append((draws, seconds, (prefilled, decoded)))
    for n in [size for size in (100 * 2**i for i in range(12)) if size <= max_draws]:
        errors = []
        for draws, _, _ in replicates:
            counts = Counter(
                option_for_value(QUESTION, value, answer).code
                for value, cut in zip(draws.values[:n], draws.truncated[:n], strict=True)
                if not cut
            )
            errors.append(total_variation(counts, sum(counts.values()), exact))
        if statistics.mean(errors) <= TARGET_TV:
            break
    share = n / max_draws  # per-draw costs of the first n draws: that share of a replicate's
    generated = round(share * statistics.mean(d.generated_tokens for d, _, _ in replicates))
    prefill = statistics.mean(c[0] for _, _, c in replicates)
    computed = round(prefill + share * statistics.mean(c[1] for _, _, c in replicates))
    # approximate: the single prompt pass (~0.1 s) is scaled along with the draws
    seconds = share * statistics.mean(t for _, t, _ in replicates)
    truncated = sum(sum(d.truncated[:n]) for d, _, _ in replicates)
    prompt = scored.prompt_tokens
    print(
        f"answer={answer}: exact probabilities {[round(p, 3) for p in scored.probs]}, "
        f"coverage {scored.coverage:.3f}"
    )
    reached = "reached" if statistics.mean(errors) <= TARGET_TV else "NOT reached"
    print(
        f"  sampling: n={n} draws, mean TV {statistics.mean(errors):.4f} ({reached} "
        f"{TARGET_TV}); truncated draws: {truncated} of {n * replicates_wanted}"
    )
    print(f"  {'':<34}{'exact':>10}{'sampling':>12}{'ratio':>9}")
    rows = [
        ("tokens generated (decode steps)", 0, generated),
        ("tokens run through the model", exact_tokens, computed),
        ("prompt + generated tokens", prompt + sum(scored.continuation_tokens), prompt + generated),
        ("seconds", exact_seconds, seconds),
    ]
    for name, exact_cost, sample_cost in rows:
        ratio = f"{sample_cost / exact_cost:>8.1f}x" if exact_cost else "       -"
        print(f"  {name:<34}{exact_cost:>10.3g}{sample_cost:>12.4g}{ratio}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", nargs="+", default=["label", "text"])
    parser.add_argument("--replicates", type=int, default=10)
    parser.add_argument("--max-draws", type=int, default=3200)
    args = parser.parse_args()
    if args.max_draws < 100:
        parser.error("--max-draws must be at least 100 (the smallest number of draws checked)")
    engine = TransformersEngine.from_pretrained()
    warm_up = choice_request(QUESTION, get_format("chat"), description="x", chat=engine)
    engine.score([warm_up])  # one-time start-up costs stay out of the timings
    for answer in args.answers:
        measure(engine, answer, args.replicates, args.max_draws)


if __name__ == "__main__":
    main()
