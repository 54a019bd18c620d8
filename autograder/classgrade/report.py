"""Per-student, per-problem results read back from nbgrader's gradebook.

Scores come from the gradebook (what nbgrader recorded); the status of each
problem (passed, failed, error, timeout, ...) comes from the verdicts the judge
stored in each autograded notebook's metadata.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from .. import COURSE_ID


@dataclass
class Cell:
    score: float | None
    max_score: float
    status: str


def _db_url(course: Path) -> str:
    return f"sqlite:///{Path(course).resolve() / 'gradebook.db'}"


def _statuses(course: Path, student: str, assignment: str) -> dict[str, str]:
    statuses = {}
    for path in (Path(course) / "autograded" / student / assignment).glob("*.ipynb"):
        try:
            meta = nbformat.read(path, as_version=4).metadata.get("gradekit", {})
        except Exception:  # noqa: BLE001
            continue
        problems = meta.get("problems", {})
        for name, verdict in problems.items():  # a test cell that was not there
            statuses.setdefault(f"test_{name}", verdict.get("status", "?"))
        for cell_id, cell in meta.get("cells", {}).items():
            states = [problems.get(n, {}).get("status", "?") for n in cell.get("problems", [])]
            statuses[cell_id] = states[0] if len(set(states)) == 1 else "/".join(states)
    return statuses


def results(course: Path, assignments: list[str]) -> tuple[list[str], dict[tuple[str, str], dict[str, Cell]]]:
    """(students, {(assignment, grade_id): {student: Cell}}) for autograded test cells."""
    table: dict[tuple[str, str], dict[str, Cell]] = {}
    with Gradebook(_db_url(course), course_id=COURSE_ID) as gb:
        students = sorted(s.id for s in gb.students)
        for assignment in assignments:
            try:
                gb.find_assignment(assignment)
            except MissingEntry:
                continue
            for student in students:
                try:
                    submission = gb.find_submission(assignment, student)
                except MissingEntry:
                    continue
                statuses = _statuses(course, student, assignment)
                for nb in submission.notebooks:
                    for grade in nb.grades:
                        if grade.cell_type != "code" or grade.name.startswith("impl_"):
                            continue
                        missing = not (Path(course) / "autograded" / student / assignment / f"{nb.name}.ipynb").exists()
                        status = "missing" if missing else statuses.get(grade.name, "graded")
                        table.setdefault((assignment, grade.name), {})[student] = Cell(
                            grade.score, grade.max_score, status)
    return students, table


def unsandboxed(course: Path, assignments: list[str]) -> list[str]:
    """``student/assignment`` of every autograded notebook whose kernel ran without a sandbox."""
    found = []
    for assignment in assignments:
        for path in sorted((Path(course) / "autograded").glob(f"*/{assignment}/*.ipynb")):
            try:
                meta = nbformat.read(path, as_version=4).metadata.get("gradekit", {})
            except Exception:  # noqa: BLE001
                continue
            if (meta.get("sandbox") or {}).get("mode") == "none":
                found.append(f"{path.parent.parent.name}/{assignment}")
    return found


def class_table(course: Path, assignments: list[str]) -> str:
    """A plain-text table: one row per problem, one column per student.

    Opens with a warning when any notebook was graded without the sandbox.
    """
    students, table = results(course, assignments)
    if not table:
        return "(nothing graded yet)"
    warning = []
    bare = unsandboxed(course, assignments)
    if bare:
        warning = ["!" * 78,
                   f"WARNING: {len(bare)} notebook(s) were graded WITHOUT A SANDBOX "
                   "(JudgedExecute.sandbox = 'none'):",
                   "  their code could read solutions, hidden tests and the gradebook: " + ", ".join(bare[:6])
                   + (" ..." if len(bare) > 6 else ""),
                   "!" * 78]
    name_width = max(len(re.sub(r"^test_", "", gid)) for _, gid in table) + 8
    col = max(16, max(len(s) for s in students) + 2)
    lines = warning + ["problem".ljust(name_width) + "".join(s.rjust(col) for s in students)]
    totals = {s: [0.0, 0.0] for s in students}
    current = None
    for (assignment, grade_id), row in table.items():
        if assignment != current:
            lines.append(assignment)
            current = assignment
        cells = []
        max_score = next(iter(row.values())).max_score
        for s in students:
            cell = row.get(s)
            if cell is None:
                cells.append("-".rjust(col))
                continue
            totals[s][0] += cell.score or 0.0
            totals[s][1] += cell.max_score
            cells.append(f"{(cell.score or 0):g} {cell.status}".rjust(col))
        label = f"  {re.sub(r'^test_', '', grade_id)} ({max_score:g})"
        lines.append(label.ljust(name_width) + "".join(cells))
    lines.append("total".ljust(name_width) + "".join(f"{t[0]:g} / {t[1]:g}".rjust(col) for t in totals.values()))
    return "\n".join(lines)
