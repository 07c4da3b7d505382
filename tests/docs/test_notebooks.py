"""The tutorials in docs/tutorials/ run top to bottom, as a reader runs them: each in a fresh
kernel of this interpreter (the project's venv), from an empty folder. Each ends with a check
cell that fails if its algorithm broke, so a passing run means more than "no exception"."""
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
TUTORIALS = REPO / "docs" / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
# Per cell; the longest cells compile a whole training program on a cold compilation cache.
CELL_TIMEOUT_S = 600


def this_interpreters_kernel() -> AsyncKernelManager:
    """A manager for ipykernel on `sys.executable`. With no kernel folders to search, "python3"
    is ipykernel's own spec, which launches the running interpreter; a "python3" spec installed
    elsewhere (~/.local/share/jupyter) could point at another Python."""
    return AsyncKernelManager(kernel_name="python3",
                              kernel_spec_manager=KernelSpecManager(kernel_dirs=[]))


def execute(nb, cwd: Path):
    client = NotebookClient(nb, km=this_interpreters_kernel(), timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(cwd)}})
    return client.execute()


def test_tutorials_are_listed_and_stored_without_outputs():
    listed = (TUTORIALS / "README.md").read_text()
    assert len(NOTEBOOKS) == 4, NOTEBOOKS
    for path in NOTEBOOKS:
        assert path.name in listed, f"{path.name} is missing from docs/tutorials/README.md"
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, (
                    f"{path.name}: a code cell holds outputs; commit notebooks cleared")


def test_kernel_is_this_interpreter(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.executable)")])
    out = execute(nb, tmp_path).cells[0].outputs
    assert out[0]["text"].strip() == sys.executable


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    execute(nb, tmp_path)  # raises CellExecutionError, naming the cell, if any cell fails
    assert not list(tmp_path.iterdir()), "a tutorial wrote files into its working folder"
