"""``notebooks/quickstart.ipynb`` runs top to bottom in a fresh kernel (small settings)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "quickstart.ipynb"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kernel():
    """The ``python3`` kernel, installed for this interpreter if no kernelspec provides it."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user"], check=True)
    return "python3"


def test_quickstart_runs(kernel, tmp_path, monkeypatch):
    import nbclient
    import nbformat

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel's torch: tiny networks only thrash on a shared CI box

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, kernel_name=kernel, timeout=600,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
    assert "run saved to" in outputs and "report:" in outputs
    assert len(pd.read_parquet(tmp_path / "quickstart_synthetic.parquet")) == 20_000
