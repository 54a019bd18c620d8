"""How a graded problem is described to the judge.

A :class:`Problem` declares its check groups once (:class:`Group`: the aspect it
tests, the hint shown when it fails, its weight) and draws randomised
:class:`Case` objects from a generator seeded at grading time. Each case has

- ``request``: what the kernel should run (see :mod:`gradekit.capture`), holding
  inputs only (numpy arrays, ``ModuleSpec``\\ s, plain values);
- ``check``: a judge-side function from the kernel's :class:`Outcome` to ``None``
  (right) or a message saying what is wrong, computing the reference itself;
- ``group``: the name of one of the problem's groups.

Scoring: a group passes when all its cases pass; the problem's score is the
weighted share of passing groups. A call to a built-in the problem asks the
student to write scores 0, whatever the values.

The builders of :mod:`autograder.cases` make the cases of every week.
"""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable


#: Fields a kernel record may carry (see ``gradekit.capture``): reading any other
#: attribute of an :class:`Outcome` is a bug in the check, not a student's fault.
RECORD_FIELDS = frozenset({
    "status", "stage", "error", "seconds", "ops", "value", "args_after", "grads", "grad_error",
    "values", "vars", "facts", "outputs", "load_error", "state_after", "student_s", "baseline_s",
    "student_times", "baseline_times", "eval_logits", "history", "device", "runs", "forward_errors"})


class CheckBug(AttributeError):
    """A check read a field no kernel record has: a typo in the grader, never the student's fault."""


@dataclass
class Outcome:
    """What the kernel recorded for one request, decoded to plain data.

    Fields of the record read as attributes (``outcome.value``); a field the
    kernel did not record reads as ``None``; a name that is no record field at
    all raises :class:`CheckBug`.
    """

    status: str  # "ok", "error", "timeout", "oom", "missing"
    data: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name not in RECORD_FIELDS:
            raise CheckBug(f"Outcome has no field {name!r} (known: {', '.join(sorted(RECORD_FIELDS))})")
        return self.__dict__["data"].get(name)

    def get(self, name: str, default: Any = None) -> Any:
        if name not in RECORD_FIELDS:
            raise CheckBug(f"Outcome has no field {name!r}")
        return self.data.get(name, default)


@dataclass(frozen=True)
class Group:
    """One aspect of a problem: its name, the hint shown when it fails, its weight.

    Hints teach the concept; they never state the answer.
    """

    name: str
    hint: str
    weight: float = 1.0


_HEADING = re.compile(r"(?P<name>[^\s:][^:]*?)(?: \[(?P<weight>[0-9.]+)\])?: (?P<hint>.*)")


def hints(table: str) -> tuple[Group, ...]:
    """Groups written as a table of hints, one entry per group, in report order::

        basic: start from the kernel sliding one pixel at a time.
        invalid [0.5]: a kernel larger than the padded input leaves no position:
            raise ValueError.

    An entry starts at the margin with the group's name, an optional ``[weight]``
    (1 by default) and ``": "``; indented lines continue its hint.
    """
    groups: list[list] = []
    for line in textwrap.dedent(table).strip("\n").splitlines():
        if line[:1].isspace() and groups:
            groups[-1][2] += " " + line.strip()
        elif (m := _HEADING.fullmatch(line.rstrip())):
            groups.append([m["name"], float(m["weight"] or 1.0), m["hint"]])
        else:
            raise ValueError(f"not a hint table entry: {line!r}")
    return tuple(Group(name, hint, weight) for name, weight, hint in groups)


@dataclass(frozen=True)
class Public:
    """How the students' self-check uses a case (see :mod:`autograder.selfcheck_pack`).

    The case is drawn at the public seed, the reference runs it, and the release stores
    the values the reference's record holds at ``fields``; a student's record must hold
    the same there (tensors within ``tol``, by dtype when None). A field is a dotted
    path into the record (``value``, ``grads``, ``facts.num_params``, ``outputs.0``)
    with an optional rule after a colon: ``:shape`` (only the tensor's shape),
    ``:keys`` (a dict with exactly the same keys, values compared too), ``:contains``
    (a list holding every stored item). ``speed``: the case is a timing case and
    ``student_s / baseline_s`` may not exceed it (its inputs are drawn where it runs).
    ``rule``: a property of the record that needs no stored answer, one of
    :data:`gradekit.public_cases.RULES`, called with ``params`` (the hidden check calls
    the same function).

    Only what the hidden check itself requires of every right answer may be a field,
    so that failing the self-check always means failing the hidden check too.
    """

    fields: tuple[str, ...] = ()
    tol: float | None = None
    speed: float | None = None
    rule: str | None = None
    params: dict | None = None


@dataclass
class Case:
    #: The request, or a function that makes it when it is written (large inputs drawn late).
    request: dict | Callable[[], dict]
    check: Callable[[Outcome], str | None]
    label: str
    group: str = "basic"
    #: Name of the exception the student's code must raise (``check`` then only
    #: runs when it returned normally, to say so).
    raises: str | None = None
    #: Seconds-long cases (training, timing, full-size models): the property tests
    #: run them on a few seeds, the cheap ones on a thousand.
    heavy: bool = False
    #: The right answer when it is a plain value (an int): messages must never show it.
    secret: Any = None
    #: How the students' self-check uses this case (None: it does not).
    public: Public | None = None


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
    """Base class: subclasses set ``name`` and ``groups`` and implement :meth:`cases`.

    Attributes:
        name: the graded name in the notebook (function or class).
        groups: the problem's :class:`Group`\\ s, in report order.
        banned_names: attribute, import or string names that may not appear in the
            student's definition (checked on the source, by AST).
        banned_ops: torch functions / ATen ops (``"aten.convolution"``) that may not
            run while the student's code runs (checked on the kernel's op trace).
        banned_calls: prefixes of the Python functions (``"torchvision.transforms."``) that may
            not run while the student's code runs, however reached (the kernel's Python-level
            call trace, :mod:`gradekit.trace`).
        banned_classes: prefixes of the classes (``"torchvision."``) that may not be in the type
            hierarchy of a built module or of any of its submodules.
        seconds: time limit for each request in the kernel.
    """

    name: str = ""
    groups: tuple[Group, ...] = ()
    banned_names: frozenset[str] | tuple[str, ...] = ()
    banned_ops: frozenset[str] | tuple[str, ...] = ()
    banned_calls: tuple[str, ...] = ()
    banned_classes: tuple[str, ...] = ()
    seconds: float = 60.0

    def cases(self, draw) -> list[Case]:
        """The cases for one grading, drawn with ``draw`` (an :class:`autograder.cases.Draw`)."""
        raise NotImplementedError

    def group(self, name: str) -> Group:
        for group in self.groups:
            if group.name == name:
                return group
        raise KeyError(f"{self.name}: case group {name!r} is not declared in {type(self).__name__}.groups")

    @property
    def hints(self) -> dict[str, str]:
        return {g.name: g.hint for g in self.groups}

    @property
    def weights(self) -> dict[str, float]:
        return {g.name: g.weight for g in self.groups}


def error_message(name: str, outcome: Outcome, label: str) -> str:
    """Turn a failed request into one line for the student."""
    if outcome.status == "timeout":
        return f"{label}: did not finish within the time limit (an infinite loop, or far too slow)"
    if outcome.status == "oom":
        return f"{label}: ran out of memory"
    if outcome.status == "missing":
        return f"{label}: no result was recorded"
    err = outcome.error if isinstance(outcome.error, dict) else {}
    kind, message = err.get("type", "Error"), err.get("message", "")
    where = err.get("where")
    stage = outcome.stage or "call"
    if kind == "NotImplementedError":
        return f"{name} is not implemented yet (it raises NotImplementedError)"
    if kind == "RecordRefused":  # the kernel's record changed after it was written, or has no digest
        return f"{label}: not graded: {message[:200]}"
    text = f"{label}: {message[:300]}" if kind == "ProcessNotAllowed" else f"{label}: raised {kind}"
    if message and kind != "ProcessNotAllowed":
        text += f": {message[:200]}"
    if where and where.get("line"):
        text += f" (in {where.get('function')}, line {where.get('line')})"
    if stage not in ("call", "lookup"):
        text += f" [during {stage}]"
    return text
