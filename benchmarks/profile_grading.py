"""Where one notebook's grading seconds go, per phase, from real grading runs.

For each assignment, a synthetic class (a full solution, the blank release, half the
problems solved) is graded one student at a time, either

- ``--path worker`` (the default): as a parallel-grading worker does, in this process
  (``autograder.classgrade.parallel.execute_one`` then ``record_one``; imports paid once, before the
  first student, and printed apart), or
- ``--path process``: with one ``nbgrader autograde --student`` process per student, as
  ``autograder.classgrade`` does.

The wall time of each student is split with the timings the grader records in the
autograded notebook (``metadata.gradekit.sandbox.timings``):

- nbgrader: its bookkeeping (sanitising, gradebook, writing results; with ``process``
  also the process start and imports): the wall time minus the grader's own total;
- prepare: scratch copy and the judge's hidden inputs; sandbox: its set-up and the
  static scan; kernel start: the sandboxed kernel up to the first cell;
- cells: the notebook's own cells (solution, other, test cells; test cells include
  running the hidden cases); kernel stop: the kernel's end and the sandbox's clean-up;
  judge: the verdicts; record: writing the grades into the course's gradebook (worker path).

The fixed cost is everything but the cells' own execution. Prints a table; asserts nothing.

    python benchmarks/profile_grading.py [ASSIGNMENT ...] [--students 3] [--path worker|process]
"""
from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.classgrade.sequential import nbgrader  # noqa: E402
from autograder.notebooks import COURSE, fill, reference_definitions, source_notebook  # noqa: E402
from autograder.seeds import SECRET_FILE  # noqa: E402

PHASES = ("nbgrader", "prepare", "sandbox", "kernel start", "solution cells", "other cells", "test cells",
          "kernel stop", "judge", "record")


def make_class(root: Path, assignment: str, students: int) -> list[str]:
    """A course with ``assignment`` released and ``students`` submissions: full, blank, half."""
    import shutil

    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(COURSE / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(source_notebook(assignment).parent, root / "source" / assignment,
                    ignore=shutil.ignore_patterns("selfcheck"))
    nbgrader(["generate_assignment", assignment, "--force"], root)
    release = nbformat.read(root / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    refs = reference_definitions(assignment)
    kinds = [refs, {}, dict(list(refs.items())[: len(refs) // 2])]
    names = []
    for i in range(students):
        name = f"s{i:02d}"
        dest = root / "submitted" / name / assignment
        dest.mkdir(parents=True)
        nbformat.write(fill(copy.deepcopy(release), kinds[i % len(kinds)]), dest / f"{assignment}.ipynb")
        names.append(name)
    return names


def split(wall: float, nb_path: Path, record: float = 0.0) -> dict[str, float]:
    """One student's wall time split into the phases, from the autograded notebook's timings."""
    nb = nbformat.read(nb_path, as_version=4)
    t = nb.metadata["gradekit"]["sandbox"]["timings"]
    cells = {kind: sum(s for _, k, s in t["cells"] if k == kind) for kind in ("solution", "other", "test")}
    row = {"wall": wall + record, "nbgrader": wall - t["total"], "prepare": t["prepare"], "sandbox": t["sandbox"],
           "kernel start": t.get("kernel start", 0.0), "kernel stop": t.get("kernel stop", 0.0),
           "judge": t["judge"], "record": record, **{f"{kind} cells": s for kind, s in cells.items()}}
    row["fixed"] = row["wall"] - sum(cells.values())
    return row


def profile_process(root: Path, assignment: str, student: str) -> dict[str, float]:
    start = time.perf_counter()
    nbgrader(["autograde", assignment, "--student", student, "--create", "--force"], root)
    return split(time.perf_counter() - start, root / "autograded" / student / assignment / f"{assignment}.ipynb")


def profile_worker(root: Path, assignment: str, student: str) -> dict[str, float]:
    from autograder.classgrade.parallel import execute_one, record_one

    done = execute_one(str(root), assignment, student)
    clock = time.perf_counter()
    record_one(root, done["course_id"], assignment, student, done["rows"])
    record = time.perf_counter() - clock
    return split(done["seconds"], root / "autograded" / student / assignment / f"{assignment}.ipynb", record)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", default=["w1_conv_arithmetic", "w2_normalization"])
    parser.add_argument("--students", type=int, default=3)
    parser.add_argument("--path", choices=("worker", "process"), default="worker")
    args = parser.parse_args(argv)
    header = f"{'assignment':26s} {'student':8s}" + "".join(f"{p:>{max(8, len(p) + 1)}s}" for p in PHASES) \
        + f"{'fixed':>9s}{'wall':>8s}"
    print(header)
    with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
        for assignment in args.assignments:
            root = Path(tmp) / assignment
            rows = []
            students = make_class(root, assignment, args.students)
            profile = profile_process
            if args.path == "worker":
                from autograder.classgrade.parallel import CACHE, snapshot_gradebook, warm_up

                clock = time.perf_counter()
                warm_up(assignment)
                print(f"{assignment:26s} {'imports':8s} {time.perf_counter() - clock:.1f} s, once per worker",
                      flush=True)
                (root / SECRET_FILE).write_text("profile-secret-" + "0" * 48)
                snapshot_gradebook(root, root / CACHE / assignment / "gradebook.db")
                profile = profile_worker
            for student in students:
                row = profile(root, assignment, student)
                rows.append(row)
                print(f"{assignment:26s} {student:8s}" + "".join(f"{row[p]:{max(8, len(p) + 1)}.1f}" for p in PHASES)
                      + f"{row['fixed']:9.1f}{row['wall']:8.1f}", flush=True)
            mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
            print(f"{assignment:26s} {'mean':8s}" + "".join(f"{mean[p]:{max(8, len(p) + 1)}.1f}" for p in PHASES)
                  + f"{mean['fixed']:9.1f}{mean['wall']:8.1f}")
    print("seconds; fixed = wall minus the cells' own execution (solution, other and test cells)")


if __name__ == "__main__":
    main()
