"""A tiny week-1 course for the hardening tests, graded through stock nbgrader.

The assignment is named ``w1_conv_arithmetic`` (so the registry finds its hidden
checks) but holds only two problems, ``conv_output_size`` and ``conv2d``: a set-up
cell, a solution cell and a test cell each, following the course conventions.
Grading runs ``nbgrader autograde`` as a subprocess with the course's own config.
"""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder import COURSE_ID
from autograder.notebooks import fill, reference_definitions

REPO = Path(__file__).resolve().parents[2]
A = "w1_conv_arithmetic"
PROBLEMS = ("conv_output_size", "conv2d")
POINTS = {"conv_output_size": 2.0, "conv2d": 10.0}
SETUP = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\nimport numpy as np\n\ntorch.manual_seed(0)"
SKIPPED_DEMO = "import time\ntime.sleep(30)  # a slow demonstration\nprint('demonstration ran')"
VISIBLE = {
    "conv_output_size": "assert conv_output_size(32, 3, padding=1) == 32\n",
    "conv2d": "x = torch.randn(1, 2, 5, 5)\nw = torch.randn(3, 2, 3, 3)\n"
              "assert torch.allclose(conv2d(x, w), F.conv2d(x, w), atol=1e-5)\n",
}


def _md(grade_id, grade=False, solution=False, locked=False, points=None):
    md = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
          "solution": solution, "task": False}
    if points is not None:
        md["points"] = points
    return {"nbgrader": md}


def test_source(name: str) -> str:
    return ("### BEGIN HIDDEN TESTS\n"
            f'import gradekit; gradekit.capture("{name}", globals())\n'
            "### END HIDDEN TESTS\n"
            "# Visible checks: run them while you work; the autograder runs many more.\n"
            f"{VISIBLE[name]}print(\"{name}: visible checks passed\")")


def source_notebook():
    refs = reference_definitions(A)
    cells = [new_markdown_cell("# Week 1 (test subset)"),
             new_code_cell(SETUP, metadata=_md("setup", locked=True)),
             # a demonstration no test needs: tagged, it is not run while grading
             new_code_cell(SKIPPED_DEMO, metadata={"tags": ["skip-when-grading"]})]
    for name in PROBLEMS:
        cells += [new_markdown_cell(f"## {name}"),
                  new_code_cell(refs[name].rstrip(), metadata=_md(f"impl_{name}", solution=True)),
                  new_code_cell(test_source(name), metadata=_md(f"test_{name}", grade=True, locked=True,
                                                                points=POINTS[name]))]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = str(Path(sys.executable).parent) + os.pathsep + e.get("PATH", "")
    e.setdefault("PYTHONUNBUFFERED", "1")
    return e


def nbgrader(root: Path, *args: str, timeout: float = 900, prefix: list[str] | None = None,
             check: bool = True) -> subprocess.CompletedProcess:
    cmd = (prefix or []) + [sys.executable, "-m", "nbgrader", *args]
    proc = subprocess.run(cmd, cwd=root, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def make_course(root: Path, extra_config: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = (REPO / "course" / "nbgrader_config.py").read_text()
    (root / "nbgrader_config.py").write_text(config + "\n# test settings\n" + extra_config)
    src = root / "source" / A
    src.mkdir(parents=True)
    nbformat.write(source_notebook(), src / f"{A}.ipynb")
    nbgrader(root, "generate_assignment", A, "--force")
    return root


def release(root: Path):
    return nbformat.read(root / "release" / A / f"{A}.ipynb", as_version=4)


def filled(root: Path, implementations: dict[str, str]):
    return fill(copy.deepcopy(release(root)), implementations)


def submit(root: Path, student: str, nb=None, raw: bytes | None = None, files: dict | None = None) -> Path:
    dest = root / "submitted" / student / A
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{A}.ipynb"
    if raw is not None:
        path.write_bytes(raw)
    else:
        nbformat.write(nb, path)
    for name, data in (files or {}).items():
        (dest / name).write_bytes(data)
    return path


def autograde(root: Path, *args: str, timeout: float = 900, prefix=None) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    proc = nbgrader(root, "autograde", A, "--create", "--force", *args, timeout=timeout, prefix=prefix,
                    check=False)
    return proc, time.perf_counter() - start


def gradebook(root: Path) -> dict[str, dict[str, float]]:
    """student -> {problem: score} from the gradebook (every student in it)."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        for student in gb.students:
            scores = {}
            try:
                sub = gb.find_submission_notebook(A, A, student.id)
            except Exception:  # noqa: BLE001  (no submission)
                out[student.id] = None
                continue
            for grade in sub.grades:
                scores[grade.name.removeprefix("test_")] = grade.score
            out[student.id] = scores
    return out


def report(root: Path, student: str) -> dict:
    path = root / "autograded" / student / A / f"{A}.ipynb"
    return nbformat.read(path, as_version=4).metadata.get("gradekit", {})


def statuses(root: Path, student: str) -> dict[str, str]:
    return {n: p["status"] for n, p in report(root, student).get("problems", {}).items()}


def copy_course(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest
