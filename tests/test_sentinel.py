"""The graded kernel's audit hook (:mod:`gradekit.kernel`): code made from data is reported on a
channel the notebook cannot take back, and scores zero; honest work is not reported.

These run kernels through :class:`~autograder.integration.execute.JudgedExecute` in the sandbox with the
static scan switched off (``integrity="off"``), so that only the audit hook can see the attack;
the corpus ``tests/cheats_w345/`` grades the same attacks with everything on.
"""
from __future__ import annotations

import pickle
import pickletools

import pytest

from autograder.isolation.sandbox.errors import SandboxError
from autograder.isolation.sandbox.kernel import graded_kernel_command
from autograder.notebooks import reference_definitions
from gradekit.kernel import Sentinel

from .test_isolation import A, _graded, needs_bwrap

REF = reference_definitions(A)["conv_output_size"]


class _Exec:
    """Unpickles as ``exec(SOURCE)``: a pickle of a bytes constant that runs code."""

    def __reduce__(self):
        return exec, ("import builtins; builtins.UNPICKLED = 1",)


PAYLOAD = pickletools.optimize(pickle.dumps(_Exec()))
#: The notebook loads pickle without naming it (the static scan is off anyway).
UNPICKLE = f"loads = __import__('pick' + 'le').loads\nloads({PAYLOAD!r})"
#: Closes the channel (found from the kernel's command line), then defines the answer.
CLOSE_CHANNEL = ("import os\nargs = open('/proc/self/cmdline', 'rb').read().split(b'\\0')\n"
                 "fd = [int(a.split(b'=')[1]) for a in args if a.startswith(b'--gradekit-channel=')][0]\n"
                 "os.close(fd)")


#: Code compiled from a string by timeit and codeop under a standard-library file name: only
#: library functions call compile and exec, and the frames claim to be a library's.
TRUSTED_NAME = ("import timeit\n"
                "STAGE = 'import codeop, os, runpy, sysconfig\\n' \\\n"
                "    'path = os.path.join(sysconfig.get_paths()[\"stdlib\"], \"functools.py\")\\n' \\\n"
                "    'runpy._run_code(codeop.compile_command(\"import builtins; builtins.STAGED = 1\", path, \"exec\"), {})'\n"
                "timeit.Timer(stmt=STAGE).timeit(number=1)")


def _status(report) -> tuple[str, float, str]:
    verdict = report["problems"]["conv_output_size"]
    return verdict["status"], verdict["fraction"], "\n".join(verdict["lines"])


@needs_bwrap
def test_code_unpickled_from_bytes_scores_zero_though_the_scan_is_off(tmp_path):
    report, _ = _graded(tmp_path, [REF, UNPICKLE], integrity="off")
    status, fraction, lines = _status(report)
    assert fraction == 0 and "unpickles builtins.exec: code run from bytes" in lines, lines
    assert any("unpickles builtins.exec" in f for f in report["integrity"]), report["integrity"]


@needs_bwrap
def test_code_compiled_by_library_functions_under_a_library_name_scores_zero(tmp_path):
    report, _ = _graded(tmp_path, [REF, TRUSTED_NAME], integrity="off")
    status, fraction, lines = _status(report)
    assert fraction == 0 and "code made from data" in lines, lines


@needs_bwrap
def test_closing_the_channel_is_a_finding_and_honest_work_has_none(tmp_path):
    report, _ = _graded(tmp_path / "closed", [CLOSE_CHANNEL, "import time\ntime.sleep(1.5)", REF], integrity="off")
    status, fraction, lines = _status(report)
    assert fraction == 0 and "audit channel was closed" in lines, lines
    report, _ = _graded(tmp_path / "honest", [REF, "import dataclasses, collections\n"
                                              "P = collections.namedtuple('P', 'x y')\n"
                                              "@dataclasses.dataclass\nclass Q:\n    x: int = 1\n"
                                              "import torch\nprint(torch.zeros(2).sum())\n"
                                              "import timeit\nprint(timeit.timeit(lambda: Q(), number=3))"])
    assert _status(report)[:2] == ("passed", 1.0), _status(report)
    assert report["integrity"] == []


def test_the_sentinel_reports_only_when_armed_and_only_code_from_data(tmp_path):
    import os

    read_fd, write_fd = os.pipe()
    sentinel = Sentinel(write_fd)
    sentinel("pickle.find_class", ("builtins", "exec"))  # not armed yet: kernel start-up
    sentinel.arm()
    sentinel("pickle.find_class", ("builtins", "exec"))
    sentinel("import", ("os",))  # not an event it watches
    os.close(write_fd)
    with os.fdopen(read_fd) as stream:
        lines = stream.read().splitlines()
    assert lines[0] == '{"ready": true}' and len(lines) == 2 and "unpickles builtins.exec" in lines[1], lines


def test_the_graded_kernel_command_wraps_ipykernel():
    cmd = ["/venv/bin/python", "-m", "ipykernel_launcher", "-f", "/run/kernel.json"]
    assert graded_kernel_command(cmd, 7) == ["/venv/bin/python", "-m", "gradekit.kernel", "--gradekit-channel=7",
                                             "-f", "/run/kernel.json"]
    with pytest.raises(SandboxError):
        graded_kernel_command(["/usr/bin/some-kernel", "-f", "x"], 7)
