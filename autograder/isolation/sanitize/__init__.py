"""Make damaged submissions gradable, and find code that interferes with grading.

Three pieces, used by ``course/nbgrader_config.py``, one module each:

- :mod:`.submission`: :func:`~.submission.prepare_submission`, nbgrader's
  ``Autograde.pre_convert_hook``: damaged files repaired or replaced;
- :mod:`.cells`: :class:`~.cells.SanitizeCells`, first of
  ``Autograde.sanitize_preprocessors``: the cells matched with the gradebook;
- :mod:`.integrity`: :func:`~.integrity.integrity_findings`, a static scan for code that
  reaches for the grader's machinery.

:mod:`.cell_source` is what they share: a cell's source, read with the parser.
"""
