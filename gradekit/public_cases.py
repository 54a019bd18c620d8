"""The students' self-check: public cases with stored answers, run in the notebook.

The visible part of a test cell is one line::

    gradekit.selfcheck("conv2d", globals())

Beside the released notebook, ``selfcheck/<name>.json`` (and its ``.npy`` arrays) holds
a fixed set of public cases for the problem, drawn by the same generators as the
autograder's hidden cases but at a public seed, and what a right answer records for
each of them: numbers, shapes and layouts, never code. The self-check runs each case
on the student's objects through the same machinery as grading
(:func:`gradekit.capture.run_request`: operator trace, time limit), then applies the
grader's rules:

- a built-in the problem forbids, in the source of the defining cell (the same static
  rule as the grader, :mod:`gradekit.source_rules`) or in the operator trace, fails
  the problem whatever the values;
- each case's stored fields are compared with :mod:`gradekit.values` (tensors within
  the grader's tolerances, integers exactly); a case whose right answer is an
  exception must raise it; a timing case must stay within the speed bound;
- a conceptual question's case stores no answer: only its form is checked
  (:func:`answer_form`).

It prints one verdict per problem (passed / failing case / not implemented / uses a
forbidden built-in) and raises :class:`SelfCheckFailed` unless it passed, so that a
failing problem shows as an error in the notebook and in ``nbgrader validate``.

Every stored field is one the hidden check requires of every right answer, so a
failed self-check always means lost points; passing it is necessary, not sufficient:
the hidden cases are randomised and more numerous. While a notebook is autograded the
self-check does nothing (the grader's own cases run instead).
"""
from __future__ import annotations

import inspect
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .capture import WORKDIR_NAME, run_request
from .codec import CodecError, Reader, ReturnedModule, Unsupported, load_json
from .source_rules import banned_uses, defining_cells
from .trace import describe_call, trace_hits
from .values import as_ints, check_tensor, describe, fmt_shape

PACK_DIR = "selfcheck"
#: Time limit of one public case (seconds): the public cases are small.
CASE_SECONDS = 30.0


class SelfCheckFailed(AssertionError):
    """A problem did not pass its self-check. In a notebook only the verdict is shown."""

    def _render_traceback_(self):  # IPython shows these lines instead of a traceback
        return str(self).splitlines()


@dataclass
class Report:
    """The self-check's verdict on one problem.

    ``status``: ``passed``, ``failed``, ``not implemented``, ``forbidden``, ``missing``
    (the name is not defined) or ``no cases`` (no public cases were found).
    ``messages``: per case, None when it passed (empty when no case ran).
    """

    name: str
    status: str
    lines: list[str] = field(default_factory=list)
    messages: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "passed"


# ----------------------------------------------------------------------------- comparing stored values
def _rule(path: str) -> tuple[list[str], str]:
    where, _, rule = path.partition(":")
    return where.split("."), rule


def resolve(record, path: str):
    """The value at a dotted ``path`` (``facts.num_params``, ``outputs.0``) of a decoded record;
    raises ``KeyError`` when it has none."""
    value = record
    for part in _rule(path)[0]:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, (list, tuple)) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(path)
    return value


def stored(value, path: str):
    """What the pack stores for the reference's ``value`` at ``path`` (its rule applied)."""
    rule = _rule(path)[1]
    if rule == "shape":
        return list(value.shape) if hasattr(value, "shape") else None
    return value


def _scalar_text(value) -> str:
    return repr(value) if isinstance(value, (bool, int, float, str)) or value is None else describe(value)


def compare(got, expected, what: str, tol: float | None = None) -> str | None:
    """``None`` when ``got`` holds what ``expected`` holds, else what differs.

    Tensors: :func:`gradekit.values.check_tensor`; ints (never bools or floats) and other
    plain values exactly, floats within ``tol`` (relative, 1e-6 by default); lists and
    tuples item by item; dicts key by key (keys ``got`` has besides do not matter).
    """
    import numpy as np

    if isinstance(expected, np.ndarray):
        return check_tensor(got, expected, what, tol=tol)
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return None if got is expected or (isinstance(got, str) and got == expected) else \
            f"{what} is {_scalar_text(got)}, expected {expected!r}"
    if isinstance(expected, int):
        if isinstance(got, bool) or not isinstance(got, int):
            return f"{what} should be an int but is {_scalar_text(got)}"
        return None if got == expected else f"{what} is {got}, expected {expected}"
    if isinstance(expected, float):
        if isinstance(got, np.ndarray) and got.shape == () and got.dtype.kind in "fiu":
            got = got.item()  # a 0-d tensor counts as a number
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return f"{what} should be a number but is {describe(got)}"
        if math.isnan(expected):
            return None if math.isnan(got) else f"{what} is {got:.6g}, expected NaN"
        limit = 1e-6 if tol is None else tol
        return None if abs(got - expected) <= limit * max(1.0, abs(expected)) else \
            f"{what} is {got:.6g}, expected {expected:.6g}"
    if isinstance(expected, (list, tuple)):
        if not isinstance(got, (list, tuple)):
            return f"{what} should be a {type(expected).__name__} but is {describe(got)}"
        if len(got) != len(expected):
            return f"{what} has {len(got)} items, expected {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            msg = compare(g, e, f"{what}[{i}]", tol)
            if msg:
                return msg
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{what} should be a dict but is {describe(got)}"
        for key, e in expected.items():
            if key not in got:
                return f"{what} has no {key!r}"
            msg = compare(got[key], e, f"{what}[{key!r}]", tol)
            if msg:
                return msg
        return None
    if isinstance(expected, (ReturnedModule, Unsupported)):
        if type(got) is not type(expected) or got.type_name != expected.type_name:
            return f"{what} should be a {expected.type_name} but is {describe(got)}"
        if isinstance(expected, ReturnedModule):  # its settings (but the mode) and its state_dict
            hyper = {k: v for k, v in expected.hyper.items() if k != "training"}
            return compare(got.hyper, hyper, f"{what}'s settings", tol) or \
                compare(got.state, expected.state, f"{what}'s state_dict", tol)
        return None
    raise TypeError(f"cannot compare with a stored {type(expected).__name__}")


_WHAT = {"value": "the result", "grads": "the gradients", "outputs": "the outputs", "values": "the results",
         "facts": "the module"}


def _what(path: str) -> str:
    parts, rule = _rule(path)
    what = _WHAT.get(parts[0], parts[0])
    if parts[1:]:
        what = f"{what}'s {'.'.join(parts[1:])}" if parts[0] != "outputs" else f"output {parts[1]}"
    return f"{what} ({rule})" if rule == "shape" else what


def check_field(record: dict, path: str, expected, tol: float | None) -> str | None:
    """One stored field of one case against the student's decoded record."""
    parts, rule = _rule(path)
    try:
        got = resolve(record, path)
    except KeyError:
        return f"{_what(path)} was not recorded"
    what = _what(path)
    if rule == "shape":
        shape = list(got.shape) if hasattr(got, "shape") else None
        if shape != expected:
            return f"{what} is {describe(got)}, expected shape {fmt_shape(expected)}"
        return None
    if rule == "keys":
        if not isinstance(got, dict):
            return f"{what} should be a dict but is {describe(got)}"
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        if missing or extra:
            return f"{what} differs: missing {missing[:4]}, unexpected {extra[:4]}"
    if rule == "ints":  # a tuple of ints, where 1-element integer tensors count as ints
        ints = as_ints(got, len(expected))
        if ints is None:
            return f"{what} should be {len(expected)} ints but is {describe(got)}"
        return None if list(ints) == list(expected) else f"{what} is {ints}, expected {tuple(expected)}"
    if rule == "contains":
        items = [list(i) if isinstance(i, tuple) else i for i in got] if isinstance(got, (list, tuple)) else []
        for item in expected:
            if item not in items:
                return f"{what} has no {item!r}"
        return None
    return compare(got, expected, what, tol)


# ----------------------------------------------------------------------------- properties
# Checks that need no stored answer: the hidden check and the self-check call the same function.
def layer_kinds(record: dict, label: str, family: str, kinds: list, allowed: list, expected: str) -> str | None:
    """A built module (``record["facts"]["modules"]``) holds layers of ``family`` (whose
    ``nn.Module`` class names are ``kinds``) only of the ``allowed`` kinds, and at least one
    of them unless none is allowed."""
    facts = record.get("facts") if isinstance(record.get("facts"), dict) else {}
    found = sorted({str(k) for _, k in facts.get("modules", []) if str(k) in set(kinds)})
    if not allowed and found:
        return f"{label} contains {family} layers ({', '.join(found)}); it should have none"
    if allowed and not found:
        return f"{label} contains no torch.nn {family} layer (expected {expected})"
    if set(found) - set(allowed):
        return f"{label} contains {', '.join(sorted(set(found) - set(allowed)))}, which is not {expected}"
    return None


def batch_independence(record: dict, label: str, n: int, k: int, train: bool, mixing: bool, why: str) -> str | None:
    """A module's outputs on a batch of ``n`` and on its first ``k`` samples (``record["outputs"]``)
    agree exactly when samples are treated independently (``mixing=False``) and differ when the
    batch's statistics are used (``mixing=True``). Dropout in training mode makes outputs random:
    then nothing is required."""
    from .values import rel_error

    outs = record.get("outputs") if isinstance(record.get("outputs"), list) else []
    if len(outs) != 2 or not all(hasattr(o, "shape") and o.ndim >= 1 for o in outs) \
            or outs[0].shape[0] != n or outs[1].shape != (k, *outs[0].shape[1:]):
        return f"{label}: the outputs could not be recorded, or their shapes do not match"
    differ = rel_error(outs[0][:k], outs[1]) > 1e-4
    kinds = {str(kind) for _, kind in (((record.get("facts") or {}).get("modules")) or [])}
    if differ == mixing or (train and not mixing and any("Dropout" in kind for kind in kinds)):
        return None
    return f"{label}: {why}"


def has_kind(record: dict, label: str, kind: str, what: str) -> str | None:
    """A built module holds at least one submodule of the class ``kind``."""
    kinds = {str(t) for _, t in ((record.get("facts") or {}).get("modules") or [])}
    return None if kind in kinds else f"{label}: no {kind} module found ({what})"


def repeated_passes(record: dict, label: str, differ: bool) -> str | None:
    """Two forward passes on the same input (``record["outputs"]``) differ (dropout active in
    training mode) or agree exactly (eval mode)."""
    from .values import rel_error

    outs = record.get("outputs") if isinstance(record.get("outputs"), list) else []
    a, b = (outs + [None, None])[:2]
    if not (hasattr(a, "shape") and hasattr(b, "shape") and a.shape == b.shape):
        return f"{label}: the outputs could not be recorded"
    if differ:
        return None if rel_error(a, b) > 1e-4 else f"{label}: both passes gave the same output: no dropout is " \
                                                   "active in training mode"
    return None if rel_error(a, b) == 0 else f"{label}: the two passes differ: dropout must be off in eval mode"


def names_sizes(record: dict, label: str, near: list) -> str | None:
    """Forward on an input of a size the network cannot take raised ``ValueError`` whose message
    names the sizes ``near`` (``record["forward_errors"]``)."""
    import re

    errors = record.get("forward_errors") if isinstance(record.get("forward_errors"), list) else []
    err = errors[0] if errors else None
    if not isinstance(err, dict):
        return f"{label} returned an output; it should raise ValueError (this size cannot go through the network)"
    if err.get("type") != "ValueError":
        return f"{label} raised {err.get('type')}; it should raise ValueError with the nearest valid sizes"
    numbers = {int(m) for m in re.findall(r"\d+", str(err.get("message", "")))}
    if not set(near) <= numbers:
        return f"{label}: the ValueError's message should name the nearest valid input sizes (the largest valid " \
               "size below and the smallest above)"
    return None


def iou_pair(record: dict, label: str, iou, miou: float) -> str | None:
    """``record["value"]`` is (per-class IoU, mIoU): a float tensor with NaN exactly where ``iou``
    has it and the same values elsewhere, and a number close to ``miou``."""
    import numpy as np

    from .values import rel_error

    value = record.get("value")
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return f"{label} should return a pair (per_class_iou, miou), got {describe(value)}"
    per_class, mean = value
    if not isinstance(per_class, np.ndarray) or per_class.dtype.kind != "f" or per_class.shape != iou.shape:
        return f"{label}: per_class_iou should be a float tensor of shape {fmt_shape(iou.shape)}, got " \
               f"{describe(per_class)}"
    if not np.array_equal(np.isnan(per_class), np.isnan(iou)):
        return f"{label}: per_class_iou has NaN for the wrong classes (NaN exactly for the classes absent from " \
               "both maps)"
    ok = ~np.isnan(iou)
    if ok.any() and rel_error(per_class[ok].astype(np.float64), iou[ok]) > 1e-6:
        return f"{label}: per_class_iou has wrong values"
    if isinstance(mean, np.ndarray) and mean.shape == () and mean.dtype.kind in "fiu":
        mean = mean.item()
    if isinstance(mean, bool) or not isinstance(mean, (int, float)):
        return f"{label}: miou should be a float, got {describe(mean)}"
    return None if abs(mean - miou) <= 1e-6 * max(1.0, abs(miou)) else f"{label}: miou is {mean:.6g}, which is not right"


def optimizer_groups(record: dict, label: str, values: dict, head: list, base_lr: float, head_lr: float) -> str | None:
    """``record["value"]`` is two parameter groups, ``{"params": [...], "lr": ...}``: the model's
    parameters (``values``: name -> tensor, recognised by their values) each in exactly one
    group, those named in ``head`` with ``head_lr``, the others with ``base_lr``."""
    import numpy as np

    got = record.get("value")
    if not isinstance(got, (list, tuple)) or len(got) != 2 or not all(isinstance(g, dict) for g in got):
        return f"{label}: should return a list of two dicts but returned {describe(got)}"
    lrs = [g.get("lr") for g in got]
    if sorted(map(str, lrs)) != sorted(map(str, (base_lr, head_lr))):
        return f"{label}: the groups' learning rates are {lrs}, not base_lr and head_lr"

    def which(array):
        found = [n for n, v in values.items() if isinstance(array, np.ndarray) and v.shape == array.shape
                 and np.array_equal(v, array)]
        return found[0] if found else None

    members = []
    for g in got:
        params = g.get("params")
        if not isinstance(params, (list, tuple)):
            return f"{label}: a group's 'params' is {describe(params)}; make it a list of parameters"
        names_in = [which(p) for p in params]
        if None in names_in:
            return f"{label}: a group holds something that is not a parameter of the model"
        members.append((g.get("lr"), names_in))
    every = [n for _, names_in in members for n in names_in]
    twice = sorted({n for n in every if every.count(n) > 1})
    if twice:
        return f"{label}: {', '.join(twice[:3])} appear(s) in more than one group"
    missing = sorted(set(values) - set(every))
    if missing:
        return f"{label}: {', '.join(missing[:3])} is in no group"
    for lr, names_in in members:
        want = set(head) if lr == head_lr else set(values) - set(head)
        extra = sorted(set(names_in) - want)
        if extra:
            return f"{label}: the group with lr={lr} holds {', '.join(extra[:3])}, which belong(s) in the other group"
    return None


def answer_form(record: dict, label: str, kind: str, choices: list | None = None,
                length: int | None = None) -> str | None:
    """A conceptual question's answer (``record["value"]``) has the form the question asks for,
    whatever its value: ``kind`` ``"int"`` (a Python int), ``"choice"`` (one of the letters
    ``choices``) or ``"shape"`` (a tuple, or list, of ``length`` ints).

    A question has no random input, so a stored answer would be the answer itself: its
    public case stores none, and the self-check calls only this. The hidden check calls it
    first and then compares the value."""
    value = record.get("value")
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return f"{label} returned the float {value:.0f}.0; return an int (use // or int(...))"
            return f"{label} should return an int but returned {describe(value)}"
        return None
    if kind == "choice":
        letters = ", ".join(repr(c) for c in choices or ())
        if isinstance(value, str) and value in (choices or ()):
            return None
        shown = repr(value[:40]) if isinstance(value, str) else describe(value)
        return f"{label} should return one of the letters {letters} but returned {shown}"
    if kind == "shape":
        if as_ints(value, length) is None:
            shown = repr(value)[:60] if isinstance(value, (list, tuple)) else describe(value)
            return f"{label} should return a tuple of {length} ints but returned {shown}"
        return None
    raise ValueError(f"unknown answer kind {kind!r}")


#: The property rules a public case may name (``Public.rule``), by name.
RULES = {"layer_kinds": layer_kinds, "optimizer_groups": optimizer_groups, "batch_independence": batch_independence,
         "has_kind": has_kind, "repeated_passes": repeated_passes, "names_sizes": names_sizes, "iou_pair": iou_pair,
         "answer_form": answer_form}


# ----------------------------------------------------------------------------- the student's source
def _sources(name: str, obj) -> list[str]:
    """The source that defines ``name``: the latest notebook cell run that defines it (IPython's
    input history), else the object's own source."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    history = list(getattr(shell, "user_ns", {}).get("In", []) or []) if shell is not None else []
    found = defining_cells([h for h in history if isinstance(h, str)], name)
    if found:
        return found[-1:]
    try:
        return [inspect.getsource(obj)]
    except (TypeError, OSError):
        return []


# ----------------------------------------------------------------------------- running a pack
def _error_text(record: dict, label: str) -> str:
    status = record.get("status")
    if status == "timeout":
        return f"{label}: did not finish within {CASE_SECONDS:.0f} s (an infinite loop, or far too slow)"
    if status == "oom":
        return f"{label}: ran out of memory"
    err = record.get("error") if isinstance(record.get("error"), dict) else {}
    text = f"{label}: raised {err.get('type', 'Error')}"
    if err.get("message"):
        text += f": {str(err['message'])[:200]}"
    where = err.get("where") or {}
    if where.get("line"):
        text += f" (in {where.get('function')}, line {where.get('line')})"
    stage = record.get("stage") or "call"
    if stage not in ("call", "lookup"):
        text += f" [during {stage}]"
    return text


def judge_case(case: dict, record: dict, expected: dict, params: dict | None = None) -> str | None:
    """A public case's verdict from the student's decoded ``record``: None or what is wrong."""
    label = case["label"]
    raised = (record.get("error") or {}).get("type") if record.get("status") == "error" else None
    if case.get("raises"):
        if raised == case["raises"] and record.get("stage") == "call":
            return None
        if raised:
            return f"{label}: raised {raised}, expected {case['raises']}"
        if record.get("status") == "ok":
            return f"{label} returned {describe(record.get('value'))}; it should raise {case['raises']}"
    if record.get("status") != "ok":
        return _error_text(record, label)
    if record.get("load_error"):
        err = record["load_error"] if isinstance(record["load_error"], dict) else {}
        return f"{label}: load_state_dict(strict=True) of weights in the expected layout failed: " \
               f"{' '.join(str(err.get('message', '')).split())[:200]}"
    if case.get("rule"):
        msg = RULES[case["rule"]](record, label, **(params or {}))
        if msg:
            return msg
    for path, value in expected.items():
        msg = check_field(record, path, value, case.get("tol"))
        if msg:
            return f"{label}: {msg}"
    if case.get("speed") is not None:
        student, base = record.get("student_s"), record.get("baseline_s")
        if not all(isinstance(t, (int, float)) and t >= 0 for t in (student, base)):
            return f"{label}: the timings could not be read"
        ratio = student / max(base, 1e-9)
        if ratio > case["speed"]:
            return f"{label}: {ratio:.0f}x slower than {case.get('baseline', 'PyTorch')} " \
                   f"(the bound is {case['speed']:.0f}x)"
    return None


def run(name: str, namespace: dict, pack: Path, sources: list[str] | None = None) -> Report:
    """Run the public cases of ``name`` stored in the folder ``pack`` on ``namespace``.

    ``sources``: the code that defines ``name`` (None: found in the notebook's history).
    """
    path = Path(pack) / f"{name}.json"
    if not path.is_file():
        return Report(name, "no cases", [f"{name}: no self-check cases were found ({path} is missing): "
                                         "open the notebook from its assignment folder"])
    spec = load_json(path)
    if name not in namespace:
        return Report(name, "missing", [f"{name}: not defined: run the cell that defines it first"])
    obj = namespace[name]
    banned = set(spec.get("banned_names") or ())
    if banned:
        used = sorted({u for src in (_sources(name, obj) if sources is None else sources)
                       for u in banned_uses(src, banned)})
        if used:
            return Report(name, "forbidden", [
                f"{name} uses {', '.join(used)}, a built-in this problem asks you to implement yourself. "
                "The autograder gives 0 for that: rewrite it with basic tensor operations."])
    import torch

    records = []
    # The cases seed torch's generator: the notebook's own random stream is left as it was.
    with tempfile.TemporaryDirectory(prefix="gradekit-selfcheck-") as tmp, torch.random.fork_rng(devices=[]):
        reader = Reader(Path(tmp), as_torch=False)
        for i, case in enumerate(spec["cases"]):
            request = {**case["request"], "seconds": min(float(case["request"].get("seconds", CASE_SECONDS)),
                                                         CASE_SECONDS)}
            record = run_request(request, namespace, Path(pack), Path(tmp), prefix=f"c{i}_")
            try:
                records.append(reader.decode(record))
            except CodecError as exc:
                records.append({"status": "error", "stage": "record",
                                "error": {"type": "CodecError", "message": str(exc)}})
    forbidden = _forbidden_at_run_time(name, spec, records)
    if forbidden is not None:
        return forbidden
    if any((r.get("error") or {}).get("type") == "NotImplementedError" for r in records):
        return Report(name, "not implemented", [f"{name}: not implemented yet (it raises NotImplementedError)."])
    pack_reader = Reader(Path(pack), as_torch=False)
    messages = [judge_case(case, record, pack_reader.decode(case.get("expect") or {}),
                           pack_reader.decode(case.get("params") or {}))
                for case, record in zip(spec["cases"], records)]
    failed = [(case, m) for case, m in zip(spec["cases"], messages) if m]
    if not failed:
        if all(case.get("rule") == "answer_form" for case in spec["cases"]):  # a question: its form only
            return Report(name, "passed", [f"{name}: the answer has the expected form. Its value is not checked "
                                           "here: the autograder scores it."], messages)
        return Report(name, "passed", [f"{name}: self-check passed ({len(messages)} public cases). "
                                       "The autograder runs more, on other inputs."], messages)
    case, first = failed[0]
    hint = (spec.get("hints") or {}).get(case.get("group"), "")
    lines = [f"{name}: self-check FAILED on {len(failed)} of {len(messages)} public cases.", f"  first: {first}"]
    if hint:
        lines.append(f"  hint: {hint}")
    return Report(name, "failed", lines, messages)


def _forbidden_at_run_time(name: str, spec: dict, records: list[dict]) -> Report | None:
    """The grader's run-time rule (:func:`gradekit.trace.trace_hits`, the lineage of built
    modules) applied to the public cases' records."""
    ops = {op for r in records if r.get("status") in ("ok", "error", "timeout") for op in (r.get("ops") or [])}
    hit, tamper = trace_hits(ops, spec.get("banned_ops") or (), spec.get("banned_calls") or ())
    if tamper:
        return Report(name, "forbidden", [
            f"{name}: the grader's trace was switched off or bypassed while it ran ({', '.join(tamper[:3])}). "
            "The autograder gives 0 for that."])
    prefixes = tuple(spec.get("banned_classes") or ())
    classes = sorted({c for r in records if r.get("status") == "ok"
                      for c in (((r.get("facts") or {}).get("lineage")) or []) if prefixes and c.startswith(prefixes)})
    if classes or hit:
        what = f"is built from {', '.join(classes[:3])}" if classes else \
            f"calls {', '.join(describe_call(h) for h in hit[:4])} while it runs"
        return Report(name, "forbidden", [
            f"{name} {what}, a built-in this problem asks you to implement yourself. The autograder gives 0 "
            "for that: rewrite it with basic tensor operations and layers."])
    return None


def selfcheck(name: str, namespace: dict | None = None, root: str | Path | None = None) -> None:
    """Run ``name``'s public cases (from ``<root>/selfcheck``, the notebook's folder by
    default): print that it passed, or raise :class:`SelfCheckFailed` saying why not."""
    base = Path(root) if root is not None else Path.cwd()
    if (base / WORKDIR_NAME / "cases" / f"{name}.json").exists():
        print(f"{name}: graded by the autograder's hidden cases.")
        return
    report = run(name, namespace if namespace is not None else {}, base / PACK_DIR)
    if not report.passed:
        raise SelfCheckFailed("\n".join(report.lines))
    print("\n".join(report.lines))
