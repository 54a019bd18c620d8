"""Grade a class in parallel with Dask, keeping nbgrader's gradebook single-writer.

Running the students' notebooks is the slow part (kernel start, ``import torch``,
the student's code and the hidden checks); writing grades is fast. SQLite, the
default gradebook, is not safe for concurrent writers (jupyter/nbgrader#174). So:

1. **grade, on the workers**: one Dask task per student runs nbgrader's autograde
   (``NbGraderAPI.autograde``, in the worker's process: nbgrader, torch and the checks
   are imported once per worker, not once per student; each kernel is still fresh and
   sandboxed) against a *private copy* of a snapshot of the gradebook, writing the
   autograded folder under ``<course>/.gradekit-cache/<assignment>/``. With
   ``CachingExecute.cache_mode=reuse`` each executed and judged notebook is stored there
   too, keyed by the hash of the sanitised submission, the grader's code and the seed: a
   notebook already there is not run again, so a class interrupted half-way resumes where
   it stopped. A task whose worker dies is retried on another worker;
2. **record, in this process, as each task ends**: the grades the worker's nbgrader wrote
   (auto scores, needs-manual-grade flags, auto comments, late penalties, the timestamp)
   are copied into the course's gradebook, and the autograded folder moved into place.
   This process is the gradebook's only writer; nothing is graded twice. A student whose
   grading failed on a worker is graded once more by ``nbgrader autograde`` itself.

Every notebook's hidden inputs come from its seed, derived from the course's secret
(:mod:`autograder.seeds`): grading in parallel or one by one gives the same gradebook.

A local cluster (one worker per core) is the default; pass a scheduler address to
use a real cluster, whose workers must see the course folder at the same path. Workers
that declare a ``GPU`` resource (a local cluster: one per GPU device) take an
assignment's notebooks one per GPU when its checks train models; other notebooks then
run on the CPU.

    python -m autograder.classgrade.parallel w1_conv_arithmetic [--workers 4 | --scheduler tcp://host:8786] [--gpus N]
"""
from __future__ import annotations

import argparse
import functools
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import warnings
from contextlib import closing
from pathlib import Path

from tqdm.auto import tqdm

from gradekit.public_cases import PACK_DIR

from .sequential import REPO, ClassResult, begin, nbgrader, summarize

#: Where workers leave their executed notebooks and autograded folders until they are recorded.
CACHE = ".gradekit-cache"


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


def snapshot_gradebook(course: Path, dest: Path) -> None:
    """A consistent copy of the course's gradebook (SQLite's backup: safe while formgrader writes)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with closing(sqlite3.connect(course / "gradebook.db")) as src, closing(sqlite3.connect(tmp)) as out:
        src.backup(out)
    tmp.replace(dest)


def submission_rows(db_url: str, course_id: str, assignment: str, student: str) -> dict:
    """What nbgrader's autograde wrote for one submission: its timestamp, and per notebook
    every grade's ``auto_score`` and ``needs_manual_grade``, every comment's ``auto_comment``
    and the late penalty."""
    from nbgrader.api import Gradebook

    with Gradebook(db_url, course_id) as gb:
        sub = gb.find_submission(assignment, student)
        return {"timestamp": sub.timestamp.isoformat() if sub.timestamp else None,
                "notebooks": {nb.name: {"late_submission_penalty": nb.late_submission_penalty,
                                        "grades": {g.name: [g.auto_score, g.needs_manual_grade] for g in nb.grades},
                                        "comments": {c.name: c.auto_comment for c in nb.comments}}
                              for nb in sub.notebooks}}


def record_one(course: Path, course_id: str, assignment: str, student: str, rows: dict) -> None:
    """Write one student's grading into the course: the rows :func:`submission_rows` read from
    the worker's private gradebook go into the course's gradebook (the only writer: the
    process that grades the class), and the worker's autograded folder replaces the
    student's."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id) as gb, warnings.catch_warnings():
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's add_submission, run in-process
        gb.update_or_create_student(student)
        extra = {"timestamp": rows["timestamp"]} if rows["timestamp"] else {}
        submission = gb.update_or_create_submission(assignment, student, **extra)
        for notebook in submission.notebooks:
            done = rows["notebooks"].get(notebook.name)
            if done is None:
                continue
            for grade in notebook.grades:
                grade.auto_score, grade.needs_manual_grade = done["grades"].get(grade.name, [None, True])
            for comment in notebook.comments:
                comment.auto_comment = done["comments"].get(comment.name)
            notebook.late_submission_penalty = done["late_submission_penalty"]
        gb.db.commit()
    staged = course / CACHE / assignment / "autograded" / student / assignment
    dest = course / "autograded" / student / assignment
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(staged, dest)


def execute_one(course: str, assignment: str, student: str, threads: int = 0,
                gpu: str | None = None) -> dict:
    """Dask task: grade one student's notebooks, in this (worker) process.

    Runs nbgrader's autograde with a private copy of the gradebook (the class's snapshot)
    and writes the autograded folder to the cache; the executed notebooks are cached too,
    so a task run again (a dead worker's, an interrupted class) does not execute them again.
    Returns what :func:`record_one` needs. ``threads``: intra-op threads for the kernel (0:
    the course's setting); a worker's share of its machine's cores, so that parallel kernels
    do not oversubscribe it. ``gpu``: the kernel's GPU setting ("auto" or "none"; None: the
    course's).
    """
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from sqlalchemy.exc import SAWarning

    start, began = time.perf_counter(), time.time()
    course_path = Path(course)
    cache = course_path / CACHE / assignment
    executor = {"cache_mode": "reuse", "cache_dir": str(cache), **({"threads": threads} if threads else {}),
                **({"gpu": gpu} if gpu else {})}
    with tempfile.TemporaryDirectory(prefix=f"grade-{student}-") as tmp:
        db = Path(tmp) / "gradebook.db"
        shutil.copy(cache / "gradebook.db", db)
        config = _course_config(course_path, CourseDirectory={
            "root": str(course_path), "db_url": f"sqlite:///{db}", "autograded_directory": str(cache / "autograded")},
            CachingExecute=executor)
        # The self-check's public cases (hundreds of generated files beside the source notebook and in
        # each submission) play no part in grading; nbgrader would match every one of them against
        # each ignore glob, listing their folder each time (about a second per notebook), and copy them.
        ignore = config.CourseDirectory.get("ignore") or CourseDirectory.class_traits()["ignore"].default()
        config.CourseDirectory.ignore = [*ignore, PACK_DIR]
        coursedir = CourseDirectory(config=config)
        with warnings.catch_warnings():  # nbgrader's API run in-process trips SQLAlchemy's session warnings
            warnings.simplefilter("ignore", SAWarning)
            result = NbGraderAPI(coursedir=coursedir, config=config).autograde(assignment, student, force=True,
                                                                               create=True)
            ok = bool(result.get("success"))
            rows = submission_rows(f"sqlite:///{db}", coursedir.course_id, assignment, student) if ok else None
    tail = "" if ok else " | ".join(str(result.get("error") or result.get("log") or "").strip().splitlines()[-3:])
    return {"student": student, "ok": ok, "seconds": time.perf_counter() - start, "tail": tail, "rows": rows,
            "course_id": coursedir.course_id, "span": (began, time.time())}


def warm_up(assignment: str) -> None:
    """Dask task: import what grading needs (nbgrader, the executor, torch, the checks)."""
    import nbgrader.apps  # noqa: F401

    from . import caching  # noqa: F401
    from ..checks import problems_for

    problems_for(assignment)


def local_cluster(workers: int, gpus: int = 0):
    """A Dask cluster on this machine: ``workers`` single-threaded worker processes, the first
    ``gpus`` of which declare one GPU each (``resources={"GPU": 1}``)."""
    from distributed import LocalCluster, Nanny, Scheduler, SpecCluster

    # silence_logs: a worker that outlives the cluster's 4 s goodbye (nbgrader's threads) is killed
    # quietly; errors still show
    if not gpus:
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                            silence_logs=logging.ERROR)
    specs = {f"worker-{i}": {"cls": Nanny, "options": {"nthreads": 1, "silence_logs": logging.ERROR,
                                                       **({"resources": {"GPU": 1}} if i < gpus else {})}}
             for i in range(max(workers, gpus))}
    return SpecCluster(workers=specs, silence_logs=logging.ERROR,
                       scheduler={"cls": Scheduler, "options": {"dashboard_address": None}})


def grade_parallel(course: Path, assignment: str, students: list[str] | None = None,
                   workers: int | None = None, scheduler: str | None = None,
                   progress: bool = True, gpus: int | None = None, client=None) -> ClassResult:
    """Grade ``students`` (default: every submission) of ``assignment`` on a Dask cluster.

    ``workers``: local workers (default one per core); ``scheduler``: the address of a running
    cluster instead. ``gpus``: local workers that declare a GPU (default: one per GPU device of
    this machine). An assignment with training smoke tests runs one notebook per GPU where
    the cluster declares GPUs (``resources={"GPU": 1}``); other notebooks then run on the CPU.
    ``client``: a Dask client to use (and leave open), e.g. one :func:`local_cluster` for
    several assignments; its kernels get an equal share of this machine's cores.
    """
    from dask.distributed import Client

    from ..isolation.sandbox.locks import gpu_devices

    start, began = time.perf_counter(), time.time()
    cluster = None
    own_client = client is None
    if own_client and scheduler:
        client = Client(scheduler)
    elif own_client:
        cluster = local_cluster(workers or os.cpu_count() or 1, len(gpu_devices()) if gpus is None else gpus)
        client = Client(cluster)
    retry: dict[str, str] = {}
    warming: list = []
    try:
        # the workers import nbgrader, torch and the checks while this process checks the submissions
        warming = [client.submit(warm_up, assignment, workers=[w], pure=False)
                   for w in client.scheduler_info()["workers"]]
        course, _, students, result = begin(course, assignment, students)
        if not (course / "gradebook.db").exists():
            nbgrader(["db", "assignment", "add", assignment], course)
        cache = course / CACHE / assignment  # kept until the class is recorded: an interrupted run resumes
        snapshot_gradebook(course, cache / "gradebook.db")  # what every worker starts from
        threads, gpu, options = _placement(client, scheduler, assignment)
        result.phases["start"] = time.perf_counter() - start  # cluster, submissions checked, gradebook snapshot
        # a task whose worker dies (killed, out of memory) goes to another worker
        futures = [client.submit(execute_one, str(course), assignment, s, threads, gpu, pure=False, retries=2,
                                 **options) for s in students]
        recording = _record_as_done(futures, course, assignment, result, retry, began, progress)
    finally:
        client.cancel(warming)
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
    executed = time.perf_counter() - start

    _grade_again(course, assignment, cache, retry, result, progress)
    result.graded = [s for s in students if s not in result.failed
                     and (course / "autograded" / s / assignment).exists()]
    for student in students:
        if student not in result.graded and student not in result.failed:
            result.failed[student] = "no autograded notebook"
    result.phases.update(grade=executed, record=recording, retry=time.perf_counter() - start - executed)
    if not result.failed:  # else kept: grading those students again reuses the others' work
        shutil.rmtree(cache, ignore_errors=True)
    result.seconds = time.perf_counter() - start
    return result


def _placement(client, scheduler: str | None, assignment: str) -> tuple[int, str | None, dict]:
    """How the notebooks run: the kernels' threads, their GPU setting ("auto", "none" or None:
    the course's) and the tasks' resources, from the workers the cluster declares."""
    info = client.scheduler_info()["workers"]
    n_workers = len(info) or 1
    # a local cluster's kernels get an equal share of this machine's cores
    threads = 0 if scheduler else max(1, (os.cpu_count() or 1) // n_workers)
    declared = sum(1 for w in info.values() if (w.get("resources") or {}).get("GPU"))
    options: dict = {}
    gpu = None
    if declared:
        if trains(assignment):  # one training notebook per GPU
            options["resources"], gpu = {"GPU": 1}, "auto"
        else:  # the GPUs stay free; these notebooks run on the CPU
            gpu = "none"
    return threads, gpu, options


def _record_as_done(futures, course: Path, assignment: str, result: ClassResult, retry: dict[str, str],
                    began: float, progress: bool) -> float:
    """As each task ends, its student's grading is written into the course (this process is the
    gradebook's only writer); a student whose grading failed goes to ``retry``. Returns the
    seconds spent recording."""
    from dask.distributed import as_completed

    recording = 0.0
    bar = tqdm(as_completed(futures), total=len(futures), desc=f"grade {assignment}",
               unit="student", disable=not progress)
    for future in bar:
        done = future.result()
        bar.set_postfix_str(f"{done['student']} {done['seconds']:.0f}s")
        result.tasks[done["student"]] = (done["span"][0] - began, done["span"][1] - began)
        if not done["ok"]:
            retry[done["student"]] = done["tail"]
            continue
        clock = time.perf_counter()
        try:  # the gradebook is written here, one student at a time, while the workers go on
            record_one(course, done["course_id"], assignment, done["student"], done["rows"])
        except Exception as exc:  # noqa: BLE001  (graded again below, by nbgrader itself)
            retry[done["student"]] = f"{type(exc).__name__}: {exc}"
        recording += time.perf_counter() - clock
    return recording


def _grade_again(course: Path, assignment: str, cache: Path, retry: dict[str, str], result: ClassResult,
                 progress: bool) -> None:
    """A student whose grading failed on a worker is graded once more by nbgrader itself, which
    reports why if it fails again (executed notebooks in the cache are reused)."""
    for student, tail in retry.items():
        if progress:
            tqdm.write(f"  {student}: grading on a worker failed ({tail}); grading again")
        proc = nbgrader(["autograde", assignment, "--create", "--force", f"--student={student}",
                         "--CachingExecute.cache_mode=reuse", f"--CachingExecute.cache_dir={cache}"],
                        course, check=False)
        if proc.returncode != 0:
            log = (proc.stdout + proc.stderr).strip().splitlines()
            result.failed[student] = " | ".join([line for line in log if student in line][-3:] or log[-3:])


@functools.lru_cache(maxsize=None)
def trains(assignment: str) -> bool:
    """Whether ``assignment``'s hidden checks include a training smoke test (a GPU helps)."""
    from ..cases import Draw
    from ..checks import problems_for
    from ..judge import case_rng

    return any(isinstance(case.request, dict) and case.request.get("proc") == "train"
               for name, problem in problems_for(assignment).items()
               for case in problem.cases(Draw(case_rng(0, name))))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Autograde a class in parallel with Dask.")
    parser.add_argument("assignment")
    parser.add_argument("--course", default=str(REPO / "course"))
    parser.add_argument("--workers", type=int, default=None, help="local workers (default: one per core)")
    parser.add_argument("--scheduler", default=None, help="address of a running Dask scheduler")
    parser.add_argument("--gpus", type=int, default=None,
                        help="local workers that declare a GPU (default: one per GPU of this machine)")
    parser.add_argument("--student", action="append")
    args = parser.parse_args(argv)
    result = grade_parallel(Path(args.course), args.assignment, args.student, args.workers, args.scheduler,
                            gpus=args.gpus)
    return summarize(Path(args.course), args.assignment, result)


if __name__ == "__main__":
    sys.exit(main())
