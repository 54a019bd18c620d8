"""The course material: source notebooks match solutions/ and run (under nbval, see conftest.py),
and releases leak nothing."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.checks import ASSIGNMENTS, problems_for
from autograder.notebooks import (check_sync, leaks, reference_definitions, source_notebook)

from .conftest import REPO, make_course

WITH_NOTEBOOK = [a for a in ASSIGNMENTS if source_notebook(a).exists()]


def test_every_assignment_with_checks_has_a_notebook():
    assert "w1_conv_arithmetic" in WITH_NOTEBOOK
    assert set(WITH_NOTEBOOK) == set(ASSIGNMENTS)


@pytest.mark.parametrize("assignment", WITH_NOTEBOOK)
def test_notebook_matches_solutions_and_checks(assignment):
    assert check_sync(assignment) == []
    nb = nbformat.read(source_notebook(assignment), as_version=4)
    captured = set()
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            captured |= set(re.findall(r'gradekit\.capture\("(\w+)"', cell.source))
            assert meta.get("points", 0) > 0
    assert captured == set(problems_for(assignment)) == set(reference_definitions(assignment))


@pytest.mark.parametrize("assignment", WITH_NOTEBOOK)
def test_notebook_outputs_are_stripped(assignment):
    nb = nbformat.read(source_notebook(assignment), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_make_test_runs_the_source_notebooks_under_nbval():
    """`make test` (`python -m pytest`, configured in pyproject.toml) runs every cell of every
    solved source notebook in a kernel under nbval; conftest.py writes the self-check cases
    beside them first, fails a cell that skips a demonstration and a notebook without a figure,
    and marks the cells slow. (This replaces running each notebook here a second time.)"""
    import tomllib

    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "course/source" in options["testpaths"] and "--nbval-lax" in options["addopts"].split()
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "-m", "slow", "course/source"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for assignment in WITH_NOTEBOOK:
        nb = nbformat.read(source_notebook(assignment), as_version=4)
        code = sum(c.cell_type == "code" for c in nb.cells)
        collected = re.findall(rf"{assignment}\.ipynb::Cell (\d+)", proc.stdout)
        assert sorted(map(int, collected)) == list(range(code)), assignment


def _solution_bodies(assignment: str) -> list[str]:
    """Code lines inside the solution regions of the references (long enough to be telling).

    A line that the released part of the same definition already states (a formula
    in the docstring, say) is public on purpose and not counted.
    """
    bodies = []
    for source in reference_definitions(assignment).values():
        public = source.split("### BEGIN SOLUTION", 1)[0]
        inside = False
        for line in source.splitlines():
            if "### BEGIN SOLUTION" in line:
                inside = True
            elif "### END SOLUTION" in line:
                inside = False
            elif inside and len(line.strip()) > 25 and not line.strip().startswith("#") \
                    and line.strip() not in public:
                bodies.append(line.strip())
    return bodies


@pytest.fixture(scope="module")
def released_course(tmp_path_factory) -> Path:
    """A course folder with every assignment released by stock nbgrader."""
    return make_course(tmp_path_factory.mktemp("released") / "course", WITH_NOTEBOOK)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", WITH_NOTEBOOK)
def test_blank_release_runs_to_the_end_with_only_test_cells_failing(assignment, released_course, tmp_path):
    """Run All on the notebook a student receives: the stubs' test cells fail, every
    demonstration that needs a stub says what to implement, and the notebook goes on."""
    folder = released_course / "release" / assignment
    nb = nbformat.read(folder / f"{assignment}.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(folder)}})
    client.execute()
    failing = [(i, c.metadata.get("nbgrader", {}).get("grade_id"), o.ename) for i, c in enumerate(nb.cells)
               if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    tests = {i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade")}
    assert [f for f in failing if f[0] not in tests] == [], "cells other than test cells failed"
    assert {i for i, *_ in failing} == tests, "every test cell of a stub fails"
    notes = [o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs
             if o.output_type == "stream" and re.search(r"^implement `", o.text, re.M)]
    assert notes, "the demonstrations that use a stub say what to implement"


@pytest.mark.slow
def test_release_contains_no_solution_hidden_test_or_reference(released_course):
    root = released_course
    released = [p for p in (root / "release").rglob("*") if p.is_file()]
    assert released
    for assignment in WITH_NOTEBOOK:
        bodies = _solution_bodies(assignment)
        assert bodies
        for path in released:
            text = path.read_text(errors="replace")
            assert leaks(text) == [], path
            found = [b for b in bodies if b in text]
            assert found == [], f"{path.name} contains reference code: {found[:2]}"
    names = {p.name for p in released}
    assert not any(n.endswith(".py") for n in names)
    # each stub still parses and raises NotImplementedError
    for assignment in WITH_NOTEBOOK:
        nb = nbformat.read(root / "release" / assignment / f"{assignment}.ipynb", as_version=4)
        stubs = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("solution")]
        assert len(stubs) == len(reference_definitions(assignment))
        for cell in stubs:
            ast.parse(cell.source)
            assert "raise NotImplementedError()" in cell.source


def test_environment_yml_lists_the_pip_dependencies():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["test"]
    env = (REPO / "environment.yml").read_text()
    listed = {line.strip()[2:].strip() for line in env.splitlines() if line.strip().startswith("- ")}
    assert [d for d in wanted if d not in listed] == []
    assert Path(REPO / ".ci" / "run").read_text().strip().endswith("exec make test")
