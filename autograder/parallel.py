"""Grade a class in parallel with Dask, keeping nbgrader's gradebook single-writer.

Running the students' notebooks is the slow part (kernel start, ``import torch``,
the student's code and the hidden checks); writing grades is fast. SQLite, the
default gradebook, is not safe for concurrent writers (jupyter/nbgrader#174). So:

1. **execute, in parallel**: one Dask task per student runs nbgrader's autograde
   (``NbGraderAPI.autograde``, in the worker's process: nbgrader, torch and the checks
   are imported once per worker, not once per student) against a *private copy* of the
   gradebook and a private output folder, with ``CachingExecute.cache_mode=reuse``:
   each executed and judged notebook is stored in ``<course>/.gradekit-cache/<assignment>/``,
   keyed by the hash of the sanitised submission, the grader's code and the course's
   secret; a notebook already there is not run again, so a class interrupted half-way
   resumes where it stopped. A task whose worker dies is retried on another worker;
2. **record, serially**: one ordinary ``nbgrader autograde`` over the class with
   ``cache_mode=read`` finds every notebook in the cache and only writes the grades.

Every notebook's hidden inputs come from its seed, derived from the course's secret
(:mod:`autograder.seeds`): grading in parallel or one by one gives the same gradebook.

A local cluster (one worker per core) is the default; pass a scheduler address to
use a real cluster, whose workers must see the course folder at the same path.

    python -m autograder.parallel w1_conv_arithmetic [--workers 4 | --scheduler tcp://host:8786]
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
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

    cache_mode = Enum(["off", "write", "read", "reuse"], "off",
                      help="Store executed notebooks ('write'), use stored ones ('read'), or use a stored "
                           "one when there is one and store the others ('reuse').").tag(config=True)
    cache_dir = Unicode("", help="Folder of the stored notebooks.").tag(config=True)

    def _key(self, nb, resources) -> str:
        meta = resources.get("nbgrader", {})
        text = "\0".join((nbformat.writes(nb), str(meta.get("assignment")), str(meta.get("student")),
                          grader_digest(), str(self.seed if self.seed is not None else self._seed(resources))))
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def preprocess(self, nb, resources):
        if self.cache_mode == "off" or not self.cache_dir:
            return super().preprocess(nb, resources)
        path = Path(self.cache_dir) / f"{self._key(nb, resources)}.ipynb"
        if self.cache_mode in ("read", "reuse") and path.exists():
            self.log.info("Using the executed notebook from %s", path)
            return nbformat.read(path, as_version=4), resources
        nb, resources = super().preprocess(nb, resources)
        if self.cache_mode in ("write", "reuse"):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            nbformat.write(nb, tmp)
            tmp.replace(path)
        return nb, resources


@functools.lru_cache(maxsize=1)
def grader_digest() -> str:
    """A hash of the grader's code and the references: a cached grading is reused only by the same grader."""
    sha = hashlib.sha256()
    for folder in ("autograder", "solutions", "gradekit"):
        for path in sorted((REPO / folder).rglob("*.py")):
            sha.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return sha.hexdigest()


def _course_config(course: Path, **overrides):
    """The course's ``nbgrader_config.py`` as a traitlets Config, with ``overrides``
    (``{"Section": {"trait": value}}``)."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    config.merge(PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config())
    for section, traits in overrides.items():
        for name, value in traits.items():
            config[section][name] = value
    return config


def execute_one(course: str, assignment: str, student: str, threads: int = 0) -> tuple[str, bool, float, str]:
    """Dask task: execute and judge one student's notebooks into the cache.

    Runs nbgrader's autograde in this (worker) process with a private gradebook and output
    folder. ``threads``: intra-op threads for the kernel (0: library default); a worker's
    share of its machine's cores, so that parallel kernels do not oversubscribe it.
    """
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from sqlalchemy.exc import SAWarning

    start = time.perf_counter()
    course_path = Path(course)
    cache = course_path / CACHE / assignment
    with tempfile.TemporaryDirectory(prefix=f"grade-{student}-") as tmp:
        db = Path(tmp) / "gradebook.db"
        shutil.copy(course_path / "gradebook.db", db)
        config = _course_config(course_path, CourseDirectory={
            "root": str(course_path), "db_url": f"sqlite:///{db}", "autograded_directory": str(Path(tmp) / "autograded")},
            CachingExecute={"cache_mode": "reuse", "cache_dir": str(cache), **({"threads": threads} if threads else {})})
        coursedir = CourseDirectory(config=config)
        with warnings.catch_warnings():  # nbgrader's API run in-process trips SQLAlchemy's session warnings
            warnings.simplefilter("ignore", SAWarning)
            result = NbGraderAPI(coursedir=coursedir, config=config).autograde(assignment, student, force=True,
                                                                               create=True)
    ok = bool(result.get("success"))
    tail = "" if ok else " | ".join(str(result.get("error") or result.get("log") or "").strip().splitlines()[-3:])
    return student, ok, time.perf_counter() - start, tail


def grade_parallel(course: Path, assignment: str, students: list[str] | None = None,
                   workers: int | None = None, scheduler: str | None = None,
                   progress: bool = True) -> ClassResult:
    from dask.distributed import Client, LocalCluster, as_completed

    course, start, students, result = begin(course, assignment, students)
    if not (course / "gradebook.db").exists():
        nbgrader(["db", "assignment", "add", assignment], course)
    cache = course / CACHE / assignment  # kept until the class is recorded: an interrupted run resumes

    if scheduler:
        client = Client(scheduler)
    else:
        # silence_logs: a worker that outlives the cluster's 4 s goodbye (nbgrader's threads) is killed
        # quietly; errors still show
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                               processes=True, dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        # a local cluster's kernels get an equal share of this machine's cores
        n_workers = len(client.scheduler_info()["workers"]) or 1
        threads = 0 if scheduler else max(1, (os.cpu_count() or 1) // n_workers)
        # a task whose worker dies (killed, out of memory) goes to another worker
        futures = [client.submit(execute_one, str(course), assignment, s, threads, pure=False, retries=2)
                   for s in students]
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
    recording = time.perf_counter()
    outputs = [nbgrader(args, course, check=False) for args in batches]
    result.phases = {"execute": recording - start, "record": time.perf_counter() - recording}
    log = "\n".join(p.stdout + p.stderr for p in outputs).strip().splitlines()
    for student in students:
        if (course / "autograded" / student / assignment).exists():
            result.graded.append(student)
        else:
            result.failed[student] = " | ".join([line for line in log if student in line][-3:] or log[-3:])
    if not result.failed:  # else kept: grading those students again reuses the others' work
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
