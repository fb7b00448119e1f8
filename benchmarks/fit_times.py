"""Fit times of the three PyMC models on real data, with pymc's NUTS and with nutpie,
cold (empty compile caches, as on a fresh machine) and warm (the same model fitted again in
the same process).

    python benchmarks/fit_times.py RESULTS.parquet PERSONAS.csv

RESULTS is a simulation of the GSS 2018 spending questionnaire by the persona cells in
PERSONAS (``survey-sim population --human gss_spending_2018 --out cells.csv``, then
``survey-sim run questionnaires/gss_spending_2018.yaml --personas cells.csv --out
cells.parquet``). Each sampler runs in its own subprocess with an empty pytensor compile
directory, so the first fit of each model includes its compilation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

MODELS = ("alignment", "calibration", "subgroups")
SAMPLERS = ("pymc", "nutpie")


def fit_all(
    results: str, personas: str, sampler: str, draws: int | None = None
) -> dict[str, list[float]]:
    """Each model fitted twice in this process; seconds per fit."""
    from survey_sim import (
        Alignment,
        Calibration,
        DiagnosticWarning,
        Population,
        SimulationResult,
        Subgroups,
        gss_spending_2018,
    )

    human = gss_spending_2018()
    result = SimulationResult.read_parquet(results)
    by_party = result.subgroups(["party"], Population.from_csv(personas))
    options = {"sampler": sampler, **({"draws": draws, "tune": draws} if draws else {})}
    fits = {
        "alignment": lambda: Alignment(result, human).fit(**options),
        "calibration": lambda: Calibration(result, human).fit(**options),
        "subgroups": lambda: Subgroups(by_party, human, ["party"]).fit(**options),
    }
    seconds: dict[str, list[float]] = {}
    for name in MODELS:
        seconds[name] = []
        for _ in range(2):
            started = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DiagnosticWarning)
                fits[name]()
            seconds[name].append(time.perf_counter() - started)
            for warning in caught:
                if issubclass(warning.category, DiagnosticWarning):
                    print(f"{sampler} {name}: {warning.message}", file=sys.stderr)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results")
    parser.add_argument("personas")
    parser.add_argument(
        "--draws", type=int, default=None, help="draws and tuning steps (default: the models')"
    )
    parser.add_argument(
        "--samplers", nargs="+", choices=SAMPLERS, default=list(SAMPLERS), help="NUTS samplers"
    )
    parser.add_argument("--child", choices=SAMPLERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(fit_all(args.results, args.personas, args.child, args.draws)))
        return
    times = {}
    for sampler in args.samplers:
        with tempfile.TemporaryDirectory() as compiledir:
            env = dict(os.environ, PYTENSOR_FLAGS=f"compiledir={compiledir}")
            child = [sys.executable, __file__, args.results, args.personas, "--child", sampler]
            child += ["--draws", str(args.draws)] if args.draws else []
            output = subprocess.run(child, env=env, capture_output=True, text=True, check=True)
            sys.stderr.write(
                "".join(
                    line + "\n"
                    for line in output.stderr.splitlines()
                    if line.startswith(f"{sampler} ")  # the diagnostics fit_all reports
                )
            )
            times[sampler] = json.loads(output.stdout.strip().splitlines()[-1])
    print(f"{'model':<12} " + " ".join(f"{s + ' cold':>12} {s + ' warm':>12}" for s in times))
    for name in MODELS:
        cells = " ".join(f"{times[s][name][0]:>11.1f}s {times[s][name][1]:>11.1f}s" for s in times)
        ratio = (
            f"  warm pymc/nutpie {times['pymc'][name][1] / times['nutpie'][name][1]:.2f}x"
            if {"pymc", "nutpie"} <= set(times)
            else ""
        )
        print(f"{name:<12} {cells}{ratio}")


if __name__ == "__main__":
    main()
