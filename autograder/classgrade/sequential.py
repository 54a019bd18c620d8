"""Grade a whole class with stock ``nbgrader autograde``, one student at a time,
with a progress bar, a pre-flight check of every submission and a report.

    python -m autograder.classgrade w1_conv_arithmetic [--course course/]

Before grading, every submitted notebook is read: a file that is not a valid
notebook (bad JSON, empty, too large) is moved aside as ``<name>.ipynb.unreadable``
and replaced by an empty notebook marked unreadable, so that nbgrader grades the
student (zero for each cell, the reason in the feedback) instead of failing; one
that can be repaired (bytes that are not UTF-8) is repaired, the original kept as
``<name>.ipynb.orig``. A student
whose grading fails is reported and the others are still graded; nbgrader's
gradebook is only ever written by nbgrader itself.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

REPO = Path(__file__).resolve().parent.parent.parent


def nbgrader_env() -> dict:
    """Environment for nbgrader subprocesses: this interpreter's bin first (alembic)."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def nbgrader(args: list[str], cwd: Path, check: bool = True, quiet: bool = True) -> subprocess.CompletedProcess:
    """Run ``nbgrader <args>`` in ``cwd`` (the course root, or a student's folder)."""
    cmd = [sys.executable, "-m", "nbgrader", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=nbgrader_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    if not quiet:
        sys.stdout.write(proc.stdout)
    return proc


@dataclass
class ClassResult:
    graded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    #: Seconds per phase (parallel grading: "start", "grade" on the workers with "record" in this
    #: process as each student ends, "retry" of the students whose grading failed on a worker).
    phases: dict[str, float] = field(default_factory=dict)
    #: Parallel grading: each student's task, (start, end) in seconds from the start of the run.
    tasks: dict[str, tuple[float, float]] = field(default_factory=dict)


def check_submissions(course: Path, assignment: str) -> dict[str, str]:
    """Repair or replace submitted notebooks that cannot be graded as they are.

    Returns ``{student: what was done}``. An unreadable notebook is moved aside as
    ``<name>.ipynb.unreadable`` and replaced by an empty notebook marked unreadable
    (see :func:`autograder.isolation.sanitize.submission.prepare_file`): nbgrader grades the student, the
    grade is zero and the feedback says why. nbgrader's ``pre_convert_hook`` does
    the same, so a course graded with plain ``nbgrader autograde`` is safe too.
    """
    from ..isolation.sanitize.submission import prepare_file

    problems = {}
    for path in sorted((course / "submitted").glob(f"*/{assignment}/*.ipynb")):
        student = path.parent.parent.name
        done = prepare_file(path)
        if done:
            problems[student] = f"{path.name}: {done}"
    return problems


def begin(course: Path, assignment: str, students: list[str] | None):
    """The course folder, the start time, the students to grade (default: every submission)
    and a result that already lists the unreadable submissions."""
    course = Path(course).resolve()
    start = time.perf_counter()
    if students is None:
        students = sorted(p.parent.name for p in (course / "submitted").glob(f"*/{assignment}"))
    return course, start, students, ClassResult(unreadable=check_submissions(course, assignment))


def grade_class(course: Path, assignment: str, students: list[str] | None = None,
                progress: bool = True) -> ClassResult:
    course, start, students, result = begin(course, assignment, students)
    for student, reason in result.unreadable.items():
        tqdm.write(f"  {student}: {reason}")
    bar = tqdm(students, desc=f"autograde {assignment}", unit="student", disable=not progress)
    for student in bar:
        bar.set_postfix_str(student)
        proc = nbgrader(["autograde", assignment, "--student", student, "--create", "--force"], course, check=False)
        if proc.returncode == 0:
            result.graded.append(student)
        else:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
            result.failed[student] = " | ".join(tail)
            tqdm.write(f"  {student}: grading failed, see {course / 'nbgrader.log'}")
    result.seconds = time.perf_counter() - start
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Autograde every submission of an assignment.")
    parser.add_argument("assignment")
    parser.add_argument("--course", default=str(REPO / "course"), help="nbgrader course root")
    parser.add_argument("--student", action="append", help="only these students (repeatable)")
    args = parser.parse_args(argv)
    return summarize(Path(args.course), args.assignment, grade_class(Path(args.course), args.assignment, args.student))


def summarize(course: Path, assignment: str, result) -> int:
    """Print the class table and a one-line summary of ``result``; the exit status."""
    from .report import class_table

    print(class_table(course, [assignment]))
    phases = "".join(f", {name} {seconds:.1f} s" for name, seconds in getattr(result, "phases", {}).items())
    print(f"graded {len(result.graded)} students in {result.seconds:.1f} s{phases}; "
          f"{len(result.failed)} failed, {len(result.unreadable)} unreadable notebooks")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
