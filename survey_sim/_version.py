"""The installed package's version, read once from its metadata (pyproject.toml's)."""

import importlib.metadata

try:
    VERSION = importlib.metadata.version("survey-sim")
except importlib.metadata.PackageNotFoundError:  # a source tree used without installing it
    VERSION = "0+unknown"
