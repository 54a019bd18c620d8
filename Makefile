# The two commands of the README:
#   make demo   run a full grading cycle (release, submit, autograde, feedback, export)
#   make test   run the whole test suite
# Both create the environment (.venv) when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
# nbgrader shells out to alembic: the environment's bin goes first on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test test-corpus env benchmark sync selfcheck clean student-env student-lab

demo: $(VENV)/.installed
	$(PY) -m autograder.demo

test: $(VENV)/.installed
	$(PY) -m pytest

# The weeks 3-5 cheat corpus (tests/cheats_w345/) graded in three nbgrader batches with honest
# submissions (about 25 minutes on 2 cores); its closing note goes to $$HARDENING_NOTE.
test-corpus: $(VENV)/.installed
	$(PY) -m pytest -m corpus tests/test_hardening_w345.py

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/bootstrap.sh
	VENV=$(VENV) scripts/bootstrap.sh

benchmark: $(VENV)/.installed
	$(PY) benchmarks/grading_overhead.py

# The students' side: .venv-student (gradekit, coursedata, JupyterLab with nbgrader's
# student extensions; no reference, no grader), and JupyterLab started on it in
# $(STUDENT_HOME), whose Assignments tab lists the releases in $$CNN_COURSE_EXCHANGE.
STUDENT_VENV ?= .venv-student
STUDENT_HOME ?= student-home
student-env: $(STUDENT_VENV)/.installed

$(STUDENT_VENV)/.installed: student/pyproject.toml student/nbgrader_config.py scripts/student_env.sh
	scripts/student_env.sh $(STUDENT_VENV)

student-lab: $(STUDENT_VENV)/.installed
	mkdir -p $(STUDENT_HOME)
	cd $(STUDENT_HOME) && PATH=$(abspath $(STUDENT_VENV))/bin:$$PATH jupyter lab --ServerApp.ip=127.0.0.1

# The self-check's public cases beside each source notebook (nbgrader generate_assignment
# writes them too, before it copies the folder into the release).
selfcheck: $(VENV)/.installed
	$(PY) -m autograder.selfcheck_pack

# Copy solutions/ into the source notebooks' solution cells.
sync: $(VENV)/.installed
	$(PY) -m autograder.notebooks sync

clean:
	rm -rf demo-output course/release course/submitted course/autograded course/feedback \
	       course/gradebook.db course/grades.csv course/source/*/selfcheck
