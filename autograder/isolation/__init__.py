"""Isolation: what keeps the student's code and files away from the grader, and from the people
who read the results.

- :mod:`.sandbox`: the student's kernel in a bubblewrap sandbox, with limits and a watchdog;
- :mod:`.sanitize`: damaged submissions made gradable, cells matched with the gradebook by what
  is there, and a static scan for code that reaches for the grader's machinery;
- :mod:`.html_safety`: nothing a student wrote runs in a browser (what is rendered for a person
  is sanitized);
- :mod:`.source_check`: static rules on the student's cells (forbidden built-ins, and whether a
  graded name comes from the notebook's own cells).

Nothing here imports the judge, the nbgrader integration or class grading.
"""
