"""Notebook hygiene: thin notebooks, executed by papermill, committed without outputs."""

from __future__ import annotations

import ast
import re

import nbformat
import pytest

from betenet import paths
from betenet.pipeline import discover_notebooks

EXPECTED = [
    "00-dft-validation",
    "01-generate-dataset-qe",
    "02-linear-baseline",
    "03-double-descent-training",
    "04-loss-landscape",
    "05-bootstrap-ensembles",
    "06-error-analysis-screening",
]
NOTEBOOKS = sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb"))


def test_every_stage_has_its_notebook():
    assert [p.stem for p in discover_notebooks()] == EXPECTED


def test_notebook_names_are_numbered_kebab_case():
    for nb in NOTEBOOKS:
        assert re.fullmatch(r"\d\d-[a-z0-9]+(-[a-z0-9]+)*", nb.stem), nb.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected exactly one cell tagged 'parameters', found {len(tagged)}"
    cell = tagged[0]
    assert cell.cell_type == "code"
    tree = ast.parse(cell.source)
    assigned = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    assert "profile" in assigned, f"{path.name}: the parameters cell must set `profile`"
    assert isinstance(assigned["profile"], ast.Constant) and assigned["profile"].value == "smoke"
    # the parameters cell comes before any other code cell
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code is cell, f"{path.name}: the parameters cell must be the first code cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_outputs_committed(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"{path.name}: cell {i} has committed outputs"
            assert cell.get("execution_count") is None, f"{path.name}: cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_def_or_class_in_notebooks(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        tree = ast.parse(source)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)), (
                f"{path.name}: cell {i} defines {type(node).__name__}; logic belongs in the betenet package"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_thin(path):
    """A title first, prose between code, and short code cells (≤ ~15 lines) calling the package."""
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.lstrip().startswith("# "), path.name
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 3, f"{path.name}: needs prose"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            n = len([line for line in cell.source.splitlines() if line.strip() and not line.strip().startswith("#")])
            assert n <= 15, f"{path.name}: cell {i} has {n} code lines; move logic into betenet"
