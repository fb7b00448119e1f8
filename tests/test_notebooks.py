"""The notebooks run top to bottom in a real Jupyter kernel (nbclient, ipykernel), as users
run them: magics, rich display and kernel state included, on the small settings they are
written with; their outputs stay small, and none shows an error or a warning."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
OUTPUT_LIMIT = 20_000
"""Characters of text a notebook may print in all: enough for its tables, not for logs."""


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_in_a_kernel(notebook: Path, tmp_path: Path):
    executed = nbformat.read(notebook, as_version=4)
    # Plots the notebook writes land in tmp_path, not in the checkout.
    client = NotebookClient(
        executed, timeout=900, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    outputs = [
        output for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs
    ]
    text = "".join(
        output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
        for output in outputs
    )
    assert len(text) < OUTPUT_LIMIT, f"{notebook.name} printed {len(text):,} characters"
    streams = [output.get("text", "") for output in outputs if output.get("name") == "stderr"]
    assert not any("Warning" in stream or "warning:" in stream for stream in streams), streams
    assert all(output.output_type != "error" for output in outputs)
