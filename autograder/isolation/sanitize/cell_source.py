"""A cell's source read with the parser: the Python IPython runs, the names it defines,
its definitions, and its source without the statements that call the grader (shared by
:mod:`.cells` and :mod:`.integrity`)."""
from __future__ import annotations

import ast
import functools
import re

CAPTURE_LINE_RE = re.compile(r"^.*\bgradekit\b.*$", re.MULTILINE)
HIDDEN_BLOCK_RE = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.DOTALL)


def _text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return ""


@functools.lru_cache(maxsize=4096)
def python_source(source: str) -> str:
    """The Python that IPython runs for a cell (magics and ``!`` lines transformed; cached: the
    sanitizer asks for every cell many times)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001
        return source


def defined_names(source: str) -> set[str]:
    try:
        tree = ast.parse(python_source(source))
    except (SyntaxError, ValueError):
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _definitions_in(source: str) -> str:
    """The top-level ``def``/``class`` statements (and imports) of ``source``, as text."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ""
    parts = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
            segment = ast.get_source_segment(source, node, padded=False)
            if segment:
                start = node.decorator_list[0].lineno if getattr(node, "decorator_list", None) else node.lineno
                lines = source.splitlines()
                segment = "\n".join(lines[start - 1:node.end_lineno])
                parts.append(segment)
    return "\n\n".join(parts)


def _mentions_gradekit(node) -> bool:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id == "gradekit":
            return True
        if isinstance(sub, ast.Import) and any(a.name.split(".")[0] == "gradekit" for a in sub.names):
            return True
        if isinstance(sub, ast.ImportFrom) and (sub.module or "").split(".")[0] == "gradekit" and not sub.level:
            return True
    return False


def strip_gradekit_statements(source: str) -> str:
    """``source`` without the statements that import or call gradekit.

    Statements are found with the parser, so a docstring or a string that mentions
    gradekit stays (and the code stays valid); a removed statement inside a block
    becomes ``pass``. Code that does not parse loses every line naming gradekit.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return CAPTURE_LINE_RE.sub("", source)
    drop: dict[int, int] = {}  # first line -> last line of each removed statement
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not hasattr(node, "body") and _mentions_gradekit(node):
            drop[node.lineno] = max(drop.get(node.lineno, 0), node.end_lineno or node.lineno)
    if not drop:
        return source
    lines = source.splitlines(keepends=True)
    out, skip_to = [], 0
    for number, line in enumerate(lines, start=1):
        if number <= skip_to:
            continue
        if number in drop:
            skip_to = drop[number]
            indent = line[:len(line) - len(line.lstrip())]
            if indent:  # inside a block: keep it a valid block
                out.append(f"{indent}pass\n")
            continue
        out.append(line)
    return "".join(out)


def _find_run(lines: list[str], block: list[str]) -> int | None:
    """Index where ``block`` occurs as consecutive lines of ``lines`` (or None)."""
    n = len(block)
    if not n or n > len(lines):
        return None
    for start in range(len(lines) - n + 1):
        if lines[start:start + n] == block:
            return start
    return None
