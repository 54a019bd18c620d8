"""Static checks of the student's cells, by AST (nothing is executed).

- Forbidden built-ins: :func:`banned_uses` and :func:`defining_cells` live in
  :mod:`gradekit.source_rules`, shared with the students' self-check, and are
  imported here under the judge's names.
- Provenance: :func:`foreign_definition`, whether a graded name comes from the
  notebook's own cells.
"""
from __future__ import annotations

import ast
import functools
import re

from gradekit.source_rules import banned_uses, defining_cells  # noqa: F401  (the judge's names)

# ----------------------------------------------------------------------------- provenance
#: Libraries a graded name may be bound from by an import (the banned-built-in check
#: above then decides whether that is allowed for the problem).
GRADED_FROM = frozenset({"torch", "torchvision", "numpy", "math", "functools", "operator", "einops"})
#: Modules whose names load or build code: whatever they bind carries code from outside the cells.
LOADER_MODULES = frozenset({"importlib", "imp", "runpy", "zipimport", "pkgutil", "marshal", "pickle", "dill",
                            "cloudpickle", "code", "codeop"})
#: Built-ins that run code given as data.
DYNAMIC_CALLS = frozenset({"exec", "eval", "compile", "__import__", "execfile"})
#: IPython magics that run a file in the notebook's namespace.
RUN_MAGICS = frozenset({"run"})


@functools.lru_cache(maxsize=4096)
def _parse(source: str) -> ast.Module | None:
    """The cell as Python (IPython syntax such as ``%run`` or ``!cmd`` translated first).
    Cached (every problem's check reads every cell): callers only read the tree."""
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager  # noqa: PLC0415

        return ast.parse(TransformerManager().transform_cell(source))
    except Exception:  # noqa: BLE001  (a cell that does not parse cannot define anything)
        return None


def _top_statements(body):
    """Module-level statements, in order, including those nested in if/for/while/try/with/match."""
    for node in body:
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for attr in ("body", "orelse", "finalbody"):
            yield from _top_statements(getattr(node, attr, []) or [])
        for handler in getattr(node, "handlers", []) or []:
            yield from _top_statements(handler.body)
        for case in getattr(node, "cases", []) or []:
            yield from _top_statements(case.body)


def _target_names(target) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


_LIBRARIES: set[str] | None = None


def _installed() -> set[str]:
    """Top-level modules of the standard library and of installed distributions."""
    global _LIBRARIES
    if _LIBRARIES is None:
        import sys  # noqa: PLC0415
        from importlib.metadata import packages_distributions  # noqa: PLC0415

        try:
            found = set(packages_distributions())
        except Exception:  # noqa: BLE001
            found = set()
        _LIBRARIES = set(sys.stdlib_module_names) | found | set(GRADED_FROM)
    return _LIBRARIES


def _dynamic_statement(node) -> str | None:
    """A module-level statement that may bind any name: exec, globals() writes, %run..."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            if isinstance(func, ast.Name) and func.id in DYNAMIC_CALLS:
                return f"{func.id}()"
            if isinstance(func, ast.Attribute) and func.attr in ("run_line_magic", "run_cell_magic", "magic") \
                    and sub.args and isinstance(sub.args[0], ast.Constant) \
                    and str(sub.args[0].value).split(" ")[0].lstrip("%") in RUN_MAGICS:
                return f"%{str(sub.args[0].value).split(' ')[0].lstrip('%')}"
            if isinstance(func, ast.Attribute) and func.attr in ("update", "setdefault", "__setitem__") \
                    and isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name) \
                    and func.value.func.id in ("globals", "vars", "locals"):
                return f"{func.value.func.id}().{func.attr}()"
            if isinstance(func, ast.Name) and func.id == "setattr" and sub.args \
                    and "modules" in ast.dump(sub.args[0]):
                return "setattr() on a module"
        if isinstance(sub, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
            for target in targets:
                if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Call) \
                        and isinstance(target.value.func, ast.Name) \
                        and target.value.func.id in ("globals", "vars", "locals"):
                    return f"{target.value.func.id}()[...] = ..."
    return None


def _path_tampered(trees) -> bool:
    """Do the cells change where Python imports from (``sys.path``, ``site.addsitedir``)?"""
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("path", "addsitedir", "path_hooks", "meta_path") \
                    and isinstance(node.value, ast.Name) and node.value.id in ("sys", "site"):
                return True
            if isinstance(node, ast.ImportFrom) and node.module in ("sys", "site") \
                    and any(a.name in ("path", "addsitedir", "meta_path", "path_hooks") for a in node.names):
                return True
    return False


@functools.lru_cache(maxsize=8)
def _provenance_analysis(cells: tuple[str, ...]):
    """The cells' binding events in execution order, which names carry code from outside
    the cells, and the two predicates :func:`foreign_definition` needs (computed once per
    notebook, whatever the number of graded names)."""
    trees = [t for t in (_parse(src) for src in cells) if t is not None]
    tampered = _path_tampered(trees)
    libraries = set(GRADED_FROM) if tampered else _installed()

    def library(module: str | None, level: int = 0) -> bool:
        return bool(module) and level == 0 and module.split(".")[0] in libraries

    # Events in execution order: (kind, names bound, payload).
    events = _binding_events(trees)

    # Names that carry code from outside the cells (a fixpoint over the events).
    tainted: dict[str, str] = {}

    def dirty(node) -> str | None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in tainted and not isinstance(sub.ctx, ast.Store):
                return tainted[sub.id]
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in DYNAMIC_CALLS:
                return f"code run with {sub.func.id}()"
        return None

    _taint(events, library, dirty, tainted)
    return events, library, dirty


def _binding_events(trees) -> list:
    """The cells' binding events in execution order: (kind, names bound, payload)."""
    events = []
    for tree in trees:
        for node in _top_statements(tree.body):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                events.append(("def", {node.name}, node))
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    events.append(("import", {alias.asname or alias.name.split(".")[0]}, (alias.name, 0)))
                continue
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name == "*":
                        events.append(("star", set(), (node.module, node.level or 0)))
                    else:
                        events.append(("import", {alias.asname or alias.name}, (node.module, node.level or 0)))
                continue
            if isinstance(node, ast.Assign):
                events.append(("assign", set().union(*(_target_names(t) for t in node.targets)), node.value))
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                events.append(("assign", _target_names(node.target), node.value))
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                events.append(("assign", _target_names(node.target), node.iter))
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is not None:
                        events.append(("assign", _target_names(item.optional_vars), item.context_expr))
            if not isinstance(node, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, ast.With, ast.AsyncWith)) \
                    and not type(node).__name__ in ("TryStar", "Match"):
                why = _dynamic_statement(node)
                if why:
                    events.append(("dynamic", set(), why))
    return events


def _taint(events, library, dirty, tainted: dict[str, str]) -> None:
    """Mark in ``tainted`` the names that carry code from outside the cells (imports from modules
    that are not libraries, or that load code, then a fixpoint over definitions and assignments)."""
    for kind, bound, payload in events:
        if kind == "import":
            module, level = payload
            top = (module or "").split(".")[0]
            if not library(module, level):
                for n in bound:
                    tainted[n] = f"the module {'.' * level}{module or ''}"
            elif top in LOADER_MODULES:
                for n in bound:
                    tainted[n] = f"{module}, which loads code"
    for _ in range(8):
        before = len(tainted)
        for kind, bound, payload in events:
            if kind in ("def", "assign"):
                why = dirty(payload)
                if why:
                    for n in bound:
                        tainted.setdefault(n, why)
        if len(tainted) == before:
            break


def foreign_definition(cells: list[str], name: str) -> str | None:
    """Why ``name`` does not come from code in ``cells`` (the notebook's code cells, in
    order), or ``None`` when it does.

    Only the notebook's cells are the student's code: a graded name bound by an
    import from a module that is neither the standard library nor an installed
    library (a ``.py`` written by a cell or submitted beside the notebook), by code
    loaded at run time (``exec``, ``importlib``, ``runpy``, ``%run``, ``globals()``
    writes), or defined by a function whose body calls such code, is not. Imports
    from ``torch``, ``numpy``, ``math``... are left to :func:`banned_uses`.
    """
    events, library, dirty = _provenance_analysis(tuple(cells))
    last = None
    later: list[str] = []
    for kind, bound, payload in events:
        if name in bound:
            last, later = (kind, payload), []
        elif kind == "star" and not library(*payload):
            later.append(f"`from {'.' * payload[1]}{payload[0] or ''} import *`")
        elif kind == "dynamic":
            later.append(payload)
    if later:
        return f"{name} may be bound by {later[-1]}, code that does not come from the notebook's cells"
    if last is None:
        if any(re.search(rf"\b(def|class)\s+{re.escape(name)}\b|^\s*{re.escape(name)}\s*=", src, re.M)
               for src in cells):
            return None  # a cell we could not parse: the other checks decide
        return f"{name} is not defined in the notebook's cells"
    kind, payload = last
    if kind == "import":
        module, level = payload
        if level == 0 and (module or "").split(".")[0] in GRADED_FROM:
            return None
        return (f"{name} is imported from a module ({'.' * level}{module or ''}), not defined in the notebook")
    why = dirty(payload)
    if why:
        verb = "defined with" if kind == "def" else "assigned from"
        return f"{name} is {verb} {why}, not defined by code in the notebook"
    return None
