"""Demonstrations tagged skip-when-grading in the source notebooks are safe to skip: no graded
name and no later cell that runs while grading depends on what they define."""
from __future__ import annotations

import symtable

import nbformat
import pytest

from autograder.checks import ASSIGNMENTS
from autograder.notebooks import source_notebook
from autograder.integration.cells import SKIP_TAG
from autograder.isolation.sanitize.cell_source import python_source


def _bound(source: str) -> set[str]:
    """Names the cell binds at top level (assignments, definitions, imports)."""
    table = symtable.symtable(source, "cell", "exec")
    return {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}


def _free(source: str) -> set[str]:
    """Global names the cell reads (at top level, or inside its functions and classes)
    without binding them itself."""
    def walk(table) -> set[str]:
        names = {s.get_name() for s in table.get_symbols()
                 if s.is_referenced() and (s.is_global() or table.get_type() == "module")}
        for child in table.get_children():
            names |= walk(child)
        return names
    return walk(symtable.symtable(source, "cell", "exec")) - _bound(source)


@pytest.mark.parametrize("assignment", [a for a in ASSIGNMENTS if source_notebook(a).exists()])
def test_skipped_demonstrations_define_nothing_that_graded_cells_use(assignment):
    nb = nbformat.read(source_notebook(assignment), as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    skipped: set[str] = set()
    for cell in cells:
        source = python_source(cell.source)
        nbgrader = cell.metadata.get("nbgrader", {})
        if SKIP_TAG in (cell.metadata.get("tags") or []):
            assert not nbgrader.get("solution") and not nbgrader.get("grade"), "only demonstrations may be skipped"
            skipped |= _bound(source)
            continue
        needed = _free(source) & skipped
        assert not needed, f"a cell that runs while grading uses {sorted(needed)}, defined in a skipped cell"
        skipped -= _bound(source)  # defined again by a cell that runs


def test_the_rule_sees_a_dependency():
    demo, graded = "scale = 3\n", "def f(x):\n    return scale * x\n"
    assert _bound(demo) == {"scale"} and _free(graded) == {"scale"}
    assert _free("def f(x, scale=1):\n    y = [scale for _ in range(x)]\n    return y\n") == {"range"}
