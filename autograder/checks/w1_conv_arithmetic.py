"""Hidden checks for week 1 (``course/source/w1_conv_arithmetic``): references from
:mod:`solutions.w1_conv_arithmetic`, computed in the judge's process; the kernel only sees inputs."""
from __future__ import annotations

import numpy as np
import torch

from solutions import w1_conv_arithmetic as ref

from ..cases import Draw, build, call, label_for, nn, question, raises, rows, spec, spec_text, tensor, timing
from ..compare import check_records
from ..ops import family_names, family_ops
from ..problem import Case, Problem, Public, hints



class ConvOutputSize(Problem):
    name = "conv_output_size"
    groups = hints("""
        basic: start from the kernel sliding one pixel at a time over the input.
        stride: with stride s, the kernel moves s pixels between outputs; count positions, rounding down.
        padding: padding is added on each side of the input, as in nn.Conv2d(padding=p).
        dilation: a dilated kernel of size k spans dilation * (k - 1) + 1 input pixels.
        invalid: a kernel larger than the padded input leaves no valid position: raise ValueError.""")

    def cases(self, draw: Draw):
        def stride_case():
            while True:  # a remainder, so that rounding down matters
                size, kernel, stride = draw.int(6, 40), draw.choice([1, 2, 3, 5]), draw.int(2, 5)
                if (size - kernel) % stride:
                    return dict(size=size, kernel_size=kernel, stride=stride)

        def dilated():
            kernel, dilation = draw.choice([2, 3, 4, 5]), draw.int(2, 5)
            span = dilation * (kernel - 1) + 1
            return dict(size=draw.int(span, span + 25), kernel_size=kernel, stride=draw.int(1, 4),
                        padding=draw.int(0, 3), dilation=dilation)

        return rows(self, ref.conv_output_size, [
            ("basic", 3, lambda: dict(size=draw.int(k := draw.choice([1, 2, 3, 4, 5, 7]), 40), kernel_size=k)),
            ("stride", 2, stride_case),
            ("stride", 1, lambda: dict(size=draw.int(6, 40), kernel_size=draw.choice([1, 2, 3, 5]),
                                       stride=draw.int(2, 5))),
            ("padding", 3, lambda: dict(size=max(draw.int(3, 30), k := draw.choice([3, 4, 5, 7])), kernel_size=k,
                                        stride=draw.int(1, 4), padding=draw.int(1, 4))),
            ("dilation", 3, dilated),
            ("invalid", 1, lambda: dict(size=(n := draw.int(1, 4)), kernel_size=n + 2 * draw.int(1, 3) + 1),
             "ValueError"),
            ("invalid", 1, lambda: dict(size=(n := draw.int(5, 9)), kernel_size=3, dilation=n), "ValueError")])


class ConvTransposeOutputSize(Problem):
    name = "conv_transpose_output_size"
    groups = hints("""
        basic: a transposed conv with stride 1 spreads each input pixel over a kernel-sized patch: the output grows by
            the kernel's extent minus one.
        stride: with stride s, neighbouring input pixels land s output pixels apart.
        padding: padding p removes p pixels from each side of the output (the inverse of a conv's padding).
        output_padding: output_padding adds that many pixels on one side only, to pick one of the input sizes a strided
            conv maps to the same output size.
        dilation: a dilated kernel of size k spans dilation * (k - 1) + 1 pixels.
        invalid: raise ValueError when the output would be empty, or when output_padding is not smaller than the stride
            or the dilation (nn.ConvTranspose2d refuses it too).""")

    def cases(self, draw: Draw):
        def size(low=2):
            return draw.int(low, 30)

        return rows(self, ref.conv_transpose_output_size, [
            ("basic", 2, lambda: dict(size=size(), kernel_size=draw.choice([1, 2, 3, 4, 5, 7]))),
            ("stride", 3, lambda: dict(size=size(), kernel_size=draw.choice([2, 3, 4, 5]), stride=draw.int(2, 5))),
            ("padding", 3, lambda: dict(size=size(4), kernel_size=draw.choice([3, 4, 5]), stride=draw.int(1, 4),
                                        padding=draw.int(1, 3))),
            ("output_padding", 3, lambda: dict(size=size(3), kernel_size=draw.choice([2, 3, 4, 5]),
                                               stride=(s := draw.int(2, 5)),
                                               padding=draw.int(0, 2), output_padding=draw.int(1, s))),
            ("dilation", 3, lambda: dict(size=size(3), kernel_size=draw.choice([2, 3, 5]), stride=draw.int(1, 3),
                                         padding=draw.int(0, 2), dilation=draw.int(2, 4))),
            ("invalid", 1, lambda: dict(size=draw.int(3, 20), kernel_size=3, stride=(s := draw.int(1, 4)),
                                        output_padding=s), "ValueError"),
            ("invalid", 1, lambda: dict(size=1, kernel_size=draw.choice([1, 2]), padding=draw.int(1, 3)),
             "ValueError")])


class SamePadding(Problem):
    name = "same_padding"
    groups = hints("""
        basic: with stride 1 a kernel spanning s pixels shrinks the size by s - 1; pad half of that on each side.
        dilation: a dilated kernel of size k spans dilation * (k - 1) + 1 pixels: pad for the span, not for kernel_size
            (an even kernel with an even dilation has an odd span).
        invalid: an even span would need unequal padding on the two sides: raise ValueError.""")

    def cases(self, draw: Draw):
        odd = iter(draw.distinct([1, 3, 5, 7, 9, 11], 3))
        return rows(self, ref.same_padding, [
            ("basic", 3, lambda: dict(kernel_size=next(odd))),
            ("dilation", 2, lambda: dict(kernel_size=draw.choice([3, 5, 7]), dilation=draw.int(2, 5))),
            ("dilation", 1, lambda: dict(kernel_size=draw.choice([2, 4, 6]), dilation=draw.choice([2, 4]))),
            ("invalid", 1, lambda: dict(kernel_size=draw.choice([2, 4, 6, 8])), "ValueError"),
            ("invalid", 1, lambda: dict(kernel_size=draw.choice([2, 4]), dilation=draw.choice([1, 3, 5])),
             "ValueError")])


def _grouped(draw: Draw) -> dict:
    """groups, in_channels and out_channels, both channel counts divisible by groups."""
    groups = draw.choice([2, 3, 4, 8])
    return dict(groups=groups, in_channels=groups * draw.int(1, 9), out_channels=groups * draw.int(1, 9))


class ConvParams(Problem):
    name = "conv_params"
    groups = hints("""
        basic: the weight has out_channels x in_channels x kh x kw entries; a bias adds one per output channel.
        no bias: with bias=False there is no bias vector.
        kernel tuple: kernel_size may be an (h, w) tuple: multiply both sides of the kernel.
        groups: with groups=g each filter sees only in_channels / g input channels.
        invalid: in_channels and out_channels must both be divisible by groups: raise ValueError otherwise.""")

    def cases(self, draw: Draw):
        def conv(low=1, high=65, **kw):
            return dict(in_channels=draw.int(low, high), out_channels=draw.int(low, high), **kw)

        return rows(self, ref.conv_params, [
            ("basic", 2, lambda: conv(kernel_size=draw.choice([1, 3, 5, 7]))),
            ("no bias", 2, lambda: conv(kernel_size=draw.choice([1, 2, 3, 5]), bias=False)),
            ("kernel tuple", 2, lambda: conv(1, 33, kernel_size=(k := draw.int(1, 6), k + draw.int(1, 4)),
                                             bias=draw.bool())),
            ("groups", 2, lambda: dict(_grouped(draw), kernel_size=draw.choice([1, 3, 5]), bias=draw.bool())),
            ("groups", 1, lambda: dict(in_channels=(c := draw.int(2, 33)), out_channels=c * draw.int(1, 3),
                                       kernel_size=(3, 3), bias=False, groups=c)),
            ("invalid", 1, lambda: dict(in_channels=(g := draw.choice([2, 4])) * draw.int(1, 5) + 1, out_channels=g * 2,
                                        kernel_size=3, groups=g), "ValueError"),
            ("invalid", 1, lambda: dict(in_channels=(g := draw.choice([2, 4])) * 2, out_channels=g * 3 + 1,
                                        kernel_size=3, groups=g), "ValueError")])


class ConvMacs(Problem):
    name = "conv_macs"
    groups = hints("""
        basic: each output value is one dot product of in_channels x kh x kw multiply-accumulates; count output values
            per sample (a MAC is one multiply plus one add, not two FLOPs).
        kernel tuple: kernel_size may be an (h, w) tuple.
        non-square output: out_size may be an (h, w) tuple with h != w.
        groups: with groups=g each output value only sums over in_channels / g input channels.
        invalid: in_channels and out_channels must both be divisible by groups: raise ValueError otherwise.""")

    def cases(self, draw: Draw):
        def conv(high=33, **kw):
            return dict(in_channels=draw.int(1, high), out_channels=draw.int(1, high), **kw)

        return rows(self, ref.conv_macs, [
            ("basic", 1, lambda: dict(in_channels=3, out_channels=10, kernel_size=5, out_size=32)),
            ("basic", 1, lambda: conv(65, kernel_size=draw.choice([1, 3, 5]), out_size=draw.int(1, 57))),
            ("kernel tuple", 2, lambda: conv(kernel_size=((k := draw.int(1, 6)) + draw.int(1, 3), k),
                                             out_size=draw.int(2, 40))),
            ("non-square output", 2, lambda: conv(kernel_size=draw.choice([1, 3, 5]),
                                                  out_size=((h := draw.int(2, 40)), h + draw.int(1, 9)))),
            ("groups", 2, lambda: dict(_grouped(draw), kernel_size=draw.choice([1, 3, 5]), out_size=draw.int(2, 30))),
            ("groups", 1, lambda: dict(in_channels=(c := draw.int(2, 33)), out_channels=c, kernel_size=(3, 3),
                                       out_size=(draw.int(2, 20), draw.int(2, 20)), groups=c)),
            ("invalid", 1, lambda: dict(in_channels=(g := draw.choice([2, 3])) * 2 + 1, out_channels=g * 4,
                                        kernel_size=3,
                                        out_size=8, groups=g), "ValueError")])


class ReceptiveField(Problem):
    name = "receptive_field"
    groups = hints("""
        stride 1: with stride 1 every layer widens the field by the kernel's extent minus one.
        strides: after a layer with stride s, one step in its output is s input steps further: keep a running 'jump'
            (product of the earlier strides) and scale each later layer's growth by it.
        dilation: a dilated kernel of size k spans dilation * (k - 1) + 1 positions of its input.
        mixed: combine the jump of earlier strides with each layer's dilated span.""")

    def cases(self, draw: Draw):
        def layers(n, kernels, strides=(1,), dilations=(1,)):
            return [(draw.choice(kernels), draw.choice(strides), draw.choice(dilations)) for _ in range(n)]

        return rows(self, ref.receptive_field, [
            ("stride 1", 1, lambda: dict(layers=[(3, 1, 1)] * draw.int(2, 5))),
            ("stride 1", 1, lambda: dict(layers=layers(draw.int(1, 5), [1, 3, 5, 7]))),
            ("strides", 2, lambda: dict(layers=[(draw.int(2, 6), 2, 1)] + layers(draw.int(2, 4), [1, 2, 3, 5], [1, 2])
                                        + [(3, 1, 1)])),  # an early stride: later layers grow by the jump
            ("dilation", 1, lambda: dict(layers=[(3, 1, 1), (3, 1, 2), (3, 1, draw.int(3, 5))])),
            ("dilation", 1, lambda: dict(layers=layers(draw.int(2, 5), [2, 3, 5], [1], [1, 2, 3, 4]) + [(3, 1, 2)])),
            ("mixed", 1, lambda: dict(layers=[(7, 2, 1), (3, 2, 1)] + layers(3, [1, 3], [1, 2], [1, 2]))),
            ("mixed", 1, lambda: dict(layers=layers(draw.int(3, 6), range(1, 6), [1, 2, 3], [1, 2, 3]) + [(3, 1, 1)]))])


class Conv2d(Problem):
    name = "conv2d"
    banned_names = family_names("convolution")
    banned_ops = family_ops("convolution")
    groups = hints("""
        basic: each output value is a dot product between one filter and one input patch (a cross-correlation: the
            kernel is not flipped).
        bias: the bias adds one value per output channel, broadcast over the spatial positions.
        stride: stride moves the window by that many pixels; the output size follows conv_output_size.
        padding: zero padding is added on each side of the input before sliding the window.
        dilation: dilation spreads the kernel taps apart; F.unfold takes a dilation argument.
        groups: with groups=g, input channels and filters split into g independent convolutions.
        non-square: height and width can differ, and stride/padding/dilation may be (h, w) tuples.
        float32: keep the input's dtype: do not convert to float64 or create float32 buffers for float64 input.
        backward: use differentiable tensor operations only (no .data, .numpy() or in-place writes into leaves).
        speed [0.5]: avoid Python loops over output pixels: gather all patches at once (F.unfold) and use one matmul.
        invalid [0.5]: when the input's channels are not groups x weight.shape[1], or the filters do not split into
            groups, raise ValueError saying so.""")
    CONFIGS = (("basic", {}, (2, 3, 8, 8), (4, 3, 3, 3)), ("basic", {}, (1, 1, 5, 5), (1, 1, 3, 3)),
               ("bias", {"bias": True}, (2, 3, 7, 7), (5, 3, 3, 3)),
               ("stride", {"stride": 2}, (2, 3, 9, 9), (4, 3, 3, 3)),
               ("stride", {"stride": 3, "bias": True}, (1, 2, 10, 10), (3, 2, 2, 2)),
               ("padding", {"padding": 1}, (2, 3, 6, 6), (4, 3, 3, 3)),
               ("padding", {"padding": 2, "stride": 2, "bias": True}, (1, 3, 7, 7), (2, 3, 5, 5)),
               ("dilation", {"dilation": 2}, (1, 3, 9, 9), (4, 3, 3, 3)),
               ("dilation", {"dilation": 2, "padding": 2, "bias": True}, (2, 2, 8, 8), (3, 2, 3, 3)),
               ("groups", {"groups": 2}, (2, 4, 6, 6), (6, 2, 3, 3)),
               ("groups", {"groups": 3, "padding": 1, "bias": True}, (1, 6, 5, 5), (6, 2, 3, 3)),
               ("groups", {"groups": 4, "padding": 1}, (1, 4, 5, 5), (4, 1, 3, 3)),
               ("non-square", {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2)}, (1, 3, 7, 11), (2, 3, 3, 3)),
               ("non-square", {"padding": 1}, (2, 2, 5, 9), (3, 2, 3, 2)))

    def cases(self, draw: Draw):
        def add(group, kw, x_shape, w_shape, dtype=np.float64, jitter=False):
            n, c, h, w = x_shape
            x_shape = (n, c, h + draw.int(0, 3), w + draw.int(0, 3)) if jitter else x_shape
            bias = draw.normal(w_shape[:1], dtype) if kw.get("bias") else None
            args = [draw.normal(x_shape, dtype), draw.normal(w_shape, dtype), bias]
            grad = {0: "x", 1: "weight"} | ({2: "bias"} if kw.get("bias") else {}) if group == "backward" else None
            return tensor(self, group, ref.conv2d, *args, grad=grad, draw=draw,
                          **{k: v for k, v in kw.items() if k != "bias"})

        cases = [add(*config, jitter=True) for config in self.CONFIGS]
        cases.append(add("float32", {"padding": 1, "bias": True}, (2, 3, 6, 7), (4, 3, 3, 3), np.float32))
        cases += [add("backward", *config) for config in (
            ({"stride": 2, "padding": 1, "bias": True}, (2, 3, 7, 6), (4, 3, 3, 3)),
            ({"groups": 2, "dilation": 2, "padding": 1}, (1, 4, 8, 9), (4, 2, 3, 3)),
            ({"stride": (1, 2), "padding": (0, 1), "bias": True}, (1, 2, 6, 9), (3, 2, 2, 3)))]
        cases.append(timing(self, "speed", ref.conv2d, lambda: ([draw.normal((8, 16, 32, 32), np.float32),
                                                           draw.normal((32, 16, 3, 3), np.float32)], {"padding": 1}),
                            "torch.nn.functional.conv2d", 25,
                            "conv2d on x (8, 16, 32, 32), 32 filters 3x3, padding=1, timed against F.conv2d"))
        for x_shape, w_shape in (((1, 5, 6, 7), (4, 2, 3, 3)), ((1, 4, 6, 7), (3, 2, 3, 3))):
            cases.append(raises(self, "invalid", draw.normal(x_shape), draw.normal(w_shape), groups=2,
                                label=f"conv2d on x {x_shape}, weight {w_shape}, groups=2"))
        return cases


class MaxPool2d(Problem):
    name = "max_pool2d"
    banned_names = family_names("pooling")
    banned_ops = family_ops("pooling")
    groups = hints("""
        basic: each output value is the maximum of one kernel_size x kernel_size window; stride defaults to kernel_size
            (windows side by side, not overlapping).
        stride: with stride s < kernel_size the windows overlap; the output size rounds down as for a conv.
        padding: pad with -inf, not zeros, so that padding never wins the max (inputs can be all negative).
        non-square: kernel_size, stride and padding may be (h, w) tuples, and H may differ from W.
        float32: keep the input's dtype.
        backward: use differentiable operations (unfold/view, amax or max): the gradient flows to the maximum of each
            window, accumulating where windows overlap.
        invalid [0.5]: as in F.max_pool2d, padding larger than half the kernel must raise ValueError (a window could
            then hold only padding).""")

    def cases(self, draw: Draw):
        size = draw.ints(6, 14)

        def pool(group, shape, kernel_size, dtype=np.float64, negative=False, grad=False, **kwargs):
            x = draw.normal(shape, dtype)
            if negative:
                x = (-np.abs(x) - 0.5).astype(dtype)
            label = label_for(self.name, ref.max_pool2d, [x, kernel_size], kwargs, "gradients of " if grad else "")
            return tensor(self, group, ref.max_pool2d, x, kernel_size, grad={0: "x"} if grad else None, draw=draw,
                          label=label + (" (all values negative)" if negative else ""), **kwargs)

        return [pool("basic", (2, 3, 8, 8), 2),
                pool("basic", (1, 2, draw.odd(7, 15), draw.odd(7, 15)), draw.int(2, 4)),
                pool("stride", (2, 3, size(), size()), 3, stride=draw.int(1, 3)),
                pool("stride", (1, 4, size(), size()), 2, stride=3),
                pool("padding", (2, 3, draw.odd(5, 12), size()), 3, stride=2, padding=1, negative=True),
                pool("padding", (1, 2, size(), size()), draw.choice([2, 3]), stride=1, padding=1),
                pool("padding", (1, 3, size(), size()), 5, stride=draw.int(1, 4), padding=2, negative=True),
                pool("non-square", (2, 2, draw.odd(7, 13), draw.int(10, 16)), (3, 2), stride=(2, 1), padding=(1, 0)),
                pool("non-square", (1, 3, size(), size()), (2, 3), padding=(0, 1)),
                pool("float32", (2, 3, size(), size()), 3, stride=2, padding=1, dtype=np.float32),
                pool("float32", (1, 4, size(), size()), 2, dtype=np.float32),
                pool("backward", (2, 3, size(), size()), 3, stride=2, padding=1, grad=True),
                pool("backward", (1, 2, size(), size()), (3, 2), stride=1, grad=True),
                raises(self, "invalid", draw.normal((1, 2, 8, 8)), 3, stride=1, padding=2)]


class ComposeConvs(Problem):
    name = "compose_convs"
    groups = hints("""
        basic: two cross-correlations in a row equal one cross-correlation with the full convolution of their kernels
            (mind the flip), summed over the middle channels.
        kernel sizes: the composed kernel spans k1 + k2 - 1 pixels, also when k1 != k2.
        channels: w1 is (C1, C0, k1, k1), w2 is (C2, C1, k2, k2); the result maps C0 to C2 channels: sum over C1.
        float32: keep the input's dtype.""")

    def cases(self, draw: Draw):
        def add(group, c0, c1, c2, k1, k2, dtype=np.float64):
            return tensor(self, group, ref.compose_convs, draw.normal((c1, c0, k1, k1), dtype),
                          draw.normal((c2, c1, k2, k2), dtype))

        c = draw.int(1, 4)
        cases = [add("basic", c, c, c, 3, 3), add("basic", 1, 1, 1, draw.choice([2, 3]), 3)]
        cases += [add("kernel sizes", draw.int(1, 4), draw.int(1, 4), draw.int(1, 4),
                      *draw.distinct([1, 2, 3, 4, 5], 2))
                  for _ in range(2)]
        cases += [add("channels", *draw.distinct(range(1, 7), 3), draw.choice([1, 3]), draw.choice([2, 3]))
                  for _ in range(2)]
        return cases + [add("float32", 2, 3, 4, 3, 2, dtype=np.float32)]


ROW_FIELDS = {"name": "str", "output_shape": "shape", "params": "int", "macs": "int", "activations": "int"}
_PROFILES: dict[str, tuple[list[dict], dict[str, str]]] = {}  # the reference's rows and module types, per model


def check_profile(got, model_spec, input_size: tuple, label: str) -> str | None:
    """Compare rows with the reference's for ``model_spec`` without giving its counts away."""
    if (key := repr((model_spec, tuple(input_size)))) not in _PROFILES:
        with torch.device("meta"):
            model = build(model_spec).eval()
        _PROFILES[key] = ref.profile_model(model, tuple(input_size)), {n: type(m).__name__ for n, m in
                                                                       model.named_modules()}
    rows, types = _PROFILES[key]
    return check_records(got, rows, ROW_FIELDS, label, "leaf module",
                         lambda i, exp: f"row {i} (name {exp['name']!r}, a {types.get(exp['name'], 'module')})",
                         {"output_shape": " (leave out the batch dimension)"})


class ProfileModel(Problem):
    name = "profile_model"
    seconds = 90.0
    groups = hints("""
        conv: a Conv2d's own parameters are its weight and bias; each output value costs in_channels / groups x kh x kw
            MACs; activations count output elements of one sample.
        groups: with groups=g each filter sees only in_channels / g input channels (parameters and MACs).
        linear: a Linear layer costs in_features MACs per output value; Flatten has no parameters and no MACs.
        pooling: pooling, activation and normalisation layers have 0 MACs by the course's convention, but their rows
            still report output_shape and activations (and BatchNorm has parameters).
        nested: only leaf modules (modules without children) get a row, named as in model.named_modules() (e.g. '1.0');
            a container's parameters must not be counted again.
        vgg16: VGG-16 at (3, 224, 224) has 138,357,544 parameters and 15,470,264,320 MACs in total; get the small models
            right first.""")

    def cases(self, draw: Draw):
        def add(group, model, input_size):
            label = f"profile_model on {spec_text(model)} at input_size={tuple(input_size)}"
            return Case(call(self.name, model, tuple(input_size)),
                        lambda o: check_profile(o.value, model, input_size, label), label, group,
                        heavy=group == "vgg16", public=Public(("value",)))

        cases = []
        for _ in range(2):
            c0, c1, c2 = draw.int(1, 5), draw.int(2, 13), draw.int(2, 11)
            k2 = (draw.choice([1, 3]), draw.choice([2, 3])) if draw.bool() else draw.choice([1, 2, 3])
            model = nn("Sequential", nn("Conv2d", c0, c1, draw.choice([3, 5]), stride=draw.int(1, 3),
                                        padding=draw.int(0, 3)), nn("ReLU"), nn("Conv2d", c1, c2, k2, bias=draw.bool()))
            cases.append(add("conv", model, (c0, *draw.hw())))
        g, a, b, c0 = draw.choice([2, 4]), draw.int(1, 4), draw.int(1, 4), draw.int(1, 4)
        cases.append(add("groups", nn("Sequential", nn("Conv2d", c0, g * a, 3, padding=1),
                                      nn("Conv2d", g * a, g * b, 3, groups=g, bias=False),
                                      nn("Conv2d", g * b, g * b, 3, groups=g * b, padding=1)), (c0, *draw.hw())))
        c, (h, w), hidden, classes = draw.int(1, 4), draw.hw(4, 9), draw.int(8, 33), draw.int(2, 11)
        cases.append(add("linear", nn("Sequential", nn("Flatten"), nn("Linear", c * h * w, hidden), nn("ReLU"),
                                      nn("Dropout", 0.5), nn("Linear", hidden, classes, bias=draw.bool())), (c, h, w)))
        c = draw.int(1, 9)
        cases.append(add("pooling", nn("Sequential", nn("BatchNorm2d", c), nn("MaxPool2d", 2), nn("ReLU"),
                                       nn("AvgPool2d", 3, stride=2, padding=1), nn("AdaptiveMaxPool2d", (2, 1))),
                         (c, *draw.hw(12, 24))))
        c0, c1, c2, classes = draw.int(1, 4), draw.int(2, 9), draw.int(2, 9), draw.int(2, 11)
        cases.append(add("nested", nn("Sequential",
                                      nn("Sequential", nn("Conv2d", c0, c1, 3, padding=1, bias=False),
                                         nn("BatchNorm2d", c1), nn("ReLU")),
                                      nn("Sequential", nn("Conv2d", c1, c2, 3, stride=2), nn("ReLU"),
                                         nn("MaxPool2d", 2)),
                                      nn("AdaptiveAvgPool2d", 1), nn("Flatten"), nn("Linear", c2, classes)),
                         (c0, *draw.hw(10, 20))))
        return cases + [add("vgg16", spec("torchvision.models.vgg16", weights=None), (3, 224, 224))]


# ----------------------------------------------------------------------------- conceptual questions
# One case each, the answer's form public (gradekit.public_cases.answer_form), its value never.
class QFcLayerParams(Problem):
    name = "q_fc_layer_params"
    groups = hints("""
        answer: a fully connected layer has its own weight for every pair (input value, output value): count the values
            on each side, every channel at every position, and multiply (a conv shares its few weights across
            positions; this layer shares nothing).""")

    def cases(self, draw: Draw):
        return [question(self, "answer", ref.q_fc_layer_params(), "int")]


class QAvgPoolAsConv(Problem):
    name = "q_avg_pool_as_conv"
    groups = hints("""
        answer: a convolution outputs a weighted sum of its window and average pooling the window's mean: write the
            mean of four values as a weighted sum of them.""")

    def cases(self, draw: Draw):
        return [question(self, "answer", ref.q_avg_pool_as_conv(), "choice", choices="ABCD")]


class QUnfoldShape(Problem):
    name = "q_unfold_shape"
    groups = hints("""
        answer: F.unfold returns (N, C x kh x kw, L): one column per output position, each holding one patch of every
            input channel; L = H_out x W_out, with the output sizes of problem 1 (stride and padding count).""")

    def cases(self, draw: Draw):
        return [question(self, "answer", ref.q_unfold_shape(), "shape", length=3)]


PROBLEMS = [ConvOutputSize(), ConvTransposeOutputSize(), SamePadding(), ConvParams(), ConvMacs(),
            ReceptiveField(), Conv2d(), MaxPool2d(), ComposeConvs(), ProfileModel(),
            QFcLayerParams(), QAvgPoolAsConv(), QUnfoldShape()]
