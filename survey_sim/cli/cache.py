"""``survey-sim cache``: show or clear the results store and the converted models."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from survey_sim.cli._common import counted
from survey_sim.engines.registry import converted_models_dir
from survey_sim.runs import ResultsCache


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the command with the ``survey-sim`` parser."""
    caching = commands.add_parser(
        "cache",
        help="show or clear the results cache and the converted models",
        description="The results cache keeps every model result under a hash of the model "
        "weights, settings, prompt and options (and seed when sampling), so reruns and "
        "resumed runs skip finished work. Location: SURVEY_SIM_RESULTS_CACHE, else "
        "results.sqlite in the survey-sim cache folder (SURVEY_SIM_CACHE_DIR, else the user "
        "cache folder). A .gguf model is converted once to a plain model kept in that folder's "
        "models/, found again by the file's content.",
    )
    caching.add_argument(
        "action", choices=["info", "clear"], help="show what is kept and its size, or delete"
    )
    caching.add_argument(
        "--models",
        action="store_true",
        help="with clear: delete the converted models instead of the results (a model is "
        "converted again, once, when next used)",
    )
    caching.set_defaults(handler=cache_command)


def cache_command(args: argparse.Namespace) -> int:
    models = converted_models_dir()
    if args.action == "clear" and args.models:
        folders = _model_folders(models)
        freed = sum(_size(folder) for folder in folders)
        for folder in folders:
            shutil.rmtree(folder)
        deleted = counted(len(folders), "converted model")
        print(f"Deleted {deleted} ({freed / 2**20:.0f} MiB) from {models}.")
    elif args.action == "clear":  # fresh: a damaged store is replaced, not read
        cache = ResultsCache(fresh=True)
        print(f"Deleted {cache.clear()} entries from {cache.path}.")
    else:
        info = ResultsCache().info()
        print(f"{info['path']}: {info['entries']} entries, {info['bytes'] / 2**20:.1f} MiB.")
        folders = _model_folders(models)
        print(f"{models}: {counted(len(folders), 'converted model')}" + (":" if folders else "."))
        for folder in folders:
            print(f"  {folder.name}  {_size(folder) / 2**20:.0f} MiB")
    return 0


def _model_folders(models: Path) -> list[Path]:
    """The converted models (folders with a config.json; unfinished conversions are not)."""
    if not models.is_dir():
        return []
    return sorted(folder for folder in models.iterdir() if (folder / "config.json").is_file())


def _size(folder: Path) -> int:
    return sum(file.stat().st_size for file in folder.rglob("*") if file.is_file())
