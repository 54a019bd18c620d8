"""Code that interferes with grading, found by a static scan of the student's cells.

:func:`integrity_findings`: a static scan of the student's code cells for the
constructs that can reach the grader's machinery inside the kernel (frames and
the garbage collector, ``ctypes``, ``importlib``/``eval``/computed ``getattr``,
torch's dispatch internals, patching library attributes, processes and threads,
IPython hooks and magics, tensor and array subclasses that run code when the
grader reads a value...). The executor scores every problem of a notebook with
such findings 0 and lists them. Cells identical to the instructor's own cells of
the source notebook are not scanned.
"""
from __future__ import annotations

import ast

from .cell_source import python_source

#: Modules whose import or use is a finding, with what they would allow.
FORBIDDEN_MODULES = {
    "gradekit": "the grader's own module", "ctypes": "raw memory access", "_ctypes": "raw memory access",
    "cffi": "raw memory access", "importlib": "dynamic imports", "imp": "dynamic imports",
    "builtins": "the built-in namespace", "__builtin__": "the built-in namespace",
    "subprocess": "other processes", "_posixsubprocess": "other processes", "multiprocessing": "other processes",
    "pty": "other processes", "pexpect": "other processes", "threading": "background threads",
    "_thread": "background threads", "concurrent": "background workers", "asyncio": "background tasks",
    "signal": "signal handlers", "atexit": "exit hooks", "weakref": "finalizers", "marshal": "code objects",
    "code": "an interpreter", "codeop": "an interpreter", "runpy": "running modules", "site": "start-up hooks",
    "zipimport": "dynamic imports", "pkgutil": "dynamic imports", "sys.monitoring": "tracing",
    "pickle": "code run from bytes", "_pickle": "code run from bytes", "cPickle": "code run from bytes",
    "copyreg": "code run from bytes", "shelve": "code run from bytes", "dill": "code run from bytes",
    "cloudpickle": "code run from bytes", "joblib": "code run from bytes", "torch.package": "code run from bytes",
    "torch.jit": "TorchScript (code compiled from strings)", "torch.hub": "code fetched at run time",
    "operator.attrgetter": "attributes reached by computed names",
    "operator.methodcaller": "methods reached by computed names",
}
#: Attributes of modules (by full dotted path) that are findings.
FORBIDDEN_MODULE_ATTRS = {
    "sys": {"_getframe", "modules", "settrace", "setprofile", "gettrace", "getprofile", "excepthook", "displayhook", "addaudithook",
            "meta_path", "path_hooks", "path_importer_cache", "_current_frames", "call_tracing", "monitoring",
            "breakpointhook", "unraisablehook"},
    "gc": {"get_objects", "get_referrers", "get_referents", "callbacks", "garbage", "freeze"},
    "inspect": {"currentframe", "stack", "trace", "getouterframes", "getinnerframes", "getframeinfo",
                "getmembers", "getmembers_static", "getattr_static", "getclosurevars"},
    "os": {"fork", "forkpty", "system", "popen", "execv", "execve", "execl", "execle", "execlp", "execlpe",
           "execvp", "execvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp",
           "spawnvpe", "posix_spawn", "posix_spawnp", "kill", "killpg", "_exit", "setsid", "setpgid",
           "setpgrp", "setuid", "seteuid", "setgid", "chroot", "register_at_fork", "pidfd_open"},
    "types": {"FunctionType", "CodeType", "ModuleType", "LambdaType", "MethodType", "FrameType"},
    "torch": {"_C", "overrides", "_dynamo", "compile", "library", "_ops", "_guards", "_inductor", "_functorch",
              "_subclasses", "_prims", "_refs", "_decomp", "_tensor", "_utils_internal"},
    "torch.utils": {"_python_dispatch", "_mode_utils"},
    "torch.nn.functional": {"handle_torch_function", "has_torch_function"},
    "IPython": {"get_ipython", "core"},
    "numpy": {"ctypeslib"},
}
#: Attribute names that are findings on any object.
FORBIDDEN_ATTRS = {
    "__dict__", "__globals__", "__code__", "__closure__", "__builtins__", "__subclasses__", "__bases__",
    "__base__", "__mro__", "__getattribute__", "__import__", "__loader__", "__spec__", "__self__", "__func__",
    "__defaults__", "__kwdefaults__", "__traceback__", "__setattr__", "__delattr__", "__reduce_ex__",
    "tb_frame", "tb_next", "f_back", "f_locals", "f_globals", "f_builtins", "f_code", "gi_frame", "cr_frame",
    "ag_frame", "gi_code", "co_code", "showtraceback", "showsyntaxerror", "excepthook", "_getframe",
    "settrace", "setprofile", "DisableTorchFunction", "DisableTorchFunctionSubclass", "_DisableTorchDispatch",
    "_disable_current_modes", "_disable_torch_function", "TorchFunctionMode", "TorchDispatchMode",
    "_make_subclass", "_make_wrapper_subclass", "as_subclass", "_set_torch_function_mode", "_push_mode",
    "_pop_mode", "_get_current_dispatch_mode", "_unset_dispatch_mode", "_set_dispatch_mode",
    "_python_dispatch", "get_ipython", "run_line_magic", "run_cell_magic", "register_at_fork",
    "_exit", "_C",
}
#: Built-in names that are findings when used at all.
FORBIDDEN_NAMES = {
    "eval": "eval()", "exec": "exec()", "compile": "compile()", "__import__": "__import__()",
    "globals": "globals()", "locals": "locals()", "vars": "vars()", "breakpoint": "breakpoint()",
    "get_ipython": "IPython's shell object", "__builtins__": "the built-in namespace",
    "__loader__": "the module loader", "__spec__": "the module spec", "gradekit": "the grader's own module",
}
#: Methods a student class may not define (they run when the grader reads values).
FORBIDDEN_METHODS = {
    "__del__", "__getattribute__", "__torch_function__", "__torch_dispatch__", "__array__",
    "__array_function__", "__array_ufunc__", "__array_finalize__", "__array_wrap__", "__array_interface__",
    "__array_priority__", "__array_struct__", "__instancecheck__", "__subclasscheck__", "__init_subclass__",
    "__reduce__", "__reduce_ex__", "__set_name__",
}
#: Base classes a student class may not have (the grader reads such values as plain data).
FORBIDDEN_BASES = {
    "Tensor", "Parameter", "ndarray", "int", "float", "complex", "bool", "str", "bytes", "list", "tuple",
    "dict", "set", "frozenset", "type", "ModuleType", "TorchFunctionMode", "TorchDispatchMode",
}
#: Library attributes students may set.
ALLOWED_ASSIGN_PREFIXES = ("torch.backends.", "matplotlib.rcParams", "matplotlib.pyplot.rcParams",
                           "pandas.options.")
#: IPython magics students may use.
ALLOWED_MAGICS = {"matplotlib", "time", "timeit", "precision", "pinfo", "pinfo2", "psearch", "who", "whos",
                  "pprint", "capture", "config_inline"}
#: Strings that are findings when they appear in a string constant.
FORBIDDEN_STRINGS = ("gradekit", "DisableTorch", "_disable_current_modes", "_python_dispatch", "_getframe",
                     "__globals__", "__builtins__", "__subclasses__", "f_locals", "f_back", "showtraceback")


def _const_str(node, depth: int = 0) -> str | None:
    """The value of a string expression built from constants only (``"grade" + "kit"``,
    ``f"{'grade'}kit"``, ``"".join(["grade", "kit"])``), else None."""
    if depth > 50:
        return None
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _const_str(node.left, depth + 1), _const_str(node.right, depth + 1)
        return None if left is None or right is None or len(left) + len(right) > 10000 else left + right
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            inner = value.value if isinstance(value, ast.FormattedValue) else value
            if isinstance(value, ast.FormattedValue) and (value.conversion != -1 or value.format_spec):
                return None
            text = _const_str(inner, depth + 1)
            if text is None:
                return None
            parts.append(text)
        return "".join(parts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join" \
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], (ast.List, ast.Tuple)):
        sep = _const_str(node.func.value, depth + 1)
        parts = [_const_str(e, depth + 1) for e in node.args[0].elts]
        if sep is None or any(p is None for p in parts):
            return None
        return sep.join(parts)
    return None


def _imported_name(node) -> str | None:
    """``importlib.import_module("x.y")`` / ``import_module(...)`` / ``__import__("x.y", fromlist=...)``
    with a constant (or constant-built) name: the module it returns."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name not in ("import_module", "__import__"):
        return None
    module = _const_str(node.args[0])
    if not module:
        return None
    if name == "__import__":
        fromlist = node.args[3] if len(node.args) > 3 else next(
            (k.value for k in node.keywords if k.arg == "fromlist"), None)
        if fromlist is None or (isinstance(fromlist, (ast.List, ast.Tuple)) and not fromlist.elts):
            return module.split(".")[0]
    return module


def _dotted(node) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


class _Scanner(ast.NodeVisitor):
    def __init__(self, aliases: dict[str, str], findings: list[str], where: str):
        self.aliases = aliases
        self.findings = findings
        self.where = where
        self.allowed_calls: set[int] = set()
        self.allowed_names: set[int] = set()

    def flag(self, node, what: str) -> None:
        line = getattr(node, "lineno", None)
        text = f"{self.where}{f', line {line}' if line else ''}: {what}"
        if text not in self.findings:
            self.findings.append(text)

    def resolve(self, parts: list[str]) -> str:
        head = self.aliases.get(parts[0], parts[0])
        return ".".join([head] + parts[1:])

    def check_path(self, node, path: str) -> None:
        for module, why in FORBIDDEN_MODULES.items():
            if path == module or path.startswith(module + "."):
                self.flag(node, f"uses {module} ({why})")
                return
        for module, attrs in FORBIDDEN_MODULE_ATTRS.items():
            if path.startswith(module + "."):
                rest = path[len(module) + 1:].split(".")[0]
                if rest in attrs:
                    self.flag(node, f"uses {module}.{rest}")
                    return

    # ---------------------------------------------------------------- visitors
    def visit_Import(self, node):
        for alias in node.names:
            self.check_path(node, alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        module = ("." * node.level) + (node.module or "")
        self.check_path(node, module)
        for alias in node.names:
            if alias.name == "*":
                continue
            self.check_path(node, f"{module}.{alias.name}")
            if alias.name in FORBIDDEN_ATTRS:
                self.flag(node, f"imports {alias.name}")
        self.generic_visit(node)

    def visit_Name(self, node):
        if id(node) not in self.allowed_names:
            if node.id in FORBIDDEN_NAMES:
                self.flag(node, f"uses {FORBIDDEN_NAMES[node.id]}")
            elif node.id in ("getattr", "setattr", "delattr", "hasattr") and id(node) not in self.allowed_calls:
                self.flag(node, f"uses {node.id} in a way the grader cannot check (a computed attribute name)")
            elif node.id in self.aliases:
                self.check_path(node, self.aliases[node.id])

    def visit_Attribute(self, node):
        if node.attr in FORBIDDEN_ATTRS:
            self.flag(node, f"uses the attribute {node.attr}")
        parts = _dotted(node)
        if parts and parts[0] in self.aliases:
            self.check_path(node, self.resolve(parts))
        self.generic_visit(node)

    def _built_string(self, node, built):
        """Flag a string built from pieces that names the grader's internals."""
        for text in FORBIDDEN_STRINGS if built is not None else ():
            if text in built:
                self.flag(node, f"builds the string {text!r} (the grader's internals)")
                return
        self.generic_visit(node)

    def visit_BinOp(self, node):
        self._built_string(node, _const_str(node) if isinstance(node.op, ast.Add) else None)

    def visit_JoinedStr(self, node):
        self._built_string(node, _const_str(node))

    def visit_Constant(self, node):
        if isinstance(node.value, str) and len(node.value) < 10000:
            for text in FORBIDDEN_STRINGS:
                if text in node.value:
                    self.flag(node, f"has the string {text!r} (the grader's internals)")
                    break

    def _allowed_magic(self, node) -> bool:
        """``get_ipython().run_line_magic('time', ...)`` for an allowed magic."""
        func = node.func
        if not (isinstance(func, ast.Attribute) and func.attr in ("run_line_magic", "run_cell_magic")
                and isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name)
                and func.value.func.id == "get_ipython" and node.args
                and isinstance(node.args[0], ast.Constant)):
            return False
        if node.args[0].value not in ALLOWED_MAGICS:
            self.flag(node, f"uses the IPython magic %{node.args[0].value}")
            return True  # flagged once, not again as get_ipython
        if func.attr == "run_cell_magic" and len(node.args) >= 3 and isinstance(node.args[2], ast.Constant):
            body = node.args[2].value
            if isinstance(body, str):
                scan_source(body, self.aliases, self.findings, self.where)
        return True

    def visit_Call(self, node):
        func = node.func
        if self._allowed_magic(node):
            self.allowed_names.add(id(func.value.func))
            self.allowed_calls.add(id(func.value.func))
            for arg in node.args[1:2]:
                self.visit(arg)
            return
        if isinstance(func, ast.Attribute) and func.attr == "system" and isinstance(func.value, ast.Call) \
                and isinstance(func.value.func, ast.Name) and func.value.func.id == "get_ipython":
            self.flag(node, "runs a shell command (!)")
            self.allowed_names.add(id(func.value.func))
        if isinstance(func, ast.Name) and func.id in ("getattr", "setattr", "delattr", "hasattr"):
            name_ok = len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
            on_self = bool(node.args) and isinstance(node.args[0], ast.Name) and node.args[0].id == "self"
            if name_ok or on_self:
                self.allowed_calls.add(id(func))
            if name_ok and node.args[1].value in FORBIDDEN_ATTRS:
                self.flag(node, f"uses the attribute {node.args[1].value}")
            if name_ok and node.args:
                parts = _dotted(node.args[0])
                if parts and parts[0] in self.aliases:
                    self.check_path(node, self.resolve(parts) + "." + node.args[1].value)
            if func.id in ("setattr", "delattr") and node.args:
                parts = _dotted(node.args[0])
                if parts and parts[0] in self.aliases:
                    self.flag(node, f"changes an attribute of {self.resolve(parts)} (patches a library)")
        self.generic_visit(node)

    def _check_target(self, target) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._check_target(element)
        elif isinstance(target, ast.Starred):
            self._check_target(target.value)
        elif isinstance(target, ast.Attribute):
            parts = _dotted(target)
            if parts and parts[0] in self.aliases and len(parts) > 1:
                path = self.resolve(parts)
                if not path.startswith(ALLOWED_ASSIGN_PREFIXES):
                    self.flag(target, f"assigns to {path} (patches a library)")

    def visit_Assign(self, node):
        for target in node.targets:
            self._check_target(target)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self._check_target(node.target)
        self.generic_visit(node)

    def visit_Delete(self, node):
        for target in node.targets:
            self._check_target(target)
        self.generic_visit(node)

    def visit_ClassDef(self, node):
        for base in node.bases:
            parts = _dotted(base)
            if parts and parts[-1] in FORBIDDEN_BASES:
                self.flag(node, f"class {node.name} subclasses {parts[-1]} (the grader reads values as plain data)")
        for keyword in node.keywords:
            if keyword.arg == "metaclass":
                self.flag(node, f"class {node.name} has a metaclass")
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in FORBIDDEN_METHODS:
                self.flag(item, f"class {node.name} defines {item.name}")
            if isinstance(item, ast.Assign):
                for target in item.targets:
                    if isinstance(target, ast.Name) and target.id in FORBIDDEN_METHODS:
                        self.flag(item, f"class {node.name} defines {target.id}")
        self.generic_visit(node)


def collect_aliases(sources: list[str]) -> dict[str, str]:
    """Names bound by imports in ``sources`` -> what they refer to (dotted path)."""
    aliases: dict[str, str] = {}
    for source in sources:
        try:
            tree = ast.parse(python_source(source))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        aliases[alias.asname] = alias.name
                    else:
                        head = alias.name.split(".")[0]
                        aliases[head] = head
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name != "*":
                        aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                # m = importlib.import_module("pkg.mod"): m names that module.
                module = _imported_name(node.value)
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if module:
                    for target in targets:
                        if isinstance(target, ast.Name):
                            aliases[target.id] = module
    # Well-known modules are modules whatever the student calls them.
    for name in ("sys", "os", "gc", "inspect", "torch", "numpy", "types", "builtins"):
        aliases.setdefault(name, name)
    return aliases


def scan_source(source: str, aliases: dict[str, str], findings: list[str], where: str) -> None:
    code = python_source(source)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return  # IPython cannot run it either
    try:
        _Scanner(aliases, findings, where).visit(tree)
    except RecursionError:
        findings.append(f"{where}: code nested too deeply to check")


def integrity_findings(cells: list[tuple[str, str]], context: list[str] = ()) -> list[str]:
    """Findings for ``cells`` (``(where, source)`` pairs); ``context``: other cells
    (instructor-provided) whose imports define names used in ``cells``."""
    aliases = collect_aliases(list(context) + [source for _, source in cells])
    findings: list[str] = []
    for where, source in cells:
        scan_source(source, aliases, findings, where)
    return findings
