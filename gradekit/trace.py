"""What ran while graded code ran, beyond the operators: the Python-level call trace.

:func:`gradekit.capture._op_trace` records torch functions and ATen operators (modes).
This module adds, for the same block, a profile function (``sys.setprofile``, this thread)
that records

- ``"py:<module>.<qualname>"`` for every Python function of a *watched* library that ran
  (:data:`WATCHED`: torchvision, ``torch.nn.functional``, TorchScript, the hub), however it
  was reached: an alias, an import in another cell, a subclass, a hook, a backward;
- ``"tamper:<what>"`` when the notebook's own code (a frame outside the installed libraries)
  calls a function that switches the trace off or around it: torch's mode stacks
  (``torch.utils._python_dispatch``, ``torch.overrides``, ``torch._C``'s mode, stack and
  disabling functions), the profiler itself (``sys.setprofile``, ``sys.settrace``), or
  gradekit; and when, at the end of the block, the trace is found not recording any more
  (:func:`check_canary`: a canary operation the modes must have seen, the profile function
  still installed).

The judge decides from these names (:func:`trace_hits`, shared with the self-check): a
problem's ``banned_calls`` are prefixes of ``py:`` names; any ``tamper:`` name scores the
problem zero. Nothing here decides by how code is spelled.
"""
from __future__ import annotations

import os
import re
import sys
import sysconfig

#: Libraries whose Python functions are recorded when they run (module name prefixes).
WATCHED = ("torchvision", "torch.nn.functional", "torch.jit.", "torch.hub", "pickle", "copyreg")
#: Modules whose functions switch the trace off or around it when the notebook calls them.
TAMPER_MODULES = ("torch.utils._python_dispatch", "torch.overrides", "torch.utils._mode_utils", "torch._C")
#: Modules that only wrap a call (decorators, context managers): the caller is found above them.
WRAPPERS = ("contextlib", "functools", "torch.utils._contextlib", "typing")
#: Built-in functions (of ``torch._C`` or ``sys``) that do the same, by name.
TAMPER_BUILTIN = re.compile(r"mode|stack|[Dd]isable|profile|trace|dispatch")
#: The operation :func:`check_canary` runs inside the block (see :func:`gradekit.capture._op_trace`).
CANARY_OP = "nextafter"


def _trusted_roots() -> tuple[str, ...]:
    """Folders of installed code: the standard library, site-packages, gradekit, coursedata."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(path)
    here = os.path.dirname(os.path.abspath(__file__))
    roots.add(here)
    roots.add(os.path.join(os.path.dirname(here), "coursedata"))
    return tuple(sorted(os.path.join(os.path.realpath(r), "") for r in roots if r)) + ("<frozen ",)


TRUSTED = _trusted_roots()


def is_notebook_code(code) -> bool:
    """True for code that is not part of an installed library: a notebook cell, code compiled
    from a string, a file the notebook wrote."""
    filename = code.co_filename
    return not (filename.startswith(TRUSTED) or os.path.realpath(filename).startswith(TRUSTED))


class PythonCalls:
    """``with PythonCalls(seen):`` records watched Python calls and tampering into ``seen``."""

    def __init__(self, seen: set):
        self.seen = seen
        self.previous = None
        self.profile = self._make_profile(seen)

    @staticmethod
    def _make_profile(seen: set):
        kinds: dict = {}  # code object -> (kind, name): "watched", "tamper" or ""
        notebook: dict = {}  # code object -> is_notebook_code
        owners = _tamper_owners()

        def from_notebook(frame) -> bool:
            """The nearest caller that is not a wrapper (:data:`WRAPPERS`) is the notebook's code."""
            for _ in range(6):
                if frame is None:
                    return False
                code = frame.f_code
                known = notebook.get(code)
                if known is None:
                    known = notebook[code] = ("wrapper" if str(frame.f_globals.get("__name__")).startswith(WRAPPERS)
                                              and not is_notebook_code(code) else is_notebook_code(code))
                if known != "wrapper":
                    return known
                frame = frame.f_back
            return False

        def profile(frame, event, arg):
            if event == "call":
                code = frame.f_code
                kind = kinds.get(code)
                if kind is None:
                    kind = kinds[code] = _classify(frame)
                if kind[0] == "watched":
                    seen.add(kind[1])
                elif kind[0] == "tamper" and from_notebook(frame.f_back):
                    seen.add("tamper:" + kind[1])
            elif event == "c_call":
                owner = getattr(arg, "__self__", None)
                if owner is not None and any(owner is o for o in owners) \
                        and TAMPER_BUILTIN.search(getattr(arg, "__name__", "")) and from_notebook(frame):
                    seen.add(f"tamper:{getattr(owner, '__name__', '?')}.{arg.__name__}")

        return profile

    def __enter__(self):
        self.previous = sys.getprofile()
        sys.setprofile(self.profile)
        return self

    def __exit__(self, *exc):
        sys.setprofile(self.previous)
        return False

    @property
    def intact(self) -> bool:
        return sys.getprofile() is self.profile


def _tamper_owners() -> tuple:
    owners = [sys]
    torch = sys.modules.get("torch")
    if torch is not None:
        owners.append(torch._C)
        owners.extend(getattr(torch._C, n) for n in ("_functorch", "_dynamo") if hasattr(torch._C, n))
    return tuple(owners)


def _classify(frame) -> tuple[str, str]:
    module = frame.f_globals.get("__name__")
    if not isinstance(module, str) or is_notebook_code(frame.f_code):
        return ("", "")
    name = f"{module}.{frame.f_code.co_qualname}"
    if module.startswith(WATCHED):
        return ("watched", "py:" + name)
    if module.startswith(TAMPER_MODULES):
        return ("tamper", name)
    return ("", "")


def check_canary(canary: dict, calls: PythonCalls | None) -> set[str]:
    """Run the canary inside the trace and say what no longer records (``tamper:`` names).

    ``canary`` is shared with the modes: they set ``"function"`` and ``"aten"`` when they see
    :data:`CANARY_OP` applied to ``canary["tensor"]``.
    """
    import torch

    found = set()
    tensor = canary.get("tensor")
    if tensor is None:
        return {"tamper:trace-not-armed"}
    canary.pop("function", None)
    canary.pop("aten", None)
    torch.nextafter(tensor, tensor)
    if not canary.get("function"):
        found.add("tamper:torch-function-trace-off")
    if not canary.get("aten"):
        found.add("tamper:operator-trace-off")
    if calls is not None and not calls.intact:
        found.add("tamper:python-call-trace-off")
    return found


def trace_hits(ops, banned_ops=(), banned_calls=()) -> tuple[list[str], list[str]]:
    """``(banned, tampering)`` found in a trace: the banned operators and watched Python calls
    (``banned_calls`` are prefixes of the ``py:`` names, written without ``py:``), and the
    tampering seen. The judge and the self-check decide with this one rule."""
    ops = set(ops or ())
    hit = set(ops & set(banned_ops))
    prefixes = tuple(banned_calls)
    if prefixes:
        hit |= {op for op in ops if op.startswith("py:") and op[3:].startswith(prefixes)}
    tamper = sorted(op[len("tamper:"):] for op in ops if op.startswith("tamper:"))
    return sorted(hit), tamper


def describe_call(name: str) -> str:
    """``"py:torchvision.models.resnet.BasicBlock.forward"`` -> ``"torchvision.models.resnet.BasicBlock.forward"``,
    ``"aten.convolution"`` -> ``"convolution"``."""
    return name[3:] if name.startswith("py:") else name.removeprefix("aten.")
