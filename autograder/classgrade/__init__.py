"""Grading a whole class with stock nbgrader, and reading the grades back.

- :mod:`.sequential`: ``nbgrader autograde`` one student at a time, with a pre-flight check of
  every submission and a progress bar (``python -m autograder.classgrade ASSIGNMENT``);
- :mod:`.parallel`: one Dask task per student, the gradebook kept single-writer
  (``python -m autograder.classgrade.parallel ASSIGNMENT``);
- :mod:`.caching`: ``CachingExecute``, the executor with the store of executed notebooks that
  parallel grading resumes from;
- :mod:`.report`: per-student, per-problem results from the gradebook and the verdicts.
"""
