"""nbgrader configuration of the course.

Run nbgrader from this folder (``cd course``) or pass ``--CourseDirectory.root``.
The only departure from stock nbgrader is the executor: ``JudgedExecute`` runs the
notebook like ``Execute`` and then scores every test cell that calls
``gradekit.capture`` from the trusted judge's verdict (see autograder/integration/).
``CachingExecute`` is ``JudgedExecute`` plus the result cache that parallel grading
uses (autograder/classgrade/caching.py, used by autograder/classgrade/parallel.py); it
is off unless asked for.
"""
import os

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests,
                                    GetGrades, IgnorePattern, LimitOutput, SaveAutoGrades)
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

from autograder import COURSE_ID
from autograder.classgrade.caching import CachingExecute
from autograder.isolation.html_safety.outputs import SanitizeOutputs

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)

here = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.root = here
c.CourseDirectory.course_id = COURSE_ID
# The exchange students fetch from and submit to (the same default as their environment's
# config, student/nbgrader_config.py): $CNN_COURSE_EXCHANGE, else nbgrader's usual folder.
c.Exchange.root = os.environ.get("CNN_COURSE_EXCHANGE", "/srv/nbgrader/exchange")
# Generated and class data never go into a release.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".gradekit"]

# The release carries each problem's self-check: public cases with the reference's answers as data,
# written beside the source notebook just before nbgrader copies the folder (autograder/selfcheck_pack.py).
c.GenerateAssignment.pre_convert_hook = "autograder.selfcheck_pack.release_hook"

# Students' stubs: the standard nbgrader stub.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Autograde: the judged executor in place of Execute; the rest is stock.
c.Autograde.autograde_preprocessors = [
    CachingExecute,
    IgnorePattern,
    ClearMetadataPreprocessor,
    LimitOutput,
    SaveAutoGrades,
    SanitizeOutputs,  # after grading: what is stored and rendered runs nothing (autograder/isolation/html_safety/)
    AssignLatePenalties,
    CheckCellMetadata,
]
# Per-cell limit: training smoke tests run inside one test cell.
c.JudgedExecute.timeout = 600
c.JudgedExecute.startup_timeout = 120

# Damaged submissions: unreadable files become a marked empty notebook (zero, with the
# reason), repairable ones are repaired; then cells are matched with the gradebook by
# what is there, before stock nbgrader restores the locked cells (autograder/isolation/sanitize/).
from nbgrader.preprocessors import ClearOutput, DeduplicateIds, OverwriteCells, OverwriteKernelspec  # noqa: E402

from autograder.isolation.sanitize.cells import SanitizeCells  # noqa: E402
from autograder.isolation.sanitize.submission import prepare_submission  # noqa: E402

c.Autograde.pre_convert_hook = prepare_submission
c.Autograde.sanitize_preprocessors = [
    ClearOutput,
    SanitizeCells,
    DeduplicateIds,
    OverwriteKernelspec,
    OverwriteCells,
    CheckCellMetadata,
]
# The student's kernel runs in a bubblewrap sandbox (autograder/isolation/sandbox/): no network,
# no view of the course, limits below. Where bwrap is missing grading refuses to run;
# "none" grades without isolation (a loud warning; trusted code only).
c.JudgedExecute.sandbox = "bwrap"
c.JudgedExecute.memory_limit = 6 * 2**30       # all processes of one notebook
c.JudgedExecute.max_processes = 256            # processes + threads
c.JudgedExecute.notebook_timeout = 3600        # seconds per notebook
c.JudgedExecute.max_output_bytes = 2**20       # output kept per cell
c.JudgedExecute.gpu = "auto"                   # a free GPU per notebook, when there is one
c.JudgedExecute.threads = 1                    # CPU threads per kernel: concurrent kernels never oversubscribe the cores

# Feedback never shows hidden tests (stock nbgrader leaks them, jupyter/nbgrader#917).
c.GenerateFeedback.preprocessors = [ClearHiddenTests, GetGrades, SanitizeOutputs, CSSHTMLHeaderPreprocessor]
# Feedback and autograded notebooks carry no script, event handler, javascript: link or
# executable output from the student: SanitizeOutputs cleans markdown, HTML, SVG and LaTeX
# with an allowlist and drops JavaScript/widget outputs, in Autograde (so formgrader shows a
# clean notebook) and again here. nbconvert's own HTMLExporter.sanitize_html stays off: its
# fixed bleach allowlist escapes <p>, <h1>, <img> and <thead> and would wreck honest feedback.
