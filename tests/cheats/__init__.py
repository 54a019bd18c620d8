"""Cheating submissions: each file replaces the solution cells of the test notebook.

Every file is the source of one or two solution cells (it defines ``conv_output_size``
and/or ``conv2d``; the text goes into the first of their cells, see
``tests/test_hardening.py``). Placeholders filled in by the test: ``__REPO__`` (the
repository), ``__COURSE__`` (the course folder being graded), ``__PORT__`` (a TCP
server on 127.0.0.1 that hands out the reference code) and ``__TOKEN__`` (a marker
for processes that should not survive grading). Each would score above the blank
release under stock nbgrader (or without the sandbox); here each must not.
"""
