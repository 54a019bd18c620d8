"""Standardisation over axes, and its classic slips, for diagnosing wrong answers.

Normalisation layers (batch, layer, instance, group norm; BatchNorm inside blocks and
frozen backbones in later weeks) all compute ``(x - mean) / sqrt(var + eps)`` over
some axes, then an affine map. A wrong answer is usually that formula over the wrong
axes, with the unbiased variance, or with eps outside the root; :func:`variants`
names the one a wrong output matches (see :func:`autograder.cases.builders.diagnose`).
BatchNorm's running statistics and their classic slips are in :func:`running`.
"""
from __future__ import annotations

import numpy as np
import torch

from gradekit.codec import Var

from ..compare import fmt_shape
from ..problem import Case, Problem, Public
from .builders import compare, steps

UNBIASED = "normalising with the unbiased variance (dividing by n - 1); use the biased one (divide by n)"
EPS_OUTSIDE = "adding eps after the square root; eps goes inside it, sqrt(var + eps)"


def channel(x) -> list[int]:
    """The shape that broadcasts a per-channel (C,) vector over (N, C, *)."""
    return [1, -1] + [1] * (x.dim() - 2)


def spatial(x) -> list[int]:
    """The axes after the channel axis."""
    return list(range(2, x.dim()))


def affine(out, weight, bias, shape) -> np.ndarray:
    """out * weight + bias, the parameters reshaped to ``shape`` (None: as they are)."""
    for p, op in ((weight, torch.mul), (bias, torch.add)):
        if p is not None:
            out = op(out, p.reshape(shape) if shape else p)
    return out.detach().numpy()


def normalize(x, dims, eps, weight=None, bias=None, shape=None, view=None, unbiased=False,
              eps_outside=False) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) over ``dims`` of ``x.reshape(view)``, then the affine map
    (or a classic variant of it)."""
    v = x.reshape(view) if view else x
    mean, var = v.mean(dim=dims, keepdim=True), v.var(dim=dims, keepdim=True, unbiased=unbiased)
    out = (v - mean) / (torch.sqrt(var) + eps if eps_outside else torch.sqrt(var + eps))
    return affine(out.reshape(x.shape), weight, bias, shape)


def variants(dims, view=None, per_channel=True, rows=()):
    """``alternatives`` for a normalisation over ``dims(x)`` (of ``view(x)``): the two classic
    slips, then ``rows`` of (what the student did, dims(x), view(x) or None)."""
    table = [(UNBIASED, dims, view, True, False), (EPS_OUTSIDE, dims, view, False, True)]
    table += [(text, d, v, False, False) for text, d, v in rows]

    def alternatives(targs, tkw):
        x, e, w, b = targs[0], tkw.get("eps", 1e-5), tkw.get("weight"), tkw.get("bias")
        shape = channel(x) if per_channel else None
        return [(text, lambda d=d, v=v, u=u, o=o: normalize(x, d(x), e, w, b, shape, v and v(x), u, o))
                for text, d, v, u, o in table]
    return alternatives


def running(xs, mean, var, momentum, reverse=False, biased=False) -> tuple[np.ndarray, np.ndarray]:
    """BatchNorm's running mean and variance after training steps on the batches ``xs``, as
    PyTorch keeps them (momentum weights the new batch, the unbiased variance is stored),
    or with momentum the other way round (``reverse``) or the biased variance stored."""
    mean, var = torch.from_numpy(np.array(mean)), torch.from_numpy(np.array(var))
    keep, new = (momentum, 1 - momentum) if reverse else (1 - momentum, momentum)
    for x in xs:
        x = torch.from_numpy(x).to(mean.dtype)
        dims = [0] + spatial(x)
        mean, var = keep * mean + new * x.mean(dims), keep * var + new * x.var(dims, unbiased=not biased)
    return mean.numpy(), var.numpy()


def running_slips(xs, mean, var, momentum) -> list[tuple[str, tuple]]:
    """What a student's running statistics may hold instead, with what it means."""
    return [("the value before the call: update the tensors that were passed in, in place", (mean, var)),
            ("momentum weighting the old value (PyTorch's momentum weights the new batch)",
             running(xs, mean, var, momentum, reverse=True)),
            ("storing the biased variance (running_var keeps the unbiased one, n / (n - 1) times larger)",
             running(xs, mean, var, momentum, biased=True))]


def check_running(label: str, xs, mean, var, momentum, got, after: str) -> str | None:
    """Compare the running (mean, var) a student's code left (``got``) after training steps on
    ``xs`` with PyTorch's, naming the classic slip they match."""
    expected, slips = running(xs, mean, var, momentum), running_slips(xs, mean, var, momentum)
    for i, which in enumerate(("running_mean", "running_var")):
        msg = compare(got[i], expected[i], f"{which} {after}", label, [(t, lambda v=v: v[i]) for t, v in slips])
        if msg:
            return msg.replace("it matches the value before the call", "it still holds its value before the call")
    return None


def batch_norm_variants(training: bool, mean, var):
    """``alternatives`` for batch norm with running statistics ``mean`` and ``var``: in
    training mode the slips over the batch's axes; in eval mode the batch's statistics
    or the running variance used without (or outside) the square root."""
    def alternatives(targs, tkw):
        x, e, w, b = targs[0], tkw.get("eps", 1e-5), tkw.get("weight"), tkw.get("bias")
        m, v = (torch.from_numpy(a).reshape(channel(x)) for a in (mean, var))
        if training:
            return variants(lambda x: [0] + spatial(x), rows=[
                ("statistics over the batch axis only: for (N, C, *) inputs also average over the positions",
                 lambda x: [0], None)])(targs, tkw) + [
                ("normalising with running_mean and running_var: in training mode use the batch's statistics",
                 lambda: affine((x - m) / torch.sqrt(v + e), w, b, channel(x)))]
        return [("normalising with the batch's statistics: in eval mode use running_mean and running_var",
                 lambda: normalize(x, [0] + spatial(x), e, w, b, channel(x))),
                ("dividing by the running variance plus eps without the square root",
                 lambda: affine((x - m) / (v + e), w, b, channel(x))),
                ("adding eps after the square root; eps goes inside it",
                 lambda: affine((x - m) / (torch.sqrt(v) + e), w, b, channel(x)))]
    return alternatives


def running_after(x, mean, var, training: bool, verify: bool, momentum: float = 0.1):
    """``extra`` for one batch-norm call on ``x`` with running statistics ``mean`` and ``var``
    (arguments 1 and 2): with ``verify``, they must hold PyTorch's update; in eval mode they
    must be left as they were."""
    def extra(outcome, label):
        after = outcome.args_after if isinstance(outcome.args_after, dict) else {}
        got = after.get("1"), after.get("2")
        if verify:
            return check_running(label, [x], mean, var, momentum, got, "after the call")
        for now, before, which in zip(got, (mean, var), ("running_mean", "running_var")):
            if not training and isinstance(now, np.ndarray) and now.shape == before.shape \
                    and not np.array_equal(now, before):
                return f"{label}: {which} changed in eval mode; eval mode must leave it as it is"
        return None
    return extra


def training_steps(problem: Problem, group: str, reference, xs: list, mean, var, x_eval=None, **kw) -> Case:
    """``problem.name(x, rm, rv, training=True, **kw)`` on each batch of ``xs``, the running
    statistics shared between calls (then, with ``x_eval``, one eval-mode call): the running
    statistics after the steps, and the eval output, compared with PyTorch's (``reference``
    is the batch-norm reference, called in eval mode with the expected running statistics)."""
    m, n_steps = kw.get("momentum", 0.1), len(xs)
    calls = [{"args": [x, Var("rm"), Var("rv")], "kwargs": {**kw, "training": True}, "record": False} for x in xs]
    calls += [{"args": [x_eval, Var("rm"), Var("rv")], "kwargs": {**kw, "training": False}}] if x_eval is not None \
        else []
    label = f"{problem.name}: {n_steps} training steps on batches of shape (N, " \
        f"{', '.join(map(str, xs[0].shape[1:]))})" + (f", momentum={m}" if "momentum" in kw else "") \
        + (f", then eval mode on x of shape {fmt_shape(x_eval.shape)}" if x_eval is not None else "")

    def check(values, variables):
        got = variables.get("rm"), variables.get("rv")
        msg = check_running(label, xs, mean, var, m, got, f"after {n_steps} steps")
        if x_eval is None:
            return msg
        t = [torch.from_numpy(a) for a in (x_eval, *running(xs, mean, var, m), kw["weight"], kw["bias"])]
        wrong = compare(values[-1] if values else None, reference(*t, False, m).numpy(), "the eval-mode output", label)
        return wrong and (msg or wrong)

    case = steps(problem, group, label, {"rm": mean, "rv": var}, calls, ["rm", "rv"], check)
    # With an eval call only its output counts (the running statistics show in it).
    case.public = Public((f"values.{n_steps}",) if x_eval is not None else ("vars",))
    return case
