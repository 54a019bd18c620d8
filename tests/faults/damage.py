"""Damaged notebooks: each function takes a filled (correct) submission and breaks it
the way students' notebooks get broken; ``RAW`` ones return bytes instead."""
from __future__ import annotations

import copy
import json

import nbformat

from .harness import A  # noqa: F401


def _index(nb, grade_id):
    for i, cell in enumerate(nb.cells):
        md = cell.metadata.get("nbgrader")
        if isinstance(md, dict) and md.get("grade_id") == grade_id:
            return i
    raise KeyError(grade_id)


def test_cell_edited(nb):
    """The test cells' sources replaced and their points raised."""
    for gid in ("test_conv2d", "test_conv_output_size"):
        cell = nb.cells[_index(nb, gid)]
        cell.source = 'print("all tests passed")'
        cell.metadata["nbgrader"]["points"] = 1000
    return nb


def test_cell_deleted(nb):
    nb.cells.pop(_index(nb, "test_conv2d"))
    return nb


def cells_duplicated(nb):
    """The conv2d solution and test cells, and the set-up cell, each twice."""
    i = _index(nb, "test_conv2d")
    nb.cells.insert(i + 1, copy.deepcopy(nb.cells[i]))
    j = _index(nb, "impl_conv2d")
    nb.cells.insert(j, copy.deepcopy(nb.cells[j]))
    k = _index(nb, "setup")
    nb.cells.insert(k, copy.deepcopy(nb.cells[k]))
    return nb


def cells_reordered(nb):
    """The conv2d test cell moved above its solution cell, at the top of the notebook."""
    cell = nb.cells.pop(_index(nb, "test_conv2d"))
    nb.cells.insert(_index(nb, "setup") + 1, cell)
    return nb


def cell_split(nb):
    """The conv2d solution cell split in two (both halves keep the metadata)."""
    i = _index(nb, "impl_conv2d")
    cell = nb.cells[i]
    helper = copy.deepcopy(cell)
    helper.source = "def _pair(v):\n    return (v, v) if isinstance(v, int) else tuple(v)\n"
    nb.cells.insert(i, helper)
    return nb


def cells_merged(nb):
    """conv2d's test cell merged into its solution cell (and the test cell gone)."""
    i = _index(nb, "impl_conv2d")
    j = _index(nb, "test_conv2d")
    nb.cells[i].source = nb.cells[i].source + "\n\n" + nb.cells[j].source
    nb.cells.pop(j)
    return nb


def merged_into_test(nb):
    """The student typed conv2d into the (locked) test cell and deleted the solution cell."""
    i = _index(nb, "impl_conv2d")
    j = _index(nb, "test_conv2d")
    nb.cells[j].source = nb.cells[i].source + "\n\n" + nb.cells[j].source
    nb.cells.pop(i)
    return nb


def metadata_edited(nb):
    """grade_ids changed, points inflated, metadata of the wrong type."""
    t = nb.cells[_index(nb, "test_conv2d")]
    u = nb.cells[_index(nb, "test_conv_output_size")]
    s = nb.cells[_index(nb, "impl_conv_output_size")]
    t.metadata["nbgrader"]["grade_id"] = "test_conv2d_mine"
    t.metadata["nbgrader"]["points"] = 999
    s.metadata["nbgrader"] = "solution please"
    u.metadata["nbgrader"]["schema_version"] = 99
    u.metadata["nbgrader"]["grade"] = "yes"
    return nb


def grade_ids_swapped(nb):
    """Solution and test grade_ids swapped between the two problems."""
    a, b = _index(nb, "test_conv2d"), _index(nb, "test_conv_output_size")
    nb.cells[a].metadata["nbgrader"]["grade_id"], nb.cells[b].metadata["nbgrader"]["grade_id"] = \
        "test_conv_output_size", "test_conv2d"
    return nb


def nbformat3(nb) -> bytes:
    return nbformat.writes(nbformat.convert(nb, 3), version=3).encode()


def non_utf8(nb) -> bytes:
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("Caf\u00e9 notes"))
    raw = nbformat.writes(nb).encode("utf-8")
    return raw.replace("Caf\u00e9".encode("utf-8"), b"Caf\xe9", 1)  # latin-1 byte


def invalid_json(nb) -> bytes:
    return nbformat.writes(nb).encode()[:-200]


def empty_file(nb) -> bytes:
    return b""


def huge_100mb(nb) -> bytes:
    """A valid notebook of about 100 MB (a giant output kept from the student's run)."""
    i = _index(nb, "impl_conv2d")
    nb.cells[i].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * (100 * 2**20))]
    return nbformat.writes(nb).encode()


def not_a_notebook(nb) -> bytes:
    return json.dumps({"hello": "world"}).encode()


DAMAGES = [test_cell_edited, test_cell_deleted, cells_duplicated, cells_reordered, cell_split, cells_merged,
           merged_into_test, metadata_edited, grade_ids_swapped, nbformat3, non_utf8, invalid_json,
           empty_file, huge_100mb, not_a_notebook]
#: Damages after which nothing can be graded (zero, "missing", with a reason).
UNREADABLE = {"invalid_json", "empty_file", "not_a_notebook"}
