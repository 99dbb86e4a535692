"""The notebooks under docs/notebooks/: they run, they only call `snippets`, and they ship executed.

Each notebook is executed with nbclient in the quick mode the notebooks read from `FEAST_FAST=1`
(fewer images, same code paths), in its own folder as Jupyter would start it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "docs" / "notebooks").glob("*.ipynb"))
ids = [nb.name for nb in NOTEBOOKS]


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def python_source(source: str) -> str:
    """A code cell's source with IPython magics and shell escapes blanked out."""
    return "\n".join(
        "" if re.match(r"\s*[%!]", line) else line for line in source.splitlines()
    )


def definitions(source: str) -> list[str]:
    """Functions, classes and lambdas that a piece of Python defines."""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
    return [
        f"line {node.lineno}: {getattr(node, 'name', 'lambda')}"
        for node in ast.walk(ast.parse(python_source(source)))
        if isinstance(node, kinds)
    ]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebook in docs/notebooks/"


def test_definition_finder_sees_functions_classes_and_lambdas():
    found = definitions(
        "%matplotlib inline\ndef f():\n    pass\nclass A:\n    pass\ng = lambda x: x\nprint(1)\n"
    )
    assert found == ["line 2: f", "line 4: A", "line 6: lambda"]
    assert definitions("import torch\nx = [i for i in range(3)]\n") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_defines_nothing_and_imports_from_snippets(path):
    # Algorithms live in snippets/ (tested, embedded in pages); notebooks only call them.
    nb = nbformat.read(path, as_version=4)
    defined = {
        i: definitions(cell.source)
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
    }
    defined = {i: names for i, names in defined.items() if names}
    assert not defined, (
        f"{path.name} defines code (cell index: definitions): {defined}; move it to snippets/"
    )
    imports = "\n".join(python_source(cell.source) for cell in code_cells(nb))
    assert re.search(
        r"^\s*(from snippets(\.\w+)* import|import snippets)", imports, re.MULTILINE
    ), f"{path.name} imports nothing from snippets"
    assert "FEAST_FAST" in imports, (
        f"{path.name} does not read FEAST_FAST (the test suite's quick mode)"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_committed_notebook_is_executed_in_order_without_errors(path):
    # mkdocs-jupyter publishes the committed outputs as they are (`execute: false`).
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    cells = code_cells(nb)
    assert cells, f"{path.name} has no code"
    counts = [cell.get("execution_count") for cell in cells]
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name} was not run top to bottom in a fresh kernel (execution counts {counts}); "
        "run `jupyter nbconvert --execute --to notebook --inplace` on it"
    )
    errors = [
        i
        for i, cell in enumerate(cells)
        for out in cell.outputs
        if out.output_type == "error"
    ]
    assert not errors, f"{path.name} has error outputs in code cells {errors}"
    assert any(cell.outputs for cell in cells), (
        f"{path.name} was committed without outputs"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_runs_in_fast_mode(path, monkeypatch):
    monkeypatch.setenv("FEAST_FAST", "1")  # inherited by the kernel
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError with the traceback of a failing cell
    errors = [
        out
        for cell in code_cells(nb)
        for out in cell.outputs
        if out.output_type == "error"
    ]
    assert not errors
