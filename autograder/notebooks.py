"""Notebook plumbing: solution cells kept in step with ``solutions/``, submissions
filled in for tests and the demo, and the release check.

Conventions of a source notebook ``course/source/<assignment>/<assignment>.ipynb``:

- each graded name is defined in a *solution cell* (``nbgrader.solution: true``,
  ``grade_id: impl_<name>``) whose source is the definition in
  ``solutions/<assignment>.py``, ``### BEGIN SOLUTION`` / ``### END SOLUTION``
  markers included (``python -m autograder.notebooks sync`` rewrites them);
- each is graded by a locked *test cell* (``grade: true``, ``grade_id: test_<name>``)
  whose hidden part is ``import gradekit; gradekit.capture("<name>", globals())``
  and whose visible part holds a few checks students can run themselves.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import re
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
COURSE = REPO / "course"
SOURCE = COURSE / "source"

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_MARKERS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
#: A hidden test's call into the grader: ``gradekit.capture("<name>", globals())``.
CAPTURE_RE = re.compile(r"gradekit\s*\.\s*capture\(\s*[\"']([A-Za-z0-9_]+)[\"']")


def source_notebook(assignment: str) -> Path:
    return SOURCE / assignment / f"{assignment}.ipynb"


def reference_definitions(assignment: str) -> dict[str, str]:
    """Graded names -> source text, from ``solutions/<assignment>.py`` (public names only)."""
    module = importlib.import_module(f"solutions.{assignment}")
    tree = ast.parse(inspect.getsource(module))
    names = [node.name for node in tree.body
             if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")]
    return {name: inspect.getsource(getattr(module, name)).rstrip() + "\n" for name in names}


def defined_names(source: str) -> list[str]:
    """Top-level function and class names defined by ``source`` ([] if it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def is_solution_cell(cell) -> bool:
    return cell.cell_type == "code" and cell.get("metadata", {}).get("nbgrader", {}).get("solution", False)


def _dump(node: ast.AST) -> str:
    return ast.dump(node, annotate_fields=False, include_attributes=False)


def sync(assignment: str, write: bool = True) -> list[str]:
    """Copy the reference definitions into the notebook's solution cells.

    Returns the names of the cells that changed (with ``write=False``: would change).
    """
    refs = reference_definitions(assignment)
    path = source_notebook(assignment)
    nb = nbformat.read(path, as_version=4)
    changed = []
    for cell in nb.cells:
        if not is_solution_cell(cell):
            continue
        names = defined_names(cell.source)
        if names and all(n in refs for n in names):
            new = "\n\n".join(refs[n].rstrip() for n in names)
            if cell.source != new:
                cell.source = new
                changed.extend(names)
    if changed and write:
        nbformat.write(nb, path)
    return changed


def check_sync(assignment: str) -> list[str]:
    """Problems with the notebook's graded definitions; [] when all is in step."""
    refs = reference_definitions(assignment)
    nb = nbformat.read(source_notebook(assignment), as_version=4)
    seen: dict[str, int] = {}
    problems = []
    for cell in nb.cells:
        if not is_solution_cell(cell):
            continue
        tree = ast.parse(cell.source)
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in refs:
                seen[node.name] = seen.get(node.name, 0) + 1
                ref_node = ast.parse(refs[node.name]).body[0]
                if _dump(node) != _dump(ref_node):
                    problems.append(f"{node.name}: the notebook's definition differs from solutions/{assignment}.py")
    for name in refs:
        if seen.get(name, 0) != 1:
            problems.append(f"{name}: defined {seen.get(name, 0)} times in solution cells (expected once)")
    return problems


def fill(nb, implementations: dict[str, str]):
    """Replace the solution cells defining the given names with ``implementations``.

    Used to build test submissions: ``implementations`` maps a graded name to the
    full source of a (possibly wrong) definition. Returns ``nb`` (modified in place).
    """
    for cell in nb.cells:
        if not is_solution_cell(cell):
            continue
        names = defined_names(cell.source)
        if names and all(n in implementations for n in names):
            cell.source = strip_markers("\n\n".join(implementations[n].rstrip() for n in names))
    return nb


def strip_markers(source: str) -> str:
    """``source`` without nbgrader's solution-marker lines (a student never has them)."""
    return "\n".join(line for line in source.splitlines()
                     if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")) + "\n"


def leaks(text: str) -> list[str]:
    """Markers of solutions or hidden tests present in ``text``."""
    markers = SOLUTION_MARKERS + HIDDEN_MARKERS + ("gradekit.capture",)
    return [m for m in markers if m in text]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.notebooks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("sync", "copy solutions/ into the source notebooks' solution cells"),
                            ("check", "fail if a source notebook and solutions/ disagree")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("assignments", nargs="*", help="default: every assignment with a source notebook")
    args = parser.parse_args(argv)
    assignments = args.assignments or sorted(p.name for p in SOURCE.iterdir() if source_notebook(p.name).exists())
    status = 0
    for assignment in assignments:
        if args.command == "sync":
            changed = sync(assignment)
            print(f"{assignment}: {'updated ' + ', '.join(changed) if changed else 'already in step'}")
        else:
            for problem in check_sync(assignment):
                print(f"{assignment}: {problem}")
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
