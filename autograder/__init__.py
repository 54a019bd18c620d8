"""The trusted side of the grader: hidden checks, the judge and nbgrader glue.

Nothing in this package is imported by the student's kernel; see ``gradekit`` for
the small recorder that is.
"""

#: The nbgrader course id (``CourseDirectory.course_id``) of this course.
COURSE_ID = "cnn-architectures"
