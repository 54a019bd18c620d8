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
   but with the kernel in a sandbox (:mod:`autograder.sandbox`: no network, no view
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
(:func:`autograder.sanitize.integrity_findings`) scores 0 on every problem, with the
findings listed. A submission that could not be read
(:func:`autograder.sanitize.prepare_submission`) is not run: every problem is
"missing", with the reason.

Only the notebook's cells are the student's code: files beside the notebook that
Python could import or the kernel could load at start-up are not copied into the
working folder (:func:`safe_copytree`, listed in the feedback), the kernel's Python
starts isolated (:func:`autograder.sandbox.isolate_python`), and a graded name the
cells do not define themselves (imported from a module a cell wrote, loaded with
``exec``, ``runpy``...: :func:`autograder.source_check.foreign_definition`) is
"missing", with the reason.

A failure of the grading infrastructure (the grader's disk, the sandbox or the kernel
failing to start) is never the student's zero: the notebook is graded again, and if
it fails again :class:`~autograder.sandbox.GradingInfrastructureError` propagates so
that nbgrader reports the student as failed instead of recording a grade.

The verdicts also go to ``nb.metadata["gradekit"]`` (status, score and messages per
problem, the sandbox's record, what the sanitizer changed), which the class report
and the demo read.
"""
from __future__ import annotations

import errno
import copy
import functools
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from nbgrader.preprocessors.execute import UnresponsiveKernelError
from nbgrader.utils import is_grade, is_solution
from traitlets import Bool, Enum, Integer, List, Unicode

from gradekit.capture import DIGEST_MIME, WORKDIR_NAME

from .checks import problems_for
from .judge import Judge
from .notebooks import CAPTURE_RE, defined_names
from .problem import Verdict
from .sandbox import (LOCK_DIR, GiB, MiB, GradingInfrastructureError, Limits, Sandbox, SandboxedKernelManager,
                      SandboxError, probe, remove_tree)
from .sanitize import SANITIZE_KEY, UNREADABLE_KEY, integrity_findings
from .seeds import SECRET_FILE, course_secret, grading_seed
from .source_check import foreign_definition

log = logging.getLogger(__name__)

#: Tag of a source notebook's demonstration that no test needs: not run while grading.
SKIP_TAG = "skip-when-grading"
SKIPPED_TEXT = "[not run while grading: a demonstration that no test needs]\n"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_STOPPED = {"out of memory": "out of memory", "timeout": "timeout"}


def captured_names(source: str) -> list[str]:
    """Problem names a (hidden) test cell asks the kernel to capture."""
    return CAPTURE_RE.findall(source)


def is_test_cell(cell) -> bool:
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


def student_sources(nb) -> list[str]:
    """Every code cell the student could have written (all but the test cells)."""
    return [cell.source for cell in nb.cells if cell.cell_type == "code" and not is_test_cell(cell)]


def cell_report(names: list[str], verdicts: dict[str, Verdict], points: float) -> tuple[float, str]:
    fractions, lines = [], []
    for name in names:
        verdict = verdicts.get(name)
        if verdict is None:
            fractions.append(0.0)
            lines.append(f"{name}: unknown problem (ask your instructor)")
            continue
        fractions.append(verdict.fraction)
        lines.extend(verdict.lines)
    fraction = sum(fractions) / len(fractions) if fractions else 0.0
    score = round(points * fraction, 2)
    lines.append(f"score: {score:g} / {points:g}")
    return score, "\n".join(lines) + "\n"


def annotate(nb, verdicts: dict[str, Verdict], seed: int) -> dict:
    """Rewrite test-cell outputs from ``verdicts``; return the per-notebook report."""
    cells_report = {}
    for cell in nb.cells:
        if not is_test_cell(cell):
            continue
        names = captured_names(cell.source)
        if not names:
            continue
        points = float(cell.metadata["nbgrader"].get("points", 0) or 0)
        score, text = cell_report(names, verdicts, points)
        cell.outputs = [
            new_output("stream", name="stdout", text=text),
            new_output("execute_result", data={"text/plain": f"{score}"},
                       execution_count=cell.get("execution_count")),
        ]
        cells_report[cell.metadata["nbgrader"]["grade_id"]] = {
            "problems": names, "score": score, "max_score": points}
    return {"seed": seed, "problems": {n: v.to_json() for n, v in verdicts.items()}, "cells": cells_report}


# ------------------------------------------------------------------ file helpers
#: Files beside the notebook that Python or the kernel could run or import. They never
#: reach the working folder: only the code in the notebook's cells runs as the student's.
CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyw", ".pyd", ".pyi", ".so", ".pth", ".egg-link", ".dylib", ".dll")
CODE_FILES = re.compile(r"^((ipython|jupyter)[A-Za-z0-9_-]*_config\.(py|json)|matplotlibrc|\.pythonrc.*)$")
CODE_DIRS = ("__pycache__", ".ipython", ".jupyter", ".config", ".local", ".ipynb_checkpoints")


def safe_copytree(src: Path, dest: Path, ignore=(".ipynb", ".unreadable", ".orig"), skip_dirs=(WORKDIR_NAME,),
                  max_bytes: int = 2 * GiB, max_depth: int = 32, max_entries: int = 100_000,
                  withheld: list[str] | None = None, withhold_code: bool = True) -> list[str]:
    """Copy regular files and folders only (no links, devices, fifos); returns what was skipped.

    Iterative (any depth of folders in the source is fine; copies stop at ``max_depth``
    and ``max_entries``). Code Python could import or the kernel could load at start-up
    (:data:`CODE_SUFFIXES`, :data:`CODE_FILES`, :data:`CODE_DIRS`) is left out and
    listed in ``withheld`` (relative paths) when given, unless ``withhold_code`` is false.
    """
    skipped: list[str] = []
    budget = max_bytes
    entries_left = max_entries
    src, dest = Path(src), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    stack = [(src, dest, 0)]
    while stack:
        folder, out, depth = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            entries_left -= 1
            if entries_left < 0:
                skipped.append(f"{folder} (more than {max_entries} files)")
                stack.clear()
                break
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            rel = os.path.relpath(entry.path, src)
            if stat.S_ISDIR(mode):
                if entry.name in skip_dirs and depth == 0:
                    continue
                if withhold_code and entry.name in CODE_DIRS:
                    if withheld is not None:
                        withheld.append(rel + "/")
                    continue
                if depth + 1 >= max_depth:
                    skipped.append(f"{entry.path} (folders nested deeper than {max_depth})")
                    continue
                (out / entry.name).mkdir(exist_ok=True)
                stack.append((Path(entry.path), out / entry.name, depth + 1))
            elif stat.S_ISREG(mode):
                if entry.name.endswith(ignore) or (entry.name in skip_dirs and depth == 0):
                    continue
                if withhold_code and (entry.name.endswith(CODE_SUFFIXES) or CODE_FILES.match(entry.name)):
                    if withheld is not None:
                        withheld.append(rel)
                    continue
                size = entry.stat(follow_symlinks=False).st_size
                if size > budget:
                    skipped.append(entry.path)
                    continue
                budget -= size
                shutil.copyfile(entry.path, out / entry.name, follow_symlinks=False)
            else:
                skipped.append(entry.path)
    return skipped


def _open_dir(parent_fd: int, name: str, create: bool) -> int | None:
    """Open ``name`` under ``parent_fd`` as a directory, never through a link.

    With ``create``, anything else in its place (a link, a file) is removed and a
    directory made.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(name, flags, dir_fd=parent_fd)
    except OSError as exc:
        if not create:
            return None
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise
    try:
        os.unlink(name, dir_fd=parent_fd)
    except OSError:
        pass
    os.mkdir(name, 0o755, dir_fd=parent_fd)
    return os.open(name, flags, dir_fd=parent_fd)


#: What a record's digest becomes when more than one (or a malformed one) arrived.
DUPLICATE_DIGEST = "duplicate"
#: Characters of digests the grader keeps for one notebook (honest ones need a few KiB).
DIGEST_BYTES = 16 * 2**20


class Recordings:
    """What the kernel recorded, moved out of its reach test cell by test cell.

    While a test cell runs, the kernel publishes the SHA-256 digests of each record
    it writes (:meth:`receive`, from :meth:`JudgedExecute.output`); :meth:`take`
    writes what arrived to ``private/digests/<name>.json``, out of the kernel's reach,
    where the judge checks the copied records against them
    (:func:`autograder.judge.record_problem`). Exactly one digest per record counts:
    a second one for the same record (output imitating the grader's) spoils it.
    """

    def __init__(self, workdir, private: Path, max_bytes: int, owner: int | None = None):
        """``workdir``: the kernel's working folder as the grader sees it, or a callable
        returning it (the sandbox's :meth:`~autograder.sandbox.Sandbox.view`)."""
        self._workdir = workdir
        self.private = private
        self.max_bytes = max_bytes
        self.owner = owner
        self.oversize: set[str] = set()
        #: name -> record index -> its files' digests, or DUPLICATE_DIGEST
        self.digests: dict[str, dict[int, dict | str]] = {}
        self._open: set[str] = set()  # names whose test cell is running
        self._digest_budget = DIGEST_BYTES  # characters of digests kept, all names together
        #: an error of the grader's own folders (disk full...): not the student's doing
        self.infrastructure: OSError | None = None

    @property
    def workdir(self) -> Path:
        return Path(self._workdir() if callable(self._workdir) else self._workdir)

    def _out_fd(self, create: bool) -> int | None:
        root = os.open(self.workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            base = _open_dir(root, WORKDIR_NAME, create)
            if base is None:
                return None
            try:
                return _open_dir(base, "out", create)
            finally:
                os.close(base)
        finally:
            os.close(root)

    def clear(self, name: str) -> None:
        """Before the test cell runs: no stale or planted results for ``name``."""
        try:
            out = self._out_fd(create=True)
        except OSError as exc:  # the sandbox is gone: the cell will not record anything
            log.debug("cannot clear the recordings of %s: %s", name, exc)
            out = None
        if out is not None:
            try:
                remove_tree(name, dir_fd=out)
                os.mkdir(name, 0o755, dir_fd=out)
                if self.owner is not None:
                    os.chown(name, self.owner, self.owner, dir_fd=out, follow_symlinks=False)
            except OSError as exc:
                log.warning("cannot clear the recordings of %s: %s", name, exc)
            finally:
                os.close(out)
        self._private(lambda: remove_tree(self.private / "out" / name))
        self.digests[name] = {}
        self._open.add(name)

    def receive(self, content) -> None:
        """A digest message from the kernel: ``{"name", "index", "files": {file: sha256}}``."""
        if not isinstance(content, dict):
            return
        name, index, files = content.get("name"), content.get("index"), content.get("files")
        if not isinstance(name, str) or name not in self._open or not isinstance(index, int) \
                or isinstance(index, bool) or not 0 <= index < 100_000 or self._digest_budget <= 0:
            return  # (past the budget, later records have no digest: refused)
        table = self.digests[name]
        if index in table:
            table[index] = DUPLICATE_DIGEST
        elif isinstance(files, dict) and 0 < len(files) <= 100_000 and all(
                isinstance(k, str) and _SAFE_NAME.match(k) and isinstance(v, str) and len(v) <= 128
                for k, v in files.items()):
            self._digest_budget -= sum(len(k) + len(v) for k, v in files.items())
            table[index] = dict(files)
        else:
            table[index] = DUPLICATE_DIGEST

    def _private(self, action) -> None:
        """Run ``action`` on the grader's own folder; its failure is the grader's."""
        try:
            left = action()
        except OSError as exc:
            self._failed(exc)
            return
        if left:
            self._failed(OSError(errno.EIO, f"could not remove {left[:3]}"))

    def _failed(self, exc: OSError) -> None:
        log.error("the grader's scratch folder failed: %s", exc)
        if self.infrastructure is None:
            self.infrastructure = exc

    def take(self, name: str) -> None:
        """After the test cell: copy plain files of ``name``'s results to the private folder."""
        dest = self.private / "out" / name
        self._private(lambda: remove_tree(dest))
        self._open.discard(name)
        digests = {str(i): entry for i, entry in self.digests.get(name, {}).items()}
        self._private(lambda: (self.private / "digests").mkdir(parents=True, exist_ok=True))
        self._private(lambda: (self.private / "digests" / f"{name}.json").write_text(
            json.dumps({"records": digests}), encoding="utf-8") and None)
        try:
            out = self._out_fd(create=False)
        except OSError as exc:  # the sandbox is gone (the kernel died): nothing recorded
            log.debug("cannot read the recordings of %s: %s", name, exc)
            return
        if out is None:
            return
        try:
            folder = _open_dir(out, name, create=False)
        except OSError:
            folder = None
        finally:
            os.close(out)
        if folder is None:
            return
        try:
            dest.mkdir(parents=True)
        except OSError as exc:
            os.close(folder)
            self._failed(exc)
            return
        budget = self.max_bytes
        try:
            for entry in sorted(os.listdir(folder)):
                if not _SAFE_NAME.match(entry):
                    continue
                try:
                    fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
                except OSError:
                    continue
                try:
                    info = os.fstat(fd)
                    if not stat.S_ISREG(info.st_mode):
                        continue
                    if info.st_size > budget:
                        self.oversize.add(name)
                        break
                    budget -= info.st_size
                    try:
                        target = open(dest / entry, "wb")
                    except OSError as exc:
                        self._failed(exc)
                        break
                    with target as f, os.fdopen(os.dup(fd), "rb") as src:
                        while True:
                            try:
                                chunk = src.read(1 << 20)
                            except OSError:  # the kernel's side went away
                                break
                            if not chunk:
                                break
                            try:
                                f.write(chunk)
                            except OSError as exc:
                                self._failed(exc)
                                break
                finally:
                    os.close(fd)
        except OSError as exc:  # listing the kernel's folder failed: nothing more recorded
            log.debug("cannot read the recordings of %s: %s", name, exc)
        finally:
            os.close(folder)
        # Taken: the kernel's copy goes (its tmpfs holds one test cell's recordings at a time).
        try:
            out = self._out_fd(create=False)
            if out is not None:
                try:
                    remove_tree(name, dir_fd=out)
                finally:
                    os.close(out)
        except OSError:
            pass
        if name in self.oversize or self.infrastructure is not None:
            remove_tree(dest)


# ------------------------------------------------------------------ the executor
def release_cases(name: str, staged: Path, visible: Path) -> None:
    """Move problem ``name``'s requests and their arrays from ``staged`` to where the kernel reads them."""
    pattern = re.compile(rf"^{re.escape(name)}(\.json|_\d+\.npy)$")
    for entry in os.listdir(staged):
        if pattern.match(entry):
            os.rename(staged / entry, visible / entry)


@functools.lru_cache(maxsize=16)
def _read_code_cells(path: str, mtime_ns: int, size: int) -> list:
    """The code cells of a notebook file, read once per version of the file (a worker grades
    many submissions against the same source notebook)."""
    import nbformat

    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


class JudgedExecute(Execute):
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

    # ---------------------------------------------------------------- kernel
    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        run = self._run
        if run is not None and isinstance(km, SandboxedKernelManager):
            km.sandbox = run["sandbox"]
            if run["sandbox"].isolated:
                km.transport = "ipc"
                km.connection_file = str(run["sandbox"].rundir / "kernel.json")
                km.ip = str(run["sandbox"].rundir / "kernel-ipc")
        return km

    def output(self, outs, msg, display_id, cell_index):
        """Record digests are taken out of the outputs and long outputs cut (nbclient has no
        hook that can drop or change an output, hence this override)."""
        run = self._run
        if run is not None:
            content = msg.get("content", {})
            data = content.get("data") if isinstance(content, dict) else None
            if isinstance(data, dict) and DIGEST_MIME in data:  # a record's digest: never an output
                if msg.get("msg_type", msg.get("header", {}).get("msg_type")) == "display_data":
                    run["recordings"].receive(data[DIGEST_MIME])
                return None
            size = len(str(content.get("text", ""))) + sum(len(str(v)) for v in (content.get("data") or {}).values())
            used = run["output_bytes"].get(cell_index, 0) + size
            run["output_bytes"][cell_index] = used
            if used > self.max_output_bytes:
                if cell_index not in run["truncated"]:
                    run["truncated"].add(cell_index)
                    outs.append(new_output("stream", name="stdout",
                                           text=f"\n[output truncated by the grader after {self.max_output_bytes} bytes]\n"))
                return None
        return super().output(outs, msg, display_id, cell_index)

    def _on_cell_start(self, cell, cell_index):
        """nbclient's ``on_cell_start`` hook: a test cell's cases are released and its old
        records cleared just before it runs; the first code cell seals the run folder."""
        run = self._run
        if run is None:
            return
        for name in captured_names(cell.source) if is_test_cell(cell) else []:
            run["recordings"].clear(name)
            release_cases(name, *run["cases"])
        if cell.cell_type == "code":
            if run["cells_started"] == 0:  # the kernel is up, its sockets bound
                run["timings"]["kernel start"] = time.monotonic() - run["clock"]
                run["sandbox"].seal_rundir()
            run["cells_started"] += 1

    def preprocess_cell(self, cell, resources, index):
        """The records of a test cell are taken after it ran, whatever ended it (a timeout or a
        dead kernel raise past nbclient's ``on_cell_executed`` hook, hence this override).
        A demonstration the instructor tagged :data:`SKIP_TAG` is not run: it says so instead."""
        run = self._run
        if run is not None and cell.cell_type == "code" and cell.source.strip() in run["skipped"]:
            cell.outputs = [new_output("stream", name="stdout", text=SKIPPED_TEXT)]
            cell.execution_count = None
            run["cells"].append((index, "skipped", 0.0))
            return cell, resources
        names = captured_names(cell.source) if run is not None and is_test_cell(cell) else []
        started = time.monotonic()
        try:
            return super().preprocess_cell(cell, resources, index)
        finally:
            if run is not None:
                run["last_cell_end"] = time.monotonic()
            if run is not None and cell.cell_type == "code":
                kind = "test" if is_test_cell(cell) else "solution" if is_solution(cell) else "other"
                run["cells"].append((index, kind, round(time.monotonic() - started, 3)))
            if run is not None and cell.cell_type == "code" and not names and not is_test_cell(cell):
                limit = self._get_timeout(cell)
                if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])) or \
                        (limit and time.monotonic() - started >= limit):
                    for name in defined_names(cell.source):
                        run["definition_timeouts"][name] = index
            if names:
                for name in names:
                    run["recordings"].take(name)
                run["ran"].update(names)
                timed_out = any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", []))
                if timed_out or (self.timeout and time.monotonic() - started >= self.timeout):
                    run["cell_timeouts"].update(names)

    # ---------------------------------------------------------------- grading
    def _limits(self) -> Limits:
        return Limits(memory=self.memory_limit, address_space=self.address_space_limit,
                      processes=self.max_processes, file_size=self.max_file_size,
                      tmp_size=self.tmp_size, work_size=self.work_size,
                      record_size=self.max_record_bytes + 16 * MiB, wall_time=self.notebook_timeout or None)

    def _source_cells(self, resources) -> list:
        """The code cells of the instructor's source notebook ([] when it cannot be read)."""
        meta = resources.get("nbgrader", {})
        try:
            from nbgrader.coursedir import CourseDirectory

            coursedir = CourseDirectory(parent=self)
            path = Path(coursedir.format_path(coursedir.source_directory, ".", meta["assignment"])) \
                / f"{meta['notebook']}.ipynb"
            info = path.stat()
            return copy.deepcopy(_read_code_cells(str(path), info.st_mtime_ns, info.st_size))
        except Exception:  # noqa: BLE001  (no source notebook)
            return []

    @staticmethod
    def _provided_sources(source_cells: list) -> set[str]:
        """Code cells of the instructor's source notebook that are not graded (trusted)."""
        return {c.source.strip() for c in source_cells if not is_solution(c) and not is_test_cell(c)}

    def _skipped_sources(self, source_cells: list) -> set[str]:
        """Demonstrations the instructor tagged :data:`SKIP_TAG` in the source notebook: not run
        while grading (matched by their text, so a student's own cell is never skipped)."""
        if not self.skip_tagged_cells:
            return set()
        return {c.source.strip() for c in source_cells
                if SKIP_TAG in (c.get("metadata", {}).get("tags") or []) and not is_solution(c) and not is_test_cell(c)}

    def _findings(self, nb, source_cells: list) -> list[str]:
        if self.integrity == "off":
            return []
        provided = self._provided_sources(source_cells)
        cells, context = [], []
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or is_test_cell(cell):
                continue
            if cell.source.strip() in provided:
                context.append(cell.source)
            else:
                cells.append((f"cell {i + 1}", cell.source))
        return integrity_findings(cells, context)

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

    def _seed(self, resources) -> int:
        meta = resources.get("nbgrader", {})
        if self.secret_file:
            path = Path(self.secret_file)
        else:
            from nbgrader.coursedir import CourseDirectory

            path = Path(CourseDirectory(parent=self).root) / SECRET_FILE
        return grading_seed(course_secret(path), meta.get("assignment", ""), meta.get("student", ""),
                            meta.get("notebook", ""))

    def _get_timeout(self, cell):
        """nbclient's per-cell limit: test cells the budget of their cases, other cells
        (solutions, demonstrations) ``code_cell_timeout``."""
        if self._run is not None and cell is not None and not is_test_cell(cell) and self.code_cell_timeout > 0:
            return self.code_cell_timeout
        return super()._get_timeout(cell)

    def _grade_in(self, nb, resources, problems, all_problems, seed, notes, source_dir, scratch):
        clock = time.monotonic()
        timings: dict = {}
        isolated = self.sandbox != "none"
        work, private, rundir = scratch / "work", scratch / "private", scratch / "run"
        cases = scratch / "judge" if isolated else work / WORKDIR_NAME
        withheld: list[str] = []
        try:
            scratch.chmod(0o711)
            private.mkdir(mode=0o700)
            # Trusted code (sandbox = "none") gets the folder as it is, like stock nbgrader.
            skipped = safe_copytree(source_dir, work, withheld=withheld, withhold_code=isolated)
            judge = Judge(problems, seed, cases)
            judge.prepare()
            timings["prepare"] = time.monotonic() - clock
            # The kernel sees a problem's inputs only from its test cell on: a definition cell cannot
            # read them ahead and answer from a lookup table computed with built-ins.
            staged = private / "cases"
            (cases / "cases").rename(staged)
            (cases / "cases").mkdir(mode=0o755)
        except OSError as exc:  # the grader's own disk: not the student's doing
            raise GradingInfrastructureError(f"cannot prepare the grader's scratch folder: {exc}") from exc
        if skipped:
            self.log.warning("not copied into the sandbox (links, special, too deep or too large files): %s",
                             skipped[:20])
        if withheld:
            shown = ", ".join(withheld[:6]) + (f" and {len(withheld) - 6} more" if len(withheld) > 6 else "")
            notes.append(f"files beside the notebook that Python could import or run were not available "
                         f"while grading ({shown}): only code in the notebook's cells is graded.")
        sandbox = Sandbox(work, rundir, mode=self.sandbox, limits=self._limits(),
                          ro_paths=list(self.extra_ro_paths), kernel_packages=tuple(self.kernel_packages),
                          hidden_packages=tuple(self.hidden_packages), gpu=self.gpu, gpu_wait=self.gpu_wait,
                          lock_dir=Path(self.lock_dir), uid_base=self.sandbox_uid, threads=self.threads,
                          bwrap=self.bwrap, cases=(cases / "cases") if isolated else None,
                          gradekit_dir=WORKDIR_NAME)
        resources.setdefault("metadata", {})["path"] = str(work)
        source_cells = self._source_cells(resources)  # read once: trusted cells and skipped demonstrations
        findings = self._findings(nb, source_cells) if problems else []
        error = None
        survivors: list[int] = []
        try:
            sandbox.prepare()
        except OSError as exc:
            sandbox.close()
            raise GradingInfrastructureError(f"cannot prepare the sandbox: {exc}") from exc
        except SandboxError as exc:
            sandbox.close()
            raise GradingInfrastructureError(str(exc)) from exc
        recordings = Recordings((lambda: sandbox.view(work)) if isolated else work, private,
                                self.max_record_bytes, owner=sandbox.uid)
        timings["sandbox"] = time.monotonic() - clock - timings["prepare"]
        self._run = {"sandbox": sandbox, "recordings": recordings, "ran": set(), "cell_timeouts": set(),
                     "definition_timeouts": {}, "timings": timings, "clock": time.monotonic(), "cells": [],
                     "skipped": self._skipped_sources(source_cells),
                     "output_bytes": {}, "truncated": set(), "cells_started": 0,
                     "cases": (staged, cases / "cases")}
        try:
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
            if isolated and problems:
                findings = findings + self._channel_findings(sandbox, error)
            if recordings.infrastructure is not None:
                raise GradingInfrastructureError(
                    f"the grader could not keep what the kernel recorded: {recordings.infrastructure}")
            run = self._run
            judged = time.monotonic()
            judge.workdir = private
            sources = student_sources(nb)
            verdicts = judge.collect(sources, kernel_died=error is not None or sandbox.reason is not None)
            verdicts = self._statuses(verdicts, run, sandbox, error)
            if self.integrity != "off":
                verdicts = self._provenance(verdicts, sources)
            if findings:
                verdicts = self._integrity(verdicts, findings)
            record = {"mode": self.sandbox, "peak_memory_bytes": sandbox.peak_memory, "stopped": sandbox.reason,
                      "seconds": round(time.monotonic() - sandbox.started, 2) if sandbox.started else None,
                      "cpu_seconds": sandbox.cpu_seconds if sandbox.started else None,
                      "uid": sandbox.uid, "gpu": sandbox.gpu_device, "survivors": survivors,
                      "kernel_error": f"{type(error).__name__}: {error}"[:300] if error else None,
                      "truncated_cells": sorted(run["truncated"]), "withheld_files": withheld[:50],
                      "timings": {**{k: round(v, 3) for k, v in timings.items()},
                                  "judge": round(time.monotonic() - judged, 3), "cells": run["cells"],
                                  "total": round(time.monotonic() - clock, 3)}}
            if all_problems:
                self._finish(nb, verdicts, seed, notes, record, findings)
        finally:
            self._run = None
        return nb, resources

    def _channel_findings(self, sandbox: Sandbox, error) -> list[str]:
        """What the graded kernel's audit hook reported while the cells ran (:mod:`gradekit.kernel`):
        code made from data (pickle, marshal, exec...), and a channel closed while cells still ran."""
        channel = sandbox.channel_report()
        run = self._run
        if run["cells_started"] and not channel["ready"]:
            raise GradingInfrastructureError("the graded kernel's audit hook never reported (gradekit.kernel)")
        found = [f"while the notebook ran: {finding}" for finding in channel["findings"]]
        closed, last = channel["closed_at"], run.get("last_cell_end")
        if error is None and sandbox.reason is None and closed is not None and last is not None \
                and closed < last - 1.0:
            found.append("while the notebook ran: the grader's audit channel was closed by the notebook's code")
        return found

    @staticmethod
    def _provenance(verdicts: dict[str, Verdict], sources: list[str]) -> dict[str, Verdict]:
        """A graded name that the notebook's cells do not define (imported from a module
        written or submitted beside the notebook, loaded with ``exec``...) is not
        implemented: only code in the notebook's cells is graded."""
        out = {}
        for name, verdict in verdicts.items():
            out[name] = verdict
            if verdict.status not in ("passed", "failed", "error", "missing"):
                continue
            reason = foreign_definition(sources, name)
            if reason is None:
                continue
            if verdict.status != "missing":
                out[name] = Verdict(name, "missing", 0.0, [
                    f"{name}: not graded: {reason}. Only code in the notebook's cells is graded: "
                    f"define {name} in its solution cell."])
            elif not reason.endswith("is not defined in the notebook's cells"):  # say where it went
                out[name] = Verdict(name, "missing", 0.0, verdict.lines + [
                    f"  ({reason}: only code in the notebook's cells is graded.)"])
        return out

    def _statuses(self, verdicts: dict[str, Verdict], run: dict, sandbox: Sandbox, error) -> dict[str, Verdict]:
        """Give problems the kernel did not finish the reason it stopped."""
        stopped = sandbox.reason
        for name, verdict in verdicts.items():
            if name in run["recordings"].oversize:
                verdicts[name] = Verdict(name, "error", 0.0, [
                    f"{name}: not graded: the results it produced are larger than the grader "
                    f"accepts ({self.max_record_bytes // MiB} MiB)."])
            elif verdict.status == "passed":
                continue
            elif stopped in _STOPPED and verdict.status in ("kernel died", "missing"):
                why = (f"the notebook used more than {self.memory_limit / GiB:.1f} GiB of memory and was stopped"
                       if stopped == "out of memory" else
                       f"the notebook ran past its time limit ({self.notebook_timeout} s) and was stopped")
                verdict.status = _STOPPED[stopped]
                if not verdict.groups:  # nothing was recorded: say why, not "died" or "did not run"
                    verdict.lines = [f"{name}: not graded, {why} before this test finished."]
                else:
                    verdict.lines = verdict.lines + [f"  ({why})"]
            elif name in run["definition_timeouts"] and verdict.status in ("missing", "failed", "error"):
                verdict.status, verdict.fraction, verdict.groups = "timeout", 0.0, {}
                verdict.lines = [f"{name}: not graded, the cell that defines it (cell {run['definition_timeouts'][name] + 1}) "
                                 f"ran past the time limit of {self.code_cell_timeout} s for cells that are not "
                                 "tests and was interrupted (an infinite loop, or far too slow)."]
            elif name in run["cell_timeouts"]:
                verdict.status = "timeout"
                why = f"its test cell ran past the time limit of {self.timeout} s and was interrupted"
                if verdict.groups:  # some results were recorded and judged
                    verdict.lines = verdict.lines + [f"  ({why})"]
                else:
                    verdict.lines = [f"{name}: not graded, {why} (an infinite loop, or far too slow)."]
            elif verdict.status == "missing" and error is not None and name not in run["ran"]:
                verdict.status = "kernel died"
        return verdicts

    @staticmethod
    def _integrity(verdicts: dict[str, Verdict], findings: list[str]) -> dict[str, Verdict]:
        """Zero for every problem; the status stays when it says more than "failed"."""
        shown = findings[:8] + ([f"... and {len(findings) - 8} more"] if len(findings) > 8 else [])
        out = {}
        for name, verdict in verdicts.items():
            status = "failed" if verdict.status in ("passed", "failed") else verdict.status
            out[name] = Verdict(name, status, 0.0, [
                f"{name}: not graded: the notebook contains code that interferes with the grader:",
                *[f"  {f}" for f in shown],
                "  Remove it and submit again; ask your instructor if you think this is a mistake."])
        return out

    def _finish(self, nb, verdicts, seed, notes, record, findings) -> None:
        for note in notes:  # on the problems it is about, else on the first one
            about = [n for n in verdicts if re.search(rf"\b(test_)?{re.escape(n)}\b", note)] or list(verdicts)[:1]
            for name in about:
                verdicts[name].lines = verdicts[name].lines + [f"  note: {note}"]
        report = annotate(nb, verdicts, seed)
        report["sandbox"] = record
        report["sanitize"] = notes
        report["integrity"] = findings
        nb.metadata["gradekit"] = json.loads(json.dumps(report, default=str))
        for name, verdict in verdicts.items():
            self.log.info("%s: %s (%.0f%%)", name, verdict.status, 100 * verdict.fraction)
