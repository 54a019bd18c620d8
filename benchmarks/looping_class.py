"""Wall time of grading a class in which some submissions loop forever.

A class of N week-1 submissions (a full solution, the blank release, a partly wrong
one, in turn), of which two loop forever: one at the top of a solution cell (stopped by
``JudgedExecute.code_cell_timeout``, the problems that cell defines end "timeout"), one
inside ``conv2d`` when it is called (stopped by the case's own time limit in the kernel).
Graded with ``autograder.classgrade.parallel`` on a local cluster (all workers); prints the wall
time, and each looping student's statuses. Asserts nothing.

    python benchmarks/looping_class.py [--students 8] [--workers N]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from grading_overhead import make_course, wrong_answers  # noqa: E402

from autograder.classgrade.parallel import grade_parallel  # noqa: E402
from autograder.classgrade.report import results  # noqa: E402
from autograder.notebooks import reference_definitions  # noqa: E402
from autograder.seeds import SECRET_FILE  # noqa: E402

A = "w1_conv_arithmetic"
LOOP_IN_CELL = "while True:  # never ends\n    pass\n\n"
LOOP_IN_CONV2D = '''
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Never returns."""
    while True:
        pass
'''


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    refs = reference_definitions(A)
    kinds = [refs, {}, wrong_answers(A)]
    submissions = {f"s{i:02d}": kinds[i % len(kinds)] for i in range(args.students - 2)}
    submissions["loops-in-cell"] = {**refs, "conv_output_size": LOOP_IN_CELL + refs["conv_output_size"]}
    submissions["loops-in-conv2d"] = {**refs, "conv2d": LOOP_IN_CONV2D}
    with tempfile.TemporaryDirectory(prefix="looping-") as tmp:
        root = Path(tmp) / "course"
        make_course(root, A, False, submissions)
        (root / SECRET_FILE).write_text("benchmark-secret-" + "0" * 48)
        start = time.perf_counter()
        result = grade_parallel(root, A, workers=args.workers, progress=True)
        wall = time.perf_counter() - start
        students, table = results(root, [A])
        print(f"\n{args.students} submissions of {A}, 2 of them looping forever: graded {len(result.graded)} "
              f"({len(result.failed)} failed) in {wall:.1f} s")
        for (name, start_s, end_s) in sorted((s, *t) for s, t in result.tasks.items()):
            print(f"  {name:16s} {end_s - start_s:6.1f} s on a worker")
        for student in ("loops-in-cell", "loops-in-conv2d"):
            statuses = {gid.removeprefix("test_"): (row[student].status, row[student].score)
                        for (_, gid), row in table.items() if row[student].status not in ("passed",)}
            total = sum(row[student].score or 0 for row in table.values())
            print(f"  {student}: total {total:g}; not passed: {statuses}")


if __name__ == "__main__":
    main()
