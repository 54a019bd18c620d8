"""Hidden checks for week 2 (``course/source/w2_normalization``).

References come from :mod:`solutions.w2_normalization` (checked against the
PyTorch built-ins in ``tests/test_solutions_w2.py``), computed here in the judge's
process; the kernel only ever sees the inputs. When a result is wrong, the judge
also compares it with a few classic mistakes (unbiased variance, eps outside the
square root, statistics over the wrong axes, momentum the other way round, ...)
and names the one it matches: that says what the student did, never what the
reference computes.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from gradekit.codec import ModuleSpec, ReturnedModule, Var
from solutions import w2_normalization as ref

from ..compare import TOL, check_tensor, describe, rel_error
from ..problem import Case, Outcome, Problem
from .w1_conv_arithmetic import raises_case, spec_text

#: Normalization built-ins none of the four functional problems may use (the
#: problem's own name is added per problem by ``_banned_names``).
NORM_BUILTINS = ("batch_norm", "layer_norm", "instance_norm", "group_norm", "rms_norm",
                 "native_batch_norm", "native_layer_norm", "native_group_norm", "native_norm",
                 "_native_batch_norm_legit", "_batch_norm_impl_index", "cudnn_batch_norm",
                 "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LazyBatchNorm1d", "LazyBatchNorm2d",
                 "LazyBatchNorm3d", "SyncBatchNorm", "_BatchNorm", "_NormBase", "LayerNorm", "GroupNorm",
                 "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LazyInstanceNorm1d",
                 "LazyInstanceNorm2d", "LazyInstanceNorm3d", "_InstanceNorm", "RMSNorm")
NORM_BANNED_OPS = ("batch_norm", "layer_norm", "instance_norm", "group_norm", "rms_norm", "native_batch_norm",
                   "native_layer_norm", "native_group_norm", "_native_batch_norm_legit",
                   "aten.batch_norm", "aten.native_batch_norm", "aten._native_batch_norm_legit",
                   "aten._native_batch_norm_legit_no_training", "aten._native_batch_norm_legit_functional",
                   "aten._batch_norm_with_update", "aten._batch_norm_with_update_functional",
                   "aten._batch_norm_no_update", "aten._batch_norm_impl_index", "aten.cudnn_batch_norm",
                   "aten.miopen_batch_norm", "aten.batch_norm_stats", "aten.batch_norm_elemt",
                   "aten.batch_norm_gather_stats", "aten.batch_norm_gather_stats_with_counts",
                   "aten.layer_norm", "aten.native_layer_norm", "aten.group_norm", "aten.native_group_norm",
                   "aten.instance_norm", "aten.rms_norm", "aten._fused_rms_norm")
FUSE_BANNED_NAMES = ("fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_modules",
                     "fuse_modules_qat", "fuse_fx", "fusion")

#: Accuracy make_cnn must reach on held-out digits after the fixed training budget.
#: Over 20 training seeds the reference reaches at least 94% with every normalization
#: and 89% without; a network that does not learn stays near chance (10-20%). The bars
#: leave room for other sensible designs, which learn more slowly: half the channels
#: (at least 92% normalised, 80% without, over 20 seeds) or three blocks pooled to 1x1
#: (92% and 88%). A design that pools everything away at once (global average pooling
#: right after full-resolution convs) is slower still and can miss a bar.
TRAIN_ACCURACY = {"batch": 0.80, "layer": 0.75, "instance": 0.75, "group": 0.75, "none": 0.60}
#: The fixed budget of the training smoke test (the train proc's loop).
TRAIN_BUDGET = {"epochs": 3, "optimizer": "adam", "lr": 3e-3, "batch_size": 32}
#: Time limit of one training run (the reference needs about 0.5 s on one CPU core).
TRAIN_SECONDS = 60.0
NORMS = ("batch", "layer", "instance", "group", "none")
NORM_LAYER_TYPES = {"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LazyBatchNorm1d", "LazyBatchNorm2d",
                    "LazyBatchNorm3d", "SyncBatchNorm", "LayerNorm", "GroupNorm", "InstanceNorm1d",
                    "InstanceNorm2d", "InstanceNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d",
                    "LazyInstanceNorm3d", "LocalResponseNorm", "CrossMapLRN2d", "RMSNorm"}
EXPECTED_LAYERS = {"batch": {"BatchNorm2d", "LazyBatchNorm2d"},
                   "layer": {"LayerNorm", "GroupNorm"},
                   "instance": {"InstanceNorm2d", "LazyInstanceNorm2d", "GroupNorm"},
                   "group": {"GroupNorm"},
                   "none": set()}
LAYER_NAMES = {"batch": "BatchNorm2d", "layer": "LayerNorm over (C, H, W) or GroupNorm(1, C)",
               "instance": "InstanceNorm2d", "group": "GroupNorm", "none": "no normalization layer"}


def _banned_names(own: str) -> tuple[str, ...]:
    return tuple(sorted(set(NORM_BUILTINS) | {own}))


# ----------------------------------------------------------------------------- data
def _data(rng, shape, dtype=np.float64, scale=1.0) -> np.ndarray:
    """Random input whose channels and samples have their own offsets and spreads,
    so that statistics over the wrong axes give visibly wrong results."""
    x = rng.standard_normal(shape)
    if len(shape) >= 2:
        per_channel = [1] * len(shape)
        per_channel[1] = shape[1]
        per_sample = [shape[0]] + [1] * (len(shape) - 1)
        x = x * rng.uniform(0.5, 3.0, per_channel) * rng.uniform(0.5, 2.0, per_sample)
        x = x + rng.uniform(-2.0, 2.0, per_channel) + rng.uniform(-1.0, 1.0, per_sample)
    return (x * scale).astype(dtype)


def _vec(rng, n, dtype=np.float64, low=None, high=None) -> np.ndarray:
    if low is not None:
        return rng.uniform(low, high, n).astype(dtype)
    return rng.standard_normal(n).astype(dtype)


def _t(a):
    """A fresh torch tensor (float64 arrays stay float64) for a reference computation."""
    return None if a is None else torch.from_numpy(np.array(a, copy=True))


def _shape(s) -> str:
    return "(" + ", ".join(str(int(v)) for v in s) + ")"


def _tol(dtype) -> float:
    return TOL.get(str(dtype), 1e-6)


def _normalize(x: torch.Tensor, dims, eps: float, unbiased=False, eps_outside=False) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) over ``dims`` (or one of the classic variants)."""
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=unbiased)
    if eps_outside:
        return (x - mean) / (torch.sqrt(var) + eps)
    return (x - mean) / torch.sqrt(var + eps)


def _affine(out: torch.Tensor, weight, bias, shape) -> torch.Tensor:
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def _channel_shape(x) -> list[int]:
    return [1, x.shape[1]] + [1] * (x.dim() - 2)


def _diagnose(got, alternatives) -> str:
    """' (it matches ...)' when ``got`` equals one of the named wrong variants."""
    if not isinstance(got, np.ndarray) or got.dtype.kind != "f":
        return ""
    tol = max(10 * _tol(got.dtype), 1e-7)
    for text, make in alternatives:
        try:
            alt = make()
        except Exception:  # noqa: BLE001  (a variant that does not apply to this input)
            continue
        alt = np.asarray(alt)
        if alt.shape == got.shape and rel_error(got, alt) <= tol:
            return f"; it matches {text}"
    return ""


def _compare(got, expected: np.ndarray, what: str, label: str, alternatives=()) -> str | None:
    msg = check_tensor(got, expected, what)
    if msg is None:
        return None
    return f"{label}: {msg}{_diagnose(got, alternatives)}"


def _value_case(problem: Problem, group: str, label: str, args: list, kwargs: dict, reference,
                alternatives=None) -> Case:
    """``problem.name(*args, **kwargs)`` compared with ``reference(*args, **kwargs)`` (arrays in args).

    ``alternatives(targs, tkwargs)`` lists ``(text, thunk)`` wrong variants for the message.
    """

    def check(outcome: Outcome):
        targs = [_t(a) if isinstance(a, np.ndarray) else a for a in args]
        tkwargs = {k: _t(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
        expected = reference(*targs, **tkwargs).numpy()
        alts = alternatives(targs, tkwargs) if alternatives else ()
        return _compare(outcome.value, expected, "the output", label, alts)

    return Case({"proc": "call", "fn": problem.name, "args": list(args), "kwargs": dict(kwargs)},
                check, label, group)


def _grad_case(problem: Problem, group: str, label: str, args: list, kwargs: dict, reference, rng,
               wrt: dict) -> Case:
    """Float64 autograd gradients for the tensors at ``wrt`` (positions or keyword names -> text)."""
    def leaf(key, a):
        if not isinstance(a, np.ndarray):
            return a
        return torch.from_numpy(a.copy()).requires_grad_(key in wrt)

    def fresh():
        targs = [leaf(i, a) for i, a in enumerate(args)]
        tkwargs = {k: leaf(k, v) for k, v in kwargs.items()}
        return targs, tkwargs

    req_args, req_kwargs = fresh()  # what the kernel receives: leaves with requires_grad
    with torch.no_grad():
        probe = reference(*fresh()[0], **fresh()[1])
    grad_out = rng.standard_normal(tuple(probe.shape))
    keys = list(wrt)

    def check(outcome: Outcome):
        targs, tkwargs = fresh()
        out = reference(*targs, **tkwargs)
        msg = check_tensor(outcome.value, out.detach().numpy(), "the output")
        if msg:
            return f"{label}: {msg}"
        if outcome.get("grad_error"):
            err = outcome.grad_error
            return f"{label}: backward raised {err.get('type')}: {err.get('message', '')[:150]}"
        leaves = [targs[k] if isinstance(k, int) else tkwargs[k] for k in keys]
        expected = torch.autograd.grad(out, leaves, torch.from_numpy(grad_out))
        grads = outcome.get("grads") or {}
        for key, exp in zip(keys, expected):
            got = grads.get(str(key))
            if got is None:
                return f"{label}: no gradient reached {wrt[key]} (is the output still connected to it?)"
            msg = check_tensor(got, exp.numpy(), f"the gradient for {wrt[key]}")
            if msg:
                return f"{label}: {msg}"
        return None

    request = {"proc": "call", "fn": problem.name, "args": req_args, "kwargs": req_kwargs,
               "grad": {"grad_output": grad_out, "wrt": keys}}
    return Case(request, check, label, group)


def _common_alternatives(x, dims, eps, weight, bias, shape):
    """Unbiased variance and eps outside the root, over the right axes."""
    return [
        ("normalising with the unbiased variance (dividing by n - 1); use the biased one (divide by n)",
         lambda: _affine(_normalize(x, dims, eps, unbiased=True), weight, bias, shape).numpy()),
        ("adding eps after the square root; eps goes inside it, sqrt(var + eps)",
         lambda: _affine(_normalize(x, dims, eps, eps_outside=True), weight, bias, shape).numpy()),
    ]


def _with(label: str, weight, bias) -> str:
    if weight is not None and bias is not None:
        return label + ", with weight and bias"
    if weight is not None:
        return label + ", with weight (no bias)"
    if bias is not None:
        return label + ", with bias (no weight)"
    return label + ", no weight or bias"


def _dtype_text(dtype) -> str:
    return " (float32)" if np.dtype(dtype) == np.float32 else ""


# ----------------------------------------------------------------------------- batch_norm
def _bn_stats(x: torch.Tensor):
    """Biased and unbiased per-channel variance, mean and count of a batch."""
    dims = [0] + list(range(2, x.dim()))
    count = x.numel() // x.shape[1]
    return x.mean(dim=dims), x.var(dim=dims, unbiased=False), x.var(dim=dims, unbiased=True), count


def _simulate_running(xs, rm, rv, momentum, reverse=False, biased=False):
    """Running statistics after training steps on ``xs``, as PyTorch (or a classic mistake) keeps them."""
    rm, rv = _t(rm), _t(rv)
    for x in xs:
        mean, var_b, var_u, _ = _bn_stats(_t(x).to(rm.dtype))
        var = var_b if biased else var_u
        keep, new = (momentum, 1 - momentum) if reverse else (1 - momentum, momentum)
        rm, rv = keep * rm + new * mean, keep * rv + new * var
    return rm.numpy(), rv.numpy()


def _running_check(label, xs, rm0, rv0, momentum, got_rm, got_rv, after: str) -> str | None:
    exp_rm, exp_rv = _simulate_running(xs, rm0, rv0, momentum)
    variants = [
        ("the value before the call: update the tensors that were passed in, in place", lambda: (rm0, rv0)),
        ("momentum weighting the old value (PyTorch's momentum weights the new batch)",
         lambda: _simulate_running(xs, rm0, rv0, momentum, reverse=True)),
        ("storing the biased variance (running_var keeps the unbiased one, n / (n - 1) times larger)",
         lambda: _simulate_running(xs, rm0, rv0, momentum, biased=True)),
    ]
    for which, got, exp in (("running_mean", got_rm, exp_rm), ("running_var", got_rv, exp_rv)):
        alts = [(text, (lambda make=make, i=int(which == "running_var"): np.asarray(make()[i])))
                for text, make in variants]
        msg = _compare(got, exp, f"{which} {after}", label, alts)
        if msg:
            return msg.replace("; it matches the value before the call", "; it still holds its value before the call")
    return None


class BatchNorm(Problem):
    name = "batch_norm"
    banned_names = _banned_names("batch_norm")
    banned_ops = NORM_BANNED_OPS
    weights = {"one value per channel": 0.5}
    hints = {
        "training, (N, C)": "in training mode each feature (column) is normalised with the mean and variance "
                            "of the current batch; PyTorch uses the biased variance (divide by the number of "
                            "values) and adds eps inside the square root.",
        "training, (N, C, *)": "for (N, C, *) inputs, channel c's statistics are taken over the batch and all "
                               "positions: every axis except axis 1 (so a single sample with several positions "
                               "is a valid training batch).",
        "no weight or bias": "weight and bias are optional: when one is None, skip that scale or shift.",
        "eval mode": "with training=False, normalise with running_mean and running_var (not the batch's "
                     "statistics) and leave them unchanged; a batch of one sample is fine then.",
        "running statistics": "in training mode, update running_mean and running_var in place (tensor methods "
                              "ending in _, or slice assignment): momentum is the weight of the new batch, and "
                              "running_var receives the unbiased batch variance.",
        "train then eval": "eval mode after some training steps uses the running statistics those steps "
                           "accumulated, so both the update and the eval formula must be right.",
        "backward": "let autograd see the whole computation: in training mode the gradient also flows through "
                    "the batch mean and variance (do not detach them); only the running-statistics update "
                    "stays outside the graph.",
        "float32": "keep the input's dtype, and the running statistics' dtype (update them in place in float32 "
                   "too): create no float64 buffers.",
        "one value per channel": "with a single value per channel in training mode (a (1, C) input, or (1, C, 1, 1)) "
                                 "there is no variance to estimate: raise ValueError, as F.batch_norm does. Count "
                                 "the values per channel over the batch and the positions.",
    }

    def cases(self, rng):
        cases = []

        def c():
            return int(rng.integers(2, 6))

        def hw():
            return int(rng.integers(3, 7)), int(rng.integers(3, 7))

        add = functools.partial(self._forward, cases, rng)
        add("training, (N, C)", (int(rng.integers(5, 10)), c()), training=True)
        add("training, (N, C)", (2, c()), training=True, momentum=0.3)
        add("training, (N, C, *)", (int(rng.integers(2, 5)), c(), int(rng.integers(4, 9))), training=True)
        add("training, (N, C, *)", (int(rng.integers(2, 5)), c(), *hw()), training=True, momentum=0.2)
        add("training, (N, C, *)", (1, c(), *hw()), training=True)
        add("training, (N, C, *)", (2, c(), 2, 3, 3), training=True)
        add("training, (N, C, *)", (int(rng.integers(2, 4)), c(), *hw()), training=True, eps=0.1, scale=0.3)
        add("no weight or bias", (int(rng.integers(2, 5)), c(), *hw()), training=True, affine=(False, False))
        add("no weight or bias", (int(rng.integers(4, 8)), c()), training=False, affine=(False, False))
        add("no weight or bias", (int(rng.integers(2, 5)), c(), int(rng.integers(3, 8))), training=True,
            affine=(True, False))
        add("eval mode", (int(rng.integers(2, 5)), c(), *hw()), training=False)
        add("eval mode", (int(rng.integers(4, 8)), c()), training=False)
        add("eval mode", (1, c()), training=False, eps=0.05)
        add("eval mode", (1, c(), int(rng.integers(3, 8))), training=False, momentum=0.5)
        add("running statistics", (int(rng.integers(2, 5)), c(), *hw()), training=True, verify="stats")
        add("running statistics", (int(rng.integers(4, 9)), c()), training=True, momentum=0.3, verify="stats")
        cases.append(self._steps_case(rng, "running statistics", c(), 3, momentum=0.2, spatial=(int(rng.integers(3, 7)),)))
        cases.append(self._steps_case(rng, "train then eval", c(), 3, momentum=None, spatial=hw(), evaluate=True))
        cases.append(self._steps_case(rng, "train then eval", c(), 4, momentum=0.4, spatial=(), evaluate=True))
        for shape, training in (((int(rng.integers(2, 4)), c(), *hw()), True), ((int(rng.integers(4, 8)), c()), True),
                                ((int(rng.integers(2, 4)), c(), int(rng.integers(3, 7))), False)):
            cases.append(self._grad(rng, shape, training))
        add("float32", (int(rng.integers(2, 5)), c(), *hw()), training=True, dtype=np.float32, verify="stats")
        add("float32", (int(rng.integers(4, 8)), c()), training=False, dtype=np.float32)
        for shape in ((1, c()), (1, c(), 1, 1)):
            x = _data(rng, shape)
            rm, rv = self._stats(rng, shape[1])
            cases.append(raises_case(self, "one value per channel", {"training": True}, args=(x, rm, rv),
                                     label=f"batch_norm on x of shape {_shape(x.shape)}, training=True"))
        return cases

    @staticmethod
    def _stats(rng, channels, dtype=np.float64):
        return _vec(rng, channels, dtype) * 0.5, _vec(rng, channels, dtype, low=0.5, high=2.0)

    def _forward(self, cases, rng, group, shape, training, affine=(True, True), momentum=None, eps=None,
                 dtype=np.float64, verify="output", scale=1.0):
        x = _data(rng, shape, dtype, scale)
        rm, rv = self._stats(rng, shape[1], dtype)
        weight = _vec(rng, shape[1], dtype) if affine[0] else None
        bias = _vec(rng, shape[1], dtype) if affine[1] else None
        kwargs = {"training": training}
        if weight is not None:
            kwargs["weight"] = weight
        if bias is not None:
            kwargs["bias"] = bias
        if momentum is not None:
            kwargs["momentum"] = momentum
        if eps is not None:
            kwargs["eps"] = eps
        m = 0.1 if momentum is None else momentum
        e = 1e-5 if eps is None else eps
        label = _with(f"batch_norm on x of shape {_shape(shape)}, training={training}", weight, bias)
        label += "".join(f", {k}={kwargs[k]}" for k in ("momentum", "eps") if k in kwargs) + _dtype_text(dtype)

        def check(outcome: Outcome):
            tx, trm, trv = _t(x), _t(rm), _t(rv)
            tw, tb = _t(weight), _t(bias)
            expected = ref.batch_norm(tx, trm, trv, tw, tb, training=training, momentum=m, eps=e).numpy()
            after = outcome.get("args_after") or {}
            if verify == "stats":
                msg = _running_check(label, [x], rm, rv, m, after.get("1"), after.get("2"), "after the call")
                if msg:
                    return msg
            cshape = _channel_shape(tx)
            dims = [0] + list(range(2, tx.dim()))
            if training:
                alts = _common_alternatives(tx, dims, e, tw, tb, cshape) + [
                    ("normalising with running_mean and running_var: in training mode use the batch's statistics",
                     lambda: ref.batch_norm(_t(x), _t(rm), _t(rv), tw, tb, False, m, e).numpy()),
                    ("statistics over the batch axis only: for (N, C, *) inputs also average over the positions",
                     lambda: _affine(_normalize(tx, [0], e), tw, tb, cshape).numpy())]
            else:
                alts = [("normalising with the batch's statistics: in eval mode use running_mean and running_var",
                         lambda: _affine(_normalize(tx, dims, e), tw, tb, cshape).numpy()),
                        ("dividing by the running variance plus eps without the square root",
                         lambda: _affine((tx - trm.reshape(cshape)) / (trv.reshape(cshape) + e), tw, tb,
                                         cshape).numpy()),
                        ("adding eps after the square root; eps goes inside it",
                         lambda: _affine((tx - trm.reshape(cshape)) / (torch.sqrt(trv.reshape(cshape)) + e), tw,
                                         tb, cshape).numpy())]
            msg = _compare(outcome.value, expected, "the output", label, alts)
            if msg:
                return msg
            if not training:
                for key, before, which in (("1", rm, "running_mean"), ("2", rv, "running_var")):
                    got = after.get(key)
                    if isinstance(got, np.ndarray) and got.shape == before.shape and not np.array_equal(got, before):
                        return f"{label}: {which} changed in eval mode; eval mode must leave it as it is"
            return None

        request = {"proc": "call", "fn": self.name, "args": [x, rm, rv], "kwargs": kwargs, "return_args": [1, 2]}
        cases.append(Case(request, check, label, group))

    def _steps_case(self, rng, group, channels, n_steps, momentum, spatial, evaluate=False):
        sizes = [int(rng.integers(2, 6)) if spatial else int(rng.integers(4, 10)) for _ in range(n_steps)]
        xs = [_data(rng, (n, channels, *spatial)) for n in sizes]
        rm, rv = self._stats(rng, channels)
        weight, bias = _vec(rng, channels), _vec(rng, channels)
        kwargs = {"weight": weight, "bias": bias}
        if momentum is not None:
            kwargs["momentum"] = momentum
        m = 0.1 if momentum is None else momentum
        steps = [{"fn": self.name, "args": [x, Var("rm"), Var("rv")], "kwargs": {**kwargs, "training": True},
                  "record": False} for x in xs]
        x_eval = _data(rng, (int(rng.integers(1, 4)), channels, *spatial))
        if evaluate:
            steps.append({"fn": self.name, "args": [x_eval, Var("rm"), Var("rv")],
                          "kwargs": {**kwargs, "training": False}})
        shape_text = _shape((sizes[0], channels, *spatial)).replace(f"({sizes[0]}", "(N")
        label = (f"batch_norm: {n_steps} training steps on batches of shape {shape_text}"
                 + (f", momentum={momentum}" if momentum is not None else "")
                 + (f", then eval mode on x of shape {_shape(x_eval.shape)}" if evaluate else ""))

        def check(outcome: Outcome):
            values = outcome.get("values") or []
            variables = outcome.get("vars") or {}
            if evaluate:
                got = values[-1] if values else None
                exp_rm, exp_rv = _simulate_running(xs, rm, rv, m)
                tw, tb = _t(weight), _t(bias)
                expected = ref.batch_norm(_t(x_eval), _t(exp_rm), _t(exp_rv), tw, tb, False, m).numpy()
                msg = _compare(got, expected, "the eval-mode output", label)
                if msg:
                    stats = _running_check(label, xs, rm, rv, m, variables.get("rm"), variables.get("rv"),
                                           f"after {n_steps} steps")
                    return stats or msg
                return None
            return _running_check(label, xs, rm, rv, m, variables.get("rm"), variables.get("rv"),
                                  f"after {n_steps} steps")

        request = {"proc": "steps", "vars": {"rm": rm, "rv": rv}, "steps": steps, "return_vars": ["rm", "rv"]}
        return Case(request, check, label, group)

    def _grad(self, rng, shape, training):
        x = _data(rng, shape)
        rm, rv = self._stats(rng, shape[1])
        weight, bias = _vec(rng, shape[1]), _vec(rng, shape[1])
        label = f"gradients of batch_norm on x of shape {_shape(shape)}, training={training}, with weight and bias"

        def reference(tx, trm, trv, weight=None, bias=None, training=False):
            return ref.batch_norm(tx, trm, trv, weight, bias, training=training)

        return _grad_case(self, "backward", label, [x, rm, rv], {"weight": weight, "bias": bias, "training": training},
                          reference, rng, {0: "x", "weight": "weight", "bias": "bias"})


# ----------------------------------------------------------------------------- layer_norm
class LayerNorm(Problem):
    name = "layer_norm"
    banned_names = _banned_names("layer_norm")
    banned_ops = NORM_BANNED_OPS
    weights = {"invalid": 0.5}
    hints = {
        "last dimension": "each sample (each row, each position) gets its own mean and biased variance over "
                          "the normalized dimension; nothing is averaged over the batch.",
        "several dimensions": "normalized_shape names the trailing dimensions to normalise over, e.g. (C, H, W) "
                              "for one statistic per sample: average over all of them at once.",
        "weight and bias": "weight and bias have the shape normalized_shape: one scale and shift per element "
                           "of the normalized part, broadcast over the leading dimensions; either may be None.",
        "batch 1": "layer norm does not depend on the batch: it works on a single sample.",
        "backward": "use differentiable operations only: the gradient flows through the mean and variance too.",
        "float32": "keep the input's dtype.",
        "eps": "eps is added to the variance inside the square root: sqrt(var + eps).",
        "invalid": "normalized_shape must equal the trailing dimensions of x: raise ValueError when it does not "
                   "(F.layer_norm refuses such an input too).",
    }

    def cases(self, rng):
        cases = []

        def add(group, shape, nshape, affine=(False, False), eps=None, dtype=np.float64, scale=1.0, grad=False):
            x = _data(rng, shape, dtype, scale)
            dims_shape = (nshape,) if isinstance(nshape, int) else tuple(nshape)
            weight = _data(rng, dims_shape, dtype) if affine[0] else None
            bias = _data(rng, dims_shape, dtype) if affine[1] else None
            kwargs = {k: v for k, v in (("weight", weight), ("bias", bias), ("eps", eps)) if v is not None}
            label = _with(f"layer_norm on x of shape {_shape(shape)}, normalized_shape={nshape!r}", weight, bias)
            label += (f", eps={eps}" if eps is not None else "") + _dtype_text(dtype)
            if grad:
                wrt = {0: "x"} | {k: k for k in ("weight", "bias") if k in kwargs}
                cases.append(_grad_case(self, group, "gradients of " + label, [x, nshape], kwargs,
                                        ref.layer_norm, rng, wrt))
                return
            e = 1e-5 if eps is None else eps

            def alternatives(targs, tkwargs):
                tx = targs[0]
                k = len(dims_shape)
                dims = list(range(tx.dim() - k, tx.dim()))
                tw, tb = tkwargs.get("weight"), tkwargs.get("bias")
                shape_w = dims_shape
                alts = _common_alternatives(tx, dims, e, tw, tb, shape_w)
                if k > 1:
                    alts.append(("statistics over the last dimension only: normalise over all of "
                                 "normalized_shape's dimensions at once",
                                 lambda: _affine(_normalize(tx, [-1], e), tw, tb, shape_w).numpy()))
                if dims != list(range(1, tx.dim())):
                    alts.append(("statistics over every dimension after the batch: only the trailing "
                                 "normalized_shape dimensions count",
                                 lambda: _affine(_normalize(tx, list(range(1, tx.dim())), e), tw, tb,
                                                 shape_w).numpy()))
                    alts.append(("statistics over the dimensions right after the batch: normalized_shape "
                                 "names the trailing ones",
                                 lambda: _affine(_normalize(tx, list(range(1, 1 + k)), e), tw, tb,
                                                 shape_w).numpy()))
                alts.append(("statistics over the batch: layer norm normalises each sample on its own",
                             lambda: _affine(_normalize(tx, [0], e), tw, tb, shape_w).numpy()))
                return alts

            cases.append(_value_case(self, group, label, [x, nshape], kwargs, ref.layer_norm, alternatives))

        def n():
            return int(rng.integers(2, 6))

        d = int(rng.integers(4, 10))
        add("last dimension", (n(), d), d)
        add("last dimension", (n(), int(rng.integers(2, 5)), d), (d,))
        add("last dimension", (n(), 3, 4, d), [d])
        c, h, w = int(rng.integers(2, 5)), int(rng.integers(3, 6)), int(rng.integers(3, 6))
        add("several dimensions", (n(), c, h, w), (c, h, w))
        add("several dimensions", (n(), c, h, w), [h, w])
        length = int(rng.integers(3, 6))
        add("several dimensions", (n(), length, d), (length, d))
        add("weight and bias", (n(), c, h, w), (c, h, w), affine=(True, True))
        add("weight and bias", (n(), int(rng.integers(2, 5)), d), (d,), affine=(True, True))
        add("weight and bias", (n(), d), d, affine=(True, False))
        add("weight and bias", (n(), c, h, w), (h, w), affine=(False, True))
        add("batch 1", (1, c, h, w), (c, h, w), affine=(True, True))
        add("batch 1", (1, d), d)
        add("backward", (n(), c, h, w), (c, h, w), affine=(True, True), grad=True)
        add("backward", (n(), int(rng.integers(2, 5)), d), (d,), affine=(True, True), grad=True)
        add("float32", (n(), c, h, w), (h, w), affine=(True, True), dtype=np.float32)
        add("float32", (n(), d), d, dtype=np.float32)
        add("eps", (n(), d), d, eps=0.5, scale=0.3)
        add("eps", (n(), c, h, w), (c, h, w), eps=0.1, scale=0.2, affine=(True, True))
        a = int(rng.integers(2, 5))
        for shape, nshape in (((n(), a, a + int(rng.integers(1, 4))), (a,)), ((n(), d), (d + 1,))):
            x = _data(rng, shape)
            cases.append(raises_case(self, "invalid", {}, args=(x, nshape),
                                     label=f"layer_norm on x of shape {_shape(shape)}, normalized_shape={nshape!r}"))
        return cases


# ----------------------------------------------------------------------------- instance_norm
class InstanceNorm(Problem):
    name = "instance_norm"
    banned_names = _banned_names("instance_norm")
    banned_ops = NORM_BANNED_OPS
    weights = {"invalid": 0.5}
    hints = {
        "(N, C, L)": "instance norm gives every (sample, channel) pair its own mean and biased variance, over "
                     "the positions only.",
        "(N, C, H, W)": "for images, average over H and W (all axes after the channel axis), separately for "
                        "each sample and each channel.",
        "batch 1": "instance norm does not depend on the other samples: a batch of one works.",
        "weight and bias": "weight and bias hold one value per channel (shape (C,)), broadcast over the batch "
                           "and the positions; either may be None.",
        "backward": "use differentiable operations only: the gradient flows through the mean and variance too.",
        "float32": "keep the input's dtype.",
        "eps": "eps is added to the variance inside the square root: sqrt(var + eps).",
        "invalid": "with a single position per channel (an (N, C) input, or (N, C, 1, 1)) there is nothing to "
                   "normalise over: raise ValueError, as F.instance_norm does.",
    }

    def cases(self, rng):
        cases = []

        def add(group, shape, affine=(False, False), eps=None, dtype=np.float64, scale=1.0, grad=False):
            x = _data(rng, shape, dtype, scale)
            weight = _vec(rng, shape[1], dtype) if affine[0] else None
            bias = _vec(rng, shape[1], dtype) if affine[1] else None
            kwargs = {k: v for k, v in (("weight", weight), ("bias", bias), ("eps", eps)) if v is not None}
            label = _with(f"instance_norm on x of shape {_shape(shape)}", weight, bias)
            label += (f", eps={eps}" if eps is not None else "") + _dtype_text(dtype)
            if grad:
                wrt = {0: "x"} | {k: k for k in ("weight", "bias") if k in kwargs}
                cases.append(_grad_case(self, group, "gradients of " + label, [x], kwargs, ref.instance_norm,
                                        rng, wrt))
                return
            e = 1e-5 if eps is None else eps

            def alternatives(targs, tkwargs):
                tx = targs[0]
                tw, tb = tkwargs.get("weight"), tkwargs.get("bias")
                cshape = _channel_shape(tx)
                spatial = list(range(2, tx.dim()))
                return _common_alternatives(tx, spatial, e, tw, tb, cshape) + [
                    ("batch norm's statistics (over the batch too): instance norm keeps samples apart",
                     lambda: _affine(_normalize(tx, [0] + spatial, e), tw, tb, cshape).numpy()),
                    ("layer norm's statistics (over the channels too): instance norm keeps channels apart",
                     lambda: _affine(_normalize(tx, [1] + spatial, e), tw, tb, cshape).numpy()),
                    ("statistics over the last axis only: average over all the positions",
                     lambda: _affine(_normalize(tx, [-1], e), tw, tb, cshape).numpy())]

            cases.append(_value_case(self, group, label, [x], kwargs, ref.instance_norm, alternatives))

        def n():
            return int(rng.integers(2, 5))

        def c():
            return int(rng.integers(2, 6))

        def s():
            return int(rng.integers(3, 7))

        add("(N, C, L)", (n(), c(), s() + 2))
        add("(N, C, L)", (n(), c(), s()), affine=(True, True))
        add("(N, C, H, W)", (n(), c(), s(), s()))
        add("(N, C, H, W)", (n(), c(), s(), s()), affine=(True, True))
        add("batch 1", (1, c(), s(), s()), affine=(True, True))
        add("batch 1", (1, c(), s()))
        add("weight and bias", (n(), c(), s(), s()), affine=(True, True))
        add("weight and bias", (n(), c(), s()), affine=(True, False))
        add("weight and bias", (n(), c(), s(), s()), affine=(False, True))
        add("backward", (n(), c(), s(), s()), affine=(True, True), grad=True)
        add("backward", (n(), c(), s()), grad=True)
        add("float32", (n(), c(), s(), s()), affine=(True, True), dtype=np.float32)
        add("eps", (n(), c(), s(), s()), eps=0.3, scale=0.3)
        for shape in ((n(), c()), (n(), c(), 1, 1)):
            x = _data(rng, shape)
            cases.append(raises_case(self, "invalid", {}, args=(x,),
                                     label=f"instance_norm on x of shape {_shape(shape)}"))
        return cases


# ----------------------------------------------------------------------------- group_norm
#: (channels, groups) pairs with groups != channels / groups, so that mixing the
#: two up changes the result.
_GROUPINGS = ((6, 2), (6, 3), (8, 2), (8, 4), (12, 3), (12, 4), (10, 2), (10, 5))


class GroupNorm(Problem):
    name = "group_norm"
    banned_names = _banned_names("group_norm")
    banned_ops = NORM_BANNED_OPS
    weights = {"invalid": 0.5}
    hints = {
        "(N, C)": "split the C features into num_groups consecutive groups; each (sample, group) gets its own "
                  "mean and biased variance.",
        "(N, C, L)": "a group's statistics cover its channels and all their positions, for one sample.",
        "(N, C, H, W)": "reshape to (N, num_groups, everything else) so each group's values lie together; "
                        "num_groups is the number of groups, not the channels per group.",
        "one group, one channel per group": "num_groups = 1 normalises each sample as a whole (layer norm); "
                                            "num_groups = C each channel alone (instance norm).",
        "batch 1": "group norm does not depend on the other samples: a batch of one works.",
        "weight and bias": "weight and bias hold one value per channel (shape (C,)), not per group; either may "
                           "be None.",
        "backward": "use differentiable operations only: the gradient flows through the mean and variance too.",
        "float32": "keep the input's dtype.",
        "eps": "eps is added to the variance inside the square root: sqrt(var + eps).",
        "invalid": "when C is not divisible by num_groups, raise ValueError saying so.",
    }

    def cases(self, rng):
        cases = []

        def grouping():
            return tuple(int(v) for v in _GROUPINGS[int(rng.integers(0, len(_GROUPINGS)))])

        def add(group, n, spatial, cg=None, affine=(False, False), eps=None, dtype=np.float64, scale=1.0,
                grad=False):
            channels, groups = cg or grouping()
            shape = (n, channels, *spatial)
            x = _data(rng, shape, dtype, scale)
            weight = _vec(rng, channels, dtype) if affine[0] else None
            bias = _vec(rng, channels, dtype) if affine[1] else None
            kwargs = {k: v for k, v in (("weight", weight), ("bias", bias), ("eps", eps)) if v is not None}
            label = _with(f"group_norm on x of shape {_shape(shape)}, num_groups={groups}", weight, bias)
            label += (f", eps={eps}" if eps is not None else "") + _dtype_text(dtype)
            if grad:
                wrt = {0: "x"} | {k: k for k in ("weight", "bias") if k in kwargs}
                cases.append(_grad_case(self, group, "gradients of " + label, [x, groups], kwargs, ref.group_norm,
                                        rng, wrt))
                return
            e = 1e-5 if eps is None else eps

            def alternatives(targs, tkwargs):
                tx = targs[0]
                tw, tb = tkwargs.get("weight"), tkwargs.get("bias")
                cshape = _channel_shape(tx)
                rest = list(range(2, tx.dim()))

                def grouped(view, dims, **kw):
                    return _affine(_normalize(tx.reshape(view), dims, e, **kw).reshape(tx.shape), tw, tb,
                                   cshape).numpy()

                n_ = tx.shape[0]
                return [
                    ("normalising with the unbiased variance (dividing by n - 1); use the biased one",
                     lambda: grouped((n_, groups, -1), [-1], unbiased=True)),
                    ("adding eps after the square root; eps goes inside it, sqrt(var + eps)",
                     lambda: grouped((n_, groups, -1), [-1], eps_outside=True)),
                    ("num_groups groups of channels mixed up with groups of num_groups channels",
                     lambda: grouped((n_, channels // groups, -1), [-1])),
                    ("channels taken round-robin (channel c in group c % num_groups): groups are consecutive",
                     lambda: grouped((n_, channels // groups, groups, -1), [1, 3])),
                    ("instance norm (one channel per group)",
                     lambda: _affine(_normalize(tx, rest, e), tw, tb, cshape).numpy()),
                    ("layer norm (one group)",
                     lambda: _affine(_normalize(tx, list(range(1, tx.dim())), e), tw, tb, cshape).numpy()),
                ]

            cases.append(_value_case(self, group, label, [x, groups], kwargs, ref.group_norm, alternatives))

        def n():
            return int(rng.integers(2, 5))

        def s():
            return int(rng.integers(3, 6))

        add("(N, C)", int(rng.integers(3, 7)), ())
        add("(N, C)", int(rng.integers(3, 7)), (), affine=(True, True))
        add("(N, C, L)", n(), (s() + 1,))
        add("(N, C, L)", n(), (s(),), affine=(True, True))
        add("(N, C, H, W)", n(), (s(), s()))
        add("(N, C, H, W)", n(), (s(), s()), affine=(True, True))
        c = int(rng.integers(2, 7))
        add("one group, one channel per group", n(), (s(), s()), cg=(c, 1), affine=(True, True))
        add("one group, one channel per group", n(), (s(), s()), cg=(c, c))
        add("batch 1", 1, (s(), s()), affine=(True, True))
        add("batch 1", 1, ())
        add("weight and bias", n(), (s(), s()), affine=(True, True))
        add("weight and bias", n(), (s(),), affine=(True, False))
        add("weight and bias", n(), (s(), s()), affine=(False, True))
        add("backward", n(), (s(), s()), affine=(True, True), grad=True)
        add("backward", int(rng.integers(3, 6)), (), affine=(True, True), grad=True)
        add("float32", n(), (s(), s()), affine=(True, True), dtype=np.float32)
        add("eps", n(), (s(), s()), eps=0.3, scale=0.3)
        for channels, groups in ((6, 4), (int(rng.choice([5, 7])), int(rng.choice([2, 3])))):
            x = _data(rng, (2, channels, 3, 3))
            label = f"group_norm on x of shape {_shape(x.shape)}, num_groups={groups}"
            cases.append(raises_case(self, "invalid", {}, args=(x, groups), label=label))
        return cases


# ----------------------------------------------------------------------------- fuse_conv_bn
def _conv_spec(rng, cin, cout, kernel, bias, **kw) -> ModuleSpec:
    kh, kw_ = (kernel, kernel) if isinstance(kernel, int) else kernel
    groups = kw.get("groups", 1)
    state = {"weight": rng.standard_normal((cout, cin // groups, kh, kw_)).astype(np.float32) * 0.5}
    if bias:
        state["bias"] = rng.standard_normal(cout).astype(np.float32)
    return ModuleSpec("torch.nn.Conv2d", args=(cin, cout, kernel), kwargs={**kw, "bias": bool(bias)}, state=state)


def _bn_spec(rng, channels, eps=None) -> ModuleSpec:
    sign = rng.choice([-1.0, 1.0], channels)
    state = {"weight": (rng.uniform(0.5, 2.0, channels) * sign).astype(np.float32),
             "bias": rng.standard_normal(channels).astype(np.float32),
             "running_mean": rng.standard_normal(channels).astype(np.float32),
             "running_var": rng.uniform(0.2, 3.0, channels).astype(np.float32),
             "num_batches_tracked": np.array(int(rng.integers(1, 500)), dtype=np.int64)}
    kwargs = {} if eps is None else {"eps": eps}
    return ModuleSpec("torch.nn.BatchNorm2d", args=(channels,), kwargs=kwargs, state=state, train=False)


def _build64(spec: ModuleSpec) -> torch.nn.Module:
    """Build a conv/BN spec in the judge, in float64, with the spec's (float32) state."""
    factory = {"torch.nn.Conv2d": torch.nn.Conv2d, "torch.nn.BatchNorm2d": torch.nn.BatchNorm2d}[spec.path]
    module = factory(*spec.args, **spec.kwargs, dtype=torch.float64)
    module.load_state_dict({k: torch.from_numpy(np.asarray(v).astype(np.float64) if np.asarray(v).dtype.kind == "f"
                                                else np.asarray(v)) for k, v in spec.state.items()})
    return module.eval()


def _rebuild_returned_conv(module: ReturnedModule) -> torch.nn.Conv2d:
    """The student's returned conv, rebuilt in the judge (float64) from its settings and weights."""
    h = module.hyper
    state = {k: v for k, v in module.state.items() if isinstance(v, np.ndarray)}
    conv = torch.nn.Conv2d(int(h["in_channels"]), int(h["out_channels"]), tuple(h["kernel_size"]),
                           stride=tuple(h["stride"]), padding=h["padding"] if isinstance(h["padding"], str)
                           else tuple(h["padding"]), dilation=tuple(h["dilation"]), groups=int(h["groups"]),
                           bias="bias" in state, padding_mode=h.get("padding_mode", "zeros"), dtype=torch.float64)
    conv.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in state.items()}, strict=True)
    return conv.eval()


class FuseConvBN(Problem):
    name = "fuse_conv_bn"
    banned_names = FUSE_BANNED_NAMES
    hints = {
        "conv with bias": "in eval mode BatchNorm is a fixed per-channel affine map (running statistics, weight, "
                          "bias): write it as scale * z + shift and push scale and shift into the conv before it.",
        "conv without bias": "a conv without a bias still gets one after folding: the BatchNorm's shift has to "
                             "go somewhere.",
        "stride and padding": "the fused conv must slide exactly like the original one: keep its kernel size, "
                              "stride, padding and dilation.",
        "groups": "each output channel (filter) gets its own scale, whatever the groups: scale the weight along "
                  "its first axis, and keep groups in the new conv.",
        "BatchNorm eps": "use the BatchNorm's own eps, not a constant.",
        "inputs unchanged": "build a new nn.Conv2d and write the fused weights into it (under torch.no_grad()); "
                            "do not scale conv.weight or change bn in place.",
    }

    def cases(self, rng):
        cases = []

        def add(group, cin, cout, kernel, bias, eps=None, check_inputs=False, **kw):
            conv = _conv_spec(rng, cin, cout, kernel, bias, **kw)
            bn = _bn_spec(rng, cout, eps)
            cases.append(self._case(rng, group, conv, bn, check_inputs))

        def ch():
            return int(rng.integers(2, 6))

        add("conv with bias", ch(), ch(), 3, True, padding=1)
        add("conv with bias", ch(), ch(), int(rng.choice([1, 5])), True)
        add("conv without bias", ch(), ch(), 3, False, padding=1)
        add("conv without bias", ch(), ch(), 1, False)
        add("stride and padding", ch(), ch(), 3, True, stride=2, padding=2)
        add("stride and padding", ch(), ch(), (3, 5), False, stride=(2, 1), padding=(1, 2), dilation=(1, 2))
        g = int(rng.choice([2, 3]))
        add("groups", 2 * g, 3 * g, 3, True, groups=g, padding=1)
        c = ch() + 1
        add("groups", c, c, 3, False, groups=c, stride=2, padding=1)
        add("BatchNorm eps", ch(), ch(), 3, True, eps=1e-3, padding=1)
        add("BatchNorm eps", ch(), ch(), 3, False, eps=0.1)
        add("inputs unchanged", ch(), ch(), 3, True, check_inputs=True, padding=1)
        add("inputs unchanged", ch(), ch(), 3, False, check_inputs=True, stride=2)
        return cases

    def _case(self, rng, group, conv: ModuleSpec, bn: ModuleSpec, check_inputs: bool) -> Case:
        cin = conv.args[0]
        inputs = [rng.standard_normal((int(rng.integers(1, 4)), cin, int(rng.integers(7, 12)),
                                       int(rng.integers(7, 12)))) for _ in range(2)]
        label = f"fuse_conv_bn({spec_text(conv)}, {spec_text(bn)})"

        def reference(x, bn_spec=bn):
            with torch.no_grad():
                return _build64(bn_spec)(_build64(conv)(torch.from_numpy(x))).numpy()

        def check(outcome: Outcome):
            got = outcome.value
            if check_inputs:
                after = outcome.get("args_after") or {}
                for key, spec, what in (("0", conv, "conv"), ("1", bn, "bn")):
                    module = after.get(key)
                    if not isinstance(module, ReturnedModule):
                        continue
                    for name, before in spec.state.items():
                        now = module.state.get(name)
                        # (the codec records 0-d tensors such as num_batches_tracked as 1-d arrays)
                        if not isinstance(now, np.ndarray) or now.size != np.size(before) \
                                or not np.array_equal(now.reshape(-1), np.reshape(before, -1)):
                            return f"{label}: {what}.{name} changed; fuse_conv_bn must leave its inputs as they were"
            if not isinstance(got, ReturnedModule):
                return f"{label}: should return an nn.Conv2d but returned {describe(got)}"
            if got.type_name != "Conv2d":
                return f"{label}: should return one nn.Conv2d but returned a {got.type_name} module"
            weight = got.state.get("weight")
            if isinstance(weight, np.ndarray) and weight.dtype != np.float32:
                return f"{label}: the fused conv's weight is {weight.dtype}; keep the conv's dtype (float32)"
            if "bias" not in got.state:
                return (f"{label}: the returned conv has no bias; the BatchNorm's shift (and the conv's bias) "
                        "must end up in one")
            try:
                fused = _rebuild_returned_conv(got)
            except Exception as exc:  # noqa: BLE001  (inconsistent settings and weights)
                return f"{label}: the returned Conv2d's settings and weights do not fit together ({str(exc)[:150]})"
            for x in inputs:
                with torch.no_grad():
                    out = fused(torch.from_numpy(x)).numpy()
                alts = [("folding the BatchNorm with eps=1e-5 instead of the BatchNorm's own eps",
                         lambda: reference(x, ModuleSpec(bn.path, bn.args, {}, bn.state, False)))]
                if "bias" in conv.state:
                    no_bias = ModuleSpec(conv.path, conv.args, {**conv.kwargs, "bias": False},
                                         {"weight": conv.state["weight"]})
                    alts.append(("folding as if the conv had no bias: the conv's bias is scaled and shifted too",
                                 lambda: _build64(bn)(_build64(no_bias)(torch.from_numpy(x))).detach().numpy()))
                msg = check_tensor(out, reference(x), f"the fused conv's output on x of shape {_shape(x.shape)}",
                                   tol=1e-5)
                if msg:
                    return f"{label}: {msg} (compared with bn(conv(x)) in eval mode){_diagnose(out, alts)}"
            return None

        request = {"proc": "call", "fn": self.name, "args": [conv, bn], "return_args": [0, 1]}
        return Case(request, check, label, group)


# ----------------------------------------------------------------------------- make_cnn
@functools.lru_cache(maxsize=1)
def _digits():
    import coursedata

    return coursedata.digits()


def _norm_layers(facts) -> list[tuple[str, str]]:
    return [(str(name), str(kind)) for name, kind in (facts or {}).get("modules", [])
            if str(kind) in NORM_LAYER_TYPES]


class MakeCNN(Problem):
    name = "make_cnn"
    seconds = 60.0
    weights = {"unknown norm": 0.5} | {f"trains ({norm})": 0.4 for norm in NORMS}
    hints = {
        "builds each variant": "make_cnn(norm, num_classes, in_channels) must build for every norm setting and "
                               "map (N, in_channels, 8, 8) images to (N, num_classes) logits.",
        "norm layers": "use torch.nn's layers: BatchNorm2d for 'batch', GroupNorm(1, C) (or a LayerNorm over "
                       "(C, H, W)) for 'layer', InstanceNorm2d for 'instance', GroupNorm for 'group', and no "
                       "normalization layer at all for 'none'.",
        "unknown norm": "any other norm string must raise ValueError (a typo should not silently build a "
                        "network without normalization).",
        "train mode": "in training mode only batch norm mixes the samples of a batch (through its batch "
                      "statistics); layer, instance and group norm treat every sample on its own.",
        "eval mode": "in eval mode every normalization must treat samples independently: batch norm then uses "
                     "its running statistics, which nn.BatchNorm2d switches to after model.eval().",
    } | {f"trains ({norm})": f"with {TRAIN_BUDGET['epochs']} epochs of Adam (lr {TRAIN_BUDGET['lr']}, batch "
                             f"{TRAIN_BUDGET['batch_size']}) on the digits training set, make_cnn('{norm}') should "
                             f"reach {TRAIN_ACCURACY[norm]:.0%} accuracy on held-out digits (a network that learns "
                             "nothing stays near 10%). Give it enough capacity (two or three conv blocks of a few "
                             "dozen channels), do not pool the 8x8 images away before the features are learned, "
                             f"and keep it small enough that each training run ends within {TRAIN_SECONDS:.0f} s."
         for norm in NORMS}

    def cases(self, rng):
        cases = []
        for norm in NORMS:
            x = rng.uniform(0, 1, (int(rng.integers(2, 6)), 1, 8, 8)).astype(np.float32)
            cases.append(self._build_case("builds each variant", norm, {}, x))
        classes, channels = int(rng.integers(3, 8)), int(rng.choice([2, 3]))
        x = rng.uniform(0, 1, (3, channels, 8, 8)).astype(np.float32)
        cases.append(self._build_case("builds each variant", str(rng.choice(NORMS)),
                                      {"num_classes": classes, "in_channels": channels}, x))
        for norm in NORMS:
            cases.append(self._layers_case(norm))
        for bad in rng.choice(["batchnorm", "Batch", "bn", "layernorm", "groups", "", "None"], size=2, replace=False):
            cases.append(raises_case(self, "unknown norm", {}, args=(str(bad),), label=f"make_cnn({str(bad)!r})"))
        for norm in NORMS:
            cases.append(self._independence_case(rng, "train mode", norm, train=True))
        for norm in NORMS:
            cases.append(self._independence_case(rng, "eval mode", norm, train=False))
        for norm in NORMS:
            cases.append(self._train_case(norm))
        return cases

    def _build_case(self, group, norm, kwargs, x):
        label = f"make_cnn({norm!r}" + "".join(f", {k}={v}" for k, v in kwargs.items()) + ")"
        classes = kwargs.get("num_classes", 10)

        def check(outcome: Outcome):
            outputs = outcome.get("outputs") or []
            if outcome.get("load_error") or not outputs:
                return f"{label}: no output was recorded"
            out = outputs[0]
            if not isinstance(out, np.ndarray):
                return f"{label}: the model's output on x of shape {_shape(x.shape)} is {describe(out)}, not a tensor"
            if tuple(out.shape) != (x.shape[0], classes):
                return (f"{label}: on x of shape {_shape(x.shape)} the output has shape {_shape(out.shape)}, "
                        f"expected {_shape((x.shape[0], classes))}")
            if out.dtype != np.float32:
                return f"{label}: the output has dtype {out.dtype}, expected float32"
            if not np.all(np.isfinite(out)):
                return f"{label}: the output contains NaN or inf values"
            return None

        request = {"proc": "module", "cls": self.name, "args": [norm], "kwargs": kwargs, "inputs": [x],
                   "train": False}
        return Case(request, check, label, group)

    def _layers_case(self, norm):
        label = f"make_cnn({norm!r})"

        def check(outcome: Outcome):
            facts = outcome.get("facts") or {}
            found = _norm_layers(facts)
            kinds = sorted({kind for _, kind in found})
            if norm == "none":
                if found:
                    return f"{label} contains normalization layers ({', '.join(kinds)}); 'none' should have none"
                return None
            if not found:
                return f"{label} contains no torch.nn normalization layer (expected {LAYER_NAMES[norm]})"
            wrong = [k for k in kinds if k not in EXPECTED_LAYERS[norm]]
            if wrong:
                return f"{label} contains {', '.join(wrong)}, which is not {LAYER_NAMES[norm]}"
            if norm == "layer":
                shapes = facts.get("state_shapes", {})
                for name, kind in found:
                    weight = shapes.get(f"{name}.weight")
                    if kind == "LayerNorm" and weight is not None and len(weight) < 3:
                        return (f"{label}: its LayerNorm '{name}' normalises over the last {len(weight)} "
                                "dimension(s) only; layer norm in a CNN covers (C, H, W)")
            return None

        return Case({"proc": "module", "cls": self.name, "args": [norm]}, check, label, "norm layers")

    def _independence_case(self, rng, group, norm, train):
        x = rng.uniform(0, 1, (8, 1, 8, 8)).astype(np.float32)
        k = int(rng.integers(2, 4))
        mode = "training" if train else "eval"
        label = f"make_cnn({norm!r}) in {mode} mode on a batch of 8 and on its first {k} samples"
        expect_mixing = train and norm == "batch"

        def check(outcome: Outcome):
            outputs = outcome.get("outputs") or []
            if len(outputs) != 2 or not all(isinstance(o, np.ndarray) for o in outputs):
                return f"{label}: the outputs could not be recorded"
            full, part = outputs
            if full.shape[0] != 8 or part.shape[0] != k or full.shape[1:] != part.shape[1:]:
                return f"{label}: the outputs have shapes {_shape(full.shape)} and {_shape(part.shape)}"
            err = rel_error(full[:k], part)
            if expect_mixing:
                if err < 1e-4:
                    return (f"{label}: the first samples' outputs do not depend on the rest of the batch; in "
                            "training mode batch norm normalises with the batch's statistics")
                return None
            kinds = {str(kind) for _, kind in (outcome.get("facts") or {}).get("modules", [])}
            if train and any(kind.startswith(("Dropout", "AlphaDropout", "FeatureAlphaDropout")) for kind in kinds):
                return None  # dropout makes training-mode outputs random: nothing to compare
            if err > 1e-4:
                why = ("in eval mode no sample's output may depend on the others (batch norm must use its running "
                       "statistics: use nn.BatchNorm2d, which switches on model.eval())" if not train else
                       f"'{norm}' should treat each sample on its own, but the outputs depend on the rest of the batch")
                return f"{label}: {why}"
            return None

        request = {"proc": "module", "cls": self.name, "args": [norm], "inputs": [x, x[:k]], "train": train}
        return Case(request, check, label, group)

    def _train_case(self, norm):
        data = _digits()
        threshold = TRAIN_ACCURACY[norm]
        budget = TRAIN_BUDGET
        label = (f"make_cnn({norm!r}) trained {budget['epochs']} epochs on the digits ({len(data.y_train)} images) "
                 f"and tested on {len(data.y_test)} held-out ones")

        def check(outcome: Outcome):
            logits = outcome.get("eval_logits")
            if not isinstance(logits, np.ndarray) or logits.shape != (len(data.y_test), 10):
                return f"{label}: the logits on the held-out images are {describe(logits)}, expected shape " \
                       f"{_shape((len(data.y_test), 10))}"
            history = outcome.get("history") or []
            if not np.all(np.isfinite(logits)) or any(not np.isfinite(h) for h in history):
                return f"{label}: the training loss or the logits became NaN or inf"
            accuracy = float(np.mean(np.argmax(logits, axis=1) == data.y_test))
            if accuracy < threshold:
                losses = ", ".join(f"{h:.2f}" for h in history)
                return (f"{label}: accuracy {accuracy:.1%}, below the {threshold:.0%} bar "
                        f"(training loss per epoch: {losses})")
            return None

        request = {"proc": "train", "factory": self.name, "args": [norm], "x_train": data.x_train,
                   "y_train": data.y_train, "x_eval": data.x_test, "device": "auto", "seconds": TRAIN_SECONDS,
                   **budget}
        return Case(request, check, label, f"trains ({norm})")


PROBLEMS = [BatchNorm(), LayerNorm(), InstanceNorm(), GroupNorm(), FuseConvBN(), MakeCNN()]
