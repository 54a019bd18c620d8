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
  (``strict=True``) and run forward on ``inputs``.
- ``timing``: median wall time of ``fn`` and of a PyTorch baseline on the same input,
  with what ``fn`` returned (a fast function must also be right to pass).
- ``train``: build a model with a student factory, train it with a fixed loop on the
  given data and return its logits on held-out inputs (the labels never come here).

Each request runs under a per-request time limit and an operator trace (the
PyTorch functions and ATen operators it executed, so the judge can spot built-ins
a problem asks the student to write themselves).
"""
from __future__ import annotations

import importlib
import math
import signal
import statistics
import time
import traceback
from contextlib import contextmanager, nullcontext
from pathlib import Path

from .codec import CodecError, Reader, Writer, dump_json, load_json

WORKDIR_NAME = ".gradekit"
DEFAULT_CASE_SECONDS = 60.0
ALLOWED_BASELINE_PREFIXES = ("torch.nn.functional.", "torchvision.ops.", "torch.")


class CaseTimeout(BaseException):
    """Raised inside student code when a request runs past its time limit.

    A ``BaseException`` so that ``except Exception`` in student code does not hide it.
    """


class StudentError(Exception):
    """Wraps an exception from student code, with the stage it happened in."""

    def __init__(self, stage: str, exc: BaseException):
        super().__init__(stage)
        self.stage = stage
        self.exc = exc


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


def _op_trace(seen: set):
    """Context manager recording torch functions and ATen ops that run inside it."""
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Functions(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", None)
            if isinstance(name, str):
                seen.add(name)
            return func(*args, **(kwargs or {}))

    class _Aten(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.add("aten." + func._overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    @contextmanager
    def both():
        with _Functions(), _Aten():
            yield

    return both()


def _lookup(namespace: dict, name: str):
    if name not in namespace:
        raise StudentError("lookup", NameError(
            f"name '{name}' is not defined: run the cell that defines it before this test"))
    return namespace[name]


def _device(request: dict) -> str:
    wanted = request.get("device", "cpu")
    if wanted == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def _stage(stage: str, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except (CaseTimeout, KeyboardInterrupt, StudentError):
        raise
    except BaseException as exc:  # noqa: BLE001  (SystemExit from student code included)
        raise StudentError(stage, exc) from None


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
            out.backward(reader.decode(grad["grad_output"]))
            return {str(k): writer.encode(_pick(args, kwargs, k).grad) for k in grad["wrt"]}

        try:
            result["grads"] = _stage("backward", backward)
        except StudentError as err:
            result["grad_error"] = _describe(err.exc)
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
    params = list(module.parameters())
    return {
        "num_params": int(sum(p.numel() for p in params)),
        "num_trainable": int(sum(p.numel() for p in params if p.requires_grad)),
        "state_shapes": {k: list(v.shape) for k, v in module.state_dict().items()},
        "modules": [[name, type(m).__name__] for name, m in module.named_modules()],
    }


def proc_module(request, namespace, reader, writer):
    import torch

    cls = _lookup(namespace, request["cls"])
    args = reader.decode(request.get("args", []))
    kwargs = reader.decode(request.get("kwargs", {}))
    torch.manual_seed(int(request.get("seed", 0)))
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
            return result
    module.train(bool(request.get("train", False)))
    module = module.to(reader.device)
    outputs, seen = [], set()
    grad = request.get("grad", False)
    for x in reader.decode(request.get("inputs", [])):
        with (nullcontext() if grad else torch.no_grad()), _op_trace(seen):
            out = _stage("forward", module, x)
        outputs.append(out)
    result["outputs"] = writer.encode(outputs)
    result["ops"] = sorted(seen)
    if request.get("return_state"):
        result["state_after"] = writer.encode(dict(module.state_dict()))
    return result


def _resolve_baseline(path: str):
    if not path.startswith(ALLOWED_BASELINE_PREFIXES):
        raise CodecError(f"baseline {path} not allowed")
    module_name, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def proc_timing(request, namespace, reader, writer):  # noqa: ARG001
    import torch

    fn = _lookup(namespace, request["fn"])
    baseline = _resolve_baseline(request["baseline"])
    args = reader.decode(request.get("args", []))
    kwargs = reader.decode(request.get("kwargs", {}))
    repeats = int(request.get("repeats", 7))
    sync = torch.cuda.synchronize if reader.device.startswith("cuda") else (lambda: None)

    def clock(f):
        sync()
        start = time.perf_counter()
        f(*args, **kwargs)
        sync()
        return time.perf_counter() - start

    # On the CPU, one thread: ratios measured with all cores stay meaningful when
    # other notebooks are graded at the same time.
    threads = torch.get_num_threads()
    if not reader.device.startswith("cuda"):
        torch.set_num_threads(1)
    try:
        out = _stage("call", fn, *args, **kwargs)  # warm-up; its result is checked too
        value = writer.encode(out)
        baseline(*args, **kwargs)
        student_times, baseline_times = [], []
        with torch.no_grad():
            for _ in range(repeats):  # interleaved, so both see the same machine load
                student_times.append(_stage("call", clock, fn))
                baseline_times.append(clock(baseline))
    finally:
        torch.set_num_threads(threads)
    return {"student_s": statistics.median(student_times), "baseline_s": statistics.median(baseline_times),
            "value": value}


def proc_train(request, namespace, reader, writer):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(int(request.get("seed", 0)))
    factory = _lookup(namespace, request["factory"])
    model = _stage("build", factory, *reader.decode(request.get("args", [])),
                   **reader.decode(request.get("kwargs", {})))
    if not isinstance(model, torch.nn.Module):
        raise StudentError("build", TypeError(f"{request['factory']}(...) returned {type(model).__name__}, not an nn.Module"))
    model = model.to(reader.device)
    x = reader.decode(request["x_train"]).to(reader.device)
    y = reader.decode(request["y_train"]).to(reader.device).long()
    x_eval = reader.decode(request["x_eval"]).to(reader.device)
    lr, batch_size = float(request.get("lr", 0.05)), int(request.get("batch_size", 64))
    if request.get("optimizer", "sgd") == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9,
                              weight_decay=float(request.get("weight_decay", 0.0)))
    generator = torch.Generator().manual_seed(int(request.get("seed", 0)))
    history, start = [], time.perf_counter()
    for _epoch in range(int(request.get("epochs", 5))):
        model.train()
        order = torch.randperm(len(x), generator=generator).to(reader.device)
        total, count = 0.0, 0
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            loss = _stage("train", lambda: F.cross_entropy(model(x[idx]), y[idx]))
            opt.zero_grad()
            _stage("backward", loss.backward)
            opt.step()
            value = float(loss.detach())
            total, count = total + value * len(idx), count + len(idx)
        history.append(total / max(count, 1) if math.isfinite(total) else float("nan"))
    model.eval()
    with torch.no_grad():
        logits = _stage("eval", model, x_eval)
    return {"eval_logits": writer.encode(logits), "history": history,
            "seconds": time.perf_counter() - start, "device": reader.device}


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
def run_request(request: dict, namespace: dict, in_dir: Path, out_dir: Path, prefix: str) -> dict:
    """Run one request; never raises for student errors. Returns the JSON record."""
    import torch

    reader = Reader(in_dir, as_torch=True, device=_device(request))
    writer = Writer(out_dir, prefix=prefix)
    torch.manual_seed(int(request.get("seed", 0)))
    start = time.perf_counter()
    try:
        with _time_limit(float(request.get("seconds", DEFAULT_CASE_SECONDS))):
            result = PROCEDURES[request["proc"]](request, namespace, reader, writer)
        record = {"status": "ok", **result}
    except CaseTimeout:
        record = {"status": "timeout"}
    except StudentError as err:
        exc = err.exc
        oom = isinstance(exc, MemoryError) or _is_oom_message(exc)
        record = {"status": "oom" if oom else "error", "stage": err.stage, "error": _describe(exc)}
    except CodecError as exc:
        record = {"status": "error", "stage": "record", "error": _describe(exc)}
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001  (e.g. a returned value that cannot be recorded)
        record = {"status": "error", "stage": "harness", "error": _describe(exc)}
    record["seconds"] = time.perf_counter() - start
    return record


def capture(problem: str, namespace: dict | None = None, root: str | Path | None = None) -> None:
    """Run the hidden requests for ``problem`` on the objects in ``namespace``."""
    base = Path(root) if root is not None else Path.cwd() / WORKDIR_NAME
    cases_file = base / "cases" / f"{problem}.json"
    if not cases_file.exists():
        print(f"The hidden tests for {problem} run when this notebook is autograded.")
        return
    namespace = namespace if namespace is not None else {}
    requests = load_json(cases_file)
    in_dir = base / "cases"
    out_dir = base / "out" / problem
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, request in enumerate(requests):
        record = run_request(request, namespace, in_dir, out_dir, prefix=f"c{i}_")
        dump_json(out_dir / f"{i}.json", record)
    dump_json(out_dir / "done.json", {"count": len(requests)})
    print(f"{problem}: {len(requests)} hidden checks recorded for the grader.")
