"""Locks shared by every grading process on the machine: uid slots and GPUs (``flock``)."""
from __future__ import annotations

import errno
import fcntl
import os
import re
import time
from pathlib import Path

from .errors import SandboxError

#: Folder of the GPU and uid-slot lock files (shared by every grading process on the machine).
LOCK_DIR = Path("/tmp/gradekit-locks")


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
