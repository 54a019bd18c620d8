"""Which cells are which: test cells and the problems they capture, the student's cells, and the
demonstrations that are not run while grading."""
from __future__ import annotations

import functools

from nbgrader.utils import is_grade, is_solution

from ..notebooks import CAPTURE_RE

#: Tag of a source notebook's demonstration that no test needs: not run while grading.
SKIP_TAG = "skip-when-grading"
SKIPPED_TEXT = "[not run while grading: a demonstration that no test needs]\n"


def captured_names(source: str) -> list[str]:
    """Problem names a (hidden) test cell asks the kernel to capture."""
    return CAPTURE_RE.findall(source)


def is_test_cell(cell) -> bool:
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


def student_sources(nb) -> list[str]:
    """Every code cell the student could have written (all but the test cells)."""
    return [cell.source for cell in nb.cells if cell.cell_type == "code" and not is_test_cell(cell)]


@functools.lru_cache(maxsize=16)
def _read_code_cells(path: str, mtime_ns: int, size: int) -> list:
    """The code cells of a notebook file, read once per version of the file (a worker grades
    many submissions against the same source notebook)."""
    import nbformat

    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
