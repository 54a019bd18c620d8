"""Hidden checks, one module per assignment (mirroring ``course/source/<assignment>``).

Each module defines ``PROBLEMS``: a list of :class:`autograder.problem.Problem`
instances, one per graded name of that assignment in ``course-spec.md``.
"""
from __future__ import annotations

import importlib
import pkgutil

from ..problem import Problem

ASSIGNMENTS = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("w")))


def problems_for(assignment: str) -> dict[str, Problem]:
    """The problems of ``assignment`` by graded name (empty for unknown assignments)."""
    if assignment not in ASSIGNMENTS:
        return {}
    module = importlib.import_module(f"{__name__}.{assignment}")
    return {p.name: p for p in module.PROBLEMS}
