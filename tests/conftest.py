"""Shared fixtures: temporary nbgrader courses built from the real course files."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
import torch

from autograder.classgrade.sequential import nbgrader
from autograder.notebooks import COURSE, source_notebook

REPO = Path(__file__).resolve().parent.parent


def make_course(root: Path, assignments: list[str]) -> Path:
    """A course folder with the real config and source notebooks, assignments released."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(COURSE / "nbgrader_config.py", root / "nbgrader_config.py")
    for assignment in assignments:
        shutil.copytree(COURSE / "source" / assignment, root / "source" / assignment)
        nbgrader(["generate_assignment", assignment, "--force"], root)
    return root


def release_notebook(root: Path, assignment: str):
    return nbformat.read(root / "release" / assignment / f"{assignment}.ipynb", as_version=4)


def submit(root: Path, student: str, assignment: str, nb=None, raw: bytes | None = None) -> Path:
    dest = root / "submitted" / student / assignment
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{assignment}.ipynb"
    if raw is not None:
        path.write_bytes(raw)
    else:
        nbformat.write(nb, path)
    return path


@pytest.fixture(scope="session")
def student_env(tmp_path_factory) -> Path:
    """The students' environment, built once per session by scripts/student_env.sh (shared by
    tests/test_student_env.py and tests/test_browser.py; ``TEST_STUDENT_ENV``: an environment
    the script built before)."""
    if os.environ.get("TEST_STUDENT_ENV"):
        return Path(os.environ["TEST_STUDENT_ENV"])
    env = tmp_path_factory.mktemp("student") / "venv"
    proc = subprocess.run(["bash", str(REPO / "scripts" / "student_env.sh"), str(env)], cwd=REPO,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return env


@pytest.fixture(scope="session")
def have_w1() -> bool:
    return source_notebook("w1_conv_arithmetic").exists()


@pytest.fixture
def one_thread():
    """Grade with one intra-op thread, as a grading kernel does (``JudgedExecute.threads``).

    With several OpenMP threads on a busy machine (other kernels, other tests) the
    F.conv2d baseline of a speed check, and small training runs, slow down far more
    than a Python loop does.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def gen(seed: int) -> torch.Generator:
    """A private random generator, so that a test's inputs do not depend on the tests before it."""
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=gen(seed), dtype=dtype)
