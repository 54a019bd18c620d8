"""The sandbox at run time: the watchdog, the audit channel, the kernel's stderr, and the end.

:class:`SandboxRuntime` is the part of :class:`~.core.Sandbox` that runs once the kernel
is launched: a watchdog thread measures the memory (proportional set size) and the CPU
time of every process in the sandbox and kills it past the memory or wall-time limit; a
thread reads the graded kernel's audit channel (:mod:`gradekit.kernel`); :meth:`close`
kills whatever is left and releases the locks.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
import time

from .limits import GiB
from .processes import _cpu_seconds, _kill, _memory, _proc_table, descendants

log = logging.getLogger(__name__)


class SandboxRuntime:
    """Watching and ending a :class:`~.core.Sandbox`'s processes (a mixin: the sandbox's
    fields are its state)."""

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
