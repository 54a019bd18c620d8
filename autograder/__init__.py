"""The trusted side of the grader: hidden checks, the judge and nbgrader glue.

Nothing in this package is imported by the student's kernel; see ``gradekit`` for
the small recorder that is.
"""

#: The nbgrader course id (``CourseDirectory.course_id``) of this course.
COURSE_ID = "cnn-architectures"

import sys as _sys

# jsonschema adds its optional "iri" format checks when rfc3987_syntax is installed (jupyter_events
# depends on it), and rfc3987_syntax compiles a Lark grammar when imported: 1.4-1.7 s in every
# process that imports nbformat. Nothing in grading validates an IRI, so a grading process that
# imports this package before jsonschema skips that import (jsonschema treats it as not installed).
if "jsonschema" not in _sys.modules:
    _sys.modules.setdefault("rfc3987_syntax", None)
