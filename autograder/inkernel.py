"""Checks run *inside* the student's kernel, the way plain nbgrader test cells work.

Not used for grading. It exists so that ``benchmarks/grading_overhead.py`` can time
stock ``nbgrader autograde`` (``Execute``, checks in the kernel) against the
trusted pipeline on the same submissions and the same checks. A hidden test cell
in that setting reads::

    import autograder.inkernel as _g; _g.check("w1_conv_arithmetic", "conv2d", globals(), 10)

and its value (the partial score) is the cell's ``execute_result``.
"""
from __future__ import annotations

import secrets

from .local import grade_namespace


def check(assignment: str, name: str, namespace: dict, points: float) -> float:
    verdict = grade_namespace(assignment, namespace, names=[name], seed=secrets.randbits(31),
                              sources=None)[name]
    print("\n".join(verdict.lines))
    return round(points * verdict.fraction, 2)
