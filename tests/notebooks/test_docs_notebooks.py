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


# What a reader should never see in a committed output: the kernel's stderr, warnings, the residue
# of text progress bars (carriage returns, tqdm's "45%|####  | 9/20 [00:01<00:02, 5.6it/s]") and
# paths of the machine that ran the notebook.
RESIDUE = {
    "a warning": re.compile(r"warning", re.IGNORECASE),
    "a carriage return (progress-bar residue)": re.compile(r"\r"),
    "a progress bar": re.compile(
        r"\d+%\|"
        r"|[\u2588\u2589\u258a\u258b\u258c\u258d\u258e\u258f]"
        r"|\d+/\d+ \[[\d:]+<[\d:?]+"
        r"|\d(?:\.\d+)?\s?(?:it|s)/(?:s|it)\b"
    ),
    "a local path": re.compile(
        r"/root/|/home/|/work/|/tmp/|/Users/|[A-Za-z]:\\\\|\.venv|site-packages|dist-packages"
    ),
}
# Outputs whose MIME type holds text a reader sees (images are data, not text).
TEXT_TYPES = (
    "text/plain",
    "text/html",
    "text/markdown",
    "text/latex",
    "application/json",
)


def output_texts(output) -> list[str]:
    """The readable text of one code-cell output: a stream, a result's text types, a traceback."""
    if output.output_type == "stream":
        return [output.text]
    if output.output_type == "error":
        return [output.ename, output.evalue, *output.traceback]
    data = output.get("data", {})
    return [str(data[kind]) for kind in TEXT_TYPES if kind in data]


def output_problems(nb) -> list[str]:
    """Everything in a notebook's outputs that should not reach a reader, one line per find."""
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stderr":
                problems.append(f"cell {index}: stderr {output.text[:80]!r}")
            if "application/vnd.jupyter.widget-view+json" in output.get("data", {}):
                problems.append(f"cell {index}: a widget (a progress bar?)")
            for text in output_texts(output):
                for what, pattern in RESIDUE.items():
                    found = pattern.search(text)
                    if found:
                        start = max(found.start() - 30, 0)
                        problems.append(
                            f"cell {index}: {what}: {text[start : found.end() + 30]!r}"
                        )
    return problems


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebook in docs/notebooks/"


def test_definition_finder_sees_functions_classes_and_lambdas():
    found = definitions(
        "%matplotlib inline\ndef f():\n    pass\nclass A:\n    pass\ng = lambda x: x\nprint(1)\n"
    )
    assert found == ["line 2: f", "line 4: A", "line 6: lambda"]
    assert definitions("import torch\nx = [i for i in range(3)]\n") == []


def test_output_checker_finds_stderr_warnings_progress_bars_and_paths():
    nb = nbformat.v4.new_notebook()
    clean = nbformat.v4.new_code_cell("print(1)")
    clean.outputs = [
        nbformat.v4.new_output(
            "stream", name="stdout", text="loss 0.057 after 460 steps\n"
        ),
        nbformat.v4.new_output(
            "display_data",
            data={"text/plain": "<Figure size 480x208>", "image/png": "iVBOR"},
        ),
    ]
    nb.cells = [
        nbformat.v4.new_markdown_cell("a /work/ path in prose is not an output"),
        clean,
    ]
    assert output_problems(nb) == []
    dirty = [
        nbformat.v4.new_output("stream", name="stderr", text="hello\n"),
        nbformat.v4.new_output("stream", name="stdout", text="UserWarning: careful\n"),
        nbformat.v4.new_output("stream", name="stdout", text="step 3\rstep 4\n"),
        nbformat.v4.new_output(
            "stream",
            name="stdout",
            text="Loading: 100%|##########| 2/2 [00:00<00:00]\n",
        ),
        nbformat.v4.new_output(
            "stream", name="stdout", text="12/50 [00:03<00:09, 4.1it/s]\n"
        ),
        nbformat.v4.new_output(
            "execute_result",
            data={"text/plain": "PosixPath('/home/me/x.png')"},
            execution_count=1,
        ),
        nbformat.v4.new_output(
            "display_data", data={"text/html": "<pre>/opt/.venv/lib/x.py</pre>"}
        ),
        nbformat.v4.new_output(
            "display_data",
            data={"application/vnd.jupyter.widget-view+json": {"model_id": "a"}},
        ),
    ]
    for output in dirty:
        cell = nbformat.v4.new_code_cell("x")
        cell.outputs = [output]
        nb.cells = [cell]
        assert output_problems(nb), f"not flagged: {output}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_committed_outputs_hold_no_stderr_warnings_progress_bars_or_local_paths(path):
    # mkdocs-jupyter publishes the committed outputs as they are: readers see every one of them.
    problems = output_problems(nbformat.read(path, as_version=4))
    assert not problems, (
        f"{path.name} was committed with outputs a reader should not see:\n"
        + "\n".join(problems)
        + "\nsilence the source (e.g. disable progress bars), then re-execute the notebook"
    )


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
    # What the fast run prints is what a full run prints: the same checks as the committed outputs.
    assert not output_problems(nb), output_problems(nb)
