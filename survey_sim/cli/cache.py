"""``survey-sim cache``: show or clear the results store."""

from __future__ import annotations

import argparse

from survey_sim.runs import ResultsCache


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the command with the ``survey-sim`` parser."""
    caching = commands.add_parser(
        "cache",
        help="show or clear the results cache",
        description="The results cache keeps every model result under a hash of the model "
        "weights, settings, prompt and options (and seed when sampling), so reruns and "
        "resumed runs skip finished work. Location: SURVEY_SIM_RESULTS_CACHE, else "
        "results.sqlite in the survey-sim cache folder.",
    )
    caching.add_argument("action", choices=["info", "clear"], help="show size, or delete all")
    caching.set_defaults(handler=cache_command)


def cache_command(args: argparse.Namespace) -> int:
    if args.action == "clear":  # fresh: a damaged store is replaced, not read
        cache = ResultsCache(fresh=True)
        print(f"Deleted {cache.clear()} entries from {cache.path}.")
    else:
        info = ResultsCache().info()
        print(f"{info['path']}: {info['entries']} entries, {info['bytes'] / 2**20:.1f} MiB.")
    return 0
