"""Grade a class in parallel with Dask, keeping nbgrader's gradebook single-writer.

Running the students' notebooks is the slow part (kernel start, ``import torch``,
the student's code and the hidden checks); writing grades is fast. SQLite, the
default gradebook, is not safe for concurrent writers (jupyter/nbgrader#174). So:

1. **execute, in parallel**: one Dask task per student runs stock
   ``nbgrader autograde --student`` against a *private copy* of the gradebook and a
   private output folder, with ``CachingExecute.cache_mode=write``: each executed
   and judged notebook is stored in ``<course>/.gradekit-cache/<assignment>/``,
   keyed by the hash of the sanitised submission;
2. **record, serially**: one ordinary ``nbgrader autograde`` over the class with
   ``cache_mode=read`` finds every notebook in the cache and only writes the grades.

A local cluster (one worker per core) is the default; pass a scheduler address to
use a real cluster, whose workers must see the course folder at the same path.

    python -m autograder.parallel w1_conv_arithmetic [--workers 4 | --scheduler tcp://host:8786]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from tqdm.auto import tqdm
from traitlets import Enum, Unicode

from .classgrade import REPO, ClassResult, begin, nbgrader, summarize
from .preprocessor import JudgedExecute

CACHE = ".gradekit-cache"


class CachingExecute(JudgedExecute):
    """``JudgedExecute`` that can store its executed notebooks, or reuse stored ones.

    With ``cache_mode="off"`` (the default) it is exactly ``JudgedExecute``.
    """

    cache_mode = Enum(["off", "write", "read"], "off", help="Store or reuse executed notebooks.").tag(config=True)
    cache_dir = Unicode("", help="Folder of the stored notebooks.").tag(config=True)

    def _key(self, nb, resources) -> str:
        meta = resources.get("nbgrader", {})
        text = nbformat.writes(nb) + "\0" + str(meta.get("assignment")) + "\0" + str(meta.get("student"))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def preprocess(self, nb, resources):
        if self.cache_mode == "off" or not self.cache_dir:
            return super().preprocess(nb, resources)
        path = Path(self.cache_dir) / f"{self._key(nb, resources)}.ipynb"
        if self.cache_mode == "read" and path.exists():
            self.log.info("Using the executed notebook from %s", path)
            return nbformat.read(path, as_version=4), resources
        nb, resources = super().preprocess(nb, resources)
        if self.cache_mode == "write":
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            nbformat.write(nb, tmp)
            tmp.replace(path)
        return nb, resources


def execute_one(course: str, assignment: str, student: str, threads: int = 0) -> tuple[str, bool, float, str]:
    """Dask task: execute and judge one student's notebooks into the cache.

    ``threads``: intra-op threads for the kernel (0: library default); a worker's
    share of its machine's cores, so that parallel kernels do not oversubscribe it.
    """
    start = time.perf_counter()
    course_path = Path(course)
    cache = course_path / CACHE / assignment
    with tempfile.TemporaryDirectory(prefix=f"grade-{student}-") as tmp:
        db = Path(tmp) / "gradebook.db"
        shutil.copy(course_path / "gradebook.db", db)
        proc = nbgrader(["autograde", assignment, "--student", student, "--create", "--force",
                         f"--CourseDirectory.db_url=sqlite:///{db}",
                         f"--CourseDirectory.autograded_directory={Path(tmp) / 'autograded'}",
                         "--CachingExecute.cache_mode=write", f"--CachingExecute.cache_dir={cache}",
                         *([f"--CachingExecute.threads={threads}"] if threads else [])],
                        course_path, check=False)
    tail = "" if proc.returncode == 0 else " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
    return student, proc.returncode == 0, time.perf_counter() - start, tail


def grade_parallel(course: Path, assignment: str, students: list[str] | None = None,
                   workers: int | None = None, scheduler: str | None = None,
                   progress: bool = True) -> ClassResult:
    from dask.distributed import Client, LocalCluster, as_completed

    course, start, students, result = begin(course, assignment, students)
    if not (course / "gradebook.db").exists():
        nbgrader(["db", "assignment", "add", assignment], course)
    cache = course / CACHE / assignment
    shutil.rmtree(cache, ignore_errors=True)

    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                               processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        # a local cluster's kernels get an equal share of this machine's cores
        n_workers = len(client.scheduler_info()["workers"]) or 1
        threads = 0 if scheduler else max(1, (os.cpu_count() or 1) // n_workers)
        futures = [client.submit(execute_one, str(course), assignment, s, threads, pure=False) for s in students]
        bar = tqdm(as_completed(futures), total=len(futures), desc=f"execute {assignment}",
                   unit="student", disable=not progress)
        for future in bar:
            student, ok, seconds, tail = future.result()
            bar.set_postfix_str(f"{student} {seconds:.0f}s")
            if not ok:
                tqdm.write(f"  {student}: execution failed ({tail}); retried when recording")
    finally:
        client.close()
        if not scheduler:
            cluster.close()

    # Record: one nbgrader process writes every grade, reusing the executed notebooks.
    if progress:
        tqdm.write(f"recording grades for {len(students)} students")
    base = ["autograde", assignment, "--create", "--force",
            "--CachingExecute.cache_mode=read", f"--CachingExecute.cache_dir={cache}"]
    everyone = sorted(p.parent.name for p in (course / "submitted").glob(f"*/{assignment}"))
    # nbgrader takes one --student glob: all at once when grading everyone, else one by one
    batches = [base] if students == everyone else [base + [f"--student={s}"] for s in students]
    outputs = [nbgrader(args, course, check=False) for args in batches]
    log = "\n".join(p.stdout + p.stderr for p in outputs).strip().splitlines()
    for student in students:
        if (course / "autograded" / student / assignment).exists():
            result.graded.append(student)
        else:
            result.failed[student] = " | ".join([line for line in log if student in line][-3:] or log[-3:])
    shutil.rmtree(cache, ignore_errors=True)
    result.seconds = time.perf_counter() - start
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Autograde a class in parallel with Dask.")
    parser.add_argument("assignment")
    parser.add_argument("--course", default=str(REPO / "course"))
    parser.add_argument("--workers", type=int, default=None, help="local workers (default: one per core)")
    parser.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    parser.add_argument("--student", action="append")
    args = parser.parse_args(argv)
    result = grade_parallel(Path(args.course), args.assignment, args.student, args.workers, args.scheduler)
    return summarize(Path(args.course), args.assignment, result)


if __name__ == "__main__":
    sys.exit(main())
