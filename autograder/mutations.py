"""Wrong answers written as small edits of a reference definition.

A plausible mistake is usually one or two changed lines of a right answer, so it is
written as that edit: a few lines instead of a copy of the whole definition, and
one that keeps up when the reference changes. The format (``<name>__<mistake>.edit``
files in ``tests/wrong/<assignment>/``, and the demo's partly wrong students)::

    Padding counted once instead of per side.
    expect: which is not right
    - out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    + out = (size + padding - dilation * (kernel_size - 1) - 1) // stride + 1

- the first line names the mistake (it becomes the definition's docstring);
- ``expect:`` lines (optional) are texts the grader's message must contain;
- a hunk is one or more ``- `` lines, matched (stripped) against consecutive lines of
  the reference's source exactly once, then the ``+ `` lines that replace them;
  what follows ``+ `` keeps its own indentation on top of the first matched line's.

An edit that does not apply exactly, or that leaves the reference unchanged, is an
error (:class:`MutationError`): a wrong answer that equals the reference proves nothing.
"""
from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass, field


class MutationError(ValueError):
    pass


@dataclass
class Mutation:
    name: str
    mistake: str
    hunks: list[tuple[list[str], list[str]]] = field(default_factory=list)
    expect: list[str] = field(default_factory=list)


def parse(text: str, name: str) -> Mutation:
    lines = text.splitlines()
    if not lines or not lines[0].strip() or lines[0].startswith(("- ", "+ ")):
        raise MutationError(f"{name}: the first line must name the mistake")
    mutation = Mutation(name, lines[0].strip())
    for line in lines[1:]:
        if line.startswith("expect:"):
            mutation.expect.append(line.removeprefix("expect:").strip())
        elif line.startswith("-"):
            if not mutation.hunks or mutation.hunks[-1][1]:
                mutation.hunks.append(([], []))
            mutation.hunks[-1][0].append(line[2:].strip())
        elif line.startswith("+"):
            if not mutation.hunks:
                raise MutationError(f"{name}: a '+' line before any '-' line")
            mutation.hunks[-1][1].append(line[2:])
        elif line.strip():
            raise MutationError(f"{name}: cannot read the line {line!r}")
    if not mutation.hunks:
        raise MutationError(f"{name}: no '-'/'+' lines")
    return mutation


def apply(source: str, mutation: Mutation) -> str:
    """``source`` with every hunk of ``mutation`` applied, and the mistake as its docstring."""
    lines = source.splitlines()
    for old, new in mutation.hunks:
        stripped = [line.strip() for line in lines]
        starts = [i for i in range(len(lines) - len(old) + 1) if stripped[i:i + len(old)] == old]
        if len(starts) != 1:
            where = "not found" if not starts else f"found {len(starts)} times"
            raise MutationError(f"{mutation.name}: the lines {old} are {where} in the reference")
        at = starts[0]
        indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
        lines[at:at + len(old)] = [indent + line if line.strip() else "" for line in new]
    edited = "\n".join(lines) + "\n"
    if _code(edited) == _code(source):
        raise MutationError(f"{mutation.name}: the edit leaves the reference's code unchanged")
    return _with_docstring(edited, mutation.mistake)


def _code(source: str) -> str:
    import ast

    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def _with_docstring(source: str, mistake: str) -> str:
    """Replace the definition's docstring by the mistake (it would describe the right answer)."""
    import ast

    tree = ast.parse(source)
    node = tree.body[0]
    lines = source.splitlines()
    first = node.body[0]
    body_indent = " " * first.col_offset
    doc = f'{body_indent}"""{mistake}"""'
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines[first.lineno - 1:first.end_lineno] = [doc]
    else:
        lines.insert(first.lineno - 1, doc)
    return "\n".join(lines) + "\n"


def wrong_source(reference_module, text: str, name: str) -> tuple[str, Mutation]:
    """The source of the wrong definition of ``name`` that ``text`` describes, and its mutation."""
    mutation = parse(text, name)
    return apply(inspect.getsource(getattr(reference_module, name)), mutation), mutation


def define(reference_module, source: str, name: str):
    """Execute ``source`` with the reference module's imports and return the object ``name``.

    The reference's other public definitions are there too, as a student's other graded
    names are in the notebook (a wrong ``resnet`` builds the blocks it uses)."""
    namespace = {k: v for k, v in vars(reference_module).items() if inspect.ismodule(v) or (
        not k.startswith("_") and k != name and (inspect.isclass(v) or inspect.isfunction(v))
        and getattr(v, "__module__", None) == reference_module.__name__)}
    exec(compile(source, f"<wrong {name}>", "exec"), namespace)  # noqa: S102  (the project's own corpus)
    return namespace[name]
