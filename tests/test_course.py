"""The course material: source notebooks run, match solutions/, and releases leak nothing."""
from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.checks import ASSIGNMENTS, problems_for
from autograder.notebooks import (check_sync, leaks, reference_definitions, source_notebook)
from autograder.selfcheck_pack import build
from gradekit.public_cases import PACK_DIR

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


@pytest.mark.slow
@pytest.mark.parametrize("assignment", WITH_NOTEBOOK)
def test_source_notebook_executes_top_to_bottom(assignment, tmp_path):
    """The instructor's notebook, solved, runs without an error: every self-check passes."""
    folder = tmp_path / assignment
    shutil.copytree(source_notebook(assignment).parent, folder, ignore=shutil.ignore_patterns(PACK_DIR))
    build(assignment, folder / PACK_DIR)
    nb = nbformat.read(folder / source_notebook(assignment).name, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    skipped = [o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if o.output_type == "stream" and re.search(r"^implement `", o.text, re.M)]
    assert skipped == [], "with every problem solved, no demonstration may be skipped"
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert images, "the notebook should draw at least one figure"


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
