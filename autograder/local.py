"""Grade objects in this process, without a notebook or a kernel.

For the test suite (checking that references pass and wrong answers fail) and
for instructors trying out a new problem. It runs the same requests and the same
judge as notebook grading; only the kernel is replaced by this process.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import gradekit

from .checks import problems_for
from .judge import Judge
from .problem import Verdict


def grade_namespace(assignment: str, namespace: dict, names=None, seed: int = 0,
                    sources: list[str] | None = None, strict: bool = True) -> dict[str, Verdict]:
    """Verdicts for the problems ``names`` (default: all) of ``assignment``.

    ``namespace`` maps graded names to the objects under test; ``sources`` are the
    code cells searched for forbidden built-ins (``None`` skips the static check).
    ``strict``: a bug in check code raises instead of becoming a message.
    """
    problems = problems_for(assignment)
    if names is not None:
        problems = {n: problems[n] for n in names}
    with tempfile.TemporaryDirectory(prefix="gradekit-local-") as tmp:
        judge = Judge(problems, seed, Path(tmp), strict=strict)
        judge.prepare()
        with contextlib.redirect_stdout(io.StringIO()):
            for name in problems:
                gradekit.capture(name, namespace, root=tmp)
        return judge.collect(sources)
