"""The student's kernel in a bubblewrap sandbox, with limits and a watchdog.

:class:`~autograder.preprocessor.JudgedExecute` starts every notebook's kernel through
:class:`SandboxedKernelManager`, which prefixes the kernel command with ``prlimit`` and
``bwrap``. Inside the sandbox the kernel sees

- no network (``--unshare-net``: not even the host's loopback), its own pid, IPC and
  UTS namespaces, a fresh ``/proc`` and a minimal ``/dev``;
- read-only: ``/usr`` (and the ``/bin``, ``/lib*`` links), a few files of ``/etc``, the
  Python installation the grader runs from, and the packages the notebook imports
  from elsewhere (``gradekit``, ``coursedata``); the hidden checks (``autograder``)
  and the references (``solutions``) are hidden even where they are installed in the
  same environment;
- writable: its working directory, a sized ``tmpfs`` mounted over the path of the
  scratch copy of the submission folder and filled from it when the kernel starts
  (so whatever the notebook writes there is bounded and vanishes with the sandbox;
  the grader reads the recordings in ``.gradekit/out`` through
  ``/proc/<pid>/root``, :meth:`Sandbox.view`, from a tmpfs of their own), with the
  judge's ``.gradekit/cases`` bound read-only inside it; small ``tmpfs`` mounts for ``/tmp`` (``$HOME`` lives
  there) and ``/dev/shm``; and the folder of the kernel's unix sockets (only while
  the kernel starts, when the grader is root: :meth:`Sandbox.seal_rundir`).
  Nothing else: not the course folder, the gradebook, the exchange, other students'
  submissions or the grader's temporary files;
- only the notebook's cells run as the student's code: the kernel's Python starts
  isolated (``python -I``: no current folder on ``sys.path``, no ``PYTHON*``
  variables, no user site, so nothing in the working folder can shadow a module or
  run as ``sitecustomize``), see :func:`isolate_python`;
- a minimal environment (nothing tells grading from practice: no ``NBGRADER_*``);
- limits: ``RLIMIT_NPROC`` (processes and threads), ``RLIMIT_AS`` (per process
  address space; off when a GPU is bound, CUDA reserves far more than it uses),
  ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``, no core dumps; and, from a watchdog thread in
  the grader, the total memory (proportional set size) of all processes in the
  sandbox and the notebook's wall time: past either, the whole sandbox is killed and
  the grader records why ("out of memory", "timeout").

When the grader runs as root, ``bwrap`` runs without a user namespace and the kernel
is started through ``setpriv`` as an unprivileged uid with no capabilities and
``no_new_privs`` (``RLIMIT_NPROC`` is ignored for uid 0, including uid 0 mapped
through a user namespace, so the uid matters). Each concurrently graded notebook
gets its own uid from a range, so one student's fork bomb does not eat another's
process budget. A grader that is not root uses an unprivileged user namespace
(``--unshare-user``; the kernel keeps the grader's uid).

Every process the kernel starts lives in the sandbox's pid namespace, so it ends
with the kernel (``--die-with-parent``; :meth:`Sandbox.close` kills what is left and
checks that nothing survived).

GPUs: with ``gpu="auto"`` and ``/dev/nvidia<N>`` present, the notebook waits for a
free GPU (a ``flock`` per device in ``lock_dir``, so one notebook per GPU at a time,
across grading processes), and the sandbox gets that device node plus the control
nodes (``nvidiactl``, ``nvidia-uvm``...) and a read-only ``/sys``.

Debian/Ubuntu packages: ``bubblewrap`` (``bwrap``), and ``util-linux`` (``prlimit``,
``setpriv``; essential, always installed).
"""
from __future__ import annotations

import errno
import fcntl
import importlib.util
import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import HBChannel  # noqa: F401  (kept importable for subclasses)
from jupyter_client.manager import AsyncKernelManager
from traitlets import Any as AnyTrait
from traitlets import DottedObjectName, Integer

log = logging.getLogger(__name__)

APT_PACKAGES = ("bubblewrap",)
GiB = 2**30
#: Folder of the GPU and uid-slot lock files (shared by every grading process on the machine).
LOCK_DIR = Path("/tmp/gradekit-locks")
MiB = 2**20

#: Environment variables the kernel gets (values filled in by :meth:`Sandbox.environment`).
BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TMPDIR", "PYTHONNOUSERSITE",
            "PYTHONDONTWRITEBYTECODE", "MPLCONFIGDIR", "SHELL", "TERM")
#: Files of /etc the kernel may read (when present).
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf",
             "os-release", "fonts", "alternatives", "mime.types")
NVIDIA_CONTROL = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")


class SandboxError(RuntimeError):
    """The sandbox cannot be used (missing tool, failed self-test, kernel start)."""


class GradingInfrastructureError(RuntimeError):
    """Grading failed for reasons that are not the student's (the grader's disk is full,
    the sandbox or the kernel could not start). Raised out of nbgrader's preprocessor
    after a retry, so that nbgrader reports the notebook as failed instead of recording
    a grade for it."""


# ------------------------------------------------------------------ availability
_PROBES: dict[tuple, str | None] = {}


def find_bwrap(name: str = "bwrap") -> str | None:
    return shutil.which(name)


def probe(name: str = "bwrap") -> str | None:
    """``None`` when ``bwrap`` can build the sandbox here, else why not (cached)."""
    bwrap = find_bwrap(name)
    if bwrap is None:
        return ("bubblewrap is not installed (the bwrap command was not found); install it "
                "with `apt-get install bubblewrap`")
    key = (bwrap, os.geteuid())
    if key in _PROBES:
        return _PROBES[key]
    for tool in ("prlimit",) + (("setpriv",) if os.geteuid() == 0 else ()):
        if shutil.which(tool) is None:
            _PROBES[key] = f"{tool} (util-linux) was not found"
            return _PROBES[key]
    cmd = [bwrap, "--die-with-parent", "--unshare-pid", "--unshare-net", "--unshare-ipc",
           "--ro-bind", "/usr", "/usr", *_root_links(), "--proc", "/proc", "--dev", "/dev"]
    if os.geteuid() == 0:
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", shutil.which("setpriv"),
                "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--no-new-privs", "--"]
    else:
        cmd[1:1] = ["--unshare-user"]
    cmd += ["/bin/sh", "-c", "exit 0"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        reason = None if proc.returncode == 0 else \
            f"bwrap failed its self-test ({proc.returncode}): {proc.stderr.strip()[:300]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        reason = f"bwrap failed its self-test: {exc}"
    _PROBES[key] = reason
    return reason


def _root_links() -> list[str]:
    """Bind or re-create /bin, /sbin, /lib* as on the host (merged /usr or not)."""
    args = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


# ------------------------------------------------------------------ /proc helpers
def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (ppid, start time in clock ticks) for every process on the host."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        # comm may contain spaces and parentheses: split after the last ")".
        fields = data[data.rfind(b")") + 2:].split()
        try:
            table[int(entry)] = (int(fields[1]), int(fields[19]))
        except (IndexError, ValueError):
            continue
    return table


def descendants(root: int, table: dict | None = None) -> list[int]:
    table = _proc_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _memory(pid: int) -> int:
    """Proportional set size of ``pid`` in bytes (resident size when PSS is unavailable)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> tuple[int, float] | None:
    """(start time, CPU time (user + system) used so far) of ``pid`` itself, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        fields = data[data.rfind(b")") + 2:].split()
        return int(fields[19]), (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return None


def isolate_python(cmd: list[str]) -> list[str]:
    """``cmd`` with ``-I`` after the interpreter when it starts Python (``python -m ...``).

    Isolated mode: neither the current folder nor the script's folder is put on
    ``sys.path`` (and IPython >= 9.7 then does not add ``''`` either), ``PYTHON*``
    environment variables and the user site are ignored. Site-packages (and their
    ``.pth`` files, read-only in the sandbox) are still used.
    """
    cmd = list(cmd)
    if cmd and re.fullmatch(r"python[0-9.]*", os.path.basename(cmd[0])) and "-I" not in cmd[1:2]:
        cmd.insert(1, "-I")
    return cmd


def remove_tree(path, dir_fd: int | None = None) -> list[str]:
    """Remove ``path`` (relative to ``dir_fd`` when given) and everything under it.

    Unlike :func:`shutil.rmtree` it does not recurse (a chain of 100,000 folders is
    fine), never builds a path longer than one name (no ``ENAMETOOLONG``), never
    follows a symbolic link, and makes protected folders (``chmod 0``) writable
    before emptying them. It walks down with ``O_NOFOLLOW`` folder descriptors and
    back up through ``..``, checking that ``..`` is the folder it came from. Returns
    what it could not remove (empty when everything went); it raises only when the
    tree changed under it in a way that could make it leave ``path``.
    """
    failed: list[str] = []
    fd = -1
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    if dir_fd is None:
        path = os.path.abspath(os.fspath(path))
        parent_path, name = os.path.split(path)
        try:
            parent = os.open(parent_path or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return []
    else:
        name = os.fspath(path)
        parent = os.dup(dir_fd)
    try:
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return []
        if not stat.S_ISDIR(info.st_mode):
            try:
                os.unlink(name, dir_fd=parent)
            except OSError as exc:
                failed.append(f"{name}: {exc.strerror}")
            return failed
        try:
            os.chmod(name, 0o700, dir_fd=parent)
        except OSError:
            pass
        try:
            fd = os.open(name, flags, dir_fd=parent)
        except OSError as exc:
            return [f"{name}: {exc.strerror}"]
        ids = [(os.fstat(fd).st_dev, os.fstat(fd).st_ino)]  # the folders from ``name`` down to fd
        names = [name]
        stuck: set[tuple[int, int]] = set()   # folders that could not be emptied
        while True:
            sub = None
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        try:
                            is_dir = entry.is_dir(follow_symlinks=False)
                        except OSError:
                            is_dir = False
                        if is_dir:
                            try:
                                st = entry.stat(follow_symlinks=False)
                            except OSError:
                                continue
                            if (st.st_dev, st.st_ino) not in stuck:
                                sub = entry.name
                                break
                            continue
                        try:
                            os.unlink(entry.name, dir_fd=fd)
                        except FileNotFoundError:
                            pass
                        except OSError as exc:
                            key = (os.fstat(fd).st_dev, os.fstat(fd).st_ino)
                            if key not in stuck:
                                failed.append(f"{'/'.join(names[-3:])}/{entry.name}: {exc.strerror}")
                            stuck.add(key)
            except OSError as exc:
                failed.append(f"{'/'.join(names[-3:])}: {exc.strerror}")
                stuck.add(ids[-1])
            if sub is not None:
                try:
                    os.chmod(sub, 0o700, dir_fd=fd)  # a folder (checked above), not a link
                except OSError:
                    pass
                try:
                    child = os.open(sub, flags, dir_fd=fd)
                except OSError as exc:
                    failed.append(f"{'/'.join(names[-3:])}/{sub}: {exc.strerror}")
                    try:
                        st = os.stat(sub, dir_fd=fd, follow_symlinks=False)
                        stuck.add((st.st_dev, st.st_ino))
                        continue
                    except OSError:
                        child = None  # cannot tell it apart: give up on this folder (below)
                if child is None:
                    sub = None
            if sub is not None:
                st = os.fstat(child)
                ids.append((st.st_dev, st.st_ino))
                names.append(sub)
                os.close(fd)
                fd = child
                continue
            # ``fd`` holds nothing more that can be removed: remove it, one level up.
            if len(ids) == 1:
                os.close(fd)
                fd = -1
                try:
                    os.rmdir(name, dir_fd=parent)
                except OSError as exc:
                    failed.append(f"{name}: {exc.strerror}")
                return failed
            up = os.open("..", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
            st = os.fstat(up)
            if (st.st_dev, st.st_ino) != ids[-2]:
                os.close(up)
                os.close(fd)
                fd = -1
                raise OSError(errno.ESTALE, f"the tree under {name} moved while it was being removed")
            os.close(fd)
            fd = up
            done = names.pop()
            gone = ids.pop()
            try:
                os.rmdir(done, dir_fd=fd)
            except FileNotFoundError:
                pass
            except OSError as exc:
                failed.append(f"{'/'.join(names[-3:])}/{done}: {exc.strerror}")
                stuck.add(gone)
    finally:
        os.close(parent)
        if fd >= 0:
            os.close(fd)


def tree_size(path) -> int:
    """Bytes of the regular files under ``path`` (iterative, links not followed)."""
    total, stack = 0, [os.fspath(path)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                pass
    return total


def _kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# ------------------------------------------------------------------ locks
class _FileLock:
    """An exclusive ``flock`` on ``path``; released on :meth:`release` or process exit."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = None


def _acquire_any(paths: list[Path], wait: float, what: str) -> tuple[int, _FileLock]:
    """Lock the first free of ``paths`` (polling up to ``wait`` seconds)."""
    deadline = time.monotonic() + wait
    while True:
        for i, path in enumerate(paths):
            lock = _FileLock(path)
            if lock.try_acquire():
                return i, lock
        if time.monotonic() >= deadline:
            raise SandboxError(f"no free {what} after waiting {wait:.0f} s (locks in {paths[0].parent})")
        time.sleep(0.5)


def gpu_devices() -> list[str]:
    """``/dev/nvidia<N>`` device nodes, in order."""
    nodes = [p for p in Path("/dev").glob("nvidia*") if re.fullmatch(r"nvidia\d+", p.name)]
    return [str(p) for p in sorted(nodes, key=lambda p: int(p.name[6:]))]


def module_dir(name: str) -> Path | None:
    """Where the grader would import top-level package or module ``name`` from."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]).resolve()
    if spec.origin and spec.origin not in ("built-in", "frozen"):
        return Path(spec.origin).resolve()
    return None


def _inside(path: Path, roots) -> bool:
    return any(path == r or r in path.parents for r in roots)


# ------------------------------------------------------------------ the sandbox
@dataclass
class Limits:
    memory: int = 4 * GiB            #: total PSS of the sandbox's processes (watchdog)
    address_space: int | None = None  #: RLIMIT_AS per process; None: memory + 8 GiB; 0: off
    processes: int = 256             #: RLIMIT_NPROC (threads count too)
    file_size: int = 1 * GiB         #: RLIMIT_FSIZE
    open_files: int = 1024           #: RLIMIT_NOFILE
    tmp_size: int = 512 * MiB        #: size of the /tmp and /dev/shm tmpfs mounts
    work_size: int = 1 * GiB         #: what the notebook may write in its working folder (tmpfs)
    record_size: int = 272 * MiB     #: size of the tmpfs for one test cell's recordings (.gradekit/out)
    wall_time: float | None = 3600.0  #: seconds for the whole notebook (watchdog)


@dataclass
class Sandbox:
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

    def environment(self) -> dict[str, str]:
        """The kernel's whole environment."""
        python_bin = str(Path(sys.executable).parent)
        home = "/tmp/home" if self.isolated else str(self.rundir / "home")
        if not self.isolated:
            Path(home).mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.pathsep.join([python_bin, "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": home, "USER": "student", "LOGNAME": "student", "SHELL": "/bin/sh",
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "dumb",
            "TMPDIR": "/tmp" if self.isolated else str(self.rundir),
            "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "MPLCONFIGDIR": f"{home}/.config/matplotlib",
        }
        if self.threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.threads)
        return env

    def _python_roots(self) -> list[Path]:
        roots = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix),
                 Path(sys.base_exec_prefix), Path(sys.executable).resolve().parent.parent}
        return sorted(r.resolve() for r in roots if r.exists())

    def _binds(self) -> tuple[list[Path], list[Path]]:
        """Read-only paths to bind and paths to hide under them."""
        ro = [r for r in self._python_roots() if str(r) not in ("/", "/usr")]
        for name in self.kernel_packages:
            where = module_dir(name)
            if where is not None and not _inside(where, ro + [Path("/usr")]):
                ro.append(where)
        ro += [Path(p).resolve() for p in self.ro_paths if Path(p).exists()]
        hidden = []
        for name in self.hidden_packages:
            where = module_dir(name)
            if where is not None and _inside(where, ro + [Path("/usr")]):
                hidden.append(where)
        return ro, hidden

    def _etc_files(self) -> list[str]:
        uid = self.uid if self.uid is not None else os.getuid()
        gid = uid if self.uid is not None else os.getgid()
        files = {
            "passwd": f"root:x:0:0:root:/root:/bin/sh\nstudent:x:{uid}:{gid}:student:/tmp/home:/bin/sh\n"
                      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            "group": f"root:x:0:\nstudent:x:{gid}:\nnogroup:x:65534:\n",
            "hosts": "127.0.0.1 localhost\n::1 localhost\n",
            "hostname": "sandbox\n",
        }
        args = []
        etc = self.rundir.parent / "etc"
        etc.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (etc / name).write_text(text)
            args += ["--ro-bind", str(etc / name), f"/etc/{name}"]
        for name in ETC_FILES:
            args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        return args

    def wrap(self, cmd: list[str]) -> list[str]:
        """The full command line: limits, then (isolated) bwrap and the uid drop."""
        limits = self.limits
        address_space = limits.address_space
        if address_space is None:
            address_space = limits.memory + 8 * GiB
        if self.gpu_device:
            address_space = 0  # CUDA reserves terabytes of address space
        nproc = limits.processes
        if not (self.isolated and self.root):
            # RLIMIT_NPROC counts every process of the uid: leave room for the grader's own.
            nproc += sum(1 for _ in _proc_table()) if self.root else _count_own_tasks()
        prefix = [shutil.which("prlimit") or "prlimit", f"--nproc={nproc}",
                  f"--fsize={limits.file_size}", f"--nofile={limits.open_files}", "--core=0"]
        if address_space:
            prefix.append(f"--as={address_space}")
        prefix.append("--")
        if not self.isolated:  # trusted code (sandbox = "none"): Python starts as it always does
            return prefix + cmd
        ro, hidden = self._binds()
        bwrap = [find_bwrap(self.bwrap), "--die-with-parent", "--unshare-pid", "--unshare-net",
                 "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
        if self.root:
            bwrap += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            bwrap += ["--unshare-user", "--disable-userns"]
        # /etc traversable by the kernel's user (bwrap would make it 0700): fontconfig, the
        # resolver and the C library read the files bound below.
        bwrap += ["--ro-bind", "/usr", "/usr", *_root_links(), "--perms", "0755", "--dir", "/etc", *self._etc_files(),
                  "--proc", "/proc", "--dev", "/dev",
                  "--perms", "1777", "--size", str(limits.tmp_size), "--tmpfs", "/dev/shm",
                  "--perms", "1777", "--size", str(limits.tmp_size), "--tmpfs", "/tmp",
                  "--perms", "0777", "--dir", "/tmp/home"]
        rw = [self.rundir]
        seed = self.seed_path()
        # Parents of the mount points, traversable (bwrap would make them 0700).
        targets = set(map(str, ro + rw + [self.workdir, seed]))
        parents = sorted({str(a) for p in ro + rw + [self.workdir, seed] for a in Path(p).parents
                          if str(a) not in ("/", "/tmp", "/usr") and str(a) not in targets
                          and not str(a).startswith("/usr/")}, key=lambda a: a.count("/"))
        for parent in parents:
            bwrap += ["--perms", "0755", "--dir", parent]
        for path in ro:
            bwrap += ["--ro-bind", str(path), str(path)]
        for path in hidden:
            bwrap += ["--perms", "0555", "--size", "4096", "--tmpfs", str(path), "--remount-ro", str(path)]
        if self.gpu_device:
            for name in NVIDIA_CONTROL:
                bwrap += ["--dev-bind-try", f"/dev/{name}", f"/dev/{name}"]
            bwrap += ["--dev-bind", self.gpu_device, self.gpu_device, "--ro-bind", "/sys", "/sys"]
        for path in rw:
            bwrap += ["--bind", str(path), str(path)]
        # The working folder: a sized tmpfs (room for the submitted files plus work_size),
        # filled from the read-only scratch copy by the start command (see :meth:`command`).
        work, gk = str(self.workdir), f"{self.workdir}/{self.gradekit_dir}"
        bwrap += ["--ro-bind", work, str(seed),
                  "--perms", "1777", "--size", str(self._seed_bytes + limits.work_size + 4 * MiB), "--tmpfs", work,
                  "--perms", "0755", "--dir", gk]
        if self.cases is not None:
            bwrap += ["--ro-bind", str(self.cases), f"{gk}/cases"]
        # Recordings get their own tmpfs: junk in the working folder cannot crowd them out.
        bwrap += ["--perms", "0777", "--size", str(limits.record_size), "--tmpfs", f"{gk}/out"]
        bwrap += ["--remount-ro", "/", "--chdir", work, "--clearenv"]
        for key, value in self.environment().items():
            bwrap += ["--setenv", key, value]
        if self.root:
            bwrap += [shutil.which("setpriv") or "setpriv", f"--reuid={self.uid}", f"--regid={self.uid}",
                      "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        return prefix + bwrap + self.command(cmd)

    def seed_path(self) -> Path:
        """Where the scratch copy of the submission is seen, read-only, in the sandbox."""
        return self.workdir.parent / (self.workdir.name + ".seed")

    def command(self, cmd: list[str]) -> list[str]:
        """Inside the sandbox: copy the submitted files into the tmpfs, then start ``cmd``
        (an isolated Python, :func:`isolate_python`)."""
        script = 'cp -R "$0"/. . 2>/dev/null || echo "gradekit: could not copy every submitted file" >&2; exec "$@"'
        return ["/bin/sh", "-c", script, str(self.seed_path()), *isolate_python(cmd)]

    # ---------------------------------------------------------------- run time
    def attach(self, process: subprocess.Popen) -> None:
        """Start watching the launched kernel (``process``: the outermost command)."""
        self.process = process
        self.started = time.monotonic()
        watchdog = threading.Thread(target=self._watch, name="sandbox-watchdog", daemon=True)
        watchdog.start()
        self._threads.append(watchdog)
        if process.stderr is not None:
            drain = threading.Thread(target=self._drain, args=(process.stderr,), daemon=True)
            drain.start()
            self._threads.append(drain)

    def open_channel(self) -> int:
        """A pipe for the graded kernel's audit hook (:mod:`gradekit.kernel`): returns the end
        the kernel writes (pass it to the kernel, then close it here); a thread reads the other
        end into :attr:`channel` (``ready``, the first findings, ``closed_at``: when every write
        end was closed, on the monotonic clock)."""
        read_fd, write_fd = os.pipe()
        reader = threading.Thread(target=self._read_channel, args=(read_fd,), name="sandbox-channel", daemon=True)
        reader.start()
        self._threads.append(reader)
        return write_fd

    def channel_report(self, wait: float = 5.0) -> dict:
        """:attr:`channel` once its reader has seen the end of the pipe (the kernel is gone)."""
        for thread in self._threads:
            if thread.name == "sandbox-channel":
                thread.join(wait)
        return self.channel

    def _read_channel(self, fd: int) -> None:
        channel = self.channel
        with os.fdopen(fd, "rb") as stream:
            for line in stream:
                try:
                    message = json.loads(line[:4096])
                except ValueError:
                    message = {"finding": "the grader's audit channel received something it did not write"}
                if not isinstance(message, dict):
                    continue
                if message.get("ready") is True:
                    channel["ready"] = True
                elif isinstance(message.get("finding"), str) and len(channel["findings"]) < 20:
                    channel["findings"].append(message["finding"][:300])
        channel["closed_at"] = time.monotonic()

    def _drain(self, stream) -> None:
        """Keep the last 16 KiB of the kernel's stderr (bwrap's own errors land there)."""
        try:
            while True:
                chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
                if not chunk:
                    break
                self.stderr_tail = (self.stderr_tail + chunk)[-16384:]
        except (OSError, ValueError):
            pass

    def processes(self) -> list[int]:
        if self.process is None:
            return []
        table = _proc_table()
        pids = descendants(self.process.pid, table)
        return ([self.process.pid] if self.process.pid in table else []) + pids

    def memory_used(self) -> int:
        pids = self.processes()
        self._sample_cpu(pids)
        return sum(_memory(pid) for pid in pids)

    def _sample_cpu(self, pids) -> None:
        for pid in pids:
            sample = _cpu_seconds(pid)
            if sample is not None:
                key = (pid, sample[0])  # a pid may be reused: keyed by its start time too
                self._cpu[key] = max(self._cpu.get(key, 0.0), sample[1])

    @property
    def cpu_seconds(self) -> float:
        """CPU time used by the sandbox's processes (sampled with the memory; a process
        that lived less than a sampling interval may be missed)."""
        return round(sum(self._cpu.values()), 2)

    def kernel_pid(self) -> int | None:
        """Host pid of the kernel process (the first process started in the sandbox)."""
        if self.process is None:
            return None
        if not self.isolated:
            return self.process.pid
        table = _proc_table()
        pid = self.process.pid
        for _ in range(2):  # outer bwrap -> init of the pid namespace -> kernel
            children = [(start, p) for p, (ppid, start) in table.items() if ppid == pid]
            if not children:
                return None
            pid = min(children)[1]
        return pid

    def _watch(self) -> None:
        limits = self.limits
        while not self._stop.wait(0.25):
            if self.process is None or self.process.poll() is not None:
                return
            used = self.memory_used()
            self.peak_memory = max(self.peak_memory, used)
            if limits.memory and used > limits.memory:
                log.warning("sandbox used %.2f GiB > %.2f GiB: killing it", used / GiB, limits.memory / GiB)
                self.kill("out of memory")
                return
            if limits.wall_time and time.monotonic() - self.started > limits.wall_time:
                log.warning("notebook ran past %.0f s: killing its kernel", limits.wall_time)
                self.kill("timeout")
                return

    def kill(self, reason: str | None = None) -> None:
        """Kill every process of the sandbox now."""
        if reason and self.reason is None:
            self.reason = reason
        if self.process is None:
            return
        pids = self.processes()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        _kill(pids)

    def close(self) -> list[int]:
        """Stop watching, kill what is left, release the locks.

        Returns the pids that were still alive after that (should be empty).
        """
        self._stop.set()
        survivors: list[int] = []
        if self.process is not None:
            self._sample_cpu(self.processes())
            if self.process.poll() is None or self.processes():
                self.kill()
            deadline = time.monotonic() + 5
            while True:
                try:
                    self.process.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
                survivors = self.processes()
                if not survivors or time.monotonic() > deadline:
                    break
                _kill(survivors)
            if survivors:
                log.error("sandbox processes survived the kernel: %s", survivors)
        if self.uid is not None:
            left = self._kill_stale(self.uid, wait=3.0)
            if left:
                log.error("processes of sandbox uid %d survived: %s", self.uid, left)
                survivors = sorted(set(survivors) | set(left))
        for lock in self._locks:
            lock.release()
        self._locks.clear()
        return survivors


def _count_own_tasks() -> int:
    """Threads of the current uid (what RLIMIT_NPROC counts)."""
    uid, count = os.getuid(), 0
    for pid in _proc_table():
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                count += len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            pass
    return count


# ------------------------------------------------------------------ jupyter glue
def graded_kernel_command(cmd: list[str], channel: int) -> list[str]:
    """The kernelspec's ``python -m ipykernel_launcher ...`` started as ``python -m gradekit.kernel
    --gradekit-channel=FD ...`` (ipykernel behind the grader's audit hook)."""
    for i, arg in enumerate(cmd[:-1]):
        if arg == "-m" and cmd[i + 1] in ("ipykernel_launcher", "ipykernel"):
            return cmd[:i + 1] + ["gradekit.kernel", f"--gradekit-channel={channel}"] + cmd[i + 2:]
    raise SandboxError(f"the kernel command does not start ipykernel with -m: {' '.join(cmd)[:200]}")



class CappedKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse messages over ``max_message_bytes``."""

    max_message_bytes = 64 * MiB

    def _create_connected_socket(self, channel, identity=None):
        import zmq

        from jupyter_client.connect import channel_socket_types

        url = self._make_url(channel)
        sock = self.context.socket(channel_socket_types[channel])
        sock.linger = 0  # the kernel is killed once its cells ran: nothing left to send waits for it
        sock.setsockopt(zmq.MAXMSGSIZE, int(self.max_message_bytes))
        if identity:
            sock.identity = identity
        sock.connect(url)
        return sock


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel inside :attr:`sandbox` (a :class:`Sandbox`, set by the grader).

    With a ``bwrap`` sandbox the kernel talks over unix sockets (``transport="ipc"``)
    in the sandbox's run folder: the sandbox has no network, not even loopback.
    """

    sandbox = AnyTrait(None, allow_none=True)
    client_class = DottedObjectName("autograder.sandbox.CappedKernelClient")
    shutdown_wait_time = Integer(3).tag(config=True)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        sandbox: Sandbox | None = self.sandbox
        if sandbox is None:
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        kw["env"] = sandbox.environment()
        kw["stdout"] = subprocess.DEVNULL
        kw["stderr"] = subprocess.PIPE
        kw["close_fds"] = True
        if sandbox.isolated and sandbox.uid is not None and self.connection_file:
            os.chown(self.connection_file, sandbox.uid, sandbox.uid)
        channel = None
        if sandbox.isolated:  # the graded kernel: its audit hook first (gradekit.kernel)
            channel = sandbox.open_channel()
            kernel_cmd = graded_kernel_command(list(kernel_cmd), channel)
            kw["pass_fds"] = (channel,)
        wrapped = sandbox.wrap(list(kernel_cmd))
        log.debug("sandboxed kernel command: %s", wrapped)
        try:
            await super()._async_launch_kernel(wrapped, **kw)
        finally:
            if channel is not None:
                os.close(channel)  # the kernel holds the only write end now
        sandbox.attach(self.provisioner.process)

    async def _async_interrupt_kernel(self):
        # A SIGINT to the process group would stop bwrap itself: signal the kernel only.
        sandbox: Sandbox | None = self.sandbox
        if sandbox is not None and sandbox.isolated and self.has_kernel:
            pid = sandbox.kernel_pid()
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGINT)
                except OSError:
                    pass
                return
        await super()._async_interrupt_kernel()

    # AsyncKernelManager binds interrupt_kernel to KernelManager._async_interrupt_kernel
    # itself, which would bypass the override above (and SIGINT the whole process group:
    # bwrap dies of it and takes the kernel along, a "kernel died" instead of a timeout).
    interrupt_kernel = _async_interrupt_kernel
