"""gradekit: the small, public part of the grader that runs inside a student's kernel.

It only records what the student's code does on inputs the grader chose; it holds
no reference solution and no verdict. See :mod:`gradekit.capture`.
"""
from .capture import capture

__all__ = ["capture"]
