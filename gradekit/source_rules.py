"""Static check of a student's definition for built-ins a problem forbids.

Shared by the judge and the students' self-check (the same rule on both sides).

The check runs on the source text of the cell that defines the graded name (the
judge reads it from the notebook; nothing is executed). It flags attribute access
(``F.conv2d``, ``torch.nn.Conv2d``), imports (``from torch.nn.functional import
conv2d``), ``import *`` from torch, and string constants that name a banned
built-in (``getattr(F, "conv2d")``, ``"torch.nn.functional.conv2d"`` for importlib
tricks); docstrings and prose in strings ("same result as F.conv2d") do not count.
The kernel's operator trace backs it up for calls that hide better than that
(``getattr(F, "con" + "v2d")``).
"""
from __future__ import annotations

import ast
from collections.abc import Iterable


def defining_cells(cells: list[str], name: str) -> list[str]:
    """Sources among ``cells`` that define ``name`` at top level (def, class or assignment)."""
    found = []
    for source in cells:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            if f"def {name}" in source or f"class {name}" in source:
                found.append(source)
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
                found.append(source)
                break
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                found.append(source)
                break
    return found


def banned_uses(source: str, banned: Iterable[str]) -> list[str]:
    """Names from ``banned`` that ``source`` uses, sorted."""
    banned = set(banned)
    if not banned:
        return []
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found: set[str] = set()
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in banned:
            found.add(node.attr)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in banned:
                    found.add(alias.name)
                elif alias.name == "*" and (node.module or "").startswith("torch"):
                    found.add(f"from {node.module} import *")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            last = node.value.strip().rsplit(".", 1)[-1]
            if last in banned and " " not in node.value.strip():
                found.add(last)
    return sorted(found)
