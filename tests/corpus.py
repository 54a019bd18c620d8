"""Helpers shared by every week's check tests (``tests/test_w<N>_checks.py``).

The wrong-answer corpus of an assignment lives in
``tests/wrong/<assignment>/<name>__<mistake>.py``; each file defines ``<name>`` with
one plausible student mistake and names it in a one-line module docstring.
"""
from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

WRONG = Path(__file__).parent / "wrong"
#: Corpus files whose mistake is calling a built-in the problem forbids.
BAN_MARKERS = ("calls_", "getattr", "by_name")
#: What the judge says about a forbidden built-in.
BAN_TEXT = "a built-in this problem asks you to implement yourself"


def corpus(assignment: str) -> list[Path]:
    return sorted((WRONG / assignment).glob("*.py"))


def is_ban(path: Path) -> bool:
    """Whether a corpus file's mistake is calling a forbidden built-in."""
    return any(marker in path.stem for marker in BAN_MARKERS)


def load(path: Path):
    """Import one corpus file as a module of its own."""
    spec = importlib.util.spec_from_file_location(f"{path.parent.name}_wrong_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def solution_lines(reference_module, name: str) -> list[str]:
    """The reference's solution code lines long enough to be recognisable."""
    source = inspect.getsource(getattr(reference_module, name))
    body = source.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
    return [line.strip() for line in body.splitlines() if len(line.strip()) >= 20]


def stub(name: str):
    """A blank release's definition: raises NotImplementedError."""
    def fn(*args, **kwargs):
        raise NotImplementedError

    fn.__name__ = name
    return fn
