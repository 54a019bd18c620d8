"""nbgrader integration: an ``Execute`` replacement whose verdicts come from the judge.

``course/nbgrader_config.py`` puts :class:`JudgedExecute` where stock nbgrader has
``Execute`` in ``Autograde.autograde_preprocessors``. For each notebook it

0. checks that the sandbox can be built (:meth:`JudgedExecute.check_sandbox`): where
   bubblewrap is missing or broken it refuses to grade (``SandboxError``, naming the
   fix) unless the instructor set ``c.JudgedExecute.sandbox = "none"``, in which case
   it warns loudly in the log, for every notebook;
1. derives the notebook's seed (:func:`grading_seed`: from a secret kept with the course,
   the assignment, the student and the notebook, so a regrade reproduces the grade and
   students cannot predict the inputs) and has the :class:`~autograder.judge.Judge` write hidden
   inputs into a private scratch copy of the submission folder (regular files only:
   links are never followed);
2. runs the notebook there, in the student's kernel, exactly as ``Execute`` does,
   but with the kernel in a sandbox (:mod:`autograder.isolation.sandbox`: no network, no view
   of the course, limits on memory, processes, files and time, nothing left running
   afterwards). Before each test cell the grader clears that cell's result folders;
   as soon as it finishes, it copies what was recorded (plain files only, size
   capped) to a folder outside the sandbox, so no later cell and no process the
   student started can change it. Outputs the kernel sends are capped per cell;
3. judges the copied recordings in this process and *replaces the outputs* of every
   test cell that calls ``gradekit.capture``: a report on stdout and the cell's score
   as its only ``execute_result``, which nbgrader's ``SaveAutoGrades`` reads as partial
   credit. Whatever the student's code printed, raised or wrote to stderr in that
   cell no longer counts.

Every problem ends in one status of :data:`autograder.problem.STATUSES`. When the
kernel was stopped, problems that did not finish get the reason: "out of memory"
(the sandbox's memory limit), "timeout" (the cell's or the notebook's time limit)
or "kernel died" (a crash, ``os._exit``...). A cell past its time limit is
interrupted by a signal to the kernel process itself (one to the process group
would kill the sandbox around it); a cell that swallows the interrupt runs on
until the notebook's time limit, and the problems it kept from running are then
"timeout". A notebook whose student code reaches for the grader's machinery
(:func:`autograder.isolation.sanitize.integrity.integrity_findings`) scores 0 on every problem, with the
findings listed. A submission that could not be read
(:func:`autograder.isolation.sanitize.submission.prepare_submission`) is not run: every problem is
"missing", with the reason.

Only the notebook's cells are the student's code: files beside the notebook that
Python could import or the kernel could load at start-up are not copied into the
working folder (:func:`~autograder.isolation.sandbox.files.safe_copytree`, listed in the feedback), the kernel's Python
starts isolated (:func:`autograder.isolation.sandbox.bubblewrap.isolate_python`), and a graded name the
cells do not define themselves (imported from a module a cell wrote, loaded with
``exec``, ``runpy``...: :func:`autograder.isolation.source_check.foreign_definition`) is
"missing", with the reason.

A failure of the grading infrastructure (the grader's disk, the sandbox or the kernel
failing to start) is never the student's zero: the notebook is graded again, and if
it fails again :class:`~autograder.isolation.sandbox.errors.GradingInfrastructureError` propagates so
that nbgrader reports the student as failed instead of recording a grade.

The verdicts also go to ``nb.metadata["gradekit"]`` (status, score and messages per
problem, the sandbox's record, what the sanitizer changed), which the class report
and the demo read.
"""
from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

from nbgrader.preprocessors import Execute
from nbgrader.preprocessors.execute import UnresponsiveKernelError
from traitlets import Bool, Enum, Integer, List, Unicode

from gradekit.capture import WORKDIR_NAME

from ..checks import problems_for
from ..isolation.sandbox.core import Sandbox
from ..isolation.sandbox.errors import GradingInfrastructureError, SandboxError
from ..isolation.sandbox.bubblewrap import probe
from ..isolation.sandbox.files import remove_tree
from ..isolation.sandbox.kernel import SandboxedKernelManager
from ..isolation.sandbox.limits import GiB, MiB
from ..isolation.sandbox.locks import LOCK_DIR
from ..isolation.sanitize.cells import SANITIZE_KEY
from ..isolation.sanitize.submission import UNREADABLE_KEY
from ..problem import Verdict
from .cells import SKIP_TAG, captured_names, is_test_cell
from .findings import IntegrityFindings
from .hooks import CellHooks
from .preparation import GradingPreparation
from .recordings import Recordings
from .verdicts import VerdictRules


class JudgedExecute(CellHooks, GradingPreparation, IntegrityFindings, VerdictRules, Execute):
    """Execute the notebook in a sandboxed student kernel; score test cells with the judge."""

    seed = Integer(
        None, allow_none=True,
        help="Seed for the hidden cases of every notebook. Default: derived per notebook from the "
             "course's secret (secret_file), the assignment, the student and the notebook; recorded "
             "in the autograded notebook's metadata.",
    ).tag(config=True)
    secret_file = Unicode(
        "", help="File holding the course's grading secret (created, mode 0600, on first use). "
                 "Default: .grading-secret in the course root. Keep it with the instructor: "
                 "whoever has it can compute every student's hidden inputs.").tag(config=True)
    skip_tagged_cells = Bool(
        True, help=f"Do not run the source notebook's demonstrations tagged '{SKIP_TAG}' while grading "
                   "(no test needs them; the feedback says they were not run).").tag(config=True)
    code_cell_timeout = Integer(
        60, help="Seconds for a cell that is not a test cell (solutions, demonstrations): a student's "
                 "infinite loop there is stopped after this. Test cells get `timeout`, the budget of "
                 "their cases and smoke tests.").tag(config=True)
    sandbox = Enum(
        ["bwrap", "none"], "bwrap",
        help="How to isolate the student's kernel. 'bwrap': bubblewrap sandbox (grading "
             "refuses to run where it is not available). 'none': no isolation (student code "
             "can read the course, the gradebook and other submissions): only for trusted code.",
    ).tag(config=True)
    bwrap = Unicode("bwrap", help="The bubblewrap command (a name on PATH or a path).").tag(config=True)
    memory_limit = Integer(4 * GiB, help="Bytes of memory for all processes of one notebook.").tag(config=True)
    address_space_limit = Integer(
        None, allow_none=True,
        help="RLIMIT_AS per process (bytes). Default: memory_limit + 8 GiB; 0: none. Off with a GPU.",
    ).tag(config=True)
    max_processes = Integer(256, help="Processes and threads the kernel may have (RLIMIT_NPROC).").tag(config=True)
    max_file_size = Integer(1 * GiB, help="Largest file the kernel may write (RLIMIT_FSIZE).").tag(config=True)
    tmp_size = Integer(512 * MiB, help="Size of the sandbox's /tmp and /dev/shm.").tag(config=True)
    work_size = Integer(1 * GiB, help="Bytes the notebook may write in its working folder (a tmpfs the "
                                      "size of the submitted files plus this).").tag(config=True)
    infrastructure_retries = Integer(1, help="Times a notebook is graded again when grading failed for "
                                             "reasons that are not the student's.").tag(config=True)
    notebook_timeout = Integer(3600, help="Seconds for a whole notebook (0: no limit).").tag(config=True)
    max_output_bytes = Integer(1 * MiB, help="Output kept per cell (the rest is dropped).").tag(config=True)
    max_record_bytes = Integer(256 * MiB, help="Recorded results kept per problem.").tag(config=True)
    gpu = Enum(["auto", "none"], "auto", help="Give the kernel a free GPU when there is one.").tag(config=True)
    gpu_wait = Integer(24 * 3600, help="Seconds to wait for a free GPU.").tag(config=True)
    lock_dir = Unicode(str(LOCK_DIR), help="Folder of the GPU and uid-slot lock files.").tag(config=True)
    sandbox_uid = Integer(2_000_000, help="First uid of the sandboxes' range (grader running as root).").tag(config=True)
    threads = Integer(0, help="OMP/MKL threads in the kernel (0: library default).").tag(config=True)
    extra_ro_paths = List(Unicode(), help="More host paths the kernel may read (data sets).").tag(config=True)
    kernel_packages = List(Unicode(), ["gradekit", "coursedata"],
                           help="Packages the kernel imports that live outside the Python prefix.").tag(config=True)
    hidden_packages = List(Unicode(), ["autograder", "solutions"],
                           help="Packages the kernel must not see, even if installed in its prefix.").tag(config=True)
    integrity = Enum(["zero", "off"], "zero",
                     help="'zero': a notebook whose code reaches for the grader scores 0 (findings "
                          "listed); 'off': no static scan.").tag(config=True)
    raise_on_iopub_timeout = Bool(False, help="Keep going when a cell's output is lost.").tag(config=True)
    shutdown_kernel = Enum(
        ["graceful", "immediate"], "immediate",
        help="How the kernel ends after the last cell. 'immediate' (the default): killed with its sandbox; "
             "everything graded was received while the cells ran, and a graceful shutdown costs about "
             "a second per notebook.").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)
        self._run: dict | None = None
        self.on_cell_start = self._on_cell_start

    def check_sandbox(self) -> None:
        """Refuse to grade without a working sandbox, unless told to grade unsandboxed.

        ``sandbox = "bwrap"`` (the default) and bubblewrap missing or broken: raises
        :class:`SandboxError` saying why and how to allow unsandboxed grading.
        ``sandbox = "none"``: a loud warning in the grader's output, every notebook.
        """
        if self.sandbox == "none":
            self.log.warning("!" * 78)
            self.log.warning("!!! GRADING WITHOUT A SANDBOX (c.JudgedExecute.sandbox = 'none'): the student's "
                             "code runs with your permissions and can read solutions, hidden tests and the "
                             "gradebook, and reach the network.")
            self.log.warning("!" * 78)
            return
        reason = probe(self.bwrap)
        if reason:
            raise SandboxError(
                f"refusing to grade: the student's kernel cannot be sandboxed: {reason}. "
                "Install bubblewrap, or, for trusted code only, allow unsandboxed grading with "
                "c.JudgedExecute.sandbox = \"none\" in nbgrader_config.py.")

    def preprocess(self, nb, resources):
        """Grade one notebook; retried when the grading infrastructure failed.

        A failure that is not the student's doing (the grader's disk is full, the
        sandbox or the kernel could not start) is retried ``infrastructure_retries``
        times with a fresh scratch folder; if it persists, :class:`GradingInfrastructureError`
        propagates: nbgrader then reports this notebook as failed (and removes its
        autograded copy) instead of recording a zero, and goes on with the others.
        """
        self.check_sandbox()
        attempts = max(0, int(self.infrastructure_retries)) + 1
        original = copy.deepcopy(nb)
        for attempt in range(1, attempts + 1):
            try:
                return self._grade(nb, resources)
            except GradingInfrastructureError as exc:
                if attempt == attempts:
                    self.log.error("grading %s failed %d times, for reasons that are not the student's: %s. "
                                   "It was NOT graded; fix the cause and autograde this student again.",
                                   resources.get("unique_key"), attempts, exc)
                    raise
                self.log.warning("grading %s failed, for reasons that are not the student's (%s): "
                                 "grading it again", resources.get("unique_key"), exc)
                nb = copy.deepcopy(original)
        raise AssertionError("unreachable")

    def _grade(self, nb, resources):
        assignment = resources.get("nbgrader", {}).get("assignment", "")
        all_problems = problems_for(assignment)
        names: list[str] = []
        for cell in nb.cells:
            if is_test_cell(cell):
                names += [n for n in captured_names(cell.source) if n not in names]
        problems = {n: all_problems[n] for n in names if n in all_problems}
        seed = self.seed if self.seed is not None else self._seed(resources)
        notes = list((nb.metadata.get(SANITIZE_KEY) or {}).get("notes", []))

        unreadable = nb.metadata.get(UNREADABLE_KEY)
        if unreadable:
            verdicts = {n: Verdict(n, "missing", 0.0, [
                f"{n}: not graded: the submitted file could not be read as a notebook ({unreadable}). "
                "Replace it with a working copy of the notebook."]) for n in problems}
            self._finish(nb, verdicts, seed, notes, {"mode": "not run", "reason": "unreadable submission"}, [])
            return nb, resources

        source_dir = Path(resources.get("metadata", {}).get("path") or ".")
        try:
            scratch = Path(tempfile.mkdtemp(prefix="gradekit-"))
        except OSError as exc:
            raise GradingInfrastructureError(f"cannot make the grader's scratch folder: {exc}") from exc
        try:
            return self._grade_in(nb, resources, problems, all_problems, seed, notes, source_dir, scratch)
        finally:
            resources.setdefault("metadata", {})["path"] = str(source_dir)
            left = remove_tree(scratch)
            if left:
                self.log.error("could not remove the grader's scratch folder %s: %s", scratch, left[:5])

    def _grade_in(self, nb, resources, problems, all_problems, seed, notes, source_dir, scratch):
        clock = time.monotonic()
        timings: dict = {}
        isolated = self.sandbox != "none"
        work, private, rundir = scratch / "work", scratch / "private", scratch / "run"
        cases = scratch / "judge" if isolated else work / WORKDIR_NAME
        judge, staged, withheld = self._prepare_scratch(scratch, source_dir, cases, problems, seed, notes,
                                                        timings, clock)
        sandbox = self._new_sandbox(work, rundir, cases)
        resources.setdefault("metadata", {})["path"] = str(work)
        source_cells = self._source_cells(resources)  # read once: trusted cells and skipped demonstrations
        findings = self._findings(nb, source_cells) if problems else []
        self._start_sandbox(sandbox)
        recordings = Recordings((lambda: sandbox.view(work)) if isolated else work, private,
                                self.max_record_bytes, owner=sandbox.uid)
        timings["sandbox"] = time.monotonic() - clock - timings["prepare"]
        self._run = {"sandbox": sandbox, "recordings": recordings, "ran": set(), "cell_timeouts": set(),
                     "definition_timeouts": {}, "timings": timings, "clock": time.monotonic(), "cells": [],
                     "skipped": self._skipped_sources(source_cells),
                     "output_bytes": {}, "truncated": set(), "cells_started": 0,
                     "cases": (staged, cases / "cases")}
        try:
            nb, resources, error, survivors = self._execute(nb, resources, sandbox, timings)
            if isolated and problems:
                findings = findings + self._channel_findings(sandbox, error)
            if recordings.infrastructure is not None:
                raise GradingInfrastructureError(
                    f"the grader could not keep what the kernel recorded: {recordings.infrastructure}")
            judged = time.monotonic()
            verdicts = self._verdicts(judge, private, nb, sandbox, error, findings)
            record = self._sandbox_record(sandbox, survivors, error, withheld, timings, judged, clock)
            if all_problems:
                self._finish(nb, verdicts, seed, notes, record, findings)
        finally:
            self._run = None
        return nb, resources

    def _execute(self, nb, resources, sandbox: Sandbox, timings: dict):
        """Run the cells in the sandboxed kernel (``Execute``, that is nbclient); the sandbox is
        closed whatever happens. Returns the notebook, the resources, what stopped the kernel
        (None when nothing did) and the processes that outlived the sandbox."""
        error = None
        survivors: list[int] = []
        try:
            nb, resources = super().preprocess(nb, resources)
        except UnresponsiveKernelError:
            raise
        except SandboxError as exc:
            raise GradingInfrastructureError(str(exc)) from exc
        except Exception as exc:  # noqa: BLE001  (DeadKernelError, CellTimeoutError and friends)
            error = exc
            if self._run["cells_started"] == 0:  # the kernel never started: not the student's doing
                raise GradingInfrastructureError(
                    f"the kernel did not start: {exc}\n"
                    f"{sandbox.stderr_tail.decode(errors='replace')[-2000:]}") from exc
            self.log.warning("Kernel stopped while grading %s: %s", resources.get("unique_key"), exc)
        finally:
            survivors = sandbox.close()
            if "last_cell_end" in self._run:  # nbclient's kernel shutdown and the sandbox's end
                timings["kernel stop"] = time.monotonic() - self._run["last_cell_end"]
        return nb, resources, error, survivors
