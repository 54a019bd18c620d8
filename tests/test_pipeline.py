"""End to end through stock nbgrader: release, submissions, autograde, feedback.

One class is graded once, in parallel on a local Dask cluster (module fixture),
and each test reads what it needs: a full solution, the blank release, a partly
wrong submission, one whose ``conv2d`` test cell was deleted and one whose file is
not JSON.
"""
from __future__ import annotations

import copy
import shutil
import time

import nbformat
import pytest
from nbgrader.api import Gradebook

from autograder import COURSE_ID
from autograder.classgrade.parallel import grade_parallel
from autograder.classgrade.report import class_table, results
from autograder.classgrade.sequential import grade_class, nbgrader
from autograder.notebooks import reference_definitions
from autograder.seeds import SECRET_FILE

from .conftest import make_course, release_notebook, submit

pytestmark = pytest.mark.slow
A = "w1_conv_arithmetic"

WRONG_CONV_OUTPUT_SIZE = '''
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Padding counted once instead of per side."""
    return (size + padding - dilation * (kernel_size - 1) - 1) // stride + 1
'''
WRONG_CONV2D = '''
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """True convolution: the kernel is flipped."""
    import torch
    import torch.nn.functional as F
    w = torch.flip(weight, dims=(-2, -1))
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)
    oh = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    out = (w.reshape(f, -1) @ cols).reshape(n, f, oh, ow)
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory, have_w1):
    if not have_w1:
        pytest.fail("the week-1 source notebook is missing")
    from autograder.notebooks import fill

    root = make_course(tmp_path_factory.mktemp("course"), [A])
    release = release_notebook(root, A)
    refs = reference_definitions(A)
    submit(root, "full", A, fill(copy.deepcopy(release), refs))
    submit(root, "blank", A, release)
    partial = {**refs, "conv_output_size": WRONG_CONV_OUTPUT_SIZE, "conv2d": WRONG_CONV2D}
    submit(root, "partial", A, fill(copy.deepcopy(release), partial))
    nocell = fill(copy.deepcopy(release), refs)
    nocell.cells = [c for c in nocell.cells
                    if c.metadata.get("nbgrader", {}).get("grade_id") not in ("impl_conv2d", "test_conv2d")]
    submit(root, "nocell", A, nocell)
    submit(root, "broken", A, raw=b'{"cells": [{"cell_type": "code", "source": "def conv2d(')
    # a due date, and one submission a day late: the timestamp and the late penalty are recorded too
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        gb.update_or_create_assignment(A, duedate="2026-11-01 12:00:00 UTC")
    (root / "submitted" / "partial" / A / "timestamp.txt").write_text("2026-11-02 12:00:00 UTC")
    (root / "submitted" / "full" / A / "timestamp.txt").write_text("2026-10-31 12:00:00 UTC")
    result = grade_parallel(root, A, workers=2, progress=False)
    students, table = results(root, [A])
    return root, result, students, table


def gradebook_rows(root) -> dict:
    """Everything autograde writes in the gradebook, per student: timestamp, lateness, and per
    notebook the late penalty, each grade's auto score and flag, each comment's auto comment."""
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        return {sub.student.id: (str(sub.timestamp), sub.total_seconds_late, {
            nb.name: (nb.late_submission_penalty, sorted((g.name, g.auto_score, g.needs_manual_grade) for g in nb.grades),
                      sorted((c.name, c.auto_comment) for c in nb.comments)) for nb in sub.notebooks})
            for sub in gb.find_assignment(A).submissions}


def scores(table, student):
    return {gid.removeprefix("test_"): row[student] for (_, gid), row in table.items()}


def test_every_student_is_in_the_gradebook(graded):
    root, result, students, _ = graded
    assert students == ["blank", "broken", "full", "nocell", "partial"]
    assert set(result.graded) == set(students) and not result.failed
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        assert len(gb.find_assignment(A).submissions) == 5


def test_full_solution_gets_full_marks(graded):
    *_, table = graded
    for name, cell in scores(table, "full").items():
        assert cell.score == cell.max_score > 0, name
        assert cell.status == "passed", name


def test_blank_release_gets_zero(graded):
    *_, table = graded
    assert sum(c.score or 0 for c in scores(table, "blank").values()) == 0


def test_partly_wrong_submission_loses_points_where_wrong(graded):
    *_, table = graded
    cells = scores(table, "partial")
    assert cells["conv_output_size"].score < cells["conv_output_size"].max_score
    assert cells["conv2d"].score < cells["conv2d"].max_score
    assert cells["conv2d"].status == "failed"
    right = [c for n, c in cells.items() if n not in ("conv_output_size", "conv2d")]
    assert right and all(c.score == c.max_score for c in right)


def test_deleted_cells_score_zero_for_that_problem_only(graded):
    """conv2d's solution and test cells deleted: the locked test cell is restored from
    the gradebook, finds no conv2d and says so; every other problem is graded as usual."""
    root, *_ = graded
    cells = scores(graded[3], "nocell")
    assert (cells["conv2d"].score or 0) == 0
    assert cells["conv2d"].status == "missing"
    assert all(c.score == c.max_score for n, c in cells.items() if n != "conv2d")
    nb = nbformat.read(root / "autograded" / "nocell" / A / f"{A}.ipynb", as_version=4)
    assert "not defined" in "\n".join(nb.metadata["gradekit"]["problems"]["conv2d"]["lines"])


def test_unreadable_notebook_scores_zero_with_a_reason(graded):
    root, result, _, table = graded
    assert "broken" in result.unreadable and "not valid JSON" in result.unreadable["broken"]
    assert sum(c.score or 0 for c in scores(table, "broken").values()) == 0
    assert (root / "submitted" / "broken" / A / f"{A}.ipynb.unreadable").exists()


def test_report_table_lists_students_and_problems(graded):
    root, *_ = graded
    text = class_table(root, [A])
    assert "full" in text.splitlines()[0] and "conv2d" in text and "total" in text


def test_feedback_teaches_and_leaks_nothing(graded):
    root, *_ = graded
    nbgrader(["generate_feedback", A, "--force"], root)
    html = (root / "feedback" / "partial" / A / f"{A}.html").read_text()
    assert "which is not right" in html  # the judge's message for conv_output_size
    assert "checks passed" in html and "score:" in html
    for leak in ("gradekit.capture", "BEGIN HIDDEN TESTS", "BEGIN SOLUTION"):
        assert leak not in html
    ref_line = "cols = cols.reshape(n, groups, cg * kh * kw, out_h * out_w)"
    assert ref_line not in html


def test_autograded_notebook_scores_are_the_judges(graded):
    root, *_ = graded
    nb = nbformat.read(root / "autograded" / "partial" / A / f"{A}.ipynb", as_version=4)
    meta = nb.metadata["gradekit"]
    assert meta["problems"]["conv2d"]["status"] == "failed"
    assert isinstance(meta["seed"], int)


def test_sequential_grading_gives_the_same_gradebook(graded, tmp_path):
    """The same class, graded one student at a time by plain nbgrader in another folder holding the
    course's secret: every score and status is the parallel run's (the seeds come from the secret,
    not from the run)."""
    root, _, students, table = graded
    again = make_course(tmp_path / "again", [A])
    shutil.copy(root / SECRET_FILE, again / SECRET_FILE)
    for student in students:
        shutil.copytree(root / "submitted" / student, again / "submitted" / student)
    with Gradebook(f"sqlite:///{again / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        gb.update_or_create_assignment(A, duedate="2026-11-01 12:00:00 UTC")
    result = grade_class(again, A, progress=False)
    assert sorted(result.graded) == sorted(students)
    rows = gradebook_rows(root)
    assert rows == gradebook_rows(again)  # what the parallel run copied from its workers is nbgrader's own
    assert rows["partial"][1] == 86400 and rows["full"][1] == 0 and rows["blank"][0] == "None"
    _, table_again = results(again, [A])
    assert {k: {s: (v[s].score, v[s].status) for s in students} for k, v in table_again.items()} == \
        {k: {s: (v[s].score, v[s].status) for s in students} for k, v in table.items()}
    for student in students:
        seeds = [nbformat.read(r / "autograded" / student / A / f"{A}.ipynb", as_version=4).metadata
                 .get("gradekit", {}).get("seed") for r in (root, again)]
        assert seeds[0] == seeds[1]


def test_a_killed_worker_loses_no_submission(tmp_path):
    """On a LocalCluster, one worker is killed (SIGKILL) while it grades: its submission is
    retried elsewhere, and every student ends graded exactly once in the gradebook."""
    import os
    import signal
    import threading

    from dask.distributed import Client, LocalCluster

    root = make_course(tmp_path / "course", [A])
    release = release_notebook(root, A)
    refs = reference_definitions(A)
    from autograder.notebooks import fill

    students = [f"s{i}" for i in range(4)]
    for i, student in enumerate(students):
        submit(root, student, A, fill(copy.deepcopy(release), refs if i % 2 else {}))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        killed = threading.Event()

        def kill_when_busy():
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not killed.is_set():
                busy = [w for w, tasks in client.processing().items() if tasks]
                if busy:
                    time.sleep(3)  # a notebook is running there
                    os.kill(client.run(os.getpid, workers=[busy[0]])[busy[0]], signal.SIGKILL)
                    killed.set()
                time.sleep(0.2)
        killer = threading.Thread(target=kill_when_busy, daemon=True)
        killer.start()
        result = grade_parallel(root, A, scheduler=cluster.scheduler_address, progress=False)
        killer.join(timeout=5)
    assert killed.is_set() and pids
    assert sorted(result.graded) == students and not result.failed
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        submissions = [s.student.id for s in gb.find_assignment(A).submissions]
    assert sorted(submissions) == students
    _, table = results(root, [A])
    full = sum(float(c.metadata["nbgrader"].get("points", 0)) for c in release.cells
               if c.metadata.get("nbgrader", {}).get("grade"))
    for i, student in enumerate(students):
        total = sum(row[student].score for row in table.values())
        assert (total == full) if i % 2 else (total == 0), (student, total, full)


def test_an_interrupted_class_resumes_without_executing_again(tmp_path, monkeypatch):
    """Grading is interrupted (Ctrl-C) while the second of two students is recorded: the first is
    in the gradebook, and grading the class again runs no notebook a second time (both autograded
    notebooks carry the first run's timings, stored with the executed notebooks), each student once."""
    import autograder.classgrade.parallel as parallel
    from autograder.notebooks import fill

    root = make_course(tmp_path / "course", [A])
    release = release_notebook(root, A)
    submit(root, "s0", A, fill(copy.deepcopy(release), reference_definitions(A)))
    submit(root, "s1", A, release)
    real, recorded = parallel.record_one, []

    def interrupted(course, course_id, assignment, student, rows):
        if recorded:
            raise KeyboardInterrupt
        recorded.append(student)
        return real(course, course_id, assignment, student, rows)

    monkeypatch.setattr(parallel, "record_one", interrupted)
    with pytest.raises(KeyboardInterrupt):
        grade_parallel(root, A, workers=1, progress=False)
    monkeypatch.setattr(parallel, "record_one", real)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        assert [s.student.id for s in gb.find_assignment(A).submissions] == recorded
    stored = sorted(nbformat.read(p, as_version=4).metadata["gradekit"]["sandbox"]["timings"]["total"]
                    for p in (root / parallel.CACHE / A).glob("*.ipynb"))
    assert len(stored) == 2

    result = grade_parallel(root, A, workers=1, progress=False)
    assert sorted(result.graded) == ["s0", "s1"] and not result.failed
    again = sorted(nbformat.read(root / "autograded" / s / A / f"{A}.ipynb", as_version=4)
                   .metadata["gradekit"]["sandbox"]["timings"]["total"] for s in ("s0", "s1"))
    assert again == stored
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        assert sorted(s.student.id for s in gb.find_assignment(A).submissions) == ["s0", "s1"]
    assert not (root / parallel.CACHE / A).exists()  # a class recorded in full leaves no cache


def test_gpu_workers_take_training_notebooks_one_per_gpu():
    """A local cluster with one GPU declares it on one worker; tasks that ask for the GPU all run
    there, one at a time; only assignments whose checks train models ask for it."""
    from dask.distributed import Client

    from autograder.classgrade.parallel import local_cluster, trains

    def _holds_gpu() -> bool:  # on a Dask worker: does it declare a GPU?
        from distributed import get_worker

        return bool(get_worker().state.total_resources.get("GPU"))

    assert trains("w2_normalization") and trains("w5_augmentation_transfer")
    assert not trains("w1_conv_arithmetic")

    def span():
        start = time.time()
        time.sleep(0.5)
        return _holds_gpu(), start, time.time()

    with local_cluster(2, gpus=1) as cluster, Client(cluster) as client:
        declared = [bool((w.get("resources") or {}).get("GPU")) for w in client.scheduler_info()["workers"].values()]
        assert sorted(declared) == [False, True]
        runs = sorted(client.gather([client.submit(span, pure=False, resources={"GPU": 1}) for _ in range(3)]),
                      key=lambda r: r[1])
        assert all(held for held, *_ in runs)
        assert all(later[1] >= earlier[2] for earlier, later in zip(runs, runs[1:]))  # never two at once
        assert client.submit(_holds_gpu, pure=False, workers=[
            a for a, w in client.scheduler_info()["workers"].items() if not (w.get("resources") or {}).get("GPU")
        ]).result() is False
