"""Jupyter glue: the kernel manager that starts the kernel in its sandbox, and a capped client."""
from __future__ import annotations

import logging
import os
import signal
import subprocess

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import HBChannel  # noqa: F401  (kept importable for subclasses)
from jupyter_client.manager import AsyncKernelManager
from traitlets import Any as AnyTrait
from traitlets import DottedObjectName, Integer

from .core import Sandbox
from .errors import SandboxError
from .limits import MiB

log = logging.getLogger(__name__)


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
    client_class = DottedObjectName("autograder.isolation.sandbox.kernel.CappedKernelClient")
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
