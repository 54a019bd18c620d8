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


def grade_wrong(assignment: str, path: Path, reference_module) -> str:
    """Grade one corpus file in process and assert that it loses points the right way.

    Every file needs a docstring naming its mistake; the message never shows the
    reference's code; a ban file scores 0 with the ban message, any other file fails
    a check group with a message (not the ban). Returns the message.
    """
    from autograder.local import grade_namespace

    name = path.stem.split("__")[0]
    module = load(path)
    assert (module.__doc__ or "").strip(), f"{path.name} needs a one-line docstring naming the mistake"
    verdict = grade_namespace(assignment, {name: getattr(module, name)}, names=[name], seed=11,
                              sources=[path.read_text()])[name]
    message = "\n".join(verdict.lines)
    print(message)
    assert verdict.fraction < 1.0, message
    assert verdict.status != "passed"
    assert message.strip() and len(verdict.lines) >= 1
    for line in solution_lines(reference_module, name):
        assert line not in message, f"the message shows the reference's code: {line!r}"
    if is_ban(path):
        assert verdict.fraction == 0.0 and BAN_TEXT in message, message
    else:
        # The mistake itself is what fails: a group fails with a message, not the ban.
        assert BAN_TEXT not in message, message
        assert any(not ok for ok in verdict.groups.values())
        assert "FAIL" in message
    return message


def stub(name: str):
    """A blank release's definition: raises NotImplementedError."""
    def fn(*args, **kwargs):
        raise NotImplementedError

    fn.__name__ = name
    return fn
