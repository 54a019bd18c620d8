"""The only grading code that runs in the student's kernel.

A hidden test cell is one line::

    import gradekit; gradekit.capture("conv2d", globals())

While a notebook is autograded, the judge has written ``.gradekit/cases/conv2d.json``
next to it: a list of *requests* (which function to call, on which inputs). This
module runs each request on the student's objects and writes what came back as
plain data (JSON and ``.npy``) to ``.gradekit/out/conv2d/``. It knows nothing about
right answers: references, tolerances and verdicts live in the judge, which runs
in another process and never executes student code.

Outside grading (a student running the notebook) there are no cases and
``capture`` only says so.

Request kinds (``"proc"``)
--------------------------
- ``call``: ``fn(*args, **kwargs)``; optional ``"grad": {"grad_output": T, "wrt": [0, "bias"]}``
  backpropagates and returns input gradients; optional ``"return_args": [1, 2]``
  returns arguments after the call (in-place updates).
- ``steps``: several calls sharing named variables (``{"__var__": "rm"}``), e.g.
  BatchNorm's running statistics over several training steps.
- ``module``: build ``cls(*args, **kwargs)``, report facts (parameter count,
  ``state_dict`` shapes, submodule types), optionally load a ``state_dict``
  (``strict=True``) and run forward on ``inputs``; with ``"forward_errors": true`` an
  exception in forward is recorded per input (``forward_errors``) instead of failing.
  Optional: ``train_inputs`` (passes in training mode after ``inputs``), ``reseed`` (torch's
  generator seeded with ``reseed + i`` before pass i, so that dropout draws the judge's masks),
  ``return_state`` (``state_after``; ``"buffers"``: without the parameters; ``"flat buffers"``:
  them as ``{"keys", "shapes", "values"}``, one float64 array), ``stack`` (two
  copies in a row, both loaded), ``double`` (the module in float64), ``return_inputs`` (the
  inputs after the passes, ``args_after``), ``backward: {"grad_outputs": [...], "params":
  bool}`` (each pass's output backpropagated under the trace; ``grads``: the gradients for
  each input, and each parameter's), ``module_dtype`` (module arguments converted) and
  ``keep_device`` (a module a function returned is not moved to the request's device).
- ``timing``: ``{"fn", "baseline", "inputs": [{"args", "kwargs"}, ...], "repeats": R}``
  with ``R + 1`` inputs (the first is the warm-up). For each input the student's
  function gets its own copy and the PyTorch baseline a private copy decoded anew
  (never an object the student's code touched); both are called, interleaved, the
  warm-up untimed. Returns every value the student's function returned
  (``values``, ``R + 1`` of them, each checked by the judge against its own input),
  ``student_times``/``baseline_times`` and their medians ``student_s``/``baseline_s``,
  and the operators the student's calls ran (``ops``, traced while timed).
- ``train``: build a model with a student factory, train it with a fixed loop on the
  given data and return its logits on held-out inputs (the labels never come here).

Each request runs under a per-request time limit and an operator trace (the
PyTorch functions and ATen operators it executed, so the judge can spot built-ins
a problem asks the student to write themselves).

Work the trace cannot see
-------------------------
The trace follows the thread that runs the request, so while a request runs the
student's code may not start processes or threads (:class:`ProcessNotAllowed` is
raised inside the call: an audit hook, which cannot be removed, refuses ``os.fork``,
``subprocess`` and friends; thread and ``fork_exec`` entry points are guarded), and
after the request the kernel's child processes, its reaped children's resource use
and its Python threads are compared with before. In a notebook kernel, a request
does not run while a process or thread the notebook started earlier is still alive;
the kernel's own output (IOPub) thread, which runs whatever is scheduled on it, is
traced too for the whole capture (the operators it runs go into every record's
``ops``). Any of these makes the request an error.

Records out of reach
--------------------
Right after a record (``<i>.json`` and its ``.npy`` files) is written, in a kernel,
its files' SHA-256 digests are published on the kernel's output channel (a
``display_data`` message of type :data:`DIGEST_MIME`), which reaches the grader
before the next request runs. The grader keeps exactly one digest per record and
refuses records that changed afterwards, that have no digest, or more than one.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import signal
import statistics
import sys
import threading
import time
import traceback
from contextlib import contextmanager, nullcontext
from pathlib import Path

from .codec import CodecError, Reader, Writer, dump_json, load_json
from .student_code import CaseTimeout, StudentError, _lookup, _stage

WORKDIR_NAME = ".gradekit"
DEFAULT_CASE_SECONDS = 60.0
#: Once a request of a problem ran out of time, its later requests get at most this long: code
#: that loops forever costs one full limit per problem, not one per case, and code that is merely
#: slow still answers the small cases (the reference answers each in milliseconds).
AFTER_TIMEOUT_SECONDS = 2.0
#: MIME type of the digest messages the kernel publishes for each record.
DIGEST_MIME = "application/vnd.gradekit.digest+json"
PROCESS_MESSAGE = ("starting processes or threads is not allowed while graded code runs: "
                   "the grader cannot see work done there")
LEFTOVER_MESSAGE = ("a process or thread the notebook started was still running when graded code ran: "
                    "the grader cannot see work done there; stop it before the tests")
ALLOWED_BASELINE_PREFIXES = ("torch.nn.functional.", "torchvision.ops.", "torch.")


class ProcessNotAllowed(RuntimeError):
    """Raised inside student code that starts a process or thread while a request runs."""


# ------------------------------------------------------------------ process guard
#: Audit events (CPython 3.11) that start a process; refused while a request runs.
_REFUSED_EVENTS = frozenset({
    "os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn", "os.system", "os.startfile",
    "subprocess.Popen", "pty.spawn",
})
#: Modules of the kernel's own threads (their classes, or the objects whose methods they run).
_INFRASTRUCTURE = ("ipykernel.", "IPython.", "jupyter_client.", "zmq.", "tornado.")


def _make_guard():
    """``(begin, end)``: arm the refusal of processes and threads for one request.

    The state lives in this closure, reachable only through the two functions. The
    audit hook cannot be removed. ``begin()`` returns a fresh token and the guarded
    entry points found replaced (re-installed); ``end(token)`` returns ``(intact,
    refused)``: ``intact`` is False when the guard was switched off or re-armed
    during the request (student code calling ``end``/``begin``), ``refused`` what
    was attempted, and the entry points replaced meanwhile (re-installed).
    """
    import _thread

    state = {"token": None, "refused": []}

    def refuse(what: str):
        state["refused"].append(what)
        raise ProcessNotAllowed(f"{PROCESS_MESSAGE} ({what})")

    def hook(event, args):  # noqa: ARG001
        if state["token"] is not None and event in _REFUSED_EVENTS:
            refuse(event)

    sys.addaudithook(hook)
    guarded = []

    def wrap(module, attr: str, what: str):
        original = getattr(module, attr, None)
        if original is None:
            return

        def entry(*args, **kwargs):
            if state["token"] is not None and not _allowed_thread(args):
                refuse(what)
            return original(*args, **kwargs)

        entry.__name__ = getattr(original, "__name__", attr)
        entry.__doc__ = getattr(original, "__doc__", None)
        setattr(module, attr, entry)
        guarded.append((module, attr, entry))

    wrap(_thread, "start_new_thread", "a new thread")
    wrap(_thread, "start_new", "a new thread")
    wrap(threading, "_start_new_thread", "a new thread")
    try:
        import _posixsubprocess

        wrap(_posixsubprocess, "fork_exec", "a new process")
    except ImportError:  # not POSIX
        pass

    def reinstall():
        replaced = []
        for module, attr, entry in guarded:
            if getattr(module, attr, None) is not entry:
                replaced.append(f"replaced {module.__name__}.{attr}")
                setattr(module, attr, entry)
        return replaced

    def begin():
        replaced = reinstall()
        token = object()
        state["token"], state["refused"] = token, []
        return token, replaced

    def end(token):
        intact = state["token"] is token
        refused = list(state["refused"]) + reinstall()
        state["token"], state["refused"] = None, []
        return intact, refused

    return begin, end


_GUARD: list = []


def _guard():
    if not _GUARD:
        _GUARD.append(_make_guard())
    return _GUARD[0]


def _child_pids() -> dict[int, str]:
    """Child processes of this process: pid -> state letter ("Z": zombie)."""
    pids: set[int] = set()
    try:
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/children", "rb") as f:
                    pids.update(int(p) for p in f.read().split())
            except OSError:
                continue
    except OSError:
        return {}
    states = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                states[pid] = f.read().rsplit(b")", 1)[1].split()[0].decode()
        except (OSError, IndexError):
            continue
    return states


def _infrastructure(thread) -> bool:
    """One of the kernel's own threads (by its class, or by the kernel object whose
    method it runs), or tqdm's monitor."""
    kind = type(thread)
    if (kind.__module__ or "").startswith(_INFRASTRUCTURE):
        return True
    if (kind.__module__ or "").startswith("tqdm.") and kind.__name__ == "TMonitor":
        return True
    if kind is threading.Thread:
        owner = getattr(getattr(thread, "_target", None), "__self__", None)
        return (type(owner).__module__ or "").startswith(_INFRASTRUCTURE)
    return False


def _allowed_thread(args) -> bool:
    """A thread start that stays allowed while a request runs: tqdm's monitor (a progress
    bar in graded code), with a class of tqdm's own (it runs nothing of the notebook's)."""
    thread = getattr(args[0], "__self__", None) if args else None
    return (isinstance(thread, threading.Thread) and type(thread).__name__ == "TMonitor"
            and type(thread).__module__.startswith("tqdm.")
            and (getattr(getattr(thread, "tqdm_cls", None), "__module__", None) or "").startswith("tqdm."))


def _foreign_idents() -> set[int]:
    """Idents of live Python threads that are not the kernel's own (nor tqdm's monitor)."""
    known = {t.ident: t for t in threading.enumerate()}
    return {ident for ident in sys._current_frames()
            if known.get(ident) is None or not _infrastructure(known[ident])}


def _foreign_threads() -> list[str]:
    """Live Python threads other than this one that are not the kernel's own."""
    me = threading.get_ident()
    known = {t.ident: t for t in threading.enumerate()}
    names = []
    for ident in sys._current_frames():  # every thread with a Python state
        if ident == me:
            continue
        thread = known.get(ident)
        if thread is not None and _infrastructure(thread):
            continue
        names.append(getattr(thread, "name", None) or f"thread {ident}")
    return names


def _facts() -> dict:
    """What another process or thread leaves behind: children (alive or not yet
    reaped), resources used by children reaped since, Python threads."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"children": set(_child_pids()), "threads": _foreign_idents(),
            "reaped": (usage.ru_utime, usage.ru_stime, usage.ru_minflt, usage.ru_majflt, usage.ru_nvcsw)}


def _leftovers() -> str | None:
    """Processes or threads started before the request and still alive, or None."""
    alive = sorted(pid for pid, st in _child_pids().items() if st not in ("Z", "X"))
    threads = _foreign_threads()
    parts = []
    if alive:
        parts.append(f"{len(alive)} process{'es' if len(alive) > 1 else ''}")
    if threads:
        parts.append(f"thread{'s' if len(threads) > 1 else ''} {', '.join(sorted(threads)[:3])}")
    return " and ".join(parts) or None


def _escapes(before: dict, after: dict, intact: bool, refused: list, replaced: list) -> list[str]:
    """What ran, or tried to run, outside the trace between ``before`` and ``after``."""
    found = list(dict.fromkeys(replaced + refused))
    if not intact:
        found.append("the grader's guard was switched off")
    if after["children"] - before["children"]:
        found.append("a new process")
    if after["reaped"] != before["reaped"]:
        found.append("a process that ended")
    if after["threads"] - before["threads"]:
        found.append("a new thread")
    return found


def _describe(exc: BaseException) -> dict:
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001  (a hostile __str__)
        message = "<unprintable>"
    tb = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    # The last frame inside student code (notebook cells have "<ipython-input" or
    # "/tmp/ipykernel" file names) helps the student find the line.
    student_frames = [f for f in tb if "ipykernel" in f.filename or "ipython-input" in f.filename]
    where = None
    if student_frames:
        frame = student_frames[-1]
        where = {"function": frame.name, "line": frame.lineno, "code": (frame.line or "")[:200]}
    return {"type": type(exc).__name__[:80], "message": message[:600], "where": where}


@contextmanager
def _time_limit(seconds: float):
    if seconds is None or seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def _raise(signum, frame):  # noqa: ARG001
        raise CaseTimeout()

    try:
        previous = signal.signal(signal.SIGALRM, _raise)
    except ValueError:  # not in the main thread: no per-request limit
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _op_trace(seen: set, python: bool = True):
    """Context manager recording what runs inside it, into ``seen``:

    - torch functions (``"conv2d"``) and ATen operators (``"aten.convolution"``), through a
      torch function mode and a dispatch mode;
    - Python functions of the watched libraries (:data:`gradekit.trace.WATCHED`) that ran,
      as ``"py:<module>.<qualname>"`` (``"py:torchvision.models.resnet.BasicBlock.forward"``),
      through a profile function (:mod:`gradekit.trace`);
    - ``"tamper:<what>"`` when code outside the libraries switched the trace off or around it:
      a mode-stack or profiler function called from the notebook's code, or the trace found
      not recording any more when the block ends (a canary operation that must be seen).

    ``python=False`` leaves the Python-level call trace out (timed calls: its cost would count
    against the student's time); the canary still checks the modes.
    """
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    from . import trace

    canary = {}

    class _Functions(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", None)
            if args and canary.get("tensor") is args[0] and name == trace.CANARY_OP:
                canary["function"] = True
            elif isinstance(name, str):
                seen.add(name)
            return func(*args, **(kwargs or {}))

    class _Aten(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func._overloadpacket.__name__
            if args and canary.get("tensor") is args[0] and name == trace.CANARY_OP:
                canary["aten"] = True
            else:
                seen.add("aten." + name)
            return func(*args, **(kwargs or {}))

    @contextmanager
    def both():
        import torch

        canary["tensor"] = torch.zeros(1)
        calls = trace.PythonCalls(seen) if python else None
        with _Functions(), _Aten(), (calls if calls is not None else nullcontext()):
            yield
            seen.update(trace.check_canary(canary, calls))

    return both()


_WARM: list = []


def _warm_up() -> None:
    """Once per process, before the first request: run the trace's modes once around a few
    common operations (without the Python-level call trace), so that the modules torch imports
    on first use of modes are imported at full speed, not under a profile function."""
    if _WARM:
        return
    _WARM.append(True)
    import torch
    import torch.nn.functional as F

    with _op_trace(set(), python=False):
        x = torch.zeros(1, 1, 3, 3, requires_grad=True)
        y = F.unfold(x, 2).sum() + F.conv2d(x, torch.ones(1, 1, 2, 2)).sum() + F.relu(x).sum()
        y.backward()
        torch.nn.Conv2d(1, 1, 1)(x.detach())


def _device(request: dict) -> str:
    wanted = request.get("device", "cpu")
    if wanted == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def _pick(args: list, kwargs: dict, key):
    return args[key] if isinstance(key, int) else kwargs[key]


# --------------------------------------------------------------------------- procs
def proc_call(request, namespace, reader, writer):
    fn = _lookup(namespace, request["fn"])
    args = reader.decode(request.get("args", []))
    kwargs = reader.decode(request.get("kwargs", {}))
    seen: set = set()
    with _op_trace(seen) if request.get("trace", True) else nullcontext():
        out = _stage("call", fn, *args, **kwargs)
    result = {"value": writer.encode(out), "ops": sorted(seen)}
    if "return_args" in request:
        result["args_after"] = {str(k): writer.encode(_pick(args, kwargs, k)) for k in request["return_args"]}
    grad = request.get("grad")
    if grad is not None:
        def backward():
            # The backward the judge asks for runs under the same trace (a custom autograd
            # Function's backward may not call what the problem bans either).
            with _op_trace(seen):
                out.backward(reader.decode(grad["grad_output"]))
            return {str(k): writer.encode(_pick(args, kwargs, k).grad) for k in grad["wrt"]}

        try:
            result["grads"] = _stage("backward", backward)
        except StudentError as err:
            result["grad_error"] = _describe(err.exc)
        result["ops"] = sorted(seen)
    return result


def proc_steps(request, namespace, reader, writer):
    variables = reader.variables
    for name, data in request.get("vars", {}).items():
        variables[name] = reader.decode(data)
    values, ops = [], set()
    for step in request["steps"]:
        fn = _lookup(namespace, step["fn"])
        args = reader.decode(step.get("args", []))
        kwargs = reader.decode(step.get("kwargs", {}))
        with _op_trace(ops):
            out = _stage("call", fn, *args, **kwargs)
        if step.get("store"):
            variables[step["store"]] = out
        values.append(writer.encode(out) if step.get("record", True) else None)
    return {"values": values, "ops": sorted(ops),
            "vars": {name: writer.encode(variables[name]) for name in request.get("return_vars", [])}}


def _module_facts(module) -> dict:
    """Parameter counts, ``state_dict`` shapes, submodule types and ``lineage``: every class in
    the type hierarchy of the module and of its submodules, as ``"<module>.<qualname>"``."""
    params = list(module.parameters())
    lineage = sorted({f"{cls.__module__}.{cls.__qualname__}" for m in module.modules()
                      for cls in type.__dict__["__mro__"].__get__(type(m))})
    return {
        "num_params": int(sum(p.numel() for p in params)),
        "num_trainable": int(sum(p.numel() for p in params if p.requires_grad)),
        "state_shapes": {k: list(v.shape) for k, v in module.state_dict().items()},
        "modules": [[name, type(m).__name__] for name, m in module.named_modules()],
        "lineage": lineage,
    }


def proc_module(request, namespace, reader, writer):
    import torch

    cls = _lookup(namespace, request["cls"])
    args = reader.decode(request.get("args", []))
    kwargs = reader.decode(request.get("kwargs", {}))
    if request.get("module_dtype") in ("float32", "float64"):  # module arguments in that dtype
        dtype = getattr(torch, request["module_dtype"])
        args = [a.to(dtype) if isinstance(a, torch.nn.Module) else a for a in args]
    torch.manual_seed(int(request.get("seed", 0)))
    seen: set = set()
    with _op_trace(seen):  # a builder may call a library's model builder
        module = _stage("build", cls, *args, **kwargs)
    if not isinstance(module, torch.nn.Module):
        raise StudentError("build", TypeError(f"{request['cls']}(...) returned {type(module).__name__}, not an nn.Module"))
    facts = _stage("facts", _module_facts, module)
    result = {"facts": writer.encode(facts)}
    if request.get("state") is not None:
        state = reader.decode(request["state"])
        try:
            with torch.no_grad():
                module.load_state_dict(state, strict=True)
        except Exception as exc:  # noqa: BLE001
            result["load_error"] = _describe(exc)
            result["ops"] = sorted(seen)
            return result
        if request.get("stack"):  # two copies in a row, the second built and loaded alike
            with _op_trace(seen):
                second = _stage("build", cls, *args, **kwargs)
            with torch.no_grad():
                _stage("build", second.load_state_dict, state, strict=True)
            module = _stage("build", torch.nn.Sequential, module, second)
    if request.get("double"):
        module = _stage("build", module.double)
    module.train(bool(request.get("train", False)))
    if not request.get("keep_device"):  # (a module a function returned stays where it was built)
        module = module.to(reader.device)
    outputs, inputs_after, grads = [], [], []
    grad = request.get("grad", False)
    errors = [] if request.get("forward_errors") else None
    backward = request.get("backward")  # {"grad_outputs": [one per pass], "params": bool}
    grad_outputs = reader.decode(backward.get("grad_outputs", [])) if backward else []
    passes = [(x, False) for x in reader.decode(request.get("inputs", []))] + \
        [(x, True) for x in reader.decode(request.get("train_inputs", []))]
    for i, (x, train_pass) in enumerate(passes):
        if train_pass:
            module.train(True)
        if request.get("reseed") is not None:  # the judge draws dropout's masks from the same seeds
            torch.manual_seed(int(request["reseed"]) + i)
        if backward:
            leaf = x.detach().clone().requires_grad_(True)
            x = leaf.clone()  # not a leaf: an in-place change of the module's input shows in args_after
        with (nullcontext() if grad or backward else torch.no_grad()), _op_trace(seen):
            if errors is None:
                out = _stage("forward", module, x)
            else:  # the input should be refused: record the error (None when it ran)
                try:
                    out = _stage("forward", module, x)
                    errors.append(None)
                except StudentError as err:
                    out = None
                    errors.append(_describe(err.exc))
        outputs.append(out)
        inputs_after.append(x)
        if backward and "grad_error" not in result:
            try:
                grads.append(_stage("backward", _module_backward, module, out, grad_outputs[i], leaf, seen,
                                    backward.get("params", True)))
            except StudentError as err:
                result["grad_error"] = _describe(err.exc)
    result["outputs"] = writer.encode(outputs)
    if request.get("return_inputs"):
        result["args_after"] = writer.encode({"inputs": inputs_after})
    if backward:
        result["grads"] = writer.encode(grads)
    if errors is not None:
        result["forward_errors"] = errors
    result["ops"] = sorted(seen)
    if request.get("return_state"):
        state = dict(module.state_dict())
        if request["return_state"] in ("buffers", "flat buffers"):  # what forward passes may change
            params = {name for name, _ in module.named_parameters()}
            state = {k: v for k, v in state.items() if k not in params}
        if request["return_state"] == "flat buffers":  # one array (a full-size model has hundreds)
            state = {"keys": list(state), "shapes": [list(v.shape) for v in state.values()], "values": torch.cat(
                [v.detach().reshape(-1).double().cpu() for v in state.values()] or [torch.zeros(0)])}
        result["state_after"] = writer.encode(state)
    return result


def _module_backward(module, out, grad_output, leaf, seen: set, params: bool) -> dict:
    """Backpropagate ``grad_output`` from a module's output ``out`` under the operator trace (as
    ``proc_call``'s backward): the gradient reaching the input ``leaf`` and, with ``params``, every
    named parameter's; the parameters' gradients are then cleared, so that each pass has its own."""
    with _op_trace(seen):
        out.backward(grad_output)
    found = {"input": leaf.grad, "params": {n: p.grad for n, p in module.named_parameters()} if params else {}}
    for p in module.parameters():
        p.grad = None
    return found


def _resolve_baseline(path: str):
    if not path.startswith(ALLOWED_BASELINE_PREFIXES):
        raise CodecError(f"baseline {path} not allowed")
    module_name, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def proc_timing(request, namespace, reader, writer):  # noqa: ARG001
    """Time ``fn`` against the baseline, each call on fresh inputs (see the module doc)."""
    import torch

    fn = _lookup(namespace, request["fn"])
    baseline = _resolve_baseline(request["baseline"])
    entries = request.get("inputs")
    if not isinstance(entries, list) or len(entries) < 2 or not all(isinstance(e, dict) for e in entries):
        raise CodecError("a timing request needs a list of at least two inputs")
    if "repeats" in request and int(request["repeats"]) != len(entries) - 1:
        raise CodecError(f"{len(entries)} inputs for {request['repeats']} repeats")

    def decode(entry):
        return list(reader.decode(entry.get("args", []))), dict(reader.decode(entry.get("kwargs", {})))

    # Every copy is decoded from the files before any student code runs: the
    # student's function never sees the baseline's tensors, nor inputs of later calls.
    student_inputs = [decode(e) for e in entries]
    baseline_inputs = [decode(e) for e in entries]
    sync = torch.cuda.synchronize if reader.device.startswith("cuda") else (lambda: None)

    def clock(f, args, kwargs):
        sync()
        start = time.perf_counter()
        out = f(*args, **kwargs)
        sync()
        return out, time.perf_counter() - start

    # On the CPU, one thread: ratios measured with all cores stay meaningful when
    # other notebooks are graded at the same time.
    threads = torch.get_num_threads()
    if not reader.device.startswith("cuda"):
        torch.set_num_threads(1)
    values, ops, student_times, baseline_times = [], set(), [], []
    try:
        with torch.no_grad():
            for i, ((s_args, s_kwargs), (b_args, b_kwargs)) in enumerate(zip(student_inputs, baseline_inputs)):
                # Every call runs under the operator trace (a few microseconds per
                # operator, against a bound of many times the baseline): a function that
                # calls the built-in only when it is timed is caught all the same.
                with _op_trace(ops, python=False):
                    out, seconds = _stage("call", clock, fn, s_args, s_kwargs)
                values.append(writer.encode(out))  # now: later calls cannot change it
                del out
                _, base_seconds = clock(baseline, b_args, b_kwargs)
                if i > 0:  # interleaved, so both see the same machine load
                    student_times.append(seconds)
                    baseline_times.append(base_seconds)
    finally:
        torch.set_num_threads(threads)
    return {"values": values, "student_s": statistics.median(student_times),
            "baseline_s": statistics.median(baseline_times), "student_times": student_times,
            "baseline_times": baseline_times, "ops": sorted(ops)}


def proc_train(request, namespace, reader, writer):
    """Training smoke tests: the recipes live in :mod:`gradekit.training`."""
    from . import training

    seen: set = set()
    try:
        return training.run(request, namespace, reader, writer, trace=_op_trace, seen=seen)
    except BaseException as exc:  # what the student's functions ran before it stopped still counts
        exc.ops = sorted(seen)
        raise


PROCEDURES = {"call": proc_call, "steps": proc_steps, "module": proc_module,
              "timing": proc_timing, "train": proc_train}


def _is_oom_message(exc: BaseException) -> bool:
    """torch reports a failed allocation as RuntimeError ("can't allocate memory")."""
    try:
        text = str(exc).lower()
    except Exception:  # noqa: BLE001  (a hostile __str__)
        return False
    return any(m in text for m in ("out of memory", "can't allocate memory", "cannot allocate memory"))


# ------------------------------------------------------------------------- driver
def run_request(request: dict, namespace: dict, in_dir: Path, out_dir: Path, prefix: str,
                writer: Writer | None = None, in_kernel: bool = False) -> dict:
    """Run one request; never raises for student errors. Returns the JSON record.

    ``in_kernel``: refuse to run while processes or threads the notebook started are
    alive (in a notebook kernel; not in a host process such as the test suite's).
    """
    import torch

    reader = Reader(in_dir, as_torch=True, device=_device(request))
    writer = writer if writer is not None else Writer(out_dir, prefix=prefix)
    torch.manual_seed(int(request.get("seed", 0)))
    start = time.perf_counter()
    leftover = _leftovers() if in_kernel else None
    if leftover:
        return {"status": "error", "stage": "call", "seconds": 0.0, "error": {
            "type": "ProcessNotAllowed", "message": f"{LEFTOVER_MESSAGE} ({leftover})", "where": None}}
    _warm_up()
    begin, end = _guard()
    before = _facts()
    token, replaced = begin()
    try:
        record = _run_guarded(request, namespace, reader, writer)
    finally:
        intact, refused = end(token)
    escapes = _escapes(before, _facts(), intact, refused, replaced)
    if escapes:
        error = record.get("error") if record.get("error", {}).get("type") == "ProcessNotAllowed" else None
        record = {"status": "error", "stage": "call", "error": {
            "type": "ProcessNotAllowed", "message": f"{PROCESS_MESSAGE} ({'; '.join(escapes)[:120]})",
            "where": (error or {}).get("where")}}
    record["seconds"] = time.perf_counter() - start
    return record


def _ops_so_far(exc: BaseException) -> dict:
    """``{"ops": [...]}`` when a procedure attached what ran before it stopped (``proc_train``)."""
    ops = getattr(exc, "ops", None)
    return {"ops": ops} if isinstance(ops, list) and ops else {}


def _run_guarded(request, namespace, reader, writer) -> dict:
    try:
        with _time_limit(float(request.get("seconds", DEFAULT_CASE_SECONDS))):
            result = PROCEDURES[request["proc"]](request, namespace, reader, writer)
        return {"status": "ok", **result}
    except CaseTimeout as exc:
        return {"status": "timeout", **_ops_so_far(exc)}
    except StudentError as err:
        exc = err.exc
        oom = isinstance(exc, MemoryError) or _is_oom_message(exc)
        return {"status": "oom" if oom else "error", "stage": err.stage, "error": _describe(exc), **_ops_so_far(err)}
    except CodecError as exc:
        return {"status": "error", "stage": "record", "error": _describe(exc)}
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001  (e.g. a returned value that cannot be recorded)
        return {"status": "error", "stage": "harness", "error": _describe(exc)}


# ------------------------------------------------------------------ kernel threads
@contextmanager
def _kernel_threads_traced(seen: set, seconds: float = 30.0):
    """The operator trace, for a whole capture, in the kernel's output (IOPub) thread too.

    That thread runs whatever is scheduled on it (``sys.stdout.pub_thread.schedule``,
    its event loop's callbacks): the trace is entered and left *in* it, by functions
    scheduled there. Yields False when that could not be done (the thread busy or its
    scheduling replaced): the requests are then refused.
    """
    shell = _kernel_shell()
    iopub = getattr(getattr(shell, "kernel", None), "iopub_thread", None)
    if iopub is None or getattr(getattr(iopub, "thread", None), "ident", None) is None:
        yield True  # no kernel, or no output thread
        return
    trace = _op_trace(seen)
    entered, left, where = threading.Event(), threading.Event(), {}

    def enter():
        where["thread"] = threading.get_ident()
        try:
            trace.__enter__()
            where["entered"] = True
        finally:
            entered.set()

    def leave():
        try:
            trace.__exit__(None, None, None)
        finally:
            left.set()

    iopub.schedule(enter)
    ok = entered.wait(seconds) and where.get("entered", False) \
        and where.get("thread") == iopub.thread.ident != threading.get_ident()
    try:
        yield ok
    finally:
        if where.get("entered"):
            iopub.schedule(leave)
            left.wait(seconds)


# ------------------------------------------------------------------ digests
def _kernel_shell():
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not type(shell).__module__.startswith("ipykernel"):
        return None
    return shell


def _kernel_publisher():
    """A function publishing a digest on the kernel's output channel, or None outside a kernel."""
    shell = _kernel_shell()
    if shell is None:
        return None
    display_pub = shell.display_pub

    def publish(content: dict) -> None:
        display_pub.publish(data={DIGEST_MIME: content}, metadata={})

    return publish


def file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def capture(problem: str, namespace: dict | None = None, root: str | Path | None = None,
            publish=None) -> None:
    """Run the hidden requests for ``problem`` on the objects in ``namespace``.

    ``publish``: where each record's digest goes (default: the kernel's output
    channel when running in a notebook kernel; nowhere otherwise).
    """
    base = Path(root) if root is not None else Path.cwd() / WORKDIR_NAME
    cases_file = base / "cases" / f"{problem}.json"
    if not cases_file.exists():
        print(f"The hidden tests for {problem} run when this notebook is autograded.")
        return
    kernel_publish = _kernel_publisher()
    publish = publish if publish is not None else kernel_publish
    namespace = namespace if namespace is not None else {}
    requests = load_json(cases_file)
    in_dir = base / "cases"
    out_dir = base / "out" / problem
    out_dir.mkdir(parents=True, exist_ok=True)
    _guard()  # installed before any request runs
    background: set = set()  # operators run in the kernel's own threads during the capture
    timed_out = False
    with _kernel_threads_traced(background) as traced:
        for i, request in enumerate(requests):
            writer = Writer(out_dir, prefix=f"c{i}_")
            if not traced:  # not run: work in the kernel's output thread would go unseen
                record = {"status": "error", "stage": "call", "seconds": 0.0, "error": {
                    "type": "ProcessNotAllowed", "where": None,
                    "message": f"{LEFTOVER_MESSAGE} (the kernel's output thread was kept busy)"}}
            else:
                if timed_out and isinstance(request, dict):
                    limit = float(request.get("seconds", DEFAULT_CASE_SECONDS))
                    request = {**request, "seconds": min(limit, AFTER_TIMEOUT_SECONDS) if limit > 0
                               else AFTER_TIMEOUT_SECONDS}
                record = run_request(request, namespace, in_dir, out_dir, prefix=f"c{i}_", writer=writer,
                                     in_kernel=kernel_publish is not None)
                timed_out = timed_out or record.get("status") == "timeout"
            if background and record.get("status") == "ok":
                record["ops"] = sorted(set(record.get("ops") or []) | background)
            _write_record(out_dir, i, record, writer, publish)
    dump_json(out_dir / "done.json", {"count": len(requests)})
    print(f"{problem}: {len(requests)} hidden checks recorded for the grader.")


def _write_record(out_dir: Path, i: int, record: dict, writer: Writer, publish) -> None:
    """Write record ``i``, then publish its files' digests (before anything else runs)."""
    text = json.dumps(record).encode("utf-8")
    (out_dir / f"{i}.json").write_bytes(text)
    if publish is None:
        return
    files = {f"{i}.json": hashlib.sha256(text).hexdigest()}
    for k in range(writer.count):
        name = f"c{i}_{k}.npy"
        try:
            files[name] = file_digest(out_dir / name)
        except OSError:
            files[name] = "unreadable"
    publish({"name": out_dir.name, "index": i, "files": files})
