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
_BUILTIN = type(len)
#: The module names the Python-level call trace looks at at all.
INTERESTING = WATCHED + TAMPER_MODULES
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
    """True for code that does not claim to be part of an installed library (its file name):
    a notebook cell, code compiled from a string. Cheap; :func:`genuine` checks the claim."""
    filename = code.co_filename
    return not (filename.startswith(TRUSTED) or os.path.realpath(filename).startswith(TRUSTED))


def code_signatures(root) -> set:
    """``(qualified name, first line, bytecode)`` of a code object and of every code object nested in it."""
    found, stack = set(), [root]
    while stack:
        code = stack.pop()
        found.add((code.co_qualname, code.co_firstlineno, code.co_code))
        stack.extend(c for c in code.co_consts if isinstance(c, type(root)))
    return found


#: Frozen modules whose code objects carry another name than the one they are frozen under.
FROZEN_ALIASES = {"importlib._bootstrap": "_frozen_importlib",
                  "importlib._bootstrap_external": "_frozen_importlib_external"}


def _make_genuine():
    """``genuine(code)``: the code object really is one of an installed library's.

    A file name is only a claim (code compiled from a string can name any file): the library's
    file (read-only while grading) is read and compiled here, and one of its code objects must
    have the same qualified name, first line and bytecode; for a frozen module
    (``<frozen os>``), the interpreter's own frozen code. Cached per code object and per file;
    the cache lives in this closure.
    """
    import _imp

    files: dict = {}
    codes: dict = {}

    signatures = code_signatures

    def file_signatures(filename: str) -> set:
        if filename not in files:
            try:
                if filename.startswith("<frozen ") and filename.endswith(">"):
                    name = filename[8:-1]
                    name = FROZEN_ALIASES.get(name, name)
                    files[filename] = signatures(_imp.get_frozen_object(name))
                elif is_notebook_code(type("", (), {"co_filename": filename})):
                    files[filename] = set()
                else:
                    with open(filename, "rb") as f:
                        files[filename] = signatures(compile(f.read(), filename, "exec", dont_inherit=True))
            except Exception:  # noqa: BLE001  (no such file, not Python, not frozen)
                files[filename] = set()
        return files[filename]

    def genuine(code) -> bool:
        known = codes.get(code)
        if known is None:
            known = codes[code] = (code.co_qualname, code.co_firstlineno, code.co_code) \
                in file_signatures(code.co_filename)
        return known

    return genuine


genuine = _make_genuine()


class PythonCalls:
    """``with PythonCalls(seen):`` records watched Python calls and tampering into ``seen``."""

    def __init__(self, seen: set):
        self.seen = seen
        self.previous = None
        self.profile = self._make_profile(seen)

    @staticmethod
    def _make_profile(seen: set):
        notebook: dict = {}  # code object -> is_notebook_code
        tampering = _tamper_builtins()
        #: The only code that may change the profile function while a request runs: this class's.
        own = {PythonCalls.__enter__.__code__, PythonCalls.__exit__.__code__}

        def from_notebook(frame) -> bool:
            """The nearest caller that is not a wrapper (:data:`WRAPPERS`) is not a library's
            own code (:func:`genuine`)."""
            for _ in range(8):
                if frame is None:
                    return False
                code = frame.f_code
                known = notebook.get(code)
                if known is None:
                    real = genuine(code)
                    known = notebook[code] = ("wrapper" if real and str(frame.f_globals.get("__name__")).startswith(WRAPPERS)
                                              else not real)
                if known != "wrapper":
                    return known
                frame = frame.f_back
            return True

        def profile(frame, event, arg):
            if event == "call":
                # Cheap first look (reading frame.f_code raises an audit event, f_globals does not):
                # a frame whose globals name no watched or tamper module is skipped. Library code
                # run with other globals needs its __code__, which the kernel's audit hook reports.
                module = frame.f_globals.get("__name__")
                if module.__class__ is str and not module.startswith(INTERESTING):
                    return
                kind = _classify(frame)
                if kind[0] == "watched":
                    seen.add(kind[1])
                elif kind[0] == "tamper" and from_notebook(frame.f_back):
                    seen.add("tamper:" + kind[1])
            elif event == "c_call" and arg in tampering:
                owner = arg.__self__
                if from_notebook(frame) or (owner is sys and arg.__name__.startswith("set")
                                            and frame.f_code not in own):
                    seen.add(f"tamper:{getattr(owner, '__name__', '?')}.{arg.__name__}")

        return profile

    def __enter__(self):
        self.previous = sys.getprofile()
        sys.setprofile(self.profile)
        return self

    def __exit__(self, *exc):
        sys.setprofile(self.previous if callable(self.previous) else None)
        return False

    @property
    def intact(self) -> bool:
        return sys.getprofile() is self.profile


_TAMPER_BUILTINS: dict = {}


def _tamper_builtins() -> frozenset:
    """The built-in functions of :func:`_tamper_owners` whose names match :data:`TAMPER_BUILTIN`
    (``sys.setprofile``, ``torch._C._push_on_torch_function_stack``...), found once per set of
    owners: a ``c_call`` event is then one set lookup (built-ins hash and compare by their module
    and C function, without running Python code)."""
    owners = _tamper_owners()
    key = tuple(id(o) for o in owners)
    if key not in _TAMPER_BUILTINS:
        found = set()
        for owner in owners:
            for name in dir(owner):
                if TAMPER_BUILTIN.search(name):
                    value = getattr(owner, name, None)
                    if type(value) is _BUILTIN and getattr(value, "__self__", None) is owner:
                        found.add(value)
        _TAMPER_BUILTINS[key] = frozenset(found)
    return _TAMPER_BUILTINS[key]


def _tamper_owners() -> tuple:
    owners = [sys]
    torch = sys.modules.get("torch")
    if torch is not None:
        owners.append(torch._C)
        owners.extend(getattr(torch._C, n) for n in ("_functorch", "_dynamo") if hasattr(torch._C, n))
    return tuple(owners)


#: Folders whose files are importable modules, longest first (site-packages inside the stdlib).
_MODULE_ROOTS = tuple(sorted({os.path.join(os.path.realpath(p), "") for p in (
    sysconfig.get_paths().get(k) for k in ("purelib", "platlib", "stdlib", "platstdlib")) if p},
    key=len, reverse=True))


def module_of(code) -> str | None:
    """The module a code object's file is (``torchvision/models/resnet.py`` ->
    ``torchvision.models.resnet``; ``<frozen os>`` -> ``os``), from the file, not from the
    globals a function runs with (those can be anyone's); None outside the library folders."""
    filename = code.co_filename
    if filename.startswith("<frozen ") and filename.endswith(">"):
        return filename[8:-1]
    real = os.path.realpath(filename)
    root = next((r for r in _MODULE_ROOTS if real.startswith(r)), None)
    if root is None or not real.endswith(".py"):
        return None
    parts = real[len(root):-3].split(os.sep)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


#: Code object -> (kind, name), shared by every trace in the process: a code object's kind
#: depends on its file only (:func:`module_of`).
_KINDS: dict = {}


def _classify(frame) -> tuple[str, str]:
    code = frame.f_code
    kind = _KINDS.get(code)
    if kind is not None:
        return kind
    if is_notebook_code(code):
        return ("", "")  # not cached: cells make new code objects all the time
    module = module_of(code) or frame.f_globals.get("__name__")
    kind = ("", "")
    if isinstance(module, str):
        name = f"{module}.{code.co_qualname}"
        if module.startswith(WATCHED):
            kind = ("watched", "py:" + name)
        elif module.startswith(TAMPER_MODULES):
            kind = ("tamper", name)
    _KINDS[code] = kind
    return kind


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


#: The ``py:`` names of torch.nn.functional's Python functions start so.
FUNCTIONAL = "py:torch.nn.functional."


def trace_hits(ops, banned_ops=(), banned_calls=()) -> tuple[list[str], list[str]]:
    """``(banned, tampering)`` found in a trace: the banned operators and watched Python calls
    (``banned_calls`` are prefixes of the ``py:`` names, written without ``py:``), and the
    tampering seen. The judge and the self-check decide with this one rule."""
    ops, banned_ops = set(ops or ()), set(banned_ops)
    hit = ops & banned_ops
    # a banned operator's Python function ran (torch.nn.functional.kl_div), even where the modes
    # do not see it (inside a custom autograd Function, whose forward and backward run outside them)
    hit |= {op for op in ops if op.startswith(FUNCTIONAL) and op[len(FUNCTIONAL):] in banned_ops}
    prefixes = tuple(banned_calls)
    if prefixes:
        hit |= {op for op in ops if op.startswith("py:") and op[3:].startswith(prefixes)}
    tamper = sorted(op[len("tamper:"):] for op in ops if op.startswith("tamper:"))
    return sorted(hit), tamper


def describe_call(name: str) -> str:
    """``"py:torchvision.models.resnet.BasicBlock.forward"`` -> ``"torchvision.models.resnet.BasicBlock.forward"``,
    ``"aten.convolution"`` -> ``"convolution"``."""
    return name[3:] if name.startswith("py:") else name.removeprefix("aten.")
