"""A ranked item and a grid, exact against sampled, on one model in one run.

The ranking (``news_trust`` in ``questionnaires/question_kinds.yaml``: rank 3 news sources)
is read exactly as a chain of choices (P(first) · P(second | first)), and sampled as a whole
list under a grammar that lists every ranking. The grid (``gss_confidence_grid.yaml``: five
GSS institutions on one 3-point confidence scale) is read exactly per row, and sampled per
row. Each is asked with letter labels (A, B, C) and again with number labels (``1-3``): a
sampled number is exactly the text exact scoring reads, a sampled letter is a quoted JSON
string. Per question it reports the total variation between the exact and the sampled
population distributions, beside what sampling error alone gives: the same number of draws
per persona from the exact distributions themselves (simulated, seeded). A distance well
above that floor means the two methods ask different things, not that sampling was short.

    python benchmarks/rank_and_grid.py                     # default model, 8 personas
    python benchmarks/rank_and_grid.py --model DIR --personas 2 --samples 20   # smoke
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

from survey_sim import Population, Questionnaire, TransformersEngine, load_questionnaire, simulate
from survey_sim.data.bundled import bundled_file

FLOOR_REPLICATES = 200


def population_distribution(responses: pl.DataFrame) -> dict[tuple[str, str], float]:
    """The persona-weighted probability of each (question, outcome)."""
    weighted = responses.group_by("question_id", "option_code").agg(
        (pl.col("prob") * pl.col("weight")).sum() / pl.col("weight").sum()
    )
    return {(q, code): p for q, code, p in weighted.iter_rows()}


def sampling_floor(
    responses: pl.DataFrame, question: str, samples: int, rng: np.random.Generator
) -> float:
    """Mean total variation between the exact population distribution of ``question`` and
    one estimated from ``samples`` draws per persona of the exact distributions."""
    rows = responses.filter(pl.col("question_id") == question)
    personas = rows.partition_by("persona_id", maintain_order=True)
    weights = np.array([p["weight"][0] for p in personas])
    probs = np.array([p["prob"].to_numpy() for p in personas])
    probs /= probs.sum(axis=1, keepdims=True)
    exact = weights @ probs / weights.sum()
    distances = []
    for _ in range(FLOOR_REPLICATES):
        counts = np.array([rng.multinomial(samples, row) for row in probs]) / samples
        distances.append(0.5 * np.abs(weights @ counts / weights.sum() - exact).sum())
    return float(np.mean(distances))


def numbered(questionnaire: Questionnaire) -> Questionnaire:
    """The questionnaire with number labels (1, 2, 3...) instead of letters."""
    data = questionnaire.model_dump()
    for question in data["questions"]:
        question["label_style"] = "number"
        question["options"] = [option | {"label": None} for option in question["options"]]
    return Questionnaire.model_validate(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: the default)")
    parser.add_argument("--personas", type=int, default=8, help="demo personas used (1-8)")
    parser.add_argument("--samples", type=int, default=200, help="draws per persona and question")
    args = parser.parse_args()

    engine = TransformersEngine.from_pretrained(args.model)
    population = Population.from_file(bundled_file("personas", "us_adults_demo.yaml"))
    population = Population(list(population)[: args.personas], id="demo")
    kinds = load_questionnaire(bundled_file("questionnaires", "question_kinds.yaml"))
    ranked = kinds.select(["news_trust"])
    grid = load_questionnaire(bundled_file("questionnaires", "gss_confidence_grid.yaml"))
    studies = {
        "rank": ranked,
        "rank 1-3": numbered(ranked),
        "grid": grid,
        "grid 1-3": numbered(grid),
    }
    rng = np.random.default_rng(20261207)
    print(
        f"{len(population)} personas on {engine.model_id}; sampled: {args.samples} draws per "
        "persona and question\n"
    )
    header = (
        f"{'item':<9} {'question':<11} {'outcomes':>8} {'exact s':>8} {'sampled s':>9} "
        f"{'valid':>6} {'TV exact-sampled':>16} {'sampling floor':>14}"
    )
    print(header)
    print("-" * len(header))
    for item, questionnaire in studies.items():
        started = time.perf_counter()
        exact = simulate(questionnaire, population, engine, progress=False, cache=False)
        exact_seconds = time.perf_counter() - started
        started = time.perf_counter()
        sampled = simulate(
            questionnaire,
            population,
            engine,
            method="sample",
            samples=args.samples,
            progress=False,
            cache=False,
        )
        sampled_seconds = time.perf_counter() - started
        exact_p = population_distribution(exact.responses)
        sampled_p = population_distribution(sampled.responses)
        draws = sampled.draws
        for question in questionnaire.listed_order:
            codes = [o.code for o in questionnaire.question(question).outcomes]
            distance = 0.5 * sum(
                abs(exact_p[(question, c)] - sampled_p.get((question, c), 0.0)) for c in codes
            )
            mine = draws.filter(pl.col("question_id") == question)
            valid = 1 - (mine["truncated"] | mine["invalid"]).mean()  # type: ignore[operator]
            floor = sampling_floor(exact.responses, question, args.samples, rng)
            print(
                f"{item:<9} {question:<11} {len(codes):>8} {exact_seconds:>8.1f} "
                f"{sampled_seconds:>9.1f} {valid:>6.1%} {distance:>16.3f} {floor:>14.3f}"
            )
    print(
        "\nexact s / sampled s: the whole item (every question of it), each method on its own."
        "\nTV exact-sampled: between the persona-weighted population distributions."
        "\nsampling floor: the mean TV that drawing as many answers from the exact distributions "
        f"gives ({FLOOR_REPLICATES} simulated replicates)."
    )


if __name__ == "__main__":
    main()
