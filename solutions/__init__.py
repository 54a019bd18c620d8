"""Reference implementations, one module per assignment. Never shipped to students.

Each module mirrors the solution cells of ``course/source/<assignment>/``: the
graded definitions there are copies of the ones here (``python -m autograder.sync``
writes them, and the test suite checks they agree).
"""
