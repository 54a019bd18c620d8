"""One notebook's sandbox: its settings, its set-up (uid slot, GPU, folders) and its view.

:class:`Sandbox` is what the grader builds for each notebook; the command line comes from
:class:`~.bubblewrap.BubblewrapCommand`, the watching and the end from
:class:`~.runtime.SandboxRuntime`.
"""
from __future__ import annotations

import errno
import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .bubblewrap import BubblewrapCommand, probe
from .errors import SandboxError
from .files import tree_size
from .limits import Limits
from .locks import LOCK_DIR, _acquire_any, _FileLock, gpu_devices
from .processes import _kill, _proc_table
from .runtime import SandboxRuntime

log = logging.getLogger(__name__)


@dataclass
class Sandbox(BubblewrapCommand, SandboxRuntime):
    """One notebook's sandbox: build the command, watch the processes, clean up.

    ``mode="none"`` runs the kernel without isolation (limits and watchdog still
    apply, the environment is still minimal).
    """

    workdir: Path
    rundir: Path
    mode: str = "bwrap"
    limits: Limits = field(default_factory=Limits)
    ro_paths: list[str] = field(default_factory=list)
    kernel_packages: tuple[str, ...] = ("gradekit", "coursedata")
    hidden_packages: tuple[str, ...] = ("autograder", "solutions")
    gpu: str = "auto"
    gpu_wait: float = 3600.0
    lock_dir: Path = LOCK_DIR
    uid_base: int = 2_000_000
    uid_slots: int = 64
    threads: int = 0
    bwrap: str = "bwrap"
    #: the judge's inputs, bound read-only at ``<workdir>/<gradekit_dir>/cases`` (isolated mode)
    cases: Path | None = None
    gradekit_dir: str = ".gradekit"

    # run-time state
    reason: str | None = None        #: why the watchdog stopped the kernel
    peak_memory: int = 0
    started: float | None = None
    process: subprocess.Popen | None = None
    gpu_device: str | None = None
    uid: int | None = None
    stderr_tail: bytes = b""
    #: What the graded kernel's audit hook reported (:mod:`gradekit.kernel`): see :meth:`open_channel`.
    channel: dict = field(default_factory=lambda: {"ready": False, "findings": [], "closed_at": None})

    def __post_init__(self):
        self.workdir = Path(self.workdir)
        self.rundir = Path(self.rundir)
        self.lock_dir = Path(self.lock_dir)
        self._locks: list[_FileLock] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._cpu: dict[tuple[int, int], float] = {}
        self.root = os.geteuid() == 0
        self.cases = Path(self.cases) if self.cases is not None else None
        self._seed_bytes = 0
        self._outer_pid: int | None = None

    # ---------------------------------------------------------------- set-up
    @property
    def isolated(self) -> bool:
        return self.mode == "bwrap"

    def prepare(self) -> None:
        """Check the tools, take the uid slot and GPU locks, hand the folders over."""
        if self.isolated:
            reason = probe(self.bwrap)
            if reason:
                raise SandboxError(reason)
        self.rundir.mkdir(parents=True, exist_ok=True)
        if self.isolated and self.root:
            slot, lock = _acquire_any([self.lock_dir / f"uid-{i}.lock" for i in range(self.uid_slots)],
                                      self.gpu_wait, "sandbox uid slot")
            self._locks.append(lock)
            self.uid = self.uid_base + slot
            if self._kill_stale(self.uid):
                log.warning("killed stale processes of sandbox uid %d", self.uid)
            # The working folder is a tmpfs filled from the (root-owned, read-only) scratch
            # copy; the socket folder is writable while the kernel starts, then sealed.
            os.chmod(self.rundir, 0o777)
        if self.isolated:
            self._seed_bytes = tree_size(self.workdir)
        if self.gpu == "auto":
            devices = gpu_devices()
            if devices:
                i, lock = _acquire_any([self.lock_dir / f"gpu-{Path(d).name}.lock" for d in devices],
                                       self.gpu_wait, "GPU")
                self._locks.append(lock)
                self.gpu_device = devices[i]

    def seal_rundir(self) -> None:
        """Once the kernel has bound its sockets: it may no longer write in the run
        folder (root grader: the folder is root's, the connection file becomes root's)."""
        if not (self.isolated and self.root and self.uid is not None):
            return
        try:
            os.chmod(self.rundir, 0o755)
            for entry in os.scandir(self.rundir):
                if entry.is_file(follow_symlinks=False):
                    os.chown(entry.path, 0, 0, follow_symlinks=False)
        except OSError as exc:
            log.warning("could not seal the sandbox's run folder: %s", exc)

    def namespace_pid(self) -> int | None:
        """Host pid of a process inside the sandbox's mount namespace (bwrap's init)."""
        if self.process is None or not self.isolated:
            return None
        table = _proc_table()
        children = [(start, p) for p, (ppid, start) in table.items() if ppid == self.process.pid]
        return min(children)[1] if children else None

    def view(self, path: Path) -> Path:
        """Where the grader sees ``path`` as the kernel sees it.

        Isolated: through ``/proc/<pid>/root`` of a process in the sandbox (the
        working folder is a tmpfs only the sandbox can see); raises ``OSError`` once
        the sandbox is gone. Otherwise ``path`` itself.
        """
        if not self.isolated:
            return Path(path)
        pid = self.namespace_pid()
        if pid is None:
            raise OSError(errno.ESRCH, "the sandbox is not running")
        return Path(f"/proc/{pid}/root") / Path(path).relative_to("/")

    def _kill_stale(self, uid: int, wait: float = 0.0) -> list[int]:
        """Kill processes of ``uid`` (left by a crashed grader, or exiting now)."""
        deadline = time.monotonic() + wait
        while True:
            stale = []
            for pid in _proc_table():
                try:
                    if os.stat(f"/proc/{pid}").st_uid == uid:
                        stale.append(pid)
                except OSError:
                    pass
            _kill(stale)
            if not stale or time.monotonic() >= deadline:
                return stale
            time.sleep(0.05)
