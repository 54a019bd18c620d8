"""Running the student's code: the errors that carry the stage they happened in.

Shared by the kernel's request procedures (:mod:`gradekit.capture`) and the training recipes
(:mod:`gradekit.training`), which both call student code and must tell its exceptions (a
:class:`StudentError` with its stage: ``"call"``, ``"build"``, ``"train"``...) from their own.
"""
from __future__ import annotations


class CaseTimeout(BaseException):
    """Raised inside student code when a request runs past its time limit.

    A ``BaseException`` so that ``except Exception`` in student code does not hide it.
    """


class StudentError(Exception):
    """Wraps an exception from student code, with the stage it happened in."""

    def __init__(self, stage: str, exc: BaseException):
        super().__init__(stage)
        self.stage = stage
        self.exc = exc


def _stage(stage: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``; an exception from it becomes a :class:`StudentError` at ``stage``
    (the grader's own signals, :class:`CaseTimeout` and ``KeyboardInterrupt``, pass through)."""
    try:
        return fn(*args, **kwargs)
    except (CaseTimeout, KeyboardInterrupt, StudentError):
        raise
    except BaseException as exc:  # noqa: BLE001  (SystemExit from student code included)
        raise StudentError(stage, exc) from None


def _lookup(namespace: dict, name: str):
    """``namespace[name]``, or a :class:`StudentError` at stage ``lookup`` saying to run its cell."""
    if name not in namespace:
        raise StudentError("lookup", NameError(
            f"name '{name}' is not defined: run the cell that defines it before this test"))
    return namespace[name]
