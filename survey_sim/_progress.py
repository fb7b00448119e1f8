"""The progress bar of every long run: a notebook widget where Jupyter can draw one
(ipywidgets installed), else text, in a notebook too (tqdm.auto would warn there that
IProgress is missing)."""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm
else:
    from tqdm.std import tqdm

__all__ = ["tqdm"]
