"""Hidden checks for week 4 (``course/source/w4_segmentation``): references from
:mod:`solutions.w4_segmentation`, computed in the judge's process. Modules are compared
with the reference class after loading the reference's (random) weights with
``strict=True``, so the layer names of the spec's docstrings are part of the contract;
the U-Net's training smoke test scores the predictions here, from the shapes data.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from gradekit import public_cases
from solutions import w4_segmentation as ref

from ..cases import Draw, batch_independence, build, call, compare, module, module_output, nn, raises, random_state, \
    spec, tensor
from ..cases.contract import BACKWARD_HINT, TRAINING_HINT, contract, reference_target, twin_target
from ..cases.training import Budget, miou_at_least, student, training_case
from ..compare import check_tensor, describe, fmt_shape
from ..ops import family_names, family_ops
from ..problem import Case, Outcome, Problem, Public, hints

#: The U-Net smoke test: the model, the data and the budget (about 12 s on one CPU core
#: for the reference; margins over 20 training seeds in docs/course-spec.md, "Choices").
UNET_SMOKE = {"in_channels": 1, "num_classes": 4, "base_channels": 8, "depth": 2, "padding": 1}
SMOKE_DATA = {"n_train": 512, "n_eval": 200, "size": 32}
SMOKE_BUDGET = Budget(epochs=8, optimizer="adam", lr=3e-3, batch_size=8, seconds=120.0)
#: The bar: predicting background everywhere gives 20.5-21%, a perfect foreground with one class
#: for every shape 34-37%; the reference's worst seeds find the shapes but mix up their kinds.
SMOKE_MIOU = 0.27


#: Module problems build and run reference modules when they are drawn, which is what costs.
#: Every grading draws its own configuration (sizes, weights, inputs) from a 64-bit key taken
#: from its seed, and so from the course's secret, per student: no fixed set of configurations
#: repeats between students, and the self-check's public configuration (drawn at a public seed
#: outside the grading seeds) is none of theirs. The last POOL configurations built are kept
#: for gradings that draw the same key again in one process (the tests regrade a seed often).
POOL = 16


def pooled(cases):
    """``cases(self, draw)`` drawn from ``Draw([4, key, problem])`` for a 64-bit ``key`` taken from
    ``draw``: built once per key (the last :data:`POOL` kept)."""
    @functools.wraps(cases)
    def wrapper(self, draw: Draw):
        return list(_pool(type(self), cases, tuple(int(k) for k in draw.rng.integers(0, 2**32, 2))))
    return wrapper


@functools.lru_cache(maxsize=POOL)
def _pool(cls, cases, key: tuple[int, int]):
    return tuple(cases(cls(), Draw(np.random.default_rng([4, *key, sum(map(ord, cls.name))]))))


# ------------------------------------------------------------------------ helpers
def _reference_module(cls, args, kwargs, draw: Draw, perturb: tuple = ()):
    """The reference module built from a drawn seed, in eval mode, with non-trivial running
    statistics (and noise on the parameters whose name contains one of ``perturb``)."""
    torch.manual_seed(draw.int(0, 2**31))
    model = cls(*args, **kwargs)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
            elif name.endswith("running_mean"):
                buffer.normal_(0, 0.5)
        for name, param in model.named_parameters():
            if any(p in name for p in perturb):
                param.add_(0.05 * torch.randn_like(param))
    return model.eval()


def _call_text(name, args, kwargs) -> str:
    return f"{name}({', '.join([repr(a) for a in args] + [f'{k}={v!r}' for k, v in kwargs.items()])})"


def same_outputs(problem: Problem, group: str, args: tuple, kwargs: dict, shapes: list, draw: Draw,
                 perturb: tuple = (), cls=None) -> Case:
    """``problem.name(*args, **kwargs)`` loads the reference's state_dict (strict) and then
    computes the reference's outputs in eval mode on inputs of ``shapes``."""
    cls = cls or getattr(ref, problem.name)
    model = _reference_module(cls, args, kwargs, draw, perturb)
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    inputs = [draw.normal(s, np.float32) for s in shapes]
    with torch.no_grad():
        expected = [model(torch.from_numpy(x)).numpy() for x in inputs]
    text = _call_text(problem.name, args, kwargs)
    label = f"{text} with given weights, in eval mode, on x of shape " + \
        " and ".join(fmt_shape(s) for s in shapes)

    def check(outcome: Outcome):
        if outcome.load_error:
            err = outcome.load_error if isinstance(outcome.load_error, dict) else {}
            return (f"{text}: load_state_dict(strict=True) of weights laid out as the specification names them "
                    f"failed: {str(err.get('message', ''))[:240]}")
        outs = outcome.outputs if isinstance(outcome.outputs, list) else []
        for i, exp in enumerate(expected):
            msg = check_tensor(outs[i] if i < len(outs) else None, exp, "the output")
            if msg:
                return f"{label}: {msg}"
        return None

    case = module(problem, group, label, check, *args, inputs=inputs, state=state, **kwargs)
    case.public = Public(("outputs",))
    return case


def value_case(problem: Problem, group: str, label: str, request: dict, check, secret=None,
               public: Public | None = Public(("value",))) -> Case:
    """A call whose returned value ``check(value)`` judges; ``public``: how the self-check compares
    it (by default the reference's value, with the tolerances of :mod:`gradekit.public_cases`)."""
    return Case(request, lambda o: check(o.value), label, group, secret=secret, public=public)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) or \
        (isinstance(v, np.ndarray) and v.shape == () and v.dtype.kind in "fiu")


def _close(a: float, b: float, tol: float = 1e-9) -> bool:
    if np.isnan(b):
        return bool(np.isnan(a))
    return bool(abs(a - b) <= tol * max(1.0, abs(b)))


def _labels(draw: Draw, shape, k: int, ignore: float = 0.0, ignore_index: int = 255, dtype=np.int64):
    """Random labels 0..k-1 (``ignore`` of them set to ``ignore_index``)."""
    y = draw.rng.integers(0, k, shape)
    if ignore:
        y[draw.rng.random(shape) < ignore] = ignore_index
    return y.astype(dtype)


def _noisy_pred(draw: Draw, target, k: int, right: float = 0.6, dtype=np.int64):
    """Predictions that agree with ``target`` on about ``right`` of the pixels."""
    pred = draw.rng.integers(0, k, target.shape)
    keep = (draw.rng.random(target.shape) < right) & (target < k)
    pred[keep] = target[keep]
    return pred.astype(dtype)


# ------------------------------------------------------------------------ problems
class Convolutionalize(Problem):
    name = "convolutionalize"
    groups = hints("""
        same logits: the first Linear sees the (C, H, W) features flattened in that order: each of its rows is one
            filter covering the whole map, so reshape the weight to (out_features, C, H, W) and copy the bias.
        later layers: every later Linear acts on one position's feature vector: a 1x1 conv with the same weights and
            bias; ReLU and Dropout stay as they are.
        score map: the result must slide over larger inputs: an (H + a) x (W + b) input gives an (a + 1) x (b + 1)
            map of the classifier's logits, one per window (stride 1, no padding).
        convolutions only: the result is an nn.Sequential with no Flatten and no Linear left (a Linear would tie the network
            to one input size).
        invalid [0.5]: raise ValueError for a first Linear whose in_features is not C*H*W, and for a layer other than
            Flatten, Linear, ReLU and Dropout.
        training mode: a Dropout layer is kept as it is, with its rate: in training mode (torch's random generator
            seeded alike) the result must drop what the classifier's own layers would.
        float64 and device: the new convs take the dtype and the device of the Linear they replace (float64 weights
            stay float64, CUDA stays CUDA): create them with dtype= and device=, or .to(layer.weight) them.""")

    @pooled
    def cases(self, draw: Draw):
        def classifier(c, h, w, hidden, k, dropout=False, depth=2):
            layers, width = [nn("Flatten")], c * h * w
            for i in range(depth - 1):
                layers += [nn("Linear", width, hidden[i]), nn("ReLU")] + ([nn("Dropout", dropout)] if dropout else [])
                width = hidden[i]
            layers.append(nn("Linear", width, k))
            return random_state(spec("torch.nn.Sequential", *layers), draw)

        def add(group, c, h, w, extra=(0, 0), n=2, **kw):
            clf = classifier(c, h, w, [draw.int(4, 9), draw.int(3, 7)], draw.int(2, 6), **kw)
            shape = (n, c, h + extra[0], w + extra[1])
            x = draw.normal(shape, np.float32)
            with torch.no_grad():
                expected = ref.convolutionalize(build(clf), (c, h, w)).eval()(torch.from_numpy(x)).numpy()
            label = f"convolutionalize({_spec_short(clf)}, in_shape={(c, h, w)}) on x of shape {fmt_shape(shape)}"

            def check(outcome: Outcome):
                kinds = {str(k) for _, k in (outcome.facts or {}).get("modules", [])}
                if group == "convolutions only" and kinds & {"Linear", "Flatten"}:
                    return f"{label}: the returned network still contains {', '.join(sorted(kinds & {'Linear', 'Flatten'}))}"
                out = (outcome.outputs or [None])[0]
                msg = check_tensor(out, expected, "the output")
                return None if msg is None else f"{label}: {msg}"

            case = module(self, group, label, check, clf, (c, h, w), inputs=[x])
            case.public = Public(("outputs",))
            return case

        s = draw.ints(2, 5)
        cases = [add("same logits", s(), s(), s() + 1), add("same logits", s(), s(), s(), n=3),
                 add("later layers", s(), s(), s(), depth=3), add("later layers", s(), s(), s(), depth=3, dropout=0.3),
                 add("score map", s(), s(), s(), extra=(draw.int(1, 5), draw.int(1, 5))),
                 add("score map", s(), s(), s(), extra=(draw.int(2, 6), 0), depth=3, dropout=0.3),
                 add("convolutions only", s(), s(), s(), depth=3)]
        c, h, w = s(), s(), s()
        cases.append(raises(self, "invalid", classifier(c, h, w, [4, 4], 3), (c, h, w + 1),
                            label=f"convolutionalize(a classifier of {c * h * w} input features, in_shape={(c, h, w + 1)})"))
        bn = random_state(spec("torch.nn.Sequential", nn("Flatten"), nn("Linear", c * h * w, 5), nn("BatchNorm1d", 5),
                               nn("ReLU"), nn("Linear", 5, 3)), draw)
        cases.append(raises(self, "invalid", bn, (c, h, w),
                            label="convolutionalize(a classifier with a BatchNorm1d layer, ...)"))
        for extra in ((0, 0), (draw.int(1, 3), draw.int(0, 3))):
            shape = (s(), s(), s())
            p = draw.choice([0.2, 0.4, 0.6])
            cases.append(self.training(draw, classifier(*shape, [draw.int(6, 12), draw.int(4, 8)], draw.int(2, 6),
                                                        dropout=p, depth=3), shape, extra, p))
        shape = (s(), s(), s())
        clf = classifier(*shape, [draw.int(4, 9), draw.int(3, 7)], draw.int(2, 6), depth=3)
        return cases + [self.float64(draw, clf, shape, (draw.int(0, 3), draw.int(0, 3)))]

    def training(self, draw: Draw, clf, in_shape: tuple, extra: tuple, p: float) -> Case:
        """The result in training mode, two passes, torch's generator seeded with ``seed + i`` before pass i:
        its dropout layers must draw what the classifier's (rate and place) would."""
        c, h, w = in_shape
        xs = [draw.normal((2, c, h + extra[0], w + extra[1]), np.float32) for _ in range(2)]
        seed = draw.int(0, 2**20)
        label = f"convolutionalize({_spec_short(clf)} with Dropout({p}), in_shape={in_shape}) in training mode on x " \
                f"of shape {fmt_shape(xs[0].shape)}, twice (torch's generator seeded alike)"

        def check(outcome: Outcome):
            net = ref.convolutionalize(build(clf), in_shape).train()
            outs = outcome.outputs if isinstance(outcome.outputs, list) else []
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                for i, x in enumerate(xs):
                    torch.manual_seed(seed + i)
                    msg = check_tensor(outs[i] if i < len(outs) else None, net(torch.from_numpy(x)).numpy(),
                                       f"the output of pass {i + 1}")
                    if msg:
                        return f"{label}: {msg}"
            return None
        case = module(self, "training mode", label, check, clf, in_shape, inputs=xs, train=True,
                      fields={"reseed": seed})
        case.public = Public(("outputs",))
        return case

    def float64(self, draw: Draw, clf, in_shape: tuple, extra: tuple) -> Case:
        """A float64 classifier (on CUDA when the kernel sees one): the result computes in float64, where
        the classifier lives (the kernel does not move it)."""
        c, h, w = in_shape
        x = draw.normal((2, c, h + extra[0], w + extra[1]), np.float64)
        label = f"convolutionalize({_spec_short(clf)} in float64, in_shape={in_shape}) on x of shape " \
                f"{fmt_shape(x.shape)} (float64, on the kernel's device)"

        def check(outcome: Outcome):
            with torch.no_grad():
                expected = ref.convolutionalize(build(clf, torch.float64), in_shape).eval()(torch.from_numpy(x))
            msg = check_tensor((outcome.outputs or [None])[0], expected.numpy(), "the output")
            return None if msg is None else f"{label}: {msg}"
        case = module(self, "float64 and device", label, check, clf, in_shape, inputs=[x],
                      fields={"module_dtype": "float64", "device": "auto", "keep_device": True})
        case.public = Public(("outputs",))
        return case


def _spec_short(clf) -> str:
    return "Sequential(" + ", ".join(a.path.rsplit(".", 1)[-1] for a in clf.args) + ")"


def _conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    """PyTorch's transposed conv (equal to the reference, tests/test_solutions_w4.py; fast on the meta device)."""
    return torch.nn.functional.conv_transpose2d(x, weight, bias, stride, padding, output_padding)


class ConvTranspose2d(Problem):
    name = "conv_transpose2d"
    banned_names = family_names("convolution", "transposed_convolution")
    banned_ops = family_ops("convolution", "transposed_convolution")
    groups = hints("""
        basic: every input pixel scatters a copy of the kernel, scaled by its value (summed over input channels), onto
            the output: the kernel is not flipped, and overlapping copies add up.
        bias: the bias adds one value per output channel (weight.shape[1] of them), broadcast over the positions.
        stride: with stride s the copies start s pixels apart (as if s - 1 zeros were inserted between the inputs);
            the output size follows conv_transpose_output_size from week 1.
        padding: padding removes that many rows and columns from each side of the full output, instead of adding
            zeros.
        output_padding: output_padding adds that many rows and columns to the bottom and right of the output: they
            still receive the copies that land there.
        non-square: height and width may differ, and stride, padding and output_padding may be (h, w) pairs.
        float32: keep the input's dtype.
        backward: use differentiable operations only (no .data or .numpy()): autograd must give the gradients for x,
            weight and bias.
        invalid [0.5]: raise ValueError when x's channels differ from weight.shape[0], or when output_padding is not
            smaller than the stride.""")
    CONFIGS = (("basic", {}, (2, 3, 5, 5), (3, 4, 3, 3)), ("basic", {}, (1, 1, 4, 4), (1, 2, 2, 2)),
               ("bias", {"bias": True}, (2, 3, 5, 4), (3, 2, 3, 3)),
               ("stride", {"stride": 2}, (2, 3, 4, 4), (3, 2, 3, 3)),
               ("stride", {"stride": 2, "bias": True}, (1, 2, 5, 5), (2, 3, 4, 4)),
               ("stride", {"stride": 3}, (1, 2, 3, 4), (2, 2, 2, 2)),
               ("padding", {"padding": 1}, (2, 2, 5, 5), (2, 3, 3, 3)),
               ("padding", {"padding": 1, "stride": 2, "bias": True}, (1, 3, 4, 5), (3, 2, 4, 4)),
               ("output_padding", {"stride": 2, "padding": 1, "output_padding": 1}, (2, 3, 4, 4), (3, 2, 3, 3)),
               ("output_padding", {"stride": 3, "output_padding": 2, "bias": True}, (1, 2, 3, 3), (2, 2, 3, 3)),
               ("output_padding", {"stride": 2, "padding": 2, "output_padding": 1}, (1, 2, 5, 4), (2, 3, 5, 5)),
               ("non-square", {"stride": (2, 1), "padding": (1, 0), "output_padding": (1, 0)}, (1, 3, 4, 6),
                (3, 2, 3, 2)),
               ("non-square", {"stride": (1, 3), "padding": (0, 1), "bias": True}, (2, 2, 5, 3), (2, 3, 2, 4)))

    @staticmethod
    def alternatives(targs, tkwargs):
        x, w, *rest = targs
        return [("the kernel flipped (a convolution's kernel turned by 180 degrees): a transposed conv scatters the "
                 "kernel as it is", lambda: _conv_transpose2d(x, w.flip(2, 3), *rest, **tkwargs).detach().numpy())]

    def cases(self, draw: Draw):
        def add(group, kw, x_shape, w_shape, dtype=np.float64, jitter=True, grad=False):
            n, c, h, w = x_shape
            if jitter:
                x_shape = (n, c, h + draw.int(0, 3), w + draw.int(0, 3))
            bias = draw.normal(w_shape[1:2], dtype) if kw.get("bias") else None
            args = [draw.normal(x_shape, dtype), draw.normal(w_shape, dtype), bias]
            grads = ({0: "x", 1: "weight"} | ({2: "bias"} if bias is not None else {})) if grad else None
            return tensor(self, group, _conv_transpose2d, *args, grad=grads, draw=draw,
                          alternatives=self.alternatives, **{k: v for k, v in kw.items() if k != "bias"})

        cases = [add(*config) for config in self.CONFIGS]
        cases.append(add("float32", {"stride": 2, "padding": 1, "output_padding": 1, "bias": True}, (2, 3, 4, 5),
                         (3, 2, 3, 3), np.float32))
        cases += [add("backward", kw, xs, ws, grad=True) for kw, xs, ws in (
            ({"stride": 2, "padding": 1, "output_padding": 1, "bias": True}, (2, 3, 4, 4), (3, 2, 3, 3)),
            ({"stride": (1, 2), "padding": (1, 0)}, (1, 2, 4, 3), (2, 3, 3, 2)))]
        cases.append(raises(self, "invalid", draw.normal((1, 3, 4, 4)), draw.normal((2, 2, 3, 3)),
                            label="conv_transpose2d on x (1, 3, 4, 4), weight (2, 2, 3, 3)"))
        cases.append(raises(self, "invalid", draw.normal((1, 2, 4, 4)), draw.normal((2, 2, 3, 3)), stride=2,
                            output_padding=2, label="conv_transpose2d(..., stride=2, output_padding=2)"))
        return cases


class OverlapCounts(Problem):
    name = "overlap_counts"
    groups = hints("""
        stride 1: input position i reaches outputs i*stride to i*stride + kernel_size - 1; count, for every output
            position, the (input position, tap) pairs that land on it. The output has (length - 1)*stride +
            kernel_size positions.
        even overlap: when the stride divides kernel_size, every position away from the borders gets the same count.
        checkerboard: when it does not, neighbouring positions get different counts: that alternating pattern is the
            checkerboard artifact.
        gaps: a stride larger than the kernel leaves positions that no tap reaches: their count is 0.
        invalid [0.5]: raise ValueError for a non-positive length, kernel_size or stride.""")

    def case(self, group, length, kernel_size, stride):
        expected = ref.overlap_counts(length, kernel_size, stride)
        label = f"overlap_counts(length={length}, kernel_size={kernel_size}, stride={stride})"

        def check(value):
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                               for v in value):
                return f"{label} should return a list of ints, got {describe(value)}"
            if len(value) != len(expected):
                return f"{label} returned {len(value)} counts: the length of the output is not right"
            wrong = next(i for i, (a, b) in enumerate(zip(value, expected)) if a != b) \
                if list(value) != expected else None
            return None if wrong is None else f"{label}: the count at output position {wrong} ({value[wrong]}) is " \
                                              "not right"
        return value_case(self, group, label, call(self.name, length=length, kernel_size=kernel_size,
                                                    stride=stride), check)

    def cases(self, draw: Draw):
        n = draw.ints(2, 7)
        s = draw.int(2, 4)
        return [self.case("stride 1", n(), draw.int(1, 5), 1), self.case("stride 1", n(), draw.int(2, 6), 1),
                self.case("even overlap", n(), 2 * s, s), self.case("even overlap", n(), 4, 2),
                self.case("checkerboard", n(), 3, 2), self.case("checkerboard", n(), s + 1, s),
                self.case("checkerboard", n(), 5, 3),
                self.case("gaps", n(), 2, 3), self.case("gaps", n(), draw.int(1, 3), draw.int(4, 6))] + \
            [raises(self, "invalid", **kw) for kw in ({"length": 0, "kernel_size": 3, "stride": 2},
                                                      {"length": 4, "kernel_size": 3, "stride": 0},
                                                      {"length": 3, "kernel_size": -1, "stride": 1})]


class BilinearKernel(Problem):
    name = "bilinear_kernel"
    groups = hints("""
        odd sizes: the 2-D filter is the outer product of a 1-D tent that peaks at the kernel's centre and falls off
            linearly, reaching 0 one factor away; factor = (k + 1) // 2.
        even sizes: an even kernel has no middle tap: its centre lies halfway between the two middle taps.
        channels: channel c only feeds channel c: the tent sits on the diagonal [c, c] and every other (input, output)
            pair is zero.
        float32: the kernel is a float32 tensor of shape (in_channels, out_channels, k, k).
        invalid [0.5]: a channel-wise kernel needs as many input channels as output channels: raise ValueError
            otherwise.""")

    def cases(self, draw: Draw):
        def add(group, c, k):
            return tensor(self, group, ref.bilinear_kernel, in_channels=c, out_channels=c, kernel_size=k)
        return [add("odd sizes", 1, 3), add("odd sizes", draw.int(1, 4), draw.choice([5, 7])),
                add("even sizes", 1, 4), add("even sizes", draw.int(1, 4), draw.choice([2, 6, 8])),
                add("even sizes", 2, 16), add("channels", draw.int(3, 6), 4), add("channels", draw.int(2, 5), 3),
                add("float32", 2, draw.choice([3, 4]))] + \
            [raises(self, "invalid", in_channels=3, out_channels=2, kernel_size=4)]


class FCN(Problem):
    name = "FCN"
    groups = hints("""
        output size: FCN(num_classes, variant) maps (N, in_channels, H, W) to (N, num_classes, H, W) for H and W
            divisible by 32: the final transposed conv undoes the remaining stride exactly (kernel 2f, stride f,
            padding f // 2).
        bilinear start: every transposed conv starts as bilinear_kernel(num_classes, num_classes, k) for its kernel
            size k (copy it into the layer's weight under torch.no_grad()).
        32s: FCN-32s scores pool5 with a 1x1 conv (score_fr) and upsamples by 32 in one step (upscore); the layer names
            are those of the specification.
        16s: FCN-16s upsamples the pool5 scores by 2 (upscore2), adds the 1x1-conv scores of pool4 (score_pool4), then
            upsamples by 16.
        8s: FCN-8s goes one step further: the fused scores upsampled by 2 again (upscore_pool4) plus the scores of
            pool3 (score_pool3), then upsampled by 8.
        invalid [0.5]: a variant other than '32s', '16s', '8s' raises ValueError.
        backward: BACKWARD""".replace("BACKWARD", BACKWARD_HINT))

    @pooled
    def cases(self, draw: Draw):
        widths = (4, 6, 8, 8, 10)

        def shape(variant):
            k, n = draw.int(2, 6), draw.int(1, 3)
            h, w = 32 * draw.int(1, 3), 32 * draw.int(1, 3)
            return module_output(self, "output size", f"FCN({k}, {variant!r}, widths={widths})",
                                 draw.normal((n, 1, h, w), np.float32), (n, k, h, w), k, variant, widths=widths)

        def bilinear(variant):
            k = draw.int(2, 5)
            label = f"the transposed convs of a new FCN({k}, {variant!r})"
            layers = {"32s": ("upscore",), "16s": ("upscore2", "upscore"),
                      "8s": ("upscore2", "upscore_pool4", "upscore")}[variant]

            def check(outcome: Outcome):
                state = outcome.state_after if isinstance(outcome.state_after, dict) else {}
                for name in layers:
                    got = state.get(f"{name}.weight")
                    if got is None:
                        return f"{label}: no {name}.weight (the transposed convs are named as the specification says)"
                    size = got.shape[-1] if isinstance(got, np.ndarray) and got.ndim == 4 else 0
                    msg = check_tensor(got, ref.bilinear_kernel(k, k, size).numpy(), f"{name}.weight")
                    if msg:
                        return f"{label}: {msg}"
                return None
            request = {"proc": "module", "cls": self.name, "args": [k, variant], "kwargs": {"widths": widths},
                       "inputs": [], "train": False, "return_state": True}
            return Case(request, check, label, "bilinear start")

        def outputs(variant):
            k = draw.int(2, 5)
            h, w = 32 * draw.int(1, 3), 32 * draw.int(1, 3)
            return same_outputs(self, variant, (k, variant), {"widths": widths}, [(2, 1, h, w)], draw,
                                perturb=("upscore",))

        return [shape(v) for v in ("32s", "16s", "8s")] + [bilinear(v) for v in ("32s", "16s", "8s")] + \
            [outputs("32s"), outputs("16s"), outputs("16s"), outputs("8s"), outputs("8s")] + \
            [raises(self, "invalid", 3, draw.choice(["4s", "8", "fcn8s"]))] + self.other_arguments(draw, widths)

    def other_arguments(self, draw: Draw, widths: tuple) -> list[Case]:
        """FCN(k, in_channels=3) with the default variant ('8s') and widths, and a backward pass through FCN-8s."""
        k = draw.int(2, 5)
        cases = [same_outputs(self, "8s", (k,), {"in_channels": 3}, [(1, 3, 32, 32 * draw.int(1, 2))], draw,
                              perturb=("upscore",))]
        target = reference_target(ref.FCN, k, "8s", in_channels=2, widths=widths)
        x = draw.normal((1, 2, 32, 64), np.float32)
        return cases + contract(self, target, (k, "8s"), x, draw, kwargs={"in_channels": 2, "widths": widths},
                                groups=("backward",))


class CenterCrop(Problem):
    name = "center_crop"
    groups = hints("""
        even margins: when the input is larger by an even number of pixels, the crop leaves the same margin on both
            sides.
        odd margins: with an odd difference the offset (H - h) / 2 ends in .5: torchvision rounds it with Python's
            round(), which takes halves to the even neighbour (round(1.5) == 2, round(2.5) == 2).
        non-square: height and width are cropped independently, each with its own offset.
        int size: an int size means a square crop (size, size).
        leading dimensions: only the last two dimensions are cropped: (H, W), (C, H, W) and (N, C, H, W) inputs all
            work.
        larger size [0.5]: a crop larger than the input pads it with zeros first, (h - H) // 2 before and the rest
            after, as torchvision does.""")

    @staticmethod
    def alternatives(targs, tkwargs):
        x, size = targs
        ch, cw = (size, size) if isinstance(size, int) else size
        h, w = x.shape[-2:]

        def crop(rounding):
            top, left = rounding(h - ch), rounding(w - cw)
            return x[..., top:top + ch, left:left + cw].numpy()
        return [("offsets rounded down ((H - h) // 2)", lambda: crop(lambda d: d // 2)),
                ("offsets rounded up", lambda: crop(lambda d: (d + 1) // 2))]

    def cases(self, draw: Draw):
        def add(group, shape, size):
            return tensor(self, group, ref.center_crop, draw.normal(shape), size, alternatives=self.alternatives)

        n, c = draw.int(1, 3), draw.int(1, 4)
        h = draw.int(2, 8)
        return [add("even margins", (n, c, h + 2 * draw.int(1, 4), h + 2 * draw.int(0, 3)), (h, h)),
                add("even margins", (c, 12, 10), (8, 6)),
                add("odd margins", (n, c, h + 1, h + 3), (h, h)), add("odd margins", (n, c, h + 3, h + 5), (h, h)),
                add("odd margins", (c, h + 7, h + 9), [h, h]),
                add("non-square", (n, c, 13, 9), (6, 4)), add("non-square", (n, c, h + 5, h + 2), (h + 1, h)),
                add("int size", (n, c, h + 3, h + 4), h), add("int size", (n, h + 6, h + 1), h),
                add("leading dimensions", (h + 3, h + 5), (h, h)),
                add("leading dimensions", (2, n, c, h + 5, h + 3), (h + 1, h)),
                add("larger size", (n, c, 5, 6), (8, 9)), add("larger size", (c, 7, 4), (6, 7))]


def _valid_sizes(depth: int, padding: int, count: int, start: int = 1) -> list:
    probe = ref.UNet.__new__(ref.UNet)
    probe.depth, probe.padding = depth, padding
    found, s = [], start
    while len(found) < count:
        if ref.UNet.output_size(probe, s):
            found.append(s)
        s += 1
    return found


class UNet(Problem):
    name = "UNet"
    seconds = 150.0
    groups = hints("""
        valid convs: with padding=0 every 3x3 conv loses a pixel on each side: a 572x572 input leaves 388x388 with
            depth 4; the skip maps are larger than the upsampled ones, so center_crop them before concatenating.
        same padding: with padding=1 the convs keep the size, and the output has the input's size.
        crop and concat: in each decoder step, up-convolve, center_crop the skip to that size, concatenate [skip,
            upsampled] on channels (skip first), then the block; the layer names are those of the specification.
        padding 1: the same structure with padding=1: two 3x3 conv - BatchNorm - ReLU per block, a 2x2 transposed conv
            with stride 2 that halves the channels, a 1x1 head.
        invalid size: an input size the network cannot take (a size before a pooling that is odd, or a size that
            shrinks to nothing), in the height or in the width, must raise ValueError whose message names the nearest
            valid sizes, below and above (compute them: try the sizes around the input's).
        training mode: TRAINING
        backward: BACKWARD The skip maps go into the decoder as they are (cropped, never detached).
        trains [0.5]: UNet(in_channels=1, num_classes=4, base_channels=8, depth=2, padding=1) trains on the shapes data
            with a fixed budget to a named mean IoU; a network that learns nothing stays near the background share.
            Check the skip connections, the BatchNorm layers and that forward returns logits (no softmax).""".replace(
        "TRAINING", TRAINING_HINT).replace("BACKWARD", BACKWARD_HINT))

    def cases(self, draw: Draw):
        return self.module_cases(draw) + [self.trains(draw)]

    @pooled
    def module_cases(self, draw: Draw):
        def valid(h, w, n=1, **kw):
            size = kw.pop("depth", 4)
            ref_out = [ref.UNet(depth=size, base_channels=1, **kw).output_size(s) for s in (h, w)]
            k = draw.int(2, 4)
            label = f"UNet(num_classes={k}, base_channels=2, depth={size}, padding={kw.get('padding', 0)})"
            group = "valid convs" if kw.get("padding", 0) == 0 else "same padding"
            return module_output(self, group, label, draw.normal((n, 1, h, w), np.float32), (n, k, *ref_out),
                                 1, k, 2, size, **kw)

        d2 = _valid_sizes(2, 0, 8, 20)
        d3 = _valid_sizes(3, 0, 4, 40)
        k = draw.int(2, 4)  # UNet's defaults (in_channels 1, depth 4, padding 0) on the paper's 572 x 572
        cases = [module_output(self, "valid convs", f"UNet(num_classes={k}, base_channels=2)",
                               draw.normal((1, 1, 572, 572), np.float32), (1, k, 388, 388), num_classes=k,
                               base_channels=2),
                 valid(draw.choice(d2), draw.choice(d2), n=2, depth=2),
                 valid(draw.choice(d3), draw.choice(d3), depth=3)]
        for depth in (2, 3, 4):
            step = 2 ** depth
            cases.append(valid(step * draw.int(2, 5), step * draw.int(2, 5), n=2, depth=depth, padding=1))
        cases += [same_outputs(self, "crop and concat", (1, draw.int(2, 4), 3, 2, 0), {},
                               [(2, 1, draw.choice(d2), draw.choice(d2))], draw),
                  same_outputs(self, "crop and concat", (2, 3, 2, 3, 0), {}, [(1, 2, d3[1], d3[0])], draw),
                  same_outputs(self, "padding 1", (1, 3, 3, 2, 1), {}, [(2, 1, 4 * draw.int(3, 6), 4 * draw.int(3, 6))],
                               draw),
                  same_outputs(self, "padding 1", (2, 2, 2, 3, 1), {}, [(1, 2, 24, 16)], draw)]
        cases += [self.invalid(draw, 4, 0, 573 + draw.int(0, 14), 0), self.invalid(draw, 2, 0, draw.choice(d2) + 1, 1),
                  self.invalid(draw, 3, 1, 8 * draw.int(3, 9) + draw.int(1, 8), 1), self.invalid(draw, 4, 0, 20, 0),
                  self.invalid(draw, 2, 1, 4 * draw.int(3, 9) + draw.int(1, 3), 1)]
        x = draw.normal((2, 1, draw.choice(d2), draw.choice(d2)), np.float32)  # training mode and backward
        cases += contract(self, reference_target(ref.UNet, 1, k, 2, 2, 0), (1, k, 2, 2, 0), x, draw,
                          groups=("training mode", "backward"))
        return cases

    def invalid(self, draw: Draw, depth: int, padding: int, size: int, axis: int):
        """An input whose size along ``axis`` (0: the height, 1: the width) the network cannot take."""
        model = ref.UNet(depth=depth, padding=padding, base_channels=1)
        below, above = model.valid_sizes(size)
        other = _valid_sizes(depth, padding, 1, 64 if padding else 188)[0] if padding else 572 if depth == 4 else \
            _valid_sizes(depth, padding, 1, 40)[0]
        shape = (1, 1, size, other) if axis == 0 else (1, 1, other, size)
        label = f"UNet(depth={depth}, padding={padding}) on x of shape {fmt_shape(shape)}"
        near = [s for s in (below, above) if s is not None]

        request = {"proc": "module", "cls": self.name, "args": [1, 2, 2, depth, padding], "kwargs": {},
                   "inputs": [np.zeros(shape, np.float32)], "train": False, "forward_errors": True}
        return Case(request, lambda o: public_cases.names_sizes(o.data, label, near), label, "invalid size",
                    public=Public(rule="names_sizes", params={"near": near}))

    def trains(self, draw: Draw):
        """The smoke test on shapes data generated from seeds this grading draws (62-bit: the
        kernel cannot regenerate the evaluation images), made only when the case is written."""
        seeds = tuple(int(s) for s in draw.rng.integers(0, 2**62, 2))
        label = (f"UNet({', '.join(f'{k}={v}' for k, v in UNET_SMOKE.items())}) trained on {SMOKE_DATA['n_train']} "
                 f"shapes images of {SMOKE_DATA['size']}x{SMOKE_DATA['size']}, tested on {SMOKE_DATA['n_eval']} others "
                 "(generated for this grading)")
        return training_case("trains", label, "segment", {"model": student(self.name, **UNET_SMOKE)},
                             lambda: {k: v for k, v in _smoke_data(*seeds).items() if k != "y_eval"},
                             SMOKE_BUDGET, miou_at_least(lambda: _smoke_data(*seeds)["y_eval"],
                                                         UNET_SMOKE["num_classes"], SMOKE_MIOU),
                             num_classes=UNET_SMOKE["num_classes"])


@functools.lru_cache(maxsize=2)
def _smoke_data(train_seed: int, eval_seed: int) -> dict:
    import coursedata

    train = coursedata.shapes(SMOKE_DATA["n_train"], SMOKE_DATA["size"], seed=train_seed)
    test = coursedata.shapes(SMOKE_DATA["n_eval"], SMOKE_DATA["size"], seed=eval_seed)
    return {"x_train": train.x, "y_train": train.y.astype(np.uint8), "x_eval": test.x, "y_eval": test.y}


class DepthwiseSeparableConv(Problem):
    name = "DepthwiseSeparableConv"
    groups = hints("""
        parameters: no biases: k*k*C_in weights for the depthwise conv (one k x k filter per input channel) plus
            C_in*C_out for the pointwise 1x1 conv.
        depthwise then pointwise: first the depthwise conv (groups=in_channels, C_in -> C_in), then the pointwise 1x1
            conv (C_in -> C_out), in submodules named depthwise and pointwise.
        stride and dilation: stride, padding and dilation belong to the depthwise conv; the pointwise conv is always
            1x1, stride 1.
        training mode: no BatchNorm and no dropout here: training mode computes what eval mode does and changes
            nothing in the state_dict.
        backward: BACKWARD""".replace("BACKWARD", BACKWARD_HINT))

    @pooled
    def cases(self, draw: Draw):
        def count(cin, cout, k):
            label = f"parameters of DepthwiseSeparableConv({cin}, {cout}, kernel_size={k})"

            def check(outcome: Outcome):
                got = (outcome.facts or {}).get("num_params")
                expected = k * k * cin + cin * cout
                return None if got == expected else f"{label}: {got}, which is not right"
            case = module(self, "parameters", label, check, cin, cout, kernel_size=k, padding=k // 2)
            case.public = Public(("facts.num_params",))
            return case

        c = draw.ints(2, 7)
        return [count(c(), c() + 7, 3), count(c(), c(), draw.choice([3, 5])),
                self.outputs(draw, "depthwise then pointwise", {}),
                self.outputs(draw, "depthwise then pointwise", {"kernel_size": 5, "padding": 2}),
                self.outputs(draw, "stride and dilation", {"stride": 2}),
                self.outputs(draw, "stride and dilation", {"dilation": 2, "padding": 2}),
                self.outputs(draw, "stride and dilation", {"stride": 2, "dilation": 3, "padding": 1})] + \
            self.behaviour(draw)

    def behaviour(self, draw: Draw) -> list[Case]:
        """Training mode and backward (float64, through two in a row when the shapes allow) with given weights."""
        cases = []
        for kwargs in ({"dilation": 2, "padding": 2}, {"stride": 2}):
            cin = draw.int(2, 6)
            cout = cin if "dilation" in kwargs else draw.int(2, 9)
            target = reference_target(ref.DepthwiseSeparableConv, cin, cout, **kwargs)
            x = draw.normal((2, cin, draw.int(7, 12), draw.int(7, 12)), np.float32)
            cases += contract(self, target, (cin, cout), x, draw, kwargs=kwargs, groups=("training mode", "backward"))
        return cases

    def outputs(self, draw: Draw, group: str, kwargs: dict):
        cin, cout = draw.int(2, 6), draw.int(2, 9)
        while cout == cin:
            cout = draw.int(2, 9)
        return same_outputs(self, group, (cin, cout), kwargs, [(2, cin, draw.int(7, 12), draw.int(7, 12))], draw)


class ASPP(Problem):
    name = "ASPP"
    groups = hints("""
        output shape: every branch keeps the spatial size (an atrous 3x3 conv with rate r needs padding r), and the
            projection maps the concatenated branches back to out_channels.
        parameters: one 1x1 branch, one atrous 3x3 branch per rate and the image-pooling branch (global average pool,
            1x1 conv), each conv without bias followed by BatchNorm and ReLU, then a 1x1 projection with BatchNorm,
            ReLU and Dropout(0.5).
        state_dict: name the layers as torchvision's DeepLab v3 ASPP does: convs (a ModuleList of the branches, the
            image-pooling branch last) and project.
        torchvision weights: concatenate the branches in the order of convs; the pooled branch is resized back to the
            input's size (bilinear) so that every position gets the pooled value. The defaults are out_channels=256
            and rates=(6, 12, 18).
        training mode: TRAINING The projection ends with Dropout(0.5), after its ReLU.
        backward: BACKWARD Every branch, the pooled one included, must pass gradients back (no .detach(), no
            torch.no_grad()).""".replace("TRAINING", TRAINING_HINT).replace("BACKWARD", BACKWARD_HINT))

    @pooled
    def cases(self, draw: Draw):
        cases = []
        for rates in ((6, 12, 18), tuple(sorted(draw.distinct([1, 2, 3, 4, 5], 2)))):
            cin, cout = draw.int(3, 9), draw.int(4, 12)
            twin = spec("torchvision.models.segmentation.deeplabv3.ASPP", cin, list(rates), cout)
            x = draw.normal((2, cin, draw.odd(7, 13), draw.odd(9, 15)), np.float32)
            # (training passes on a batch of four: the pooled branch's BatchNorm sees one value per sample)
            cases += contract(self, twin_target(twin), (cin, cout, rates), x, draw,
                              groups=("output shape", "parameters", "state_dict", "torchvision weights") +
                              (("training mode", "backward") if rates != (6, 12, 18) else ()),
                              train_x=draw.normal((4, *x.shape[1:]), np.float32))
        cin = draw.int(3, 6)  # the defaults: out_channels 256, rates (6, 12, 18)
        twin = spec("torchvision.models.segmentation.deeplabv3.ASPP", cin, [6, 12, 18], 256)
        x = draw.normal((1, cin, draw.odd(13, 19), draw.odd(13, 19)), np.float32)
        return cases + contract(self, twin_target(twin), (cin,), x, draw, groups=("parameters", "torchvision weights"))


class DeepLabV3Plus(Problem):
    name = "DeepLabV3Plus"
    groups = hints("""
        output size: the logits come back at the input's size: (N, num_classes, H, W), whatever H and W (resize the
            decoder's output with bilinear interpolation).
        ASPP: the encoder's last features go through your ASPP module.
        separable convs: the encoder's atrous conv and the decoder's convs are DepthwiseSeparableConv modules (cheap
            3x3 convs).
        eval mode: in eval mode no sample's output depends on the rest of the batch (BatchNorm uses its running
            statistics).""")

    @pooled
    def cases(self, draw: Draw):
        def shape(n, h, w, **kw):
            k = draw.int(2, 5)
            return module_output(self, "output size", _call_text(self.name, (k,), kw) + f" on ({n}, 1, {h}, {w})",
                                 draw.normal((n, 1, h, w), np.float32), (n, k, h, w), k, **kw)

        def contains(group, kind, what):
            k = draw.int(2, 5)
            label = f"the submodules of DeepLabV3Plus({k}, width=8)"

            case = module(self, group, label, lambda o: public_cases.has_kind(o.data, label, kind, what), k, width=8)
            case.public = Public(rule="has_kind", params={"kind": kind, "what": what})
            return case

        def other_arguments():
            k, n, h, w = draw.int(2, 5), 2, draw.int(33, 50), draw.int(33, 50)
            kw = {"in_channels": 3, "width": 4, "rates": tuple(sorted(draw.distinct([1, 2, 3, 4], 2))),
                  "aspp_channels": draw.choice([6, 10]), "low_channels": draw.choice([3, 5])}
            return module_output(self, "output size", _call_text(self.name, (k,), kw) + f" on ({n}, 3, {h}, {w})",
                                 draw.normal((n, 3, h, w), np.float32), (n, k, h, w), k, **kw)

        return [shape(2, 32, 48, width=8), shape(1, 16 * draw.int(2, 4), 16 * draw.int(2, 4), width=8),
                shape(1, 32, 16 * draw.int(2, 3)),  # the defaults: width 16, rates (6, 12, 18)
                shape(2, draw.int(33, 60), draw.int(33, 60), width=4), other_arguments(),
                contains("ASPP", "ASPP", "the encoder's features should go through ASPP"),
                contains("separable convs", "DepthwiseSeparableConv", "use DepthwiseSeparableConv for the atrous and "
                         "decoder convs"),
                batch_independence(self, "eval mode", "DeepLabV3Plus(3, width=8) in eval mode on a batch of 4 and on "
                                   "its first 2 samples", draw.normal((4, 1, 32, 32), np.float32), 2, False, False,
                                   "in eval mode no sample's output may depend on the others", 3, width=8)]


class ConfusionMatrix(Problem):
    name = "confusion_matrix"
    groups = hints("""
        basic: entry [t, p] counts the pixels whose target is t and whose prediction is p: rows are targets, columns
            predictions (as scikit-learn's confusion_matrix(y_true, y_pred)); the counts are int64.
        ignore_index: pixels whose target is ignore_index are left out before counting (whatever was predicted there).
        absent classes: the matrix is num_classes x num_classes even when some classes never occur (their rows and
            columns are zero).
        any shape: pred and target may have any (equal) shape: flatten them; pred may be uint8.
        label dtypes: label maps may be uint8, int16, int32 or int64 tensors: convert them to int64 before any
            arithmetic (uint8 wraps around at 256, so target * num_classes + pred overflows with 17 classes or
            more).""")

    def cases(self, draw: Draw):
        def add(group, shape, k, ignore=0.0, pred_dtype=np.int64, ignore_index=None, classes=None, dtype=np.int64):
            kw = {} if ignore_index is None else {"ignore_index": ignore_index}
            target = _labels(draw, shape, classes or k, ignore, 255 if ignore_index is None else ignore_index, dtype)
            pred = _noisy_pred(draw, target, classes or k, dtype=pred_dtype)
            return tensor(self, group, ref.confusion_matrix, pred, target, k, **kw)

        return [add("basic", (2, 5, 6), 3), add("basic", (3, 4, 4), draw.int(4, 7)),
                add("ignore_index", (2, 6, 7), 4, ignore=0.2), add("ignore_index", (8, 9), 3, ignore=0.3,
                                                                   ignore_index=draw.choice([0, 7, 100])),
                add("absent classes", (2, 5, 5), 6, classes=3), add("absent classes", (30,), 5, classes=2, ignore=0.1),
                add("any shape", (40,), 3), add("any shape", (2, 1, 4, 5), 4, pred_dtype=np.uint8, ignore=0.1),
                add("label dtypes", (2, 9, 11), draw.int(17, 24), 0.1, np.uint8, dtype=np.uint8),
                add("label dtypes", (3, 7, 8), draw.int(5, 20), 0.1, draw.choice([np.int16, np.int32]),
                    dtype=draw.choice([np.uint8, np.int32]))]


class PixelAccuracy(Problem):
    name = "pixel_accuracy"
    groups = hints("""
        basic: the share of pixels predicted right, as a Python float.
        ignore_index: pixels whose target is ignore_index count neither as right nor as wrong: leave them out of both
            the numerator and the denominator.
        all ignored [0.5]: when every pixel is ignored there is nothing to score: the accuracy is NaN, not 0.""")

    def case(self, group, pred, target, **kw):
        @functools.cache
        def expected():
            return ref.pixel_accuracy(torch.from_numpy(pred), torch.from_numpy(target), **kw)
        label = f"pixel_accuracy(pred of shape {fmt_shape(pred.shape)}, target of shape {fmt_shape(target.shape)}" + \
            "".join(f", {k}={v}" for k, v in kw.items()) + ")"

        def check(value):
            if not _is_number(value):
                return f"{label} should return a float, got {describe(value)}"
            return None if _close(float(value), expected()) else f"{label} returned {float(value):.6g}, which is not " \
                                                               "right"
        return value_case(self, group, label, call(self.name, pred, target, **kw), check, public=Public(("value",), 1e-9))

    def cases(self, draw: Draw):
        def pair(shape, k, ignore=0.0, ignore_index=255):
            target = _labels(draw, shape, k, ignore, ignore_index)
            return _noisy_pred(draw, target, k), target
        all_ignored = np.full((2, 3, 3), 255, np.int64)
        return [self.case("basic", *pair((2, 6, 5), 3)), self.case("basic", *pair((50,), 4)),
                self.case("ignore_index", *pair((2, 7, 6), 3, 0.25)),
                self.case("ignore_index", *pair((9, 8), 4, 0.3, 9), ignore_index=9),
                self.case("all ignored", _labels(draw, (2, 3, 3), 3), all_ignored)]


class MeanIoU(Problem):
    name = "mean_iou"
    groups = hints("""
        basic: IoU of class c = TP / (TP + FP + FN): the pixels both call c over the pixels either calls c; mIoU is the
            mean over classes. Return (per-class IoU as a float tensor, mIoU as a float).
        ignore_index: pixels whose target is ignore_index are left out of every count.
        absent class: a class absent from both the prediction and the target has 0 / 0: its IoU is NaN, and it is left
            out of the mean (it must not count as 0 or as 1).
        predicted only: a class that is predicted but absent from the target has IoU 0 and does count in the mean.
        label dtypes: label maps may be uint8, int16, int32 or int64 tensors: convert them to int64 before any
            arithmetic (uint8 wraps around at 256, so target * num_classes + pred overflows with 17 classes or
            more).""")

    def case(self, group, pred, target, k, **kw):
        iou, miou = ref.mean_iou(torch.from_numpy(pred), torch.from_numpy(target), k, **kw)
        params = {"iou": iou.numpy(), "miou": float(miou)}
        label = f"mean_iou(pred of shape {fmt_shape(pred.shape)}, target, num_classes={k}" + \
            "".join(f", {a}={b}" for a, b in kw.items()) + ")"
        return value_case(self, group, label, call(self.name, pred, target, k, **kw),
                          lambda value: public_cases.iou_pair({"value": value}, label, **params),
                          public=Public(rule="iou_pair", params=params))

    def cases(self, draw: Draw):
        def pair(shape, k, ignore=0.0, classes=None, ignore_index=255, dtype=np.int64):
            target = _labels(draw, shape, classes or k, ignore, ignore_index, dtype)
            return _noisy_pred(draw, target, classes or k, dtype=dtype), target

        pred, target = pair((2, 6, 6), 3)
        extra_pred = pred.copy()
        extra_pred[0, 0, :3] = 3  # class 3 predicted, never a target
        return [self.case("basic", *pair((2, 6, 7), 3), 3), self.case("basic", *pair((60,), 4), 4),
                self.case("ignore_index", *pair((2, 7, 6), 3, 0.25), 3),
                self.case("ignore_index", *pair((9, 8), 4, 0.3, ignore_index=0), 4, ignore_index=0),
                self.case("absent class", *pair((2, 6, 6), 5, classes=3), 5),
                self.case("absent class", *pair((40,), 4, 0.2, classes=2), 4),
                self.case("predicted only", extra_pred, target, 5),
                self.case("label dtypes", *pair((2, 10, 9), k := draw.int(17, 24), 0.1, dtype=np.uint8), k),
                self.case("label dtypes", *pair((2, 7, 8), k := draw.int(4, 20), 0.1, dtype=np.int32), k)]


class Hypercolumn(Problem):
    name = "hypercolumn"
    groups = hints("""
        upsample: resize every map to size with bilinear interpolation and align_corners=False (pixel centres
            aligned, as F.interpolate's default for bilinear), then concatenate on channels.
        order: concatenate in the order of the list: the first map's channels come first.
        downsample: a map larger than size is resized down the same way.
        int size: an int size means (size, size).
        float32: keep the input's dtype.""")

    @staticmethod
    def reference(features, size):
        return ref.hypercolumn([torch.from_numpy(f) for f in features], size)

    def cases(self, draw: Draw):
        import torch.nn.functional as F

        def add(group, n, maps, size, dtype=np.float64):
            features = [draw.normal((n, c, h, w), dtype) for c, h, w in maps]
            s = (size, size) if isinstance(size, int) else size
            alts = [("align_corners=True (use the default pixel-centre alignment)",
                     lambda: torch.cat([F.interpolate(torch.from_numpy(f), size=s, mode="bilinear", align_corners=True)
                                        for f in features], 1).numpy()),
                    ("the maps concatenated in reverse order",
                     lambda: self.reference(features[::-1], size).numpy()),
                    ("nearest-neighbour resizing (use bilinear)",
                     lambda: torch.cat([F.interpolate(torch.from_numpy(f), size=s, mode="nearest")
                                        for f in features], 1).numpy())]
            label = f"hypercolumn(maps of shapes {', '.join(fmt_shape((n, *m)) for m in maps)}, size={size!r})" + \
                (" (float32)" if dtype == np.float32 else "")

            def check(value):
                return compare(value, self.reference(features, size).numpy(), "the output", label, alts)
            return value_case(self, group, label, call(self.name, features, size), check)

        n, c = draw.int(1, 3), draw.ints(1, 4)
        return [add("upsample", n, [(c(), 4, 4), (c(), 2, 3)], (8, 9)),
                add("upsample", n, [(c(), 3, 5), (c(), 6, 6), (c(), 2, 2)], (12, 10)),
                add("order", n, [(c() + 1, 5, 5), (c() + 1, 5, 5)], (7, 7)),
                add("order", n, [(2, 8, 8), (3, 4, 4), (1, 2, 2)], (8, 8)),
                add("downsample", n, [(c(), 16, 12), (c(), 4, 4)], (6, 7)),
                add("int size", n, [(c(), 3, 3), (c(), 6, 6)], 9),
                add("float32", n, [(c(), 3, 4), (c(), 5, 5)], (10, 11), np.float32)]


PROBLEMS = [Convolutionalize(), ConvTranspose2d(), OverlapCounts(), BilinearKernel(), FCN(), CenterCrop(), UNet(),
            DepthwiseSeparableConv(), ASPP(), DeepLabV3Plus(), ConfusionMatrix(), PixelAccuracy(), MeanIoU(),
            Hypercolumn()]
#: torchvision's segmentation models (FCN, DeepLab v3 and its ASPP), its transforms (center
#: crop) and its ops do the jobs of this week's problems: none may run or be inherited from.
for _problem in PROBLEMS:
    _problem.banned_calls = _problem.banned_classes = ("torchvision.",)
