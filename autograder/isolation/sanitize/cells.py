"""The submission's cells matched with the gradebook by what is there.

:class:`SanitizeCells`, first of ``Autograde.sanitize_preprocessors``: matches the
notebook's cells with the gradebook by what is there. nbgrader metadata that is
malformed or names an unknown cell is dropped; known cells get their metadata
back; of duplicated graded cells the last one is kept (copies of test cells are
removed); a test cell whose ``grade_id`` was changed is recognised by its
``gradekit.capture`` call; a missing test cell or locked cell is re-inserted from
the gradebook (after the cell that defines its problem); a test cell that comes
before the definition it tests is moved after it; student code typed into a test
cell is kept in a cell of its own before it; the lines of a test cell merged into
a student's cell are taken out of it (the test runs from its own cell, after the
definitions kept there); statements that import or call ``gradekit`` in the
student's own cells are removed (found with the parser: strings and docstrings
stay). ``OverwriteCells`` then restores the source of every locked cell. What was
changed goes to ``nb.metadata["gradekit_sanitize"]``, which the executor copies
into each problem's feedback.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor

from ...notebooks import CAPTURE_RE
from .cell_source import HIDDEN_BLOCK_RE, _definitions_in, _find_run, _text, defined_names, strip_gradekit_statements

SANITIZE_KEY = "gradekit_sanitize"


def _nbgrader(cell) -> dict | None:
    md = cell.get("metadata")
    if not isinstance(md, dict):
        return None
    value = md.get("nbgrader")
    return value if isinstance(value, dict) else None


class SanitizeCells(NbGraderPreprocessor):
    """Match the submission's cells with the gradebook (see the module docstring)."""

    def preprocess(self, nb, resources):
        meta = resources["nbgrader"]
        try:
            with Gradebook(meta["db_url"]) as gb:
                known = self._known_cells(gb, meta["notebook"], meta["assignment"])
        except MissingEntry:
            return nb, resources
        source_order = self._source_order(meta)
        notes: list[str] = []
        self._normalise(nb, known, notes)
        self._deduplicate(nb, known, notes)
        self._reclaim(nb, known, notes)
        self._split_code_out_of_tests(nb, known, notes)
        self._take_out_merged_tests(nb, known, notes)
        self._strip_capture_calls(nb, known, notes)
        self._insert_missing(nb, known, source_order, notes)
        self._order_tests(nb, known, notes)
        for cell in nb.cells:
            md = _nbgrader(cell)
            if md and md.get("grade_id") in known:
                cell.metadata["nbgrader"] = self._canonical(known[md["grade_id"]], md)
        nb.metadata[SANITIZE_KEY] = {"notes": notes}
        for note in notes:
            self.log.warning("%s/%s: %s", meta.get("student"), meta.get("notebook"), note)
        return nb, resources

    # ------------------------------------------------------------------ gradebook
    @staticmethod
    def _known_cells(gb, notebook: str, assignment: str) -> dict[str, dict]:
        nb = gb.find_notebook(notebook, assignment)
        known: dict[str, dict] = {}
        for cell in nb.source_cells:
            known[cell.name] = {"name": cell.name, "cell_type": cell.cell_type, "locked": bool(cell.locked),
                                "source": cell.source or "", "grade": False, "solution": False,
                                "task": False, "points": None}
        for cell in nb.grade_cells:
            if cell.name in known:
                known[cell.name].update(grade=True, points=float(cell.max_score))
        for cell in nb.solution_cells:
            if cell.name in known:
                known[cell.name]["solution"] = True
        for cell in nb.task_cells:
            if cell.name in known:
                known[cell.name].update(task=True, points=float(cell.max_score))
        for info in known.values():
            info["test"] = info["grade"] and not info["solution"] and info["cell_type"] == "code"
            info["captures"] = CAPTURE_RE.findall(info["source"]) if info["test"] else []
        return known

    def _source_order(self, meta) -> list[str]:
        """grade_ids in the order of the instructor's source notebook (when it is there)."""
        try:
            from nbgrader.coursedir import CourseDirectory

            coursedir = CourseDirectory(parent=self)
            path = Path(coursedir.format_path(coursedir.source_directory, ".", meta["assignment"])) \
                / f"{meta['notebook']}.ipynb"
            source = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001
            return []
        return [md["grade_id"] for c in source.cells if (md := _nbgrader(c)) and "grade_id" in md]

    @staticmethod
    def _canonical(info: dict, old: dict) -> dict:
        md = {"grade": info["grade"], "grade_id": info["name"], "locked": info["locked"],
              "schema_version": 3, "solution": info["solution"], "task": info["task"]}
        if info["grade"] or info["task"]:
            md["points"] = info["points"]
        if "checksum" in old:
            md["checksum"] = old["checksum"]
        return md

    # ------------------------------------------------------------------ steps
    def _normalise(self, nb, known, notes):
        for i, cell in enumerate(nb.cells):
            if not isinstance(cell.get("metadata"), dict):
                cell["metadata"] = nbformat.NotebookNode()
            if not isinstance(cell.get("source"), str):
                cell["source"] = _text(cell.get("source"))
            raw = cell.metadata.get("nbgrader", None)
            if raw is None:
                continue
            md = raw if isinstance(raw, dict) else None
            grade_id = md.get("grade_id") if md else None
            if not isinstance(grade_id, str) or grade_id not in known:
                del cell.metadata["nbgrader"]
                notes.append(f"cell {i + 1}: nbgrader metadata {'for unknown cell ' + repr(grade_id) if md else 'that was not valid'} removed")

    def _deduplicate(self, nb, known, notes):
        last: dict[str, int] = {}
        for i, cell in enumerate(nb.cells):
            md = _nbgrader(cell)
            if md:
                last[md["grade_id"]] = i
        keep = []
        for i, cell in enumerate(nb.cells):
            md = _nbgrader(cell)
            if md and last[md["grade_id"]] != i:
                gid = md["grade_id"]
                if known[gid]["test"]:
                    notes.append(f"a copy of the test cell {gid} was removed")
                    continue
                del cell.metadata["nbgrader"]
                notes.append(f"cell {gid} appears more than once: the last copy is the graded one")
            keep.append(cell)
        nb.cells = keep

    def _reclaim(self, nb, known, notes):
        """Test cells whose grade_id was changed or removed: recognise them by their capture."""
        present = {md["grade_id"] for c in nb.cells if (md := _nbgrader(c))}
        for gid, info in known.items():
            if not info["test"] or gid in present or not info["captures"]:
                continue
            visible = HIDDEN_BLOCK_RE.sub("", info["source"]).strip()
            for cell in reversed(nb.cells):
                if cell.cell_type != "code" or _nbgrader(cell):
                    continue
                names = CAPTURE_RE.findall(cell.source)
                if (names and set(names) == set(info["captures"])) or (visible and cell.source.strip() == visible):
                    cell.metadata["nbgrader"] = self._canonical(info, {})
                    present.add(gid)
                    notes.append(f"the test cell {gid} had lost its grading metadata: restored")
                    break

    def _split_code_out_of_tests(self, nb, known, notes):
        """Definitions typed into a (locked) test cell survive in a cell of their own."""
        cells = []
        for cell in nb.cells:
            md = _nbgrader(cell)
            if md and known[md["grade_id"]]["test"] and cell.source.strip() != known[md["grade_id"]]["source"].strip():
                reference = known[md["grade_id"]]["source"]
                extra = _definitions_in(cell.source)
                if extra and extra.strip() not in reference:
                    extra = "\n".join(line for line in extra.splitlines() if "gradekit" not in line)
                    cells.append(new_code_cell(extra))
                    notes.append(f"code you typed into the test cell {md['grade_id']} was moved to a cell of its own before it")
            cells.append(cell)
        nb.cells = cells

    def _take_out_merged_tests(self, nb, known, notes):
        """A test cell merged into one of the student's cells: its lines are taken out.

        The test itself runs from its own (restored) cell after the definitions; left
        in the student's cell, its visible checks (which may call the very built-in the
        student must not use) would count as the student's code.
        """
        tests = []
        for info in known.values():
            if not info["test"]:
                continue
            # The whole test (hidden part included), else its visible part when that is
            # specific enough (two lines of code or more) not to match ordinary code.
            for block, least in ((info["source"], 1), (HIDDEN_BLOCK_RE.sub("", info["source"]), 2)):
                lines = [line.rstrip() for line in block.strip("\n").splitlines()]
                while lines and not lines[-1].strip():
                    lines.pop()
                if sum(1 for line in lines if line.strip() and not line.lstrip().startswith("#")) >= least:
                    tests.append((info["name"], lines))
        for i, cell in enumerate(nb.cells):
            md = _nbgrader(cell)
            if cell.cell_type != "code" or (md and known[md["grade_id"]]["test"]):
                continue
            for gid, block in tests:
                lines = cell.source.splitlines()
                stripped = [line.rstrip() for line in lines]
                at = _find_run(stripped, block)
                if at is None:
                    continue
                cell.source = "\n".join(lines[:at] + lines[at + len(block):]).strip("\n") + "\n"
                notes.append(f"cell {i + 1}: the test cell {gid} had been merged into it: the test's lines "
                             "were taken out (the test runs from its own cell)")

    def _strip_capture_calls(self, nb, known, notes):
        for i, cell in enumerate(nb.cells):
            md = _nbgrader(cell)
            if cell.cell_type != "code" or (md and known[md["grade_id"]]["test"]):
                continue
            if "gradekit" not in cell.source and "BEGIN HIDDEN TESTS" not in cell.source:
                continue
            source = HIDDEN_BLOCK_RE.sub("", cell.source)
            source = strip_gradekit_statements(source)
            if source != cell.source:
                cell.source = source
                notes.append(f"cell {i + 1}: lines that call the grader (gradekit) were removed from your own cell")

    def _insert_missing(self, nb, known, source_order, notes):
        present = {md["grade_id"] for c in nb.cells if (md := _nbgrader(c))}
        order = source_order or list(known)
        for gid in order:
            info = known.get(gid)
            if info is None or gid in present or not (info["test"] or info["locked"]) or info["solution"]:
                continue
            cell = (new_code_cell if info["cell_type"] == "code" else new_markdown_cell)(info["source"])
            cell.metadata["nbgrader"] = self._canonical(info, {})
            index = self._insert_index(nb, info, order, present)
            nb.cells.insert(index, cell)
            present.add(gid)
            what = "test cell" if info["test"] else "locked cell"
            notes.append(f"the {what} {gid} was missing from the notebook: it was put back")

    @staticmethod
    def _insert_index(nb, info, order, present) -> int:
        if info["test"]:
            defining = [i for i, c in enumerate(nb.cells)
                        if c.cell_type == "code" and defined_names(c.source) & set(info["captures"])]
            if defining:
                return defining[-1] + 1
        if info["name"] in order:
            before = order[:order.index(info["name"])]
            for prev in reversed(before):
                if prev in present:
                    for i, c in enumerate(nb.cells):
                        md = _nbgrader(c)
                        if md and md.get("grade_id") == prev:
                            return i + 1
            if not info["test"]:
                return 0
        return len(nb.cells)

    def _order_tests(self, nb, known, notes):
        """A test cell runs after the last cell that defines what it tests."""
        moved = True
        guard = 0
        while moved and guard < len(nb.cells) + 5:
            moved, guard = False, guard + 1
            for i, cell in enumerate(nb.cells):
                md = _nbgrader(cell)
                if not md or not known[md["grade_id"]]["test"]:
                    continue
                wanted = set(known[md["grade_id"]]["captures"])
                defining = [j for j, c in enumerate(nb.cells)
                            if c.cell_type == "code" and not _nbgrader_test(c, known) and defined_names(c.source) & wanted]
                if defining and defining[-1] > i:
                    nb.cells.insert(defining[-1], nb.cells.pop(i))
                    notes.append(f"the test cell {md['grade_id']} came before the code it tests: it now runs after it")
                    moved = True
                    break


def _nbgrader_test(cell, known) -> bool:
    md = _nbgrader(cell)
    return bool(md and known.get(md.get("grade_id"), {}).get("test"))
