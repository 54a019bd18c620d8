"""The sandbox's command line: ``prlimit``, then ``bwrap`` and the uid drop.

Availability first (:func:`probe`: is ``bwrap`` there, and can it build a sandbox here?),
then :class:`BubblewrapCommand`, the part of :class:`~.core.Sandbox` that builds the
kernel's command and environment: what is bound read-only, what is hidden, the sized
``tmpfs`` mounts, the GPU's device nodes.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .limits import GiB, MiB
from .processes import _count_own_tasks, _proc_table

APT_PACKAGES = ("bubblewrap",)

#: Environment variables the kernel gets (values filled in by :meth:`Sandbox.environment`).
BASE_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TMPDIR", "PYTHONNOUSERSITE",
            "PYTHONDONTWRITEBYTECODE", "MPLCONFIGDIR", "SHELL", "TERM")
#: Files of /etc the kernel may read (when present).
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "nsswitch.conf",
             "os-release", "fonts", "alternatives", "mime.types")
NVIDIA_CONTROL = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")


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


class BubblewrapCommand:
    """The command and environment of a :class:`~.core.Sandbox`'s kernel (a mixin: the
    sandbox's fields are its state)."""

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
        prefix = self._prlimit()
        if not self.isolated:  # trusted code (sandbox = "none"): Python starts as it always does
            return prefix + cmd
        ro, hidden = self._binds()
        bwrap = self._bwrap_namespaces() + self._bwrap_mounts(ro, hidden)
        bwrap += ["--remount-ro", "/", "--chdir", str(self.workdir), "--clearenv"]
        for key, value in self.environment().items():
            bwrap += ["--setenv", key, value]
        if self.root:
            bwrap += [shutil.which("setpriv") or "setpriv", f"--reuid={self.uid}", f"--regid={self.uid}",
                      "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        return prefix + bwrap + self.command(cmd)

    def _prlimit(self) -> list[str]:
        """``prlimit`` with the per-process limits, up to its ``--``."""
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
        return prefix

    def _bwrap_namespaces(self) -> list[str]:
        """``bwrap`` and its namespaces, then the system: ``/usr``, ``/etc``, ``/proc``, ``/dev``,
        ``/tmp`` and ``/dev/shm``."""
        limits = self.limits
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
        return bwrap

    def _bwrap_mounts(self, ro: list[Path], hidden: list[Path]) -> list[str]:
        """The Python environment and packages (read-only), hidden packages, the GPU, the run
        folder, and the working folder with the judge's cases and the recordings' tmpfs."""
        limits = self.limits
        bwrap: list[str] = []
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
        return bwrap

    def seed_path(self) -> Path:
        """Where the scratch copy of the submission is seen, read-only, in the sandbox."""
        return self.workdir.parent / (self.workdir.name + ".seed")

    def command(self, cmd: list[str]) -> list[str]:
        """Inside the sandbox: copy the submitted files into the tmpfs, then start ``cmd``
        (an isolated Python, :func:`isolate_python`)."""
        script = 'cp -R "$0"/. . 2>/dev/null || echo "gradekit: could not copy every submitted file" >&2; exec "$@"'
        return ["/bin/sh", "-c", script, str(self.seed_path()), *isolate_python(cmd)]
