"""Cost of estimating a 5-option answer distribution: exact scoring vs constrained sampling.

The exact method reads every option's probability from one pass over the prompt. Sampling
must draw answers until their frequencies are close to those probabilities. This script
finds the number of draws whose mean total-variation error (over 20 seeded replicates) is at
most 0.02, then compares, side by side in one run:

* tokens a sampling engine generates (each draw: the answer's tokens and the end token;
  every one is a decode step on a typical server),
* tokens this engine actually runs through the model (the prompt, cached, plus the decode
  steps the grammar leaves open: a draw from fixed logits or a forced end needs no pass),
* wall time.

    python benchmarks/exact_vs_sampling.py
"""

from __future__ import annotations

import statistics
import time
from collections import Counter

from survey_sim import TransformersEngine
from survey_sim.engines.base import SampleRequest
from survey_sim.prompts import get_format
from survey_sim.questionnaire import ChoiceQuestion
from survey_sim.schemas import answer_schema, option_for_value

TARGET_TV = 0.02
REPLICATES = 20
MAX_DRAWS = 6400  # text answers may never get there: grammar-constrained draws can spell
# an option in non-canonical tokens, so their distribution differs from exact scoring's
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


def measure(engine: TransformersEngine, answer: str) -> None:
    request = get_format("chat", answer=answer).render(
        QUESTION, description=DESCRIPTION, instructions=None, chat=engine
    )
    engine.clear_cache()
    before = engine.stats.computed_tokens
    started = time.perf_counter()
    scored = engine.score([request])[0]
    exact_seconds = time.perf_counter() - started
    exact_tokens = engine.stats.computed_tokens - before
    exact = {o.code: p for o, p in zip(QUESTION.options, scored.probs, strict=True)}
    schema = answer_schema(QUESTION, answer=answer, wrap=False)

    n = 100
    while True:
        errors, generated, computed, seconds, truncated = [], 0, 0, 0.0, 0
        for replicate in range(REPLICATES):
            engine.clear_cache()
            before = engine.stats.computed_tokens + engine.stats.decode_tokens
            started = time.perf_counter()
            draws = engine.sample(
                SampleRequest(request.prefix, schema, n=n, seed=replicate, max_new_tokens=48)
            )
            seconds += time.perf_counter() - started
            counts = Counter(
                option_for_value(QUESTION, value, answer).code
                for value, cut in zip(draws.values, draws.truncated, strict=True)
                if not cut
            )
            truncated += sum(draws.truncated)
            errors.append(total_variation(counts, sum(counts.values()), exact))
            generated += draws.generated_tokens
            computed += engine.stats.computed_tokens + engine.stats.decode_tokens - before
        if statistics.mean(errors) <= TARGET_TV or n >= MAX_DRAWS:
            break
        n *= 2
    generated //= REPLICATES
    computed //= REPLICATES
    seconds /= REPLICATES
    prompt = scored.prompt_tokens
    print(
        f"answer={answer}: exact probabilities {[round(p, 3) for p in scored.probs]}, "
        f"coverage {scored.coverage:.3f}"
    )
    reached = "reached" if statistics.mean(errors) <= TARGET_TV else "NOT reached"
    print(
        f"  sampling: n={n} draws, mean TV {statistics.mean(errors):.4f} ({reached} "
        f"{TARGET_TV}); truncated draws: {truncated} of {n * REPLICATES}"
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
    engine = TransformersEngine.from_pretrained()
    for answer in ("label", "text"):
        measure(engine, answer)


if __name__ == "__main__":
    main()
