"""One builder per shape of case: the rows every week's checks are made of.

Each builder returns a :class:`~autograder.problem.Case`: the request the kernel
runs (inputs only) and the judge-side check, which computes the reference itself
and answers ``None`` or a message. Messages give shapes, dtypes, error sizes and
the student's own values, never the reference's values.

Arguments are what the student's function receives: ``numpy`` arrays become
tensors in the kernel (float64 stays float64), ``ModuleSpec``\\ s become modules,
plain values stay plain. The reference is called on fresh tensors made from the
same arrays.
"""
from __future__ import annotations

import functools
import inspect
from typing import Callable

import numpy as np
import torch

from gradekit import public_cases
from gradekit.codec import ModuleSpec
from gradekit.values import as_ints

from ..compare import TOL, check_int, check_tensor, describe, fmt_shape, rel_error
from ..problem import Case, Outcome, Problem, Public
from .modules import rebuild, spec_text

Alternatives = Callable[[list, dict], list]  # (targs, tkwargs) -> [(what the student did, thunk)]


# ----------------------------------------------------------------------------- requests and labels
def call(name: str, *args, **kwargs) -> dict:
    """A ``call`` request of the student's ``name`` on ``args`` and ``kwargs``."""
    return {"proc": "call", "fn": name, "args": list(args), "kwargs": kwargs}


def show(value) -> str:
    """An argument as it appears in a label: shapes for tensors, constructors for modules."""
    if isinstance(value, np.ndarray):
        return f"of shape {fmt_shape(value.shape)}"
    if isinstance(value, ModuleSpec):
        return spec_text(value)
    return repr(value)


def label_for(name: str, reference, args, kwargs, prefix: str = "") -> str:
    """``name(x of shape (2, 3), stride=2)``-style text, naming positional arguments
    after the reference's parameters; ' (float32)' when the inputs are float32."""
    try:
        bound = inspect.signature(reference).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        bound = {**{str(i): a for i, a in enumerate(args)}, **kwargs}
    parts = []
    for key, value in bound.items():
        if value is None:
            continue
        text = show(value)
        parts.append(f"{key} {text}" if text.startswith("of shape") else f"{key}={text}")
    floats32 = any(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in bound.values())
    return f"{prefix}{name}({', '.join(parts)})" + (" (float32)" if floats32 else "")


def output_shape(reference, args, kwargs) -> tuple:
    """The shape of ``reference(*args, **kwargs)``, found on the meta device (no arithmetic)."""
    def meta(value):
        if isinstance(value, np.ndarray):
            return torch.empty(value.shape, dtype=getattr(torch, str(value.dtype)), device="meta")
        return value
    try:
        with torch.no_grad():
            return tuple(reference(*[meta(a) for a in args], **{k: meta(v) for k, v in kwargs.items()}).shape)
    except (NotImplementedError, RuntimeError):  # an operation without a meta kernel
        targs, tkwargs = torch_args(args, kwargs)
        with torch.no_grad():
            return tuple(reference(*targs, **tkwargs).shape)


def torch_args(args, kwargs, requires_grad=()):
    """Fresh tensors for a reference computation (``requires_grad`` at the given keys)."""
    def convert(key, value):
        if isinstance(value, np.ndarray):
            return torch.from_numpy(np.array(value, copy=True)).requires_grad_(key in requires_grad)
        return value
    return [convert(i, a) for i, a in enumerate(args)], {k: convert(k, v) for k, v in kwargs.items()}


# ----------------------------------------------------------------------------- diagnosis
def diagnose(got, alternatives) -> str:
    """'; it matches <what the student did>' when ``got`` equals one of the named wrong variants."""
    if not isinstance(got, np.ndarray) or got.dtype.kind != "f":
        return ""
    tol = max(10 * TOL.get(str(got.dtype), 1e-6), 1e-7)
    for text, make in alternatives:
        try:
            alt = np.asarray(make())
        except Exception:  # noqa: BLE001  (a variant that does not apply to this input)
            continue
        if alt.shape == got.shape and rel_error(got, alt) <= tol:
            return f"; it matches {text}"
    return ""


def compare(got, expected: np.ndarray, what: str, label: str, alternatives=(), tol=None) -> str | None:
    """``check_tensor`` with the label in front and the matching classic mistake behind."""
    msg = check_tensor(got, expected, what, tol=tol)
    return None if msg is None else f"{label}: {msg}{diagnose(got, alternatives)}"


# ----------------------------------------------------------------------------- builders
def raises(problem: Problem, group: str, *args, error: str = "ValueError", label: str | None = None,
           **kwargs) -> Case:
    """A case whose right answer is raising ``error``."""
    shown = [show(a) for a in args] + [f"{k}={show(v)}" for k, v in kwargs.items()]
    label = label or f"{problem.name}({', '.join(shown)})"
    return Case(call(problem.name, *args, **kwargs),
                lambda o: f"{label} returned {describe(o.value)}; it should raise {error}",
                label, group, raises=error, public=Public())


def integer(problem: Problem, group: str, reference, **kwargs) -> Case:
    """A case whose answer is the int ``reference(**kwargs)`` (computed when drawn)."""
    expected = reference(**kwargs)
    label = f"{problem.name}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"
    return Case(call(problem.name, **kwargs), lambda o: check_int(o.value, expected, label), label, group,
                secret=expected, public=Public(("value",)))


def question(problem: Problem, group: str, answer, kind: str, choices=None, length: int | None = None) -> Case:
    """A conceptual question: ``problem.name()`` takes no argument and returns ``answer``, an int
    (``kind="int"``), one of the letters ``choices`` (``"choice"``) or a tuple of ``length``
    ints (``"shape"``; a list is accepted too).

    The check first asks :func:`gradekit.public_cases.answer_form` (the rule the students'
    self-check runs: the form, never the value; the self-check stores no answer, since a
    question has no random input), then compares the value, without showing the answer."""
    params = {"kind": kind, **({"choices": list(choices)} if choices else {}),
              **({"length": length} if length else {})}
    label = f"{problem.name}()"
    expected = tuple(answer) if kind == "shape" else answer

    def check(outcome: Outcome):
        msg = public_cases.answer_form(outcome.data, label, **params)
        if msg:
            return msg
        got = tuple(as_ints(outcome.value, length)) if kind == "shape" else outcome.value
        return None if got == expected else f"{label} returned {got!r}, which is not right"

    return Case(call(problem.name), check, label, group, secret=answer if kind == "int" else None,
                public=Public(rule="answer_form", params=params))


def tensor(problem: Problem, group: str, reference, *args, grad: dict | None = None, tol: float | None = None,
           alternatives: Alternatives | None = None, extra: Callable[[Outcome, str], str | None] | None = None,
           return_args: list | None = None, label: str | None = None, draw=None, public_fields: tuple = (),
           **kwargs) -> Case:
    """``problem.name(*args, **kwargs)`` compared with ``reference(*args, **kwargs)``.

    grad: ``{position or keyword: text}``: also compare float64 autograd gradients
        for those inputs, backpropagating a random output gradient drawn with ``draw``.
    alternatives: named classic mistakes, to say which one a wrong output matches.
    extra: a further check of the outcome (in-place updates, via ``return_args``),
        run before the output is compared.
    public_fields: record fields the students' self-check compares besides the output (and
        gradients), where ``extra`` requires the reference's values there (``args_after``).
    """
    grad = grad or {}
    label = label or label_for(problem.name, reference, args, kwargs, "gradients of " if grad else "")
    request = call(problem.name, *args, **kwargs)
    if return_args:
        request["return_args"] = list(return_args)
    grad_output = None
    if grad:
        request["args"], request["kwargs"] = torch_args(args, kwargs, grad)
        grad_output = draw.normal(output_shape(reference, args, kwargs))
        request["grad"] = {"grad_output": grad_output, "wrt": list(grad)}

    def check(outcome: Outcome):
        if extra is not None:
            msg = extra(outcome, label)
            if msg:
                return msg
        targs, tkwargs = torch_args(args, kwargs, grad)
        out = reference(*targs, **tkwargs)
        alts = alternatives(targs, tkwargs) if alternatives else ()
        msg = compare(outcome.value, out.detach().numpy(), "the output", label, alts, tol)
        if msg or not grad:
            return msg
        if outcome.grad_error:
            err = outcome.grad_error if isinstance(outcome.grad_error, dict) else {}
            return f"{label}: backward raised {err.get('type')}: {str(err.get('message', ''))[:150]}"
        leaves = [targs[k] if isinstance(k, int) else tkwargs[k] for k in grad]
        expected = torch.autograd.grad(out, leaves, torch.from_numpy(grad_output))
        grads = outcome.grads if isinstance(outcome.grads, dict) else {}
        for key, exp in zip(grad, expected):
            got = grads.get(str(key))
            if got is None:
                return f"{label}: no gradient reached {grad[key]} (is the output still connected to it?)"
            msg = check_tensor(got, exp.numpy(), f"the gradient for {grad[key]}", tol=tol)
            if msg:
                return f"{label}: {msg}"
        return None

    fields = ("value", "grads") if grad else ("value",)
    return Case(request, check, label, group, public=Public(fields + tuple(public_fields), tol))


def steps(problem: Problem, group: str, label: str, variables: dict, calls: list[dict], return_vars: list[str],
          check: Callable[[list, dict], str | None]) -> Case:
    """Several calls sharing kernel-side variables (``Var("name")`` in their arguments).

    ``calls`` are ``{"args": [...], "kwargs": {...}, "record": bool}``; ``check(values, vars)``
    receives the recorded return values and the variables after the last call.
    """
    request = {"proc": "steps", "vars": variables, "return_vars": return_vars,
               "steps": [{"fn": problem.name, "record": True, **c} for c in calls]}
    return Case(request, lambda o: check(o.values or [], o.vars if isinstance(o.vars, dict) else {}), label, group)


def module(problem: Problem, group: str, label: str, check: Callable[[Outcome], str | None], *args,
           inputs=(), train: bool = False, state: dict | None = None, fields: dict | None = None, **kwargs) -> Case:
    """Build ``problem.name(*args, **kwargs)`` in the kernel, report its facts (parameter
    count, ``state_dict`` shapes, submodule types), optionally load ``state``
    (``strict=True``) and run it on ``inputs``; ``check(outcome)`` judges.

    fields: further request fields of :func:`gradekit.capture.proc_module` (``train_inputs``,
    ``reseed``, ``return_state``, ``return_inputs``, ``backward``, ``stack``, ``double``,
    ``module_dtype``, ``keep_device``, ``device``)."""
    request = {"proc": "module", "cls": problem.name, "args": list(args), "kwargs": kwargs,
               "inputs": list(inputs), "train": train, **(fields or {})}
    if state is not None:
        request["state"] = state
    return Case(request, check, label, group)


def layer_kinds(problem: Problem, group: str, label: str, family: str, allowed: set, expected: str, *args,
                extra: Callable[[list, dict], str | None] | None = None, **kwargs) -> Case:
    """The module ``problem.name(*args, **kwargs)`` holds layers of the operator ``family``
    (:mod:`autograder.ops`, e.g. "normalization") only of the kinds ``allowed`` (none at
    all when ``allowed`` is empty); ``expected`` says in words what it should hold, and
    ``extra(found, facts)`` may judge the (name, kind) pairs found further."""
    from ..ops import family_names

    classes = sorted(n for n in family_names(family) if n[:1].isupper())
    params = {"family": family, "kinds": classes, "allowed": sorted(allowed), "expected": expected}

    def check(outcome: Outcome):
        msg = public_cases.layer_kinds(outcome.data, label, **params)
        if msg or extra is None:
            return msg
        facts = outcome.facts if isinstance(outcome.facts, dict) else {}
        return extra([(str(n), str(k)) for n, k in facts.get("modules", []) if str(k) in classes], facts)
    case = module(problem, group, label, check, *args, **kwargs)
    case.public = Public(rule="layer_kinds", params=params)
    return case


def timing(problem: Problem, group: str, reference, draw_inputs: Callable[[], tuple[list, dict]], baseline: str,
           bound: float, label: str, repeats: int = 5) -> Case:
    """Median time of the student's function against a PyTorch ``baseline``.

    Every call, timed or warm-up, gets fresh inputs (``draw_inputs()``) that the
    student's code has not seen, the baseline gets private copies, and every value
    returned is checked: a fast wrong answer, or a memoised one, earns nothing.
    """
    @functools.cache
    def drawn() -> list:  # drawn when the request is written: large inputs cost nothing until then
        return [draw_inputs() for _ in range(repeats + 1)]

    def request() -> dict:
        return {"proc": "timing", "fn": problem.name, "baseline": baseline, "repeats": repeats,
                "inputs": [{"args": list(a), "kwargs": k} for a, k in drawn()]}

    def check(outcome: Outcome):
        inputs = drawn()
        values = outcome.values if isinstance(outcome.values, list) else []
        if len(values) != len(inputs):
            return f"{label}: {len(values)} results were recorded for {len(inputs)} calls"
        for i, ((args, kwargs), got) in enumerate(zip(inputs, values)):
            targs, tkwargs = torch_args(args, kwargs)
            msg = check_tensor(got, reference(*targs, **tkwargs).numpy(), f"the output of call {i + 1}")
            if msg:
                return f"{label}: {msg}"
        student, base = outcome.student_s, outcome.baseline_s
        if not all(isinstance(t, (int, float)) and t >= 0 for t in (student, base)):
            return f"{label}: the timings could not be read"
        ratio = student / max(base, 1e-9)
        if ratio > bound:
            return f"{label}: {ratio:.0f}x slower than {baseline.rsplit('.', 1)[-1]} (the bound is {bound:.0f}x)"
        return None

    return Case(request, check, label, group, heavy=True, public=Public(speed=bound))


def module_output(problem: Problem, group: str, label: str, x: np.ndarray, shape: tuple, *args, **kwargs) -> Case:
    """``problem.name(*args, **kwargs)`` built in eval mode maps ``x`` to finite values of
    ``shape`` with ``x``'s dtype."""
    def check(outcome: Outcome):
        out = (outcome.outputs or [None])[0]
        if not isinstance(out, np.ndarray) or tuple(out.shape) != tuple(shape):
            return f"{label}: on x of shape {fmt_shape(x.shape)} the output is {describe(out)}, expected shape " \
                   f"{fmt_shape(shape)}"
        if out.dtype != x.dtype:
            return f"{label}: the output has dtype {out.dtype}, expected {x.dtype}"
        return None if np.all(np.isfinite(out)) else f"{label}: the output contains NaN or inf values"
    case = module(problem, group, label, check, *args, inputs=[x], **kwargs)
    case.public = Public(("outputs.0:shape",))
    return case


def batch_independence(problem: Problem, group: str, label: str, x: np.ndarray, k: int, train: bool, mixing: bool,
                       why: str, *args, **kwargs) -> Case:
    """Run the built module on the batch ``x`` and on its first ``k`` samples (in training or
    eval mode): their outputs must agree exactly when samples are treated independently
    (``mixing=False``) and differ when the batch's statistics are used (``mixing=True``).
    Dropout makes training-mode outputs random: then nothing is compared."""
    params = {"n": len(x), "k": k, "train": train, "mixing": mixing, "why": why}
    case = module(problem, group, label, lambda o: public_cases.batch_independence(o.data, label, **params), *args,
                  inputs=[x, x[:k]], train=train, **kwargs)
    case.public = Public(rule="batch_independence", params=params)
    return case


def unchanged(after: dict, inputs: dict) -> str | None:
    """The first of ``inputs`` (``{key: (ModuleSpec, what)}``) whose returned state (``after``,
    from ``return_args``) differs from the state it was given, as 'what changed'."""
    for key, (spec, what) in inputs.items():
        now = after.get(key)
        if now is not None and any(not isinstance(now.state.get(k), np.ndarray) or now.state[k].size != np.size(v)
                                   or not np.array_equal(now.state[k].reshape(-1), np.reshape(v, -1))
                                   for k, v in spec.state.items()):
            return f"{what} changed"
    return None


def rows(problem: Problem, reference, table) -> list[Case]:
    """Cases of a problem with integer answers, as table rows ``(group, count, make)`` or
    ``(group, count, make, error)``: ``make()`` draws the keyword arguments of one case;
    with ``error`` the right answer is raising that exception."""
    cases = []
    for group, count, make, *error in table:
        for _ in range(count):
            kwargs = make()
            cases.append(raises(problem, group, error=error[0], **kwargs) if error else
                         integer(problem, group, reference, **kwargs))
    return cases


def returned_module(problem: Problem, group: str, label: str, args: list, type_name: str, inputs: list,
                    reference, compared_with: str, alternatives=lambda x: (), require: dict | None = None,
                    keep_inputs: dict | None = None, tol: float = 1e-5) -> Case:
    """``problem.name(*args)`` returns one ``torch.nn.<type_name>`` that, rebuilt in the judge
    in float64 from its settings and float32 weights, computes ``reference(x)`` (float64,
    what ``compared_with`` says in words) on every x of ``inputs``.

    require: state keys the module must have -> the message when one is missing;
    keep_inputs: ``{position: (ModuleSpec, name)}`` arguments that must come back unchanged;
    alternatives(x): named classic mistakes, as for :func:`tensor`.
    """
    def check(outcome: Outcome):
        got, after = outcome.value, outcome.args_after if isinstance(outcome.args_after, dict) else {}
        changed = unchanged(after, {str(k): v for k, v in (keep_inputs or {}).items()})
        if changed:
            return f"{label}: {changed}; {problem.name} must leave its inputs as they were"
        if getattr(got, "type_name", None) != type_name or not isinstance(getattr(got, "state", None), dict):
            return f"{label}: should return one nn.{type_name} but returned {describe(got)}"
        weight = got.state.get("weight")
        if isinstance(weight, np.ndarray) and weight.dtype != np.float32:
            return f"{label}: the returned module's weight is {weight.dtype}; keep the input modules' dtype (float32)"
        for key, message in (require or {}).items():
            if key not in got.state:
                return f"{label}: {message}"
        try:
            module = rebuild(got)
        except Exception as exc:  # noqa: BLE001  (inconsistent settings and weights)
            return f"{label}: the returned {type_name}'s settings and weights do not fit together ({str(exc)[:150]})"
        for x in inputs:
            with torch.no_grad():
                out = module(torch.from_numpy(x)).numpy()
            msg = compare(out, reference(x), f"the returned module's output on x of shape {fmt_shape(x.shape)} "
                          f"(compared with {compared_with})", label, alternatives(x), tol=tol)
            if msg:
                return msg
        return None

    request = {**call(problem.name, *args), "return_args": sorted(keep_inputs or ())}
    # The returned module is unique (its settings and folded weights), as are inputs left alone.
    return Case(request, check, label, group, public=Public(("value", "args_after") if keep_inputs else ("value",),
                                                            tol=tol))
