"""Grading a class: stock nbgrader against this project's sequential and parallel paths, side by side.

One synthetic class of N submissions per assignment (a full solution, the blank release,
a partly wrong one, in turn), graded in one run by

- stock:      plain ``nbgrader autograde`` over the class (one process, ``Execute``), the
              hidden test cells running the same checks inside the student's kernel
              (``autograder.inkernel``), as an ordinary nbgrader course would;
- sequential: ``autograder.classgrade`` (the course's config: sandboxed kernel, judge
              outside the kernel), one ``nbgrader autograde --student`` per student;
- parallel:   ``autograder.classgrade.parallel`` on a local Dask cluster, with 1 and with all workers.

Prints wall times, ratios over stock, the share of the machine's CPU time that was busy,
and the per-notebook fixed cost of the trusted paths: everything but the cells' own
execution (from the timings the grader records in each autograded notebook). For the
parallel path that is a notebook's time on its worker beyond its cells plus its share of
the recording; the class's start-up (cluster, imports) and drain are printed apart, and
also spread over the notebooks. Asserts nothing.

    python benchmarks/grading_overhead.py [--students 20] [--assignments w1_conv_arithmetic w2_normalization]
"""
from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.classgrade.parallel import grade_parallel  # noqa: E402
from autograder.classgrade.sequential import grade_class, nbgrader  # noqa: E402
from autograder.notebooks import COURSE, fill, reference_definitions  # noqa: E402
from autograder.seeds import SECRET_FILE  # noqa: E402

PLAIN_CONFIG = '''
import os
c = get_config()
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
from autograder import COURSE_ID
c.CourseDirectory.course_id = COURSE_ID
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}
c.Execute.timeout = 600
'''


def plain_source(nb, assignment: str):
    """The source notebook with each hidden capture replaced by in-kernel checks (and no self-check:
    a stock course has none)."""
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            points = meta.get("points", 0)
            names = re.findall(r'gradekit\.capture\("(\w+)"', cell.source)
            checks = [f'import autograder.inkernel as _g; _g.check("{assignment}", "{n}", globals(), {points})'
                      for n in names]
            # the check's value must be the cell's last expression to count as partial credit
            cell.source = "\n".join(["### BEGIN HIDDEN TESTS", *checks, "### END HIDDEN TESTS"])
    return nb


def wrong_answers(assignment: str) -> dict[str, str]:
    """Half the problems right, the rest from the wrong-answer corpus (one mistake each)."""
    sys.path.insert(0, str(REPO))
    from tests.corpus import corpus, load

    refs = reference_definitions(assignment)
    wrong = {}
    for path in corpus(assignment):
        name = path.stem.split("__")[0]
        if name not in wrong and not any(m in path.stem for m in ("calls_", "getattr", "by_name")):
            wrong[name] = load(path).source
    names = list(refs)
    return {n: (wrong.get(n, refs[n]) if i % 2 else refs[n]) for i, n in enumerate(names)}


def make_course(root: Path, assignment: str, plain: bool, submissions: dict[str, dict[str, str]]) -> None:
    src = root / "source" / assignment
    src.mkdir(parents=True)
    nb = nbformat.read(COURSE / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    if plain:
        (root / "nbgrader_config.py").write_text(PLAIN_CONFIG)
        nb = plain_source(nb, assignment)
    else:
        shutil.copy(COURSE / "nbgrader_config.py", root / "nbgrader_config.py")
    nbformat.write(nb, src / f"{assignment}.ipynb")
    nbgrader(["generate_assignment", assignment, "--force"], root)
    release = nbformat.read(root / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    for student, answers in submissions.items():
        dest = root / "submitted" / student / assignment
        dest.mkdir(parents=True)
        nbformat.write(fill(copy.deepcopy(release), answers), dest / f"{assignment}.ipynb")


def cell_seconds(root: Path, assignment: str) -> list[float]:
    """Per notebook: the seconds its cells ran (from the timings the grader recorded)."""
    seconds = []
    for path in sorted((root / "autograded").glob(f"*/{assignment}/{assignment}.ipynb")):
        t = nbformat.read(path, as_version=4).metadata.get("gradekit", {}).get("sandbox", {}).get("timings")
        if t:
            seconds.append(sum(s for _, _, s in t["cells"]))
    return seconds


PATHS = ("stock", "sequential", "parallel-1", "parallel-all")


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot (/proc/stat)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def timed(fn) -> tuple[float, float, object]:
    """(wall seconds, share of the machine's CPU time that was busy, fn's result)."""
    busy0, total0 = cpu_ticks()
    start = time.perf_counter()
    value = fn()
    busy1, total1 = cpu_ticks()
    return time.perf_counter() - start, (busy1 - busy0) / max(1, total1 - total0), value


def timeline(result, cells: list[float]) -> str:
    """How a parallel run spent its wall time, from its tasks' spans."""
    spans = sorted(result.tasks.values())
    if not spans:
        return ""
    first, last_start = spans[0][0], max(s for s, _ in spans)
    end = max(e for _, e in spans)
    task = sum(e - s for s, e in spans) / len(spans)
    return (f"first notebook began after {first:.1f} s (cluster, imports); notebooks took {task:.1f} s on a "
            f"worker, {task - sum(cells) / max(1, len(cells)):.1f} s of it not the cells; last one ended at "
            f"{end:.1f} s, {result.seconds - end:.1f} s before the run returned; recording {result.phases.get('record', 0):.1f} s "
            f"in all; last start at {last_start:.1f} s")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--assignments", nargs="+", default=["w1_conv_arithmetic", "w2_normalization"])
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS),
                        help="which paths to run (default: all four)")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for assignment in args.assignments:
            refs = reference_definitions(assignment)
            kinds = [refs, {}, wrong_answers(assignment)]
            submissions = {f"s{i:02d}": kinds[i % len(kinds)] for i in range(args.students)}
            runs: dict[str, float] = {}
            fixed: dict[str, float] = {}
            busy: dict[str, float] = {}
            plain = Path(tmp) / assignment / "stock"
            make_course(plain, assignment, True, submissions)
            if "stock" in args.paths:
                runs["stock nbgrader, checks in the kernel"], busy["stock nbgrader, checks in the kernel"], _ = timed(
                    lambda: nbgrader(["autograde", assignment, "--create", "--force"], plain))
            base = Path(tmp) / assignment / "trusted"
            make_course(base, assignment, False, submissions)
            (base / SECRET_FILE).write_text("benchmark-secret-" + "0" * 48)
            for path, label, workers, grade in (
                    ("sequential", "sequential (classgrade)", 1, lambda r: grade_class(r, assignment, progress=False)),
                    ("parallel-1", "parallel, 1 worker", 1,
                     lambda r: grade_parallel(r, assignment, workers=1, progress=False)),
                    ("parallel-all", f"parallel, {cores} workers", cores,
                     lambda r: grade_parallel(r, assignment, workers=cores, progress=False))):
                if path not in args.paths:
                    continue
                root = Path(tmp) / assignment / re.sub(r"\W+", "-", label)
                shutil.copytree(base, root)
                runs[label], busy[label], result = timed(lambda root=root, grade=grade: grade(root))
                cells = cell_seconds(root, assignment)
                if getattr(result, "tasks", None):
                    print(f"  {label}: {timeline(result, cells)}", flush=True)
                if cells:
                    mean_cells = sum(cells) / len(cells)
                    # machine-seconds per notebook (wall x workers / N) minus the cells' own execution:
                    # with the class's start-up and drain spread over its notebooks
                    spread = runs[label] * workers / args.students - mean_cells
                    if getattr(result, "tasks", None):  # what one notebook costs beyond its cells
                        spans = result.tasks.values()
                        fixed[label] = (sum(e - s for s, e in spans) / len(spans) - mean_cells
                                        + result.phases.get("record", 0.0) / len(spans))
                    else:  # one nbgrader process per notebook: all of it is the notebook's
                        fixed[label] = spread
                    print(f"  {label}: cells ran {mean_cells:.1f} s per notebook; fixed cost with the class's "
                          f"start-up and drain spread over its notebooks {spread:.1f} s", flush=True)
            stock = runs.get("stock nbgrader, checks in the kernel")
            print(f"\n{args.students} submissions of {assignment} (full, blank, partly wrong), {cores} cores")
            for label, seconds in runs.items():
                extra = f"  fixed cost {fixed[label]:4.1f} s per notebook" if label in fixed else ""
                extra += f"  CPU busy {100 * busy[label]:3.0f}%"
                print(f"  {label:<40s} {seconds:7.1f} s  {seconds / args.students:5.1f} s per notebook  "
                      + (f"{stock / seconds:4.2f}x stock" if stock else "") + extra, flush=True)


if __name__ == "__main__":
    main()
