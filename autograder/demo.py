"""The main job: one full grading cycle of the course on this machine.

    make demo        (or: python -m autograder.demo [--out demo-output])

1. copies the course (``course/nbgrader_config.py`` and ``course/source``) to
   ``<out>/course`` and releases every assignment with ``nbgrader generate_assignment``
   and ``release_assignment`` into a local exchange (``<out>/exchange``);
2. a small class fetches each assignment, answers it and submits through the
   exchange: ``alice`` submits the reference solutions, ``bob`` the blank release,
   ``carol`` and ``dave`` partly wrong answers (plausible mistakes, written as
   edits of the references in ``autograder/demo_answers.py``), and ``eve`` a
   notebook file that is not valid JSON;
3. the instructor collects, autogrades (``autograder.classgrade.parallel``: stock
   ``nbgrader autograde`` with the trusted judge, notebooks executed in parallel on
   a local Dask cluster), generates feedback and exports the grades to CSV;
4. prints one row per problem and one column per student, and where the
   feedback and the CSV are.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
from dask.distributed import Client
from tqdm.auto import tqdm

from . import COURSE_ID
from .checks import ASSIGNMENTS
from .classgrade.parallel import grade_parallel, local_cluster
from .classgrade.report import class_table
from .classgrade.sequential import nbgrader
from .demo_answers import mistakes
from .isolation.sandbox.locks import gpu_devices
from .notebooks import COURSE, REPO, fill, reference_definitions, source_notebook



def class_answers(assignment: str) -> dict[str, dict[str, str] | None]:
    """Student -> {graded name: source} to write into their notebook (None: unreadable file).

    ``alice`` answers every graded name with the reference, ``bob`` none; ``carol``
    makes her mistakes (:mod:`autograder.demo_answers`) and answers the other names
    with the reference; ``dave`` makes his, answers the other names at odd positions
    and those at positions 0, 4, 8, ... (in the order of the references, from 0)
    with the reference and leaves the rest blank.
    """
    refs = reference_definitions(assignment)
    carol = {**refs, **mistakes(assignment, "carol")}
    dave_wrong = mistakes(assignment, "dave")
    dave = {name: dave_wrong.get(name, refs[name]) for i, name in enumerate(refs)
            if name in dave_wrong or i % 2 == 1 or i % 4 == 0}
    return {"alice": refs, "bob": {}, "carol": carol, "dave": dave, "eve": None}


def log(message: str) -> None:
    tqdm.write(message)


def run(out: Path) -> int:
    start = time.perf_counter()
    out = out.resolve()
    if out.exists():
        shutil.rmtree(out)
    course, exchange, homes = out / "course", out / "exchange", out / "students"
    course.mkdir(parents=True)
    exchange.mkdir()
    exchange.chmod(0o777)
    shutil.copy(COURSE / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(COURSE / "source", course / "source")
    assignments = [a for a in ASSIGNMENTS if source_notebook(a).exists()]
    ex = [f"--Exchange.root={exchange}"]

    log(f"[1/4] releasing {', '.join(assignments)}")
    for assignment in assignments:
        nbgrader(["generate_assignment", assignment, "--force"], course)
        nbgrader(["release_assignment", assignment, "--force", *ex], course)

    log("[2/4] students fetch, answer and submit through the exchange")
    answers = {a: class_answers(a) for a in assignments}
    students = list(next(iter(answers.values())))
    for student in tqdm(students, desc="students", unit="student"):
        home = homes / student
        home.mkdir(parents=True)
        for assignment in assignments:
            nbgrader(["fetch_assignment", assignment, f"--course={COURSE_ID}", *ex], home)
            path = home / assignment / f"{assignment}.ipynb"
            chosen = answers[assignment][student]
            if chosen is None:
                path.write_bytes(b'{"cells": [ {"cell_type": "code", "source": "def conv2d(x'  # truncated save
                                 b" \xff\xfe not json")
            else:
                nb = nbformat.read(path, as_version=4)
                nbformat.write(fill(nb, chosen), path)
            nbgrader(["submit", assignment, f"--course={COURSE_ID}", f"--student={student}", *ex], home)

    log("[3/4] collect, autograde, feedback, export")
    timings = {}
    # one local cluster for the five weeks: its workers import nbgrader, torch and the checks once
    with local_cluster(os.cpu_count() or 1, len(gpu_devices())) as cluster, Client(cluster) as client:
        for assignment in assignments:
            nbgrader(["collect", assignment, *ex], course)
            result = grade_parallel(course, assignment, client=client)
            timings[assignment] = result.seconds
            for student, reason in result.failed.items():
                log(f"  {assignment}/{student}: grading failed: {reason}")
            nbgrader(["generate_feedback", assignment, "--force"], course)
    csv = course / "grades.csv"
    nbgrader(["export", f"--CsvExportPlugin.to={csv}"], course)

    log("[4/4] results\n")
    print(class_table(course, assignments))
    print()
    for assignment, seconds in timings.items():
        print(f"autograded {assignment} for {len(students)} students in {seconds:.1f} s")
    print(f"feedback:  {course / 'feedback'}/<student>/<assignment>/<notebook>.html")
    print(f"grades:    {csv}")
    print(f"gradebook: {course / 'gradebook.db'}")
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "demo-output"), help="working folder (replaced)")
    args = parser.parse_args(argv)
    return run(Path(args.out))


if __name__ == "__main__":
    sys.exit(main())
