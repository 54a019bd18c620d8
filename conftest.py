"""The source notebooks under nbval (``--nbval-lax``; ``course/source`` is in pyproject.toml's
testpaths): each solved instructor notebook, ``course/source/<a>/<a>.ipynb``, runs top to
bottom in one Jupyter kernel started in its folder, and every code cell is a test item that
fails when the cell raises (outputs are not compared).

Here, for those notebooks:

- their self-check cases are written beside them before their first cell runs
  (:func:`autograder.selfcheck_pack.build`, ``course/source/<a>/selfcheck/``, which git
  ignores; ``make selfcheck`` writes the same): the test cells' visible part reads them;
- with every problem solved no demonstration may be skipped: a cell that prints
  "implement `name` above to see this" (``coursedata.needs``) fails;
- each notebook draws at least one figure (checked at its last code cell);
- their cells are marked ``slow``, so ``-m "not slow"`` leaves them out.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent / "course" / "source"
SKIPPED = re.compile(r"^implement `", re.M)
_PACKED: set[str] = set()


def source_assignment(item) -> str | None:
    """The assignment whose source notebook ``item`` (an nbval cell) belongs to, else None."""
    if type(item).__name__ != "IPyNbCell":
        return None
    path = Path(str(item.parent.path)).resolve()
    return path.stem if path.parent.parent == SOURCE and path.stem == path.parent.name else None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if type(item).__name__ == "IPyNbCell":  # before -m "not slow" deselects
            item.add_marker(pytest.mark.slow)


def pytest_runtest_setup(item):
    assignment = source_assignment(item)
    if assignment and assignment not in _PACKED:
        from autograder.selfcheck_pack import build

        build(assignment)
        _PACKED.add(assignment)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    if source_assignment(item):
        outputs = item.test_outputs or []
        notes = [o["text"] for o in outputs if o.get("output_type") == "stream" and SKIPPED.search(o.get("text", ""))]
        if notes:
            pytest.fail("with every problem solved, no demonstration may be skipped: " + notes[0].strip()[:200])
        notebook = item.parent
        notebook.figures = getattr(notebook, "figures", 0) + sum(
            1 for o in outputs if o.get("output_type") in ("display_data", "execute_result")
            and "image/png" in o.get("data", {}))
        last = sum(1 for c in notebook.nb.cells if c.cell_type == "code") - 1
        if item.cell_num == last and not notebook.figures:
            pytest.fail("the notebook should draw at least one figure")
    return result
