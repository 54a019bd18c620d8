"""Demonstrations tagged skip-when-grading in the source notebooks are safe to skip: no graded
name and no later cell that runs while grading depends on what they define."""
from __future__ import annotations

import ast

import nbformat
import pytest

from autograder.checks import ASSIGNMENTS
from autograder.notebooks import source_notebook
from autograder.preprocessor import SKIP_TAG


def _bound(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _used(tree: ast.Module) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


@pytest.mark.parametrize("assignment", [a for a in ASSIGNMENTS if source_notebook(a).exists()])
def test_skipped_demonstrations_define_nothing_that_graded_cells_use(assignment):
    nb = nbformat.read(source_notebook(assignment), as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    skipped: set[str] = set()
    for cell in cells:
        tree = ast.parse(cell.source)
        nbgrader = cell.metadata.get("nbgrader", {})
        if SKIP_TAG in (cell.metadata.get("tags") or []):
            assert not nbgrader.get("solution") and not nbgrader.get("grade"), "only demonstrations may be skipped"
            skipped |= _bound(tree)
            continue
        needed = (_used(tree) - _bound(tree)) & skipped
        assert not needed, f"a cell that runs while grading uses {sorted(needed)}, defined in a skipped cell"
        skipped -= _bound(tree)  # defined again by a cell that runs
