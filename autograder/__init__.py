"""The trusted side of the grader: hidden checks, the judge and nbgrader glue.

Nothing in this package is imported by the student's kernel; see ``gradekit`` for
the small recorder that is.
"""
