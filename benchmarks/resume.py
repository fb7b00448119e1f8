"""How far results move when computed in other passes, and what the results store costs.

One persona x question grid on the default model, simulated several ways in one process:

* ``no store``  - ``cache=False``: every request in one engine call (the reference);
* ``store``     - a fresh results store: the work claimed in chunks (so that two runs of a
                  study can split it), each result stored as its pass finishes;
* ``resumed k`` - stopped (as by Ctrl-C) after k passes, then run again on a new engine;
* ``threads 1`` - ``cache=False`` with one torch thread.

For each: seconds, and against the reference the rows whose log-prob differs at all, the
largest log-prob and probability differences. survey-sim promises agreement within
``survey_sim.testing.RECOMPUTED_TOLERANCE`` (float32); this measures how much of it is used.

    python benchmarks/resume.py                     # 20 personas x 10 questions
    python benchmarks/resume.py --personas 10 --stops 2 5
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import polars as pl
from prefix_reuse import persona_grid

from survey_sim import EngineSettings, TransformersEngine, bundled_file, load_questionnaire
from survey_sim.runs import ResultsCache, SimulationResult, simulate
from survey_sim.testing import RECOMPUTED_TOLERANCE, InterruptedAfter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--personas", type=int, default=20)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--stops", type=int, nargs="+", default=[3, 10, 25])
    args = parser.parse_args()

    questionnaire = load_questionnaire(bundled_file("questionnaires", "gss_spending_2018.yaml"))
    questionnaire = questionnaire.select([q.id for q in questionnaire][: args.questions])
    population = persona_grid(args.personas)
    folder = Path(tempfile.mkdtemp(prefix="resume-benchmark-"))

    def timed(label: str, engine: object, cache: ResultsCache | bool) -> None:
        started = time.perf_counter()
        result = simulate(questionnaire, population, engine, cache=cache, progress=False)
        runs[label] = (result, time.perf_counter() - started)

    runs: dict[str, tuple[SimulationResult, float]] = {}
    timed("no store", TransformersEngine.from_pretrained(), False)
    timed("store", TransformersEngine.from_pretrained(), ResultsCache(folder / "store.sqlite"))
    for stop in args.stops:
        store = ResultsCache(folder / f"resumed-{stop}.sqlite")
        stopping = InterruptedAfter(TransformersEngine.from_pretrained(), passes=stop)
        started = time.perf_counter()
        with contextlib.suppress(KeyboardInterrupt):
            simulate(questionnaire, population, stopping, cache=store, progress=False)
        first_part = time.perf_counter() - started
        timed(f"resumed {stop}", TransformersEngine.from_pretrained(), store)
        result, seconds = runs[f"resumed {stop}"]
        runs[f"resumed {stop}"] = (result, seconds + first_part)
    one_thread = EngineSettings(threads=1)
    timed("threads 1", TransformersEngine.from_pretrained(settings=one_thread), False)

    reference, stored = runs["no store"][0].responses, runs["store"][0].responses
    print(
        f"{len(population)} personas x {len(questionnaire)} questions = "
        f"{reference.select('persona_id', 'question_id').n_unique()} requests, "
        f"{reference.height} rows; default model; tolerance {RECOMPUTED_TOLERANCE:.0e}\n"
    )
    header = (
        f"{'run':<11} {'seconds':>8} {'vs no store':>12} {'rows differing':>15} "
        f"{'max |dlogp|':>12} {'max |dp|':>9} {'rows differing from store':>26}"
    )
    print(header)
    print("-" * len(header))
    base_seconds = runs["no store"][1]
    for label, (result, seconds) in runs.items():
        differing, logprob, prob = differences(result.responses, reference)
        from_store, _, _ = differences(result.responses, stored)
        print(
            f"{label:<11} {seconds:>8.1f} {seconds / base_seconds:>11.2f}x "
            f"{differing:>7} of {result.responses.height:<5} {logprob:>12.1e} {prob:>9.1e} "
            f"{from_store:>26}"
        )


def differences(responses: pl.DataFrame, reference: pl.DataFrame) -> tuple[int, float, float]:
    """Rows whose log-prob differs at all, and the largest log-prob and probability
    differences, of ``responses`` against ``reference``."""
    joined = responses.join(
        reference, on=["persona_id", "question_id", "order", "option_code"], suffix="_ref"
    )
    logprob = (pl.col("logprob") - pl.col("logprob_ref")).abs()
    prob = (pl.col("prob") - pl.col("prob_ref")).abs()
    largest = joined.select(logprob.max(), prob.max()).row(0)
    return joined.filter(logprob > 0).height, largest[0], largest[1]


if __name__ == "__main__":
    main()
