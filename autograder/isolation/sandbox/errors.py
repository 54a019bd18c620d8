"""The sandbox's errors: the sandbox cannot be used, or grading failed for reasons that are not the student's."""
from __future__ import annotations


class SandboxError(RuntimeError):
    """The sandbox cannot be used (missing tool, failed self-test, kernel start)."""


class GradingInfrastructureError(RuntimeError):
    """Grading failed for reasons that are not the student's (the grader's disk is full,
    the sandbox or the kernel could not start). Raised out of nbgrader's preprocessor
    after a retry, so that nbgrader reports the notebook as failed instead of recording
    a grade for it."""
