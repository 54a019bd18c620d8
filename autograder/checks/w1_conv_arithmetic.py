"""Hidden checks for week 1 (``course/source/w1_conv_arithmetic``).

References come from :mod:`solutions.w1_conv_arithmetic`, computed here in the
judge's process; the kernel only ever sees the inputs.
"""
from __future__ import annotations

import importlib

import numpy as np
import torch

from gradekit.codec import ALLOWED_MODULE_PREFIXES, ModuleSpec, Unsupported
from solutions import w1_conv_arithmetic as ref

from ..compare import check_int, check_tensor, describe
from ..problem import Case, Outcome, Problem

CONV_BANNED_NAMES = ("conv2d", "Conv2d", "LazyConv2d", "convolution", "_convolution",
                     "_conv_forward", "conv_transpose2d", "ConvTranspose2d", "cudnn_convolution",
                     "mkldnn_convolution", "deform_conv2d")
CONV_BANNED_OPS = ("conv2d", "convolution", "_convolution", "conv_transpose2d",
                   "aten.convolution", "aten._convolution", "aten.cudnn_convolution",
                   "aten.mkldnn_convolution", "aten.thnn_conv2d", "aten._slow_conv2d_forward",
                   "aten.slow_conv_dilated2d", "aten._conv_depthwise2d", "aten.conv2d",
                   "aten.convolution_overrideable", "aten._nnpack_spatial_convolution")
POOL_BANNED_NAMES = ("max_pool2d", "MaxPool2d", "max_pool2d_with_indices", "_max_pool2d",
                     "adaptive_max_pool2d", "AdaptiveMaxPool2d", "adaptive_max_pool2d_with_indices",
                     "fractional_max_pool2d", "FractionalMaxPool2d", "max_pool1d", "MaxPool1d",
                     "max_pool3d", "MaxPool3d", "max_pool1d_with_indices", "max_pool3d_with_indices")
POOL_BANNED_OPS = ("max_pool2d", "_max_pool2d", "max_pool2d_with_indices", "adaptive_max_pool2d",
                   "adaptive_max_pool2d_with_indices", "fractional_max_pool2d", "max_pool1d",
                   "max_pool1d_with_indices", "max_pool3d", "max_pool3d_with_indices",
                   "aten.max_pool2d", "aten.max_pool2d_with_indices", "aten.adaptive_max_pool2d",
                   "aten.fractional_max_pool2d", "aten.max_pool1d", "aten.max_pool1d_with_indices",
                   "aten.max_pool3d", "aten.max_pool3d_with_indices", "aten.mkldnn_max_pool2d",
                   "aten.quantized_max_pool2d", "aten._mps_max_pool2d")


def fmt_call(name: str, args: dict) -> str:
    inner = ", ".join(f"{k}={v}" for k, v in args.items())
    return f"{name}({inner})"


def shapes_label(**tensors) -> str:
    return ", ".join(f"{k} of shape {tuple(v.shape)}" for k, v in tensors.items())


def raises_case(problem: Problem, group: str, kwargs: dict, error: str = "ValueError",
                args: tuple = (), label: str | None = None) -> Case:
    """A case whose right answer is raising ``error``.

    ``kwargs`` (and ``args``, for tensors) are the call's arguments; ``label``
    describes the call when the arguments are too large to print.
    """
    label = label or fmt_call(problem.name, kwargs)
    return Case(problem.call(*args, **kwargs),
                lambda o: f"{label} returned {describe(o.value)}; it should raise {error}",
                label, group, raises=error)


def int_case(problem: Problem, group: str, args: dict, reference) -> Case:
    """A case whose answer is an int, computed by ``reference(**args)``."""
    expected = reference(**args)
    label = fmt_call(problem.name, args)
    return Case(problem.call(**args), lambda o: check_int(o.value, expected, label), label, group)


def _tensor(rng, shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def _odd_size(rng, low: int, high: int) -> int:
    return int(rng.integers(low // 2, high // 2)) * 2 + 1


def _kw_text(kwargs: dict) -> str:
    return "".join(f", {k}={v}" for k, v in kwargs.items())


# ----------------------------------------------------------------------------- sizes
class ConvOutputSize(Problem):
    name = "conv_output_size"
    hints = {
        "basic": "start from the kernel sliding one pixel at a time over the input.",
        "stride": "with stride s, the kernel moves s pixels between outputs; count positions, rounding down.",
        "padding": "padding is added on each side of the input, as in nn.Conv2d(padding=p).",
        "dilation": "a dilated kernel of size k spans dilation * (k - 1) + 1 input pixels.",
        "invalid": "a kernel larger than the padded input leaves no valid position: raise ValueError.",
    }

    def cases(self, rng):
        cases = []
        for _ in range(3):
            size = int(rng.integers(5, 40))
            args = dict(size=size, kernel_size=int(rng.choice([1, 2, 3, 4, 5, 7])), stride=1, padding=0, dilation=1)
            cases.append(int_case(self, "basic", args, ref.conv_output_size))
        for i in range(3):
            while True:
                size, kernel, stride = int(rng.integers(6, 40)), int(rng.choice([1, 2, 3, 5])), int(rng.integers(2, 5))
                if i == 2 or (size - kernel) % stride:  # a remainder: rounding down matters
                    break
            args = dict(size=size, kernel_size=kernel, stride=stride, padding=0, dilation=1)
            cases.append(int_case(self, "stride", args, ref.conv_output_size))
        for _ in range(3):
            args = dict(size=int(rng.integers(3, 30)), kernel_size=int(rng.choice([3, 4, 5, 7])),
                        stride=int(rng.integers(1, 4)), padding=int(rng.integers(1, 4)), dilation=1)
            args["size"] = max(args["size"], args["kernel_size"])
            cases.append(int_case(self, "padding", args, ref.conv_output_size))
        for _ in range(3):
            kernel, dilation = int(rng.choice([2, 3, 4, 5])), int(rng.integers(2, 5))
            span = dilation * (kernel - 1) + 1
            args = dict(size=int(rng.integers(span, span + 25)), kernel_size=kernel,
                        stride=int(rng.integers(1, 4)), padding=int(rng.integers(0, 3)), dilation=dilation)
            cases.append(int_case(self, "dilation", args, ref.conv_output_size))
        size = int(rng.integers(1, 4))
        cases.append(raises_case(self, "invalid", dict(size=size, kernel_size=size + 2 * int(rng.integers(1, 3)) + 1,
                                                       stride=1, padding=0, dilation=1)))
        size = int(rng.integers(5, 9))
        cases.append(raises_case(self, "invalid", dict(size=size, kernel_size=3, stride=1, padding=0,
                                                       dilation=size)))
        return cases


class ConvTransposeOutputSize(Problem):
    name = "conv_transpose_output_size"
    hints = {
        "basic": "a transposed conv with stride 1 spreads each input pixel over a kernel-sized patch: "
                 "the output grows by the kernel's extent minus one.",
        "stride": "with stride s, neighbouring input pixels land s output pixels apart.",
        "padding": "padding p removes p pixels from each side of the output (the inverse of a conv's padding).",
        "output_padding": "output_padding adds that many pixels on one side only, to pick one of the "
                          "input sizes a strided conv maps to the same output size.",
        "dilation": "a dilated kernel of size k spans dilation * (k - 1) + 1 pixels.",
        "invalid": "raise ValueError when the output would be empty, or when output_padding is not "
                   "smaller than the stride or the dilation (nn.ConvTranspose2d refuses it too).",
    }

    def cases(self, rng):
        cases = []

        def add(group, **args):
            full = dict(size=args["size"], kernel_size=args["kernel_size"], stride=args.get("stride", 1),
                        padding=args.get("padding", 0), output_padding=args.get("output_padding", 0),
                        dilation=args.get("dilation", 1))
            cases.append(int_case(self, group, full, ref.conv_transpose_output_size))

        for _ in range(2):
            add("basic", size=int(rng.integers(2, 30)), kernel_size=int(rng.choice([1, 2, 3, 4, 5, 7])))
        for _ in range(3):
            add("stride", size=int(rng.integers(2, 30)), kernel_size=int(rng.choice([2, 3, 4, 5])),
                stride=int(rng.integers(2, 5)))
        for _ in range(3):
            add("padding", size=int(rng.integers(4, 30)), kernel_size=int(rng.choice([3, 4, 5])),
                stride=int(rng.integers(1, 4)), padding=int(rng.integers(1, 3)))
        for _ in range(3):
            stride = int(rng.integers(2, 5))
            add("output_padding", size=int(rng.integers(3, 30)), kernel_size=int(rng.choice([2, 3, 4, 5])),
                stride=stride, padding=int(rng.integers(0, 2)), output_padding=int(rng.integers(1, stride)))
        for _ in range(3):
            add("dilation", size=int(rng.integers(3, 30)), kernel_size=int(rng.choice([2, 3, 5])),
                stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2)), dilation=int(rng.integers(2, 4)))
        stride = int(rng.integers(1, 4))
        cases.append(raises_case(self, "invalid", dict(size=int(rng.integers(3, 20)), kernel_size=3, stride=stride,
                                                       padding=0, output_padding=stride, dilation=1)))
        cases.append(raises_case(self, "invalid", dict(size=1, kernel_size=int(rng.choice([1, 2])), stride=1,
                                                       padding=int(rng.integers(1, 3)), output_padding=0, dilation=1)))
        return cases


class SamePadding(Problem):
    name = "same_padding"
    hints = {
        "basic": "with stride 1 a kernel spanning s pixels shrinks the size by s - 1; pad half of that on each side.",
        "dilation": "a dilated kernel of size k spans dilation * (k - 1) + 1 pixels: pad for the span, "
                    "not for kernel_size (an even kernel with an even dilation has an odd span).",
        "invalid": "an even span would need unequal padding on the two sides: raise ValueError.",
    }

    def cases(self, rng):
        cases = []
        for k in rng.choice([1, 3, 5, 7, 9, 11], size=3, replace=False):
            cases.append(int_case(self, "basic", dict(kernel_size=int(k)), ref.same_padding))
        for _ in range(2):
            args = dict(kernel_size=int(rng.choice([3, 5, 7])), dilation=int(rng.integers(2, 5)))
            cases.append(int_case(self, "dilation", args, ref.same_padding))
        args = dict(kernel_size=int(rng.choice([2, 4, 6])), dilation=int(rng.choice([2, 4])))
        cases.append(int_case(self, "dilation", args, ref.same_padding))
        cases.append(raises_case(self, "invalid", dict(kernel_size=int(rng.choice([2, 4, 6, 8])))))
        cases.append(raises_case(self, "invalid", dict(kernel_size=int(rng.choice([2, 4])),
                                                       dilation=int(rng.choice([1, 3, 5])))))
        return cases


# ----------------------------------------------------------------------------- counting
def _grouped_channels(rng, groups: int) -> tuple[int, int]:
    return groups * int(rng.integers(1, 9)), groups * int(rng.integers(1, 9))


class ConvParams(Problem):
    name = "conv_params"
    hints = {
        "basic": "the weight has out_channels x in_channels x kh x kw entries; a bias adds one per output channel.",
        "no bias": "with bias=False there is no bias vector.",
        "kernel tuple": "kernel_size may be an (h, w) tuple: multiply both sides of the kernel.",
        "groups": "with groups=g each filter sees only in_channels / g input channels.",
        "invalid": "in_channels and out_channels must both be divisible by groups: raise ValueError otherwise.",
    }

    def cases(self, rng):
        cases = []

        def add(group, **args):
            cases.append(int_case(self, group, args, ref.conv_params))

        for _ in range(2):
            add("basic", in_channels=int(rng.integers(1, 65)), out_channels=int(rng.integers(1, 65)),
                kernel_size=int(rng.choice([1, 3, 5, 7])))
        for _ in range(2):
            add("no bias", in_channels=int(rng.integers(1, 65)), out_channels=int(rng.integers(1, 65)),
                kernel_size=int(rng.choice([1, 2, 3, 5])), bias=False)
        for _ in range(2):
            kh = int(rng.integers(1, 6))
            add("kernel tuple", in_channels=int(rng.integers(1, 33)), out_channels=int(rng.integers(1, 33)),
                kernel_size=(kh, kh + int(rng.integers(1, 4))), bias=bool(rng.integers(0, 2)))
        for _ in range(2):
            groups = int(rng.choice([2, 3, 4, 8]))
            c_in, c_out = _grouped_channels(rng, groups)
            add("groups", in_channels=c_in, out_channels=c_out, kernel_size=int(rng.choice([1, 3, 5])),
                bias=bool(rng.integers(0, 2)), groups=groups)
        channels = int(rng.integers(2, 33))
        add("groups", in_channels=channels, out_channels=channels * int(rng.integers(1, 3)),
            kernel_size=(3, 3), bias=False, groups=channels)
        groups = int(rng.choice([2, 4]))
        cases.append(raises_case(self, "invalid", dict(in_channels=groups * int(rng.integers(1, 5)) + 1,
                                                       out_channels=groups * 2, kernel_size=3, groups=groups)))
        cases.append(raises_case(self, "invalid", dict(in_channels=groups * 2, out_channels=groups * 3 + 1,
                                                       kernel_size=3, groups=groups)))
        return cases


class ConvMacs(Problem):
    name = "conv_macs"
    hints = {
        "basic": "each output value is one dot product of in_channels x kh x kw multiply-accumulates; "
                 "count output values per sample (a MAC is one multiply plus one add, not two FLOPs).",
        "kernel tuple": "kernel_size may be an (h, w) tuple.",
        "non-square output": "out_size may be an (h, w) tuple with h != w.",
        "groups": "with groups=g each output value only sums over in_channels / g input channels.",
        "invalid": "in_channels and out_channels must both be divisible by groups: raise ValueError otherwise.",
    }

    def cases(self, rng):
        cases = []

        def add(group, **args):
            cases.append(int_case(self, group, args, ref.conv_macs))

        add("basic", in_channels=3, out_channels=10, kernel_size=5, out_size=32)
        add("basic", in_channels=int(rng.integers(1, 65)), out_channels=int(rng.integers(1, 65)),
            kernel_size=int(rng.choice([1, 3, 5])), out_size=int(rng.integers(1, 57)))
        for _ in range(2):
            kh = int(rng.integers(1, 6))
            add("kernel tuple", in_channels=int(rng.integers(1, 33)), out_channels=int(rng.integers(1, 33)),
                kernel_size=(kh + int(rng.integers(1, 3)), kh), out_size=int(rng.integers(2, 40)))
        for _ in range(2):
            oh = int(rng.integers(2, 40))
            add("non-square output", in_channels=int(rng.integers(1, 33)), out_channels=int(rng.integers(1, 33)),
                kernel_size=int(rng.choice([1, 3, 5])), out_size=(oh, oh + int(rng.integers(1, 9))))
        for _ in range(2):
            groups = int(rng.choice([2, 3, 4, 8]))
            c_in, c_out = _grouped_channels(rng, groups)
            add("groups", in_channels=c_in, out_channels=c_out, kernel_size=int(rng.choice([1, 3, 5])),
                out_size=int(rng.integers(2, 30)), groups=groups)
        channels = int(rng.integers(2, 33))
        add("groups", in_channels=channels, out_channels=channels, kernel_size=(3, 3),
            out_size=(int(rng.integers(2, 20)), int(rng.integers(2, 20))), groups=channels)
        groups = int(rng.choice([2, 3]))
        cases.append(raises_case(self, "invalid", dict(in_channels=groups * 2 + 1, out_channels=groups * 4,
                                                       kernel_size=3, out_size=8, groups=groups)))
        return cases


class ReceptiveField(Problem):
    name = "receptive_field"
    hints = {
        "stride 1": "with stride 1 every layer widens the field by the kernel's extent minus one.",
        "strides": "after a layer with stride s, one step in its output is s input steps further: keep a "
                   "running 'jump' (product of the earlier strides) and scale each later layer's growth by it.",
        "dilation": "a dilated kernel of size k spans dilation * (k - 1) + 1 positions of its input.",
        "mixed": "combine the jump of earlier strides with each layer's dilated span.",
    }

    def cases(self, rng):
        cases = []

        def add(group, layers):
            args = {"layers": [tuple(int(v) for v in layer) for layer in layers]}
            cases.append(int_case(self, group, args, ref.receptive_field))

        add("stride 1", [(3, 1, 1)] * int(rng.integers(2, 5)))
        add("stride 1", [(int(rng.choice([1, 3, 5, 7])), 1, 1) for _ in range(int(rng.integers(1, 5)))])
        for _ in range(2):
            layers = [(int(rng.integers(2, 6)), 2, 1)]  # an early stride: later layers grow by the jump
            layers += [(int(rng.choice([1, 2, 3, 5])), int(rng.integers(1, 3)), 1) for _ in range(int(rng.integers(2, 4)))]
            layers.append((3, 1, 1))
            add("strides", layers)
        add("dilation", [(3, 1, 1), (3, 1, 2), (3, 1, int(rng.integers(3, 5)))])
        add("dilation", [(int(rng.choice([2, 3, 5])), 1, int(rng.integers(1, 5))) for _ in range(int(rng.integers(2, 5)))]
            + [(3, 1, 2)])
        layers = [(7, 2, 1), (3, 2, 1)]  # a ResNet-like stem, then random blocks
        layers += [(int(rng.choice([1, 3])), int(rng.integers(1, 3)), int(rng.integers(1, 3))) for _ in range(3)]
        add("mixed", layers)
        add("mixed", [(int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 4)))
                      for _ in range(int(rng.integers(3, 6)))] + [(3, 1, 1)])
        return cases


# ----------------------------------------------------------------------------- tensors
def _forward_case(problem: Problem, group: str, label: str, args: list, kwargs: dict, reference) -> Case:
    """A forward case: ``problem.name(*args, **kwargs)`` compared with ``reference`` (arrays in ``args``)."""

    def check(outcome: Outcome):
        targs = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
        expected = reference(*targs, **kwargs).numpy()
        msg = check_tensor(outcome.value, expected, "the output")
        return None if msg is None else f"{label}: {msg}"

    return Case({"proc": "call", "fn": problem.name, "args": list(args), "kwargs": kwargs}, check, label, group)


def _backward_case(problem: Problem, group: str, label: str, args: list, kwargs: dict, reference,
                   rng, names: dict[int, str]) -> Case:
    """Compare float64 autograd gradients for the tensor arguments at positions ``names``."""
    targs = [torch.from_numpy(a).requires_grad_(i in names) if isinstance(a, np.ndarray) else a
             for i, a in enumerate(args)]
    out = reference(*targs, **kwargs)
    grad_out = _tensor(rng, tuple(out.shape))
    wrt = sorted(names)

    def check(outcome: Outcome):
        msg = check_tensor(outcome.value, out.detach().numpy(), "the output")
        if msg:
            return f"{label}: {msg}"
        if outcome.get("grad_error"):
            err = outcome.grad_error
            return f"{label}: backward raised {err.get('type')}: {err.get('message', '')[:150]}"
        expected = torch.autograd.grad(out, [targs[i] for i in wrt], torch.from_numpy(grad_out), retain_graph=True)
        grads = outcome.get("grads") or {}
        for key, exp in zip(wrt, expected):
            msg = check_tensor(grads.get(str(key)), exp.numpy(), f"the gradient for {names[key]}")
            if msg:
                if grads.get(str(key)) is None:
                    msg = f"no gradient reached {names[key]} (is the output still connected to it?)"
                return f"{label}: {msg}"
        return None

    request = {"proc": "call", "fn": problem.name, "args": targs, "kwargs": kwargs,
               "grad": {"grad_output": grad_out, "wrt": wrt}}
    return Case(request, check, label, group)


class Conv2d(Problem):
    name = "conv2d"
    banned_names = CONV_BANNED_NAMES
    banned_ops = CONV_BANNED_OPS
    weights = {"speed": 0.5, "invalid": 0.5}
    hints = {
        "basic": "each output value is a dot product between one filter and one input patch "
                 "(a cross-correlation: the kernel is not flipped).",
        "bias": "the bias adds one value per output channel, broadcast over the spatial positions.",
        "stride": "stride moves the window by that many pixels; the output size follows conv_output_size.",
        "padding": "zero padding is added on each side of the input before sliding the window.",
        "dilation": "dilation spreads the kernel taps apart; F.unfold takes a dilation argument.",
        "groups": "with groups=g, input channels and filters split into g independent convolutions.",
        "non-square": "height and width can differ, and stride/padding/dilation may be (h, w) tuples.",
        "float32": "keep the input's dtype: do not convert to float64 or create float32 buffers for float64 input.",
        "backward": "use differentiable tensor operations only (no .data, .numpy() or in-place writes into leaves).",
        "speed": "avoid Python loops over output pixels: gather all patches at once (F.unfold) and use one matmul.",
        "invalid": "when the input's channels are not groups x weight.shape[1], or the filters do not split "
                   "into groups, raise ValueError saying so.",
    }

    def cases(self, rng):
        cases = []
        configs = [
            ("basic", dict(), (2, 3, 8, 8), (4, 3, 3, 3)),
            ("basic", dict(), (1, 1, 5, 5), (1, 1, 3, 3)),
            ("bias", dict(bias=True), (2, 3, 7, 7), (5, 3, 3, 3)),
            ("stride", dict(stride=2), (2, 3, 9, 9), (4, 3, 3, 3)),
            ("stride", dict(stride=3, bias=True), (1, 2, 10, 10), (3, 2, 2, 2)),
            ("padding", dict(padding=1), (2, 3, 6, 6), (4, 3, 3, 3)),
            ("padding", dict(padding=2, stride=2, bias=True), (1, 3, 7, 7), (2, 3, 5, 5)),
            ("dilation", dict(dilation=2), (1, 3, 9, 9), (4, 3, 3, 3)),
            ("dilation", dict(dilation=2, padding=2, bias=True), (2, 2, 8, 8), (3, 2, 3, 3)),
            ("groups", dict(groups=2), (2, 4, 6, 6), (6, 2, 3, 3)),
            ("groups", dict(groups=3, padding=1, bias=True), (1, 6, 5, 5), (6, 2, 3, 3)),
            ("groups", dict(groups=4, padding=1), (1, 4, 5, 5), (4, 1, 3, 3)),
            ("non-square", dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2)), (1, 3, 7, 11), (2, 3, 3, 3)),
            ("non-square", dict(padding=1), (2, 2, 5, 9), (3, 2, 3, 2)),
        ]
        for group, kw, x_shape, w_shape in configs:
            x_shape = (x_shape[0], x_shape[1], x_shape[2] + int(rng.integers(0, 3)), x_shape[3] + int(rng.integers(0, 3)))
            cases.append(self._forward(rng, group, kw, x_shape, w_shape, np.float64))
        cases.append(self._forward(rng, "float32", dict(padding=1, bias=True), (2, 3, 6, 7), (4, 3, 3, 3), np.float32))
        cases.append(self._backward(rng, dict(stride=2, padding=1, bias=True), (2, 3, 7, 6), (4, 3, 3, 3)))
        cases.append(self._backward(rng, dict(groups=2, dilation=2, padding=1), (1, 4, 8, 9), (4, 2, 3, 3)))
        cases.append(self._backward(rng, dict(stride=(1, 2), padding=(0, 1), bias=True), (1, 2, 6, 9), (3, 2, 2, 3)))
        cases.append(self._speed_case(rng))
        for x_shape, w_shape in (((1, 5, 6, 7), (4, 2, 3, 3)), ((1, 4, 6, 7), (3, 2, 3, 3))):
            x, w = _tensor(rng, x_shape), _tensor(rng, w_shape)
            label = f"conv2d on x {x_shape}, weight {w_shape}, groups=2"
            cases.append(raises_case(self, "invalid", {"groups": 2}, args=(x, w), label=label))
        return cases

    @staticmethod
    def _inputs(rng, kw, x_shape, w_shape, dtype):
        x = _tensor(rng, x_shape, dtype)
        w = _tensor(rng, w_shape, dtype)
        kwargs = {k: v for k, v in kw.items() if k != "bias"}
        b = _tensor(rng, (w_shape[0],), dtype) if kw.get("bias") else None
        return x, w, b, kwargs

    @staticmethod
    def _label(prefix, x, w, b, kwargs, dtype=np.float64):
        label = f"{prefix} on x {tuple(x.shape)}, weight {tuple(w.shape)}" + \
            (", with bias" if b is not None else "") + _kw_text(kwargs)
        return label + (" (float32)" if dtype == np.float32 else "")

    def _forward(self, rng, group, kw, x_shape, w_shape, dtype):
        x, w, b, kwargs = self._inputs(rng, kw, x_shape, w_shape, dtype)
        label = self._label("conv2d", x, w, b, kwargs, dtype)
        return _forward_case(self, group, label, [x, w, b], kwargs, ref.conv2d)

    def _backward(self, rng, kw, x_shape, w_shape):
        x, w, b, kwargs = self._inputs(rng, kw, x_shape, w_shape, np.float64)
        label = self._label("gradients of conv2d", x, w, b, kwargs)
        names = {0: "x", 1: "weight"} | ({2: "bias"} if b is not None else {})
        return _backward_case(self, "backward", label, [x, w, b], kwargs, ref.conv2d, rng, names)

    def _speed_case(self, rng):
        x = _tensor(rng, (8, 16, 32, 32), np.float32)
        w = _tensor(rng, (32, 16, 3, 3), np.float32)
        label = "conv2d on x (8, 16, 32, 32), 32 filters 3x3, padding=1, timed against F.conv2d"

        def check(outcome: Outcome):
            # Speed only counts for a right answer: a fast object that is not the output
            # (or a wrong tensor) never passes this group.
            expected = ref.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
            msg = check_tensor(outcome.get("value"), expected, "the output")
            if msg:
                return f"{label}: {msg}"
            ratio = outcome.student_s / max(outcome.baseline_s, 1e-9)
            if ratio > 25:
                return f"{label}: {ratio:.0f}x slower than F.conv2d (the bound is 25x)"
            return None

        request = {"proc": "timing", "fn": self.name, "baseline": "torch.nn.functional.conv2d",
                   "args": [x, w], "kwargs": {"padding": 1}, "repeats": 5}
        return Case(request, check, label, "speed")


class MaxPool2d(Problem):
    name = "max_pool2d"
    banned_names = POOL_BANNED_NAMES
    banned_ops = POOL_BANNED_OPS
    weights = {"invalid": 0.5}
    hints = {
        "basic": "each output value is the maximum of one kernel_size x kernel_size window; "
                 "stride defaults to kernel_size (windows side by side, not overlapping).",
        "stride": "with stride s < kernel_size the windows overlap; the output size rounds down as for a conv.",
        "padding": "pad with -inf, not zeros, so that padding never wins the max (inputs can be all negative).",
        "non-square": "kernel_size, stride and padding may be (h, w) tuples, and H may differ from W.",
        "float32": "keep the input's dtype.",
        "backward": "use differentiable operations (unfold/view, amax or max): the gradient flows to the "
                    "maximum of each window, accumulating where windows overlap.",
        "invalid": "as in F.max_pool2d, padding larger than half the kernel must raise ValueError "
                   "(a window could then hold only padding).",
    }

    def cases(self, rng):
        cases = []

        def size(low=6, high=14):
            return int(rng.integers(low, high))

        def forward(group, shape, kernel_size, stride=None, padding=None, dtype=np.float64, negative=False):
            x = _tensor(rng, shape, dtype)
            if negative:
                x = (-np.abs(x) - 0.5).astype(dtype)
            kwargs = {} if stride is None else {"stride": stride}
            if padding is not None:
                kwargs["padding"] = padding
            label = f"max_pool2d on x {tuple(shape)}, kernel_size={kernel_size}" + _kw_text(kwargs) + \
                (" (all values negative)" if negative else "") + (" (float32)" if dtype == np.float32 else "")
            cases.append(_forward_case(self, group, label, [x, kernel_size], kwargs, ref.max_pool2d))

        forward("basic", (2, 3, 8, 8), 2)
        forward("basic", (1, 2, _odd_size(rng, 7, 15), _odd_size(rng, 7, 15)), int(rng.integers(2, 4)))
        forward("stride", (2, 3, size(), size()), 3, stride=int(rng.integers(1, 3)))
        forward("stride", (1, 4, size(), size()), 2, stride=3)
        forward("padding", (2, 3, _odd_size(rng, 5, 12), size()), 3, stride=2, padding=1, negative=True)
        forward("padding", (1, 2, size(), size()), int(rng.choice([2, 3])), stride=1, padding=1)
        forward("padding", (1, 3, size(), size()), 5, stride=int(rng.integers(1, 4)), padding=2, negative=True)
        forward("non-square", (2, 2, _odd_size(rng, 7, 13), size(10, 16)), (3, 2), stride=(2, 1), padding=(1, 0))
        forward("non-square", (1, 3, size(), size()), (2, 3), stride=None, padding=(0, 1))
        forward("float32", (2, 3, size(), size()), 3, stride=2, padding=1, dtype=np.float32)
        forward("float32", (1, 4, size(), size()), 2, dtype=np.float32)
        for shape, k, kwargs in (((2, 3, size(), size()), 3, {"stride": 2, "padding": 1}),
                                 ((1, 2, size(), size()), (3, 2), {"stride": 1})):
            x = _tensor(rng, shape)
            label = f"gradients of max_pool2d on x {shape}, kernel_size={k}" + _kw_text(kwargs)
            cases.append(_backward_case(self, "backward", label, [x, k], kwargs, ref.max_pool2d, rng, {0: "x"}))
        x = _tensor(rng, (1, 2, 8, 8))
        cases.append(raises_case(self, "invalid", {"stride": 1, "padding": 2}, args=(x, 3),
                                 label="max_pool2d on x (1, 2, 8, 8), kernel_size=3, stride=1, padding=2"))
        return cases


class ComposeConvs(Problem):
    name = "compose_convs"
    hints = {
        "basic": "two cross-correlations in a row equal one cross-correlation with the full convolution "
                 "of their kernels (mind the flip), summed over the middle channels.",
        "kernel sizes": "the composed kernel spans k1 + k2 - 1 pixels, also when k1 != k2.",
        "channels": "w1 is (C1, C0, k1, k1), w2 is (C2, C1, k2, k2); the result maps C0 to C2 channels: "
                    "sum over C1.",
        "float32": "keep the input's dtype.",
    }

    def cases(self, rng):
        cases = []

        def add(group, c0, c1, c2, k1, k2, dtype=np.float64):
            w1, w2 = _tensor(rng, (c1, c0, k1, k1), dtype), _tensor(rng, (c2, c1, k2, k2), dtype)
            label = f"compose_convs on w1 {w1.shape}, w2 {w2.shape}" + (" (float32)" if dtype == np.float32 else "")
            cases.append(_forward_case(self, group, label, [w1, w2], {}, ref.compose_convs))

        c = int(rng.integers(1, 4))
        add("basic", c, c, c, 3, 3)
        add("basic", 1, 1, 1, int(rng.choice([2, 3])), 3)
        for _ in range(2):
            k1, k2 = rng.choice([1, 2, 3, 4, 5], size=2, replace=False)
            add("kernel sizes", int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(k1), int(k2))
        for _ in range(2):
            c0, c1, c2 = (int(v) for v in rng.choice(np.arange(1, 7), size=3, replace=False))
            add("channels", c0, c1, c2, int(rng.choice([1, 3])), int(rng.choice([2, 3])))
        add("float32", 2, 3, 4, 3, 2, dtype=np.float32)
        return cases


# ----------------------------------------------------------------------------- profile_model
def _spec(path: str, *args, **kwargs) -> ModuleSpec:
    return ModuleSpec(path, args=tuple(args), kwargs=kwargs)


def _nn(name: str, *args, **kwargs) -> ModuleSpec:
    return _spec(f"torch.nn.{name}", *args, **kwargs)


def spec_text(value) -> str:
    """A constructor-like description of a ``ModuleSpec`` for messages (inputs only)."""
    if isinstance(value, ModuleSpec):
        name = value.path.removeprefix("torch.nn.") if value.path.startswith("torch.nn.") else value.path
        parts = [spec_text(v) for v in value.args] + [f"{k}={spec_text(v)}" for k, v in value.kwargs.items()]
        return f"{name}({', '.join(parts)})"
    return repr(value)


def _build(value):
    """Build a ``ModuleSpec`` in the judge (on the meta device: only shapes and counts matter)."""
    if isinstance(value, ModuleSpec):
        if not value.path.startswith(ALLOWED_MODULE_PREFIXES):
            raise ValueError(f"module {value.path} is not allowed")
        module_name, _, attr = value.path.rpartition(".")
        factory = getattr(importlib.import_module(module_name), attr)
        return factory(*[_build(v) for v in value.args], **{k: _build(v) for k, v in value.kwargs.items()})
    if isinstance(value, (list, tuple)):
        return type(value)(_build(v) for v in value)
    return value


_PROFILE_CACHE: dict[str, tuple[list[dict], dict[str, str]]] = {}


def reference_profile(spec: ModuleSpec, input_size: tuple) -> tuple[list[dict], dict[str, str]]:
    """The reference rows for ``spec`` at ``input_size``, and the type name of each leaf."""
    key = repr((spec, tuple(input_size)))
    if key not in _PROFILE_CACHE:
        with torch.device("meta"):
            model = _build(spec)
        model.eval()
        rows = ref.profile_model(model, tuple(input_size))
        types = {name: type(m).__name__ for name, m in model.named_modules()}
        _PROFILE_CACHE[key] = (rows, types)
    return _PROFILE_CACHE[key]


_ROW_FIELDS = ("name", "output_shape", "params", "macs", "activations")


def _field_type_error(row: int, key: str, value) -> str | None:
    if key == "name":
        return None if isinstance(value, str) else f"row {row}: 'name' should be a str but is {describe(value)}"
    if key == "output_shape":
        if not isinstance(value, (tuple, list)) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                             for v in value):
            return f"row {row}: 'output_shape' should be a tuple of ints but is {describe(value)}"
        return None
    if isinstance(value, float) and value.is_integer():
        return f"row {row}: '{key}' is the float {value}; use an int"
    if isinstance(value, bool) or not isinstance(value, int):
        return f"row {row}: '{key}' should be an int but is {describe(value)}"
    return None


def check_profile(got, expected: list[dict], types: dict[str, str], label: str) -> str | None:
    """Compare rows without giving away the reference's counts."""
    if isinstance(got, Unsupported) or not isinstance(got, (list, tuple)):
        return f"{label}: should return a list of dicts but returned {describe(got)}"
    for i, row in enumerate(got):
        if not isinstance(row, dict):
            return f"{label}: row {i} should be a dict but is {describe(row)}"
        missing = [k for k in _ROW_FIELDS if k not in row]
        if missing:
            return f"{label}: row {i} has no {', '.join(repr(k) for k in missing)} key"
        for key in _ROW_FIELDS:
            msg = _field_type_error(i, key, row[key])
            if msg:
                return f"{label}: {msg}"
    if len(got) != len(expected):
        return (f"{label}: returned {len(got)} rows for a model with {len(expected)} leaf modules "
                "(one row per leaf module, in the order they run)")
    for i, (row, exp) in enumerate(zip(got, expected)):
        if row["name"] != exp["name"]:
            return (f"{label}: row {i} has name {row['name']!r}, which is not the name (as in "
                    "model.named_modules()) of the leaf module that runs at that point")
    for i, (row, exp) in enumerate(zip(got, expected)):
        where = f"row {i} (name {exp['name']!r}, a {types.get(exp['name'], 'module')})"
        if tuple(row["output_shape"]) != tuple(exp["output_shape"]):
            return f"{label}: {where}: output_shape is {tuple(row['output_shape'])}, which is not right " \
                   "(leave out the batch dimension)"
        for key in ("params", "macs", "activations"):
            if row[key] != exp[key]:
                return f"{label}: {where}: {key} is {row[key]}, which is not right"
    return None


class ProfileModel(Problem):
    name = "profile_model"
    seconds = 90.0
    hints = {
        "conv": "a Conv2d's own parameters are its weight and bias; each output value costs "
                "in_channels / groups x kh x kw MACs; activations count output elements of one sample.",
        "groups": "with groups=g each filter sees only in_channels / g input channels (parameters and MACs).",
        "linear": "a Linear layer costs in_features MACs per output value; Flatten has no parameters and no MACs.",
        "pooling": "pooling, activation and normalisation layers have 0 MACs by the course's convention, but their "
                   "rows still report output_shape and activations (and BatchNorm has parameters).",
        "nested": "only leaf modules (modules without children) get a row, named as in model.named_modules() "
                  "(e.g. '1.0'); a container's parameters must not be counted again.",
        "vgg16": "VGG-16 at (3, 224, 224) has 138,357,544 parameters and 15,470,264,320 MACs in total; "
                 "get the small models right first.",
    }

    def cases(self, rng):
        cases = []

        def hw(low=9, high=20):
            h = int(rng.integers(low, high))  # non-square, W above or below H
            d = int(rng.integers(1, 6)) * (1 if rng.integers(0, 2) else -1)
            return h, h + d if h + d >= low else h - d

        def add(group, spec, input_size):
            label = f"profile_model on {spec_text(spec)} at input_size={input_size}"

            def check(outcome: Outcome):
                rows, types = reference_profile(spec, input_size)
                return check_profile(outcome.value, rows, types, label)

            cases.append(Case(self.call(spec, tuple(input_size)), check, label, group))

        for _ in range(2):
            c0, c1, c2 = int(rng.integers(1, 5)), int(rng.integers(2, 13)), int(rng.integers(2, 11))
            k2 = (int(rng.choice([1, 3])), int(rng.choice([2, 3]))) if rng.integers(0, 2) else int(rng.choice([1, 2, 3]))
            spec = _nn("Sequential", _nn("Conv2d", c0, c1, int(rng.choice([3, 5])), stride=int(rng.integers(1, 3)),
                                         padding=int(rng.integers(0, 3))),
                       _nn("ReLU"), _nn("Conv2d", c1, c2, k2, bias=bool(rng.integers(0, 2))))
            add("conv", spec, (c0, *hw()))

        g = int(rng.choice([2, 4]))
        a, b = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        c0 = int(rng.integers(1, 4))
        spec = _nn("Sequential", _nn("Conv2d", c0, g * a, 3, padding=1),
                   _nn("Conv2d", g * a, g * b, 3, groups=g, bias=False),
                   _nn("Conv2d", g * b, g * b, 3, groups=g * b, padding=1))
        add("groups", spec, (c0, *hw()))

        c, (h, w) = int(rng.integers(1, 4)), hw(4, 9)
        hidden, classes = int(rng.integers(8, 33)), int(rng.integers(2, 11))
        spec = _nn("Sequential", _nn("Flatten"), _nn("Linear", c * h * w, hidden), _nn("ReLU"), _nn("Dropout", 0.5),
                   _nn("Linear", hidden, classes, bias=bool(rng.integers(0, 2))))
        add("linear", spec, (c, h, w))

        c = int(rng.integers(1, 9))
        spec = _nn("Sequential", _nn("BatchNorm2d", c), _nn("MaxPool2d", 2), _nn("ReLU"),
                   _nn("AvgPool2d", 3, stride=2, padding=1), _nn("AdaptiveMaxPool2d", (2, 1)))
        add("pooling", spec, (c, *hw(12, 24)))

        c0, c1, c2, classes = int(rng.integers(1, 4)), int(rng.integers(2, 9)), int(rng.integers(2, 9)), int(rng.integers(2, 11))
        spec = _nn("Sequential",
                   _nn("Sequential", _nn("Conv2d", c0, c1, 3, padding=1, bias=False), _nn("BatchNorm2d", c1), _nn("ReLU")),
                   _nn("Sequential", _nn("Conv2d", c1, c2, 3, stride=2), _nn("ReLU"), _nn("MaxPool2d", 2)),
                   _nn("AdaptiveAvgPool2d", 1), _nn("Flatten"), _nn("Linear", c2, classes))
        add("nested", spec, (c0, *hw(10, 20)))

        add("vgg16", _spec("torchvision.models.vgg16", weights=None), (3, 224, 224))
        return cases


PROBLEMS = [ConvOutputSize(), ConvTransposeOutputSize(), SamePadding(), ConvParams(), ConvMacs(),
            ReceptiveField(), Conv2d(), MaxPool2d(), ComposeConvs(), ProfileModel()]
