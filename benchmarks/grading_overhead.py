"""Wall time of the trusted grading pipeline vs plain nbgrader, side by side.

Both grade the same submissions of week 1 with the same hidden checks in one run:

- trusted: ``course/nbgrader_config.py`` (``JudgedExecute``: hidden inputs written by
  the judge, the kernel only records, verdicts computed outside the kernel);
- plain:   stock ``Execute``, the hidden test cells run the same checks inside
  the student's kernel (``autograder.inkernel``), as an ordinary nbgrader course would.

Also times the fixed costs that dominate small notebooks: a Python start with
``import torch`` and a kernel start-up. Prints times and ratios; asserts nothing.

    python benchmarks/grading_overhead.py [--students 4]
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.classgrade import nbgrader  # noqa: E402
from autograder.notebooks import COURSE, fill, reference_definitions  # noqa: E402

ASSIGNMENT = "w1_conv_arithmetic"
PLAIN_CONFIG = '''
import os
c = get_config()
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
from autograder import COURSE_ID
c.CourseDirectory.course_id = COURSE_ID
c.CourseDirectory.db_assignments = [{"name": "w1_conv_arithmetic"}]
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}
c.Execute.timeout = 600
'''


def plain_source(nb):
    """The source notebook with each hidden capture replaced by in-kernel checks."""
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            points = meta.get("points", 0)

            def repl(m, points=points):
                return (f'import autograder.inkernel as _g; _g.check("{ASSIGNMENT}", "{m.group(1)}", '
                        f'globals(), {points})')
            lines = cell.source.split("\n")
            hidden = [i for i, line in enumerate(lines) if "gradekit.capture" in line]
            for i in hidden:
                lines[i] = re.sub(r'import gradekit; gradekit\.capture\("(\w+)", globals\(\)\)', repl, lines[i])
            # the check's value must be the cell's last expression to count as partial credit
            if hidden:
                body = [line for j, line in enumerate(lines) if j not in hidden and "HIDDEN TESTS" not in line]
                cell.source = "\n".join(body + ["### BEGIN HIDDEN TESTS"] + [lines[i] for i in hidden]
                                        + ["### END HIDDEN TESTS"])
    return nb


def make_course(root: Path, plain: bool, submissions: dict[str, dict[str, str]]) -> None:
    src = root / "source" / ASSIGNMENT
    src.mkdir(parents=True)
    nb = nbformat.read(COURSE / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    if plain:
        (root / "nbgrader_config.py").write_text(PLAIN_CONFIG)
        nb = plain_source(nb)
    else:
        shutil.copy(COURSE / "nbgrader_config.py", root / "nbgrader_config.py")
    nbformat.write(nb, src / f"{ASSIGNMENT}.ipynb")
    nbgrader(["generate_assignment", ASSIGNMENT, "--force"], root)
    release = nbformat.read(root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    for student, answers in submissions.items():
        dest = root / "submitted" / student / ASSIGNMENT
        dest.mkdir(parents=True)
        nbformat.write(fill(nbformat.from_dict(release), answers), dest / f"{ASSIGNMENT}.ipynb")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=4)
    args = parser.parse_args()
    refs = reference_definitions(ASSIGNMENT)
    half = dict(list(refs.items())[: len(refs) // 2])
    kinds = [refs, {}, half]
    submissions = {f"s{i:02d}": kinds[i % len(kinds)] for i in range(args.students)}

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmp = Path(tmp)
        torch_s = timed(lambda: subprocess.run([sys.executable, "-c", "import torch"], check=True))
        trivial = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
        from nbclient import NotebookClient
        kernel_s = timed(lambda: NotebookClient(trivial, kernel_name="python3").execute())

        results = {}
        for label, plain in (("plain nbgrader (checks in the kernel)", True), ("trusted pipeline (judge outside)", False)):
            root = tmp / ("plain" if plain else "trusted")
            root.mkdir()
            make_course(root, plain, submissions)
            results[label] = timed(lambda root=root: nbgrader(["autograde", ASSIGNMENT, "--create", "--force"], root))

        print(f"{args.students} submissions of {ASSIGNMENT}, graded one after the other by one nbgrader call")
        print(f"  python + import torch:            {torch_s:6.1f} s")
        print(f"  kernel start + one cell:          {kernel_s:6.1f} s")
        for label, seconds in results.items():
            print(f"  {label:<38} {seconds:6.1f} s  ({seconds / args.students:.1f} s per notebook)")
        (plain_s, trusted_s) = results.values()
        print(f"  ratio trusted / plain:            {trusted_s / plain_s:6.2f}")


if __name__ == "__main__":
    main()
