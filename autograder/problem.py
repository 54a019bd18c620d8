"""How a graded problem is described to the judge.

A :class:`Problem` produces randomised :class:`Case` objects from a generator
seeded at grading time. Each case has

- ``request``: what the kernel should run (see :mod:`gradekit.capture`), holding
  inputs only (numpy arrays, ``ModuleSpec``\\ s, plain values);
- ``check``: a judge-side function from the kernel's :class:`Outcome` to ``None``
  (right) or a message saying what is wrong, computing the reference itself;
- ``group``: the aspect it tests ("stride", "padding", "backward", ...).

Scoring: a group passes when all its cases pass; the problem's score is the
weighted share of passing groups (weights default to 1). A call to a built-in the
problem asks the student to write scores 0, whatever the values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from gradekit.codec import Unsupported

from .compare import describe

#: Every status a graded problem can end in.
STATUSES = ("passed", "failed", "error", "timeout", "out of memory", "kernel died", "missing")


@dataclass
class Outcome:
    """What the kernel recorded for one request, decoded to plain data."""

    status: str  # "ok", "error", "timeout", "oom", "missing"
    data: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["data"][name]
        except KeyError:
            raise AttributeError(name) from None

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)


@dataclass
class Case:
    request: dict
    check: Callable[[Outcome], str | None]
    label: str
    group: str = "basic"
    #: Name of the exception the student's code must raise (``check`` then only
    #: runs when it returned normally, to say so).
    raises: str | None = None


@dataclass
class Verdict:
    """The judge's verdict on one problem for one notebook."""

    name: str
    status: str
    fraction: float
    lines: list[str] = field(default_factory=list)
    groups: dict[str, bool] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "fraction": self.fraction,
                "lines": self.lines, "groups": self.groups}


class Problem:
    """Base class: subclasses set ``name`` and implement :meth:`cases`.

    Attributes:
        name: the graded name in the notebook (function or class).
        banned_names: attribute, import or string names that may not appear in the
            student's definition (checked on the source, by AST).
        banned_ops: torch functions / ATen ops (``"aten.convolution"``) that may not
            run while the student's code runs (checked on the kernel's op trace).
        hints: per group, a hint shown when that group fails. Hints teach the
            concept; they never state the answer.
        weights: per group weight (default 1).
        seconds: time limit for each request in the kernel.
    """

    name: str = ""
    banned_names: tuple[str, ...] = ()
    banned_ops: tuple[str, ...] = ()
    hints: dict[str, str] = {}
    weights: dict[str, float] = {}
    seconds: float = 60.0

    def cases(self, rng: np.random.Generator) -> list[Case]:
        raise NotImplementedError

    # Helpers for subclasses -------------------------------------------------
    def call(self, *args, **kwargs) -> dict:
        """A ``call`` request of the problem's function on ``args`` and ``kwargs``."""
        return {"proc": "call", "fn": self.name, "args": list(args), "kwargs": kwargs}


def error_message(name: str, outcome: Outcome, label: str) -> str:
    """Turn a failed request into one line for the student."""
    if outcome.status == "timeout":
        return f"{label}: did not finish within the time limit (an infinite loop, or far too slow)"
    if outcome.status == "oom":
        return f"{label}: ran out of memory"
    if outcome.status == "missing":
        return f"{label}: no result was recorded"
    err = outcome.get("error") or {}
    kind, message = err.get("type", "Error"), err.get("message", "")
    where = err.get("where")
    stage = outcome.get("stage", "call")
    if kind == "NotImplementedError":
        return f"{name} is not implemented yet (it raises NotImplementedError)"
    text = f"{label}: raised {kind}"
    if message:
        text += f": {message[:200]}"
    if where and where.get("line"):
        text += f" (in {where.get('function')}, line {where.get('line')})"
    if stage not in ("call", "lookup"):
        text += f" [during {stage}]"
    return text


def value_or_message(outcome: Outcome, key: str = "value"):
    """Helper: the recorded value, or a message if it could not be recorded."""
    value = outcome.get(key)
    if isinstance(value, Unsupported):
        return None, f"returned {describe(value)}, which the grader cannot read"
    return value, None
