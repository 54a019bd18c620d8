"""The wrong-answer corpus: ``tests/wrong/<assignment>/<name>__<mistake>.{edit,py}``.

- ``.edit``: a small edit of the reference (:mod:`autograder.mutations`): the mistake,
  optional ``expect:`` texts the grader's message must contain, and the changed lines;
- ``.py``: a whole definition, for mistakes that are not an edit of the reference (a
  loop where the reference vectorises, a different design); its module docstring names
  the mistake and an optional ``EXPECT = "..."`` holds the message text.

A file whose mistake is calling a built-in the problem forbids has ``calls_``,
``getattr`` or ``by_name`` in its name and must score 0 with the ban message.
"""
from __future__ import annotations

import ast
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path

from autograder import mutations

WRONG = Path(__file__).parent / "wrong"
#: Corpus files whose mistake is calling a built-in the problem forbids.
BAN_MARKERS = ("calls_", "getattr", "by_name")
#: What the judge says about a forbidden built-in.
BAN_TEXT = "a built-in this problem asks you to implement yourself"


@dataclass
class Wrong:
    path: Path
    name: str
    mistake: str
    source: str
    obj: object
    expect: list[str]

    @property
    def is_ban(self) -> bool:
        return any(marker in self.path.stem for marker in BAN_MARKERS)


def corpus(assignment: str) -> list[Path]:
    return sorted(p for p in (WRONG / assignment).glob("*__*") if p.suffix in (".edit", ".py"))


def load(path: Path) -> Wrong:
    """One corpus file as the definition it describes."""
    assignment, name = path.parent.name, path.stem.split("__")[0]
    reference = importlib.import_module(f"solutions.{assignment}")
    text = path.read_text()
    if path.suffix == ".edit":
        source, mutation = mutations.wrong_source(reference, text, name)
        return Wrong(path, name, mutation.mistake, source, mutations.define(reference, source, name),
                     mutation.expect)
    namespace: dict = {"__name__": f"wrong_{path.stem}"}
    exec(compile(text, str(path), "exec"), namespace)  # noqa: S102  (the project's own corpus)
    mistake = (ast.get_docstring(ast.parse(text)) or "").strip()
    expect = namespace.get("EXPECT")
    return Wrong(path, name, mistake, text, namespace[name], [expect] if expect else [])


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
