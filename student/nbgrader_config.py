"""nbgrader configuration of a student's environment (installed by scripts/student_env.sh
into ``<env>/etc/jupyter``, where JupyterLab's nbgrader extensions read it).

The Assignments tab lists the course's released weeks from the exchange folder:
``$CNN_COURSE_EXCHANGE`` when set, else nbgrader's usual ``/srv/nbgrader/exchange``
(the folder the instructor's ``course/nbgrader_config.py`` releases into).
"""
import os

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "cnn-architectures"  # autograder.COURSE_ID on the instructor's side
c.Exchange.root = os.environ.get("CNN_COURSE_EXCHANGE", "/srv/nbgrader/exchange")
