"""The notebooks run top to bottom (code cells executed in order, in one namespace), on
the small settings they are written with; each one's time shows in ``--durations``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs(notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # plots the notebook writes stay out of the checkout
    cells = json.loads(notebook.read_text())["cells"]
    namespace: dict[str, object] = {}
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            exec(compile(source, f"{notebook.name}[cell {index}]", "exec"), namespace)
