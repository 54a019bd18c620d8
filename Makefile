# The two commands of the README:
#   make demo   run a full grading cycle (release, submit, autograde, feedback, export)
#   make test   run the whole test suite
# Both create the environment (.venv) when it is missing.
VENV ?= .venv
PY := $(VENV)/bin/python
# nbgrader shells out to alembic: the environment's bin goes first on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: demo test env benchmark sync clean

demo: $(VENV)/.installed
	$(PY) -m autograder.demo

test: $(VENV)/.installed
	$(PY) -m pytest

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/bootstrap.sh
	VENV=$(VENV) scripts/bootstrap.sh

benchmark: $(VENV)/.installed
	$(PY) benchmarks/grading_overhead.py

# Copy solutions/ into the source notebooks' solution cells.
sync: $(VENV)/.installed
	$(PY) -m autograder.notebooks sync

clean:
	rm -rf demo-output course/release course/submitted course/autograded course/feedback \
	       course/gradebook.db course/grades.csv
