"""gradekit: the small, public part of the grader that runs inside a student's kernel.

It only records what the student's code does on inputs the grader chose
(:mod:`gradekit.capture`), and runs the release's public cases against their stored
answers for the students' self-check (:mod:`gradekit.public_cases`); it holds no
reference solution and no hidden check.
"""
from .capture import capture
from .public_cases import selfcheck

__all__ = ["capture", "selfcheck"]
