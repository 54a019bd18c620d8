"""Hidden checks for week 2 (``course/source/w2_normalization``): references from
:mod:`solutions.w2_normalization`, computed in the judge's process; a wrong result matching a classic
mistake (unbiased variance, eps outside the root, wrong axes, momentum reversed, ...) is named.
"""
from __future__ import annotations

import functools

import numpy as np
import torch

from gradekit.codec import ModuleSpec
from solutions import w2_normalization as ref

from ..cases import Draw, batch_independence, build, layer_kinds, module_output, nn, question, raises, \
    random_state, returned_module, spec_text, tensor
from ..cases.statistics import batch_norm_variants, running_after, spatial, training_steps, variants
from ..cases.training import Budget, accuracy_at_least, student, training_case, unseen_images
from ..compare import fmt_shape
from ..ops import family_names, family_ops
from ..problem import Group as G, Problem, hints

#: Held-out accuracy make_cnn must reach after the fixed budget (margins over 20 seeds in
#: docs/course-spec.md, "Choices"): room for other sensible designs, not for one that learns nothing.
TRAIN_ACCURACY = {"batch": 0.80, "layer": 0.75, "instance": 0.75, "group": 0.75, "none": 0.60}
#: The fixed budget of the training smoke test (about 0.5 s on one CPU core for the reference).
TRAIN_BUDGET = Budget(epochs=3, optimizer="adam", lr=3e-3, batch_size=32, seconds=60.0)
NORMS = tuple(TRAIN_ACCURACY)
#: Per norm setting: the torch.nn layer types that implement it, and how to say so.
NORM_LAYERS = {"batch": ({"BatchNorm2d", "LazyBatchNorm2d"}, "BatchNorm2d"),
               "layer": ({"LayerNorm", "GroupNorm"}, "LayerNorm over (C, H, W) or GroupNorm(1, C)"),
               "instance": ({"InstanceNorm2d", "LazyInstanceNorm2d", "GroupNorm"}, "InstanceNorm2d"),
               "group": ({"GroupNorm"}, "GroupNorm"), "none": (set(), "no normalization layer")}
COMMON = hints("""
    backward: use differentiable operations only: the gradient flows through the mean and variance too.
    float32: keep the input's dtype.
    eps: eps is added to the variance inside the square root: sqrt(var + eps).""")


class _Norm(Problem):
    """layer_norm, instance_norm and group_norm: the same kinds of case over their own axes
    (``alternatives(args)``: their classic mistakes)."""
    banned_ops = family_ops("normalization")

    def __init__(self):
        self.banned_names = family_names("normalization") | {self.name}

    def add(self, draw: Draw, group, shape, *args, params=None, affine=(False, False), eps=None, dtype=np.float64,
            scale=1.0, grad=False):
        kwargs = {k: draw.data(params or shape[1:2], dtype) for k, on in zip(("weight", "bias"), affine) if on}
        kwargs |= {"eps": eps} if eps is not None else {}
        grad = {0: "x"} | {k: k for k in ("weight", "bias") if k in kwargs} if grad else None
        return tensor(self, group, getattr(ref, self.name), draw.data(shape, dtype, scale), *args, grad=grad,
                      draw=draw, alternatives=self.alternatives(args), **kwargs)


class LayerNorm(_Norm):
    name = "layer_norm"
    groups = hints("""
        last dimension: each sample (each row, each position) gets its own mean and biased variance over the normalized
            dimension; nothing is averaged over the batch.
        several dimensions: normalized_shape names the trailing dimensions to normalise over, e.g. (C, H, W) for one
            statistic per sample: average over all of them at once.
        weight and bias: weight and bias have the shape normalized_shape: one scale and shift per element of the
            normalized part, broadcast over the leading dimensions; either may be None.
        batch 1: layer norm does not depend on the other samples: a batch of one works.
        invalid [0.5]: normalized_shape must equal the trailing dimensions of x: raise ValueError when it does not
            (F.layer_norm refuses such an input too).""") + COMMON

    def alternatives(self, args):
        k = 1 if isinstance(args[0], int) else len(args[0])

        def trailing(x):
            return list(range(x.dim() - k, x.dim()))

        return variants(trailing, per_channel=False, rows=[
            ("statistics over the last dimension only: normalise over all of normalized_shape's dimensions at once",
             lambda x: [x.dim() - 1], None),
            ("statistics over every dimension after the batch: only the trailing normalized_shape dimensions count",
             lambda x: list(range(1, x.dim())), None),
            ("statistics over the dimensions right after the batch: normalized_shape names the trailing ones",
             lambda x: list(range(1, 1 + k)), None),
            ("statistics over the batch: layer norm normalises each sample on its own", lambda x: [0], None)])

    def cases(self, draw: Draw):
        n = draw.ints(2, 6)

        def add(group, shape, nshape, **kw):
            params = (nshape,) if isinstance(nshape, int) else tuple(nshape)
            return self.add(draw, group, shape, nshape, params=params, **kw)

        d, c, h, w, length, a = draw.int(4, 10), draw.int(2, 5), draw.int(3, 6), draw.int(3, 6), draw.int(3, 6), \
            draw.int(2, 5)
        both = (True, True)
        return [add("last dimension", (n(), d), d), add("last dimension", (n(), draw.int(2, 5), d), (d,)),
                add("last dimension", (n(), 3, 4, d), [d]),
                add("several dimensions", (n(), c, h, w), (c, h, w)), add("several dimensions", (n(), c, h, w), [h, w]),
                add("several dimensions", (n(), length, d), (length, d)),
                add("weight and bias", (n(), c, h, w), (c, h, w), affine=both),
                add("weight and bias", (n(), draw.int(2, 5), d), (d,), affine=both),
                add("weight and bias", (n(), d), d, affine=(True, False)),
                add("weight and bias", (n(), c, h, w), (h, w), affine=(False, True)),
                add("batch 1", (1, c, h, w), (c, h, w), affine=both), add("batch 1", (1, d), d),
                add("backward", (n(), c, h, w), (c, h, w), affine=both, grad=True),
                add("backward", (n(), draw.int(2, 5), d), (d,), affine=both, grad=True),
                add("float32", (n(), c, h, w), (h, w), affine=both, dtype=np.float32),
                add("float32", (n(), d), d, dtype=np.float32),
                add("eps", (n(), d), d, eps=0.5, scale=0.3), add("eps", (n(), c, h, w), (c, h, w), eps=0.1, scale=0.2,
                                                                 affine=both),
                raises(self, "invalid", draw.data((n(), a, a + draw.int(1, 4))), (a,)),
                raises(self, "invalid", draw.data((n(), d)), (d + 1,))]


class InstanceNorm(_Norm):
    name = "instance_norm"
    groups = hints("""
        (N, C, L): instance norm gives every (sample, channel) pair its own mean and biased variance, over the positions
            only.
        (N, C, H, W): for images, average over H and W (all axes after the channel axis), separately for each sample and
            each channel.
        batch 1: instance norm does not depend on the other samples: a batch of one works.
        weight and bias: weight and bias hold one value per channel (shape (C,)), broadcast over the batch and the
            positions; either may be None.
        invalid [0.5]: with a single position per channel (an (N, C) input, or (N, C, 1, 1)) there is nothing to
            normalise over: raise ValueError, as F.instance_norm does.""") + COMMON

    def alternatives(self, args):
        return variants(spatial, rows=[
            ("batch norm's statistics (over the batch too): instance norm keeps samples apart",
             lambda x: [0] + spatial(x), None),
            ("layer norm's statistics (over the channels too): instance norm keeps channels apart",
             lambda x: [1] + spatial(x), None),
            ("statistics over the last axis only: average over all the positions", lambda x: [x.dim() - 1], None)])

    def cases(self, draw: Draw):
        n, c, s = draw.ints(2, 5), draw.ints(2, 6), draw.ints(3, 7)
        add, both = functools.partial(self.add, draw), (True, True)
        return [add("(N, C, L)", (n(), c(), s() + 2)), add("(N, C, L)", (n(), c(), s()), affine=both),
                add("(N, C, H, W)", (n(), c(), s(), s())), add("(N, C, H, W)", (n(), c(), s(), s()), affine=both),
                add("batch 1", (1, c(), s(), s()), affine=both), add("batch 1", (1, c(), s())),
                add("weight and bias", (n(), c(), s(), s()), affine=both),
                add("weight and bias", (n(), c(), s()), affine=(True, False)),
                add("weight and bias", (n(), c(), s(), s()), affine=(False, True)),
                add("backward", (n(), c(), s(), s()), affine=both, grad=True),
                add("backward", (n(), c(), s()), grad=True),
                add("float32", (n(), c(), s(), s()), affine=both, dtype=np.float32),
                add("eps", (n(), c(), s(), s()), eps=0.3, scale=0.3)] + \
            [raises(self, "invalid", draw.data(shape)) for shape in ((n(), c()), (n(), c(), 1, 1))]


#: (channels, groups) pairs with groups != channels / groups, so that mixing the two up shows.
GROUPINGS = ((6, 2), (6, 3), (8, 2), (8, 4), (12, 3), (12, 4), (10, 2), (10, 5))


class GroupNorm(_Norm):
    name = "group_norm"
    groups = hints("""
        (N, C): split the C features into num_groups consecutive groups; each (sample, group) gets its own mean and
            biased variance.
        (N, C, L): a group's statistics cover its channels and all their positions, for one sample.
        (N, C, H, W): reshape to (N, num_groups, everything else) so each group's values lie together; num_groups is the
            number of groups, not the channels per group.
        one group, one channel per group: num_groups = 1 normalises each sample as a whole (layer norm); num_groups = C
            each channel alone (instance norm).
        batch 1: group norm does not depend on the other samples: a batch of one works.
        weight and bias: weight and bias hold one value per channel (shape (C,)), not per group, broadcast over the
            batch and the positions; either may be None.
        invalid [0.5]: when C is not divisible by num_groups, raise ValueError saying so.""") + COMMON

    def alternatives(self, args):
        g = args[0]
        return variants(lambda x: [-1], lambda x: (x.shape[0], g, -1), rows=[
            ("num_groups groups of channels mixed up with groups of num_groups channels",
             lambda x: [-1], lambda x: (x.shape[0], x.shape[1] // g, -1)),
            ("channels taken round-robin (channel c in group c % num_groups): groups are consecutive",
             lambda x: [1, 3], lambda x: (x.shape[0], x.shape[1] // g, g, -1)),
            ("instance norm (one channel per group)", spatial, None),
            ("layer norm (one group)", lambda x: list(range(1, x.dim())), None)])

    def cases(self, draw: Draw):
        def add(group, n, rest, cg=None, **kw):
            channels, groups = cg or draw.choice(GROUPINGS)
            return self.add(draw, group, (n, channels, *rest), groups, **kw)

        n, s = draw.ints(2, 5), draw.ints(3, 6)
        c, both = draw.int(2, 7), (True, True)
        return [add("(N, C)", draw.int(3, 7), ()), add("(N, C)", draw.int(3, 7), (), affine=both),
                add("(N, C, L)", n(), (s() + 1,)), add("(N, C, L)", n(), (s(),), affine=both),
                add("(N, C, H, W)", n(), (s(), s())), add("(N, C, H, W)", n(), (s(), s()), affine=both),
                add("one group, one channel per group", n(), (s(), s()), cg=(c, 1), affine=both),
                add("one group, one channel per group", n(), (s(), s()), cg=(c, c)),
                add("batch 1", 1, (s(), s()), affine=both), add("batch 1", 1, ()),
                add("weight and bias", n(), (s(), s()), affine=both),
                add("weight and bias", n(), (s(),), affine=(True, False)),
                add("weight and bias", n(), (s(), s()), affine=(False, True)),
                add("backward", n(), (s(), s()), affine=both, grad=True),
                add("backward", draw.int(3, 6), (), affine=both, grad=True),
                add("float32", n(), (s(), s()), affine=both, dtype=np.float32),
                add("eps", n(), (s(), s()), eps=0.3, scale=0.3)] + \
            [raises(self, "invalid", draw.data((2, c, 3, 3)), g) for c, g in ((6, 4), (draw.choice([5, 7]),
                                                                                     draw.choice([2, 3])))]


class BatchNorm(Problem):
    name = "batch_norm"
    banned_names = family_names("normalization") | {"batch_norm"}
    banned_ops = family_ops("normalization")
    groups = hints("""
        training, (N, C): in training mode each feature (column) is normalised with the mean and variance of the current
            batch; PyTorch uses the biased variance (divide by the number of values) and adds eps inside the square
            root.
        training, (N, C, *): for (N, C, *) inputs, channel c's statistics are taken over the batch and all positions:
            every axis except axis 1 (so a single sample with several positions is a valid training batch).
        no weight or bias: weight and bias are optional: when one is None, skip that scale or shift.
        eval mode: with training=False, normalise with running_mean and running_var (not the batch's statistics) and
            leave them unchanged; a batch of one sample is fine then.
        running statistics: in training mode, update running_mean and running_var in place (tensor methods ending in _,
            or slice assignment): momentum is the weight of the new batch, and running_var receives the unbiased batch
            variance.
        train then eval: eval mode after some training steps uses the running statistics those steps accumulated, so
            both the update and the eval formula must be right.
        backward: let autograd see the whole computation: in training mode the gradient also flows through the batch
            mean and variance (do not detach them); only the running-statistics update stays outside the graph.
        float32: keep the input's dtype, and the running statistics' dtype (update them in place in float32 too): create
            no float64 buffers.
        one value per channel [0.5]: with a single value per channel in training mode (a (1, C) input, or (1, C, 1, 1))
            there is no variance to estimate: raise ValueError, as F.batch_norm does. Count the values per channel over
            the batch and the positions.""")

    def cases(self, draw: Draw):
        c = draw.ints(2, 6)

        def hw():
            return draw.int(3, 7), draw.int(3, 7)

        def stats(channels, dtype=np.float64):
            return draw.normal((channels,), dtype, 0.5), draw.uniform(0.5, 2.0, channels, dtype)

        def add(group, shape, training, affine=(True, True), dtype=np.float64, verify=False, scale=1.0, **kw):
            x, (rm, rv) = draw.data(shape, dtype, scale), stats(shape[1], dtype)
            kw |= {k: draw.normal(shape[1:2], dtype) for k, on in zip(("weight", "bias"), affine) if on}
            return tensor(self, group, ref.batch_norm, x, rm, rv, training=training, return_args=[1, 2],
                          extra=running_after(x, rm, rv, training, verify, kw.get("momentum", 0.1)),
                          public_fields=("args_after",) if verify or not training else (),
                          alternatives=batch_norm_variants(training, rm, rv), **kw)

        def train_steps(group, channels, n_steps, positions, evaluate=False, **kw):
            xs = [draw.data((draw.int(2, 6) if positions else draw.int(4, 10), channels, *positions))
                  for _ in range(n_steps)]
            x_eval = draw.data((draw.int(1, 4), channels, *positions)) if evaluate else None
            return training_steps(self, group, ref.batch_norm, xs, *stats(channels), x_eval, weight=draw.normal(
                (channels,)), bias=draw.normal((channels,)), **kw)

        def backward(shape, training):
            x, (rm, rv) = draw.data(shape), stats(shape[1])
            return tensor(self, "backward", lambda x, rm, rv, weight, bias, training: ref.batch_norm(
                x, rm, rv, weight, bias, training), x, rm, rv, weight=draw.normal(shape[1:2]),
                bias=draw.normal(shape[1:2]), training=training, grad={0: "x", "weight": "weight", "bias": "bias"},
                draw=draw, label=f"gradients of batch_norm on x of shape {fmt_shape(shape)}, training={training}")

        no, wo = (False, False), (True, False)
        return [add("training, (N, C)", (draw.int(5, 10), c()), True),
                add("training, (N, C)", (2, c()), True, momentum=0.3),
                add("training, (N, C, *)", (draw.int(2, 5), c(), draw.int(4, 9)), True),
                add("training, (N, C, *)", (draw.int(2, 5), c(), *hw()), True, momentum=0.2),
                add("training, (N, C, *)", (1, c(), *hw()), True), add("training, (N, C, *)", (2, c(), 2, 3, 3), True),
                add("training, (N, C, *)", (draw.int(2, 4), c(), *hw()), True, eps=0.1, scale=0.3),
                add("no weight or bias", (draw.int(2, 5), c(), *hw()), True, affine=no),
                add("no weight or bias", (draw.int(4, 8), c()), False, affine=no),
                add("no weight or bias", (draw.int(2, 5), c(), draw.int(3, 8)), True, affine=wo),
                add("eval mode", (draw.int(2, 5), c(), *hw()), False), add("eval mode", (draw.int(4, 8), c()), False),
                add("eval mode", (1, c()), False, eps=0.05),
                add("eval mode", (1, c(), draw.int(3, 8)), False, momentum=0.5),
                add("running statistics", (draw.int(2, 5), c(), *hw()), True, verify=True),
                add("running statistics", (draw.int(4, 9), c()), True, momentum=0.3, verify=True),
                train_steps("running statistics", c(), 3, (draw.int(3, 7),), momentum=0.2),
                train_steps("train then eval", c(), 3, hw(), evaluate=True),
                train_steps("train then eval", c(), 4, (), evaluate=True, momentum=0.4),
                backward((draw.int(2, 4), c(), *hw()), True), backward((draw.int(4, 8), c()), True),
                backward((draw.int(2, 4), c(), draw.int(3, 7)), False),
                add("float32", (draw.int(2, 5), c(), *hw()), True, dtype=np.float32, verify=True),
                add("float32", (draw.int(4, 8), c()), False, dtype=np.float32)] + \
            [raises(self, "one value per channel", draw.data(shape), *stats(shape[1]), training=True,
                    label=f"batch_norm on x of shape {fmt_shape(shape)}, training=True") for shape in ((1, c()),
                                                                                                  (1, c(), 1, 1))]


class FuseConvBN(Problem):
    name = "fuse_conv_bn"
    banned_names = ("fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_modules",
                    "fuse_modules_qat", "fuse_fx", "fusion")
    groups = hints("""
        conv with bias: in eval mode BatchNorm is a fixed per-channel affine map (running statistics, weight, bias):
            write it as scale * z + shift and push scale and shift into the conv before it.
        conv without bias: a conv without a bias still gets one after folding: the BatchNorm's shift has to go
            somewhere.
        stride and padding: the fused conv must slide exactly like the original one: keep its kernel size, stride,
            padding and dilation.
        groups: each output channel (filter) gets its own scale, whatever the groups: scale the weight along its first
            axis, and keep groups in the new conv.
        BatchNorm eps: use the BatchNorm's own eps, not a constant.
        inputs unchanged: build a new nn.Conv2d and write the fused weights into it (under torch.no_grad()); do not
            scale conv.weight or change bn in place.""")

    def cases(self, draw: Draw):
        ch = draw.ints(2, 6)

        def add(group, cin, cout, kernel, bias, eps=None, check_inputs=False, **kw):
            conv = random_state(nn("Conv2d", cin, cout, kernel, bias=bias, **kw), draw)
            bn = random_state(nn("BatchNorm2d", cout, **({} if eps is None else {"eps": eps})), draw)

            def reference(x, conv=conv, bn=bn):
                with torch.no_grad():
                    return build(bn, torch.float64)(build(conv, torch.float64)(torch.from_numpy(x))).numpy()

            no_bias = ModuleSpec(conv.path, conv.args, {**conv.kwargs, "bias": False}, {"weight": conv.state["weight"]})
            return returned_module(
                self, group, f"fuse_conv_bn({spec_text(conv)}, {spec_text(bn)})", [conv, bn], "Conv2d",
                [draw.normal((draw.int(1, 4), cin, draw.int(7, 12), draw.int(7, 12))) for _ in range(2)], reference,
                "bn(conv(x)) in eval mode", lambda x: [
                    ("folding the BatchNorm with eps=1e-5 instead of the BatchNorm's own eps",
                     lambda: reference(x, bn=ModuleSpec(bn.path, bn.args, {}, bn.state))),
                    ("folding as if the conv had no bias: the conv's bias is scaled and shifted too",
                     lambda: reference(x, conv=no_bias) if bias else None)],
                {"bias": "the returned conv has no bias; the BatchNorm's shift (and the conv's bias) must end up in "
                         "one"}, {0: (conv, "conv"), 1: (bn, "bn")} if check_inputs else None)

        g, c = draw.choice([2, 3]), ch() + 1
        return [add("conv with bias", ch(), ch(), 3, True, padding=1),
                add("conv with bias", ch(), ch(), draw.choice([1, 5]), True),
                add("conv without bias", ch(), ch(), 3, False, padding=1),
                add("conv without bias", ch(), ch(), 1, False),
                add("stride and padding", ch(), ch(), 3, True, stride=2, padding=2),
                add("stride and padding", ch(), ch(), (3, 5), False, stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
                add("groups", 2 * g, 3 * g, 3, True, groups=g, padding=1),
                add("groups", c, c, 3, False, groups=c, stride=2, padding=1),
                add("BatchNorm eps", ch(), ch(), 3, True, eps=1e-3, padding=1),
                add("BatchNorm eps", ch(), ch(), 3, False, eps=0.1),
                add("inputs unchanged", ch(), ch(), 3, True, check_inputs=True, padding=1),
                add("inputs unchanged", ch(), ch(), 3, False, check_inputs=True, stride=2)]


@functools.lru_cache(maxsize=1)
def _digits():
    import coursedata

    return coursedata.digits()


class MakeCNN(Problem):
    name = "make_cnn"
    groups = hints("""
        builds each variant: make_cnn(norm, num_classes, in_channels) must build for every norm setting and map (N,
            in_channels, 8, 8) images to (N, num_classes) logits.
        norm layers: use torch.nn's layers: BatchNorm2d for 'batch', GroupNorm(1, C) (or a LayerNorm over (C, H, W)) for
            'layer', InstanceNorm2d for 'instance', GroupNorm for 'group', and no normalization layer at all for 'none'.
        unknown norm [0.5]: any other norm string must raise ValueError (a typo should not silently build a network
            without normalization).
        train mode: in training mode only batch norm mixes the samples of a batch (through its batch statistics); layer,
            instance and group norm treat every sample on its own.
        eval mode: in eval mode every normalization must treat samples independently: batch norm then uses its running
            statistics, which nn.BatchNorm2d switches to after model.eval().""") + tuple(
        G(f"trains ({norm})", f"with {TRAIN_BUDGET.epochs} epochs of Adam (lr {TRAIN_BUDGET.lr}, batch "
          f"{TRAIN_BUDGET.batch_size}) on the digits training set, make_cnn('{norm}') should reach {bar:.0%} accuracy "
          "on held-out digits (a network that learns nothing stays near 10%). Give it enough capacity (two or three "
          "conv blocks of a few dozen channels), do not pool the 8x8 images away before the features are learned, "
          f"and keep it small enough that each training run ends within {TRAIN_BUDGET.seconds:.0f} s.", 0.4)
        for norm, bar in TRAIN_ACCURACY.items())

    def cases(self, draw: Draw):
        def layers(norm):
            def layer_norm_axes(found, facts):
                for name, kind in found:
                    weight = facts.get("state_shapes", {}).get(f"{name}.weight")
                    if kind == "LayerNorm" and weight is not None and len(weight) < 3:
                        return (f"make_cnn('layer'): its LayerNorm '{name}' normalises over the last {len(weight)} "
                                "dimension(s) only; layer norm in a CNN covers (C, H, W)")
            return layer_kinds(self, "norm layers", f"make_cnn({norm!r})", "normalization", *NORM_LAYERS[norm], norm,
                               extra=layer_norm_axes if norm == "layer" else None)

        def builds(norm, n, classes=10, channels=1, **kwargs):
            label = f"make_cnn({norm!r}" + "".join(f", {k}={v}" for k, v in kwargs.items()) + ")"
            x = draw.uniform(0, 1, (n, channels, 8, 8), np.float32)
            return module_output(self, "builds each variant", label, x, (n, classes), norm, **kwargs)

        def independent(norm, train):
            k, mode = draw.int(2, 4), "training" if train else "eval"
            why = "in eval mode no sample's output may depend on the others (batch norm must use its running " \
                  "statistics: use nn.BatchNorm2d, which switches on model.eval())" if not train else \
                  "the first samples' outputs do not depend on the rest of the batch; in training mode batch norm " \
                  "normalises with the batch's statistics" if norm == "batch" else \
                  f"'{norm}' should treat each sample on its own, but the outputs depend on the rest of the batch"
            label = f"make_cnn({norm!r}) in {mode} mode on a batch of 8 and on its first {k} samples"
            return batch_independence(self, "train mode" if train else "eval mode", label,
                                      draw.uniform(0, 1, (8, 1, 8, 8), np.float32), k, train, train and norm == "batch",
                                      why, norm)

        def trains(norm):
            data = _digits()
            x_eval, y_eval = unseen_images(draw, data.x_test, data.y_test)
            label = f"make_cnn({norm!r}) trained {TRAIN_BUDGET.epochs} epochs on the digits ({len(data.y_train)} " \
                    f"images) and tested on {len(y_eval)} held-out ones (with noise of this grading)"
            return training_case(f"trains ({norm})", label, "classify", {"model": student(self.name, norm)},
                                 {"x_train": data.x_train, "y_train": data.y_train, "x_eval": x_eval},
                                 TRAIN_BUDGET, accuracy_at_least(y_eval, TRAIN_ACCURACY[norm]))

        bad = draw.distinct(["batchnorm", "Batch", "bn", "layernorm", "groups", "", "None"], 2)
        return [builds(norm, draw.int(2, 6)) for norm in NORMS] + \
            [builds(draw.choice(NORMS), 3, c := draw.int(3, 8), ch := draw.choice([2, 3]), num_classes=c,
                    in_channels=ch)] + \
            [layers(norm) for norm in NORMS] + \
            [raises(self, "unknown norm", b, label=f"make_cnn({b!r})") for b in bad] + \
            [independent(norm, True) for norm in NORMS] + [independent(norm, False) for norm in NORMS] + \
            [trains(norm) for norm in NORMS]


# ----------------------------------------------------------------------------- conceptual questions
# One case each, the answer's form public (gradekit.public_cases.answer_form), its value never.
class QGroupNormValues(Problem):
    name = "q_group_norm_values"
    groups = hints("""
        answer: group norm takes each mean within one sample, over one group of C / G channels and every position of
            them; nothing is averaged across the batch.""")

    def cases(self, draw: Draw):
        return [question(self, "answer", ref.q_group_norm_values(), "int")]


class QContrastInvariance(Problem):
    name = "q_contrast_invariance"
    groups = hints("""
        answer: standardising undoes a change x -> a x + b only when every value that shares the mean and variance got
            the same a and b; look at which values each layer's statistics mix (other channels? other images?).""")

    def cases(self, draw: Draw):
        return [question(self, "answer", ref.q_contrast_invariance(), "choice", choices="ABCD")]


PROBLEMS = [BatchNorm(), LayerNorm(), InstanceNorm(), GroupNorm(), FuseConvBN(), MakeCNN(),
            QGroupNormValues(), QContrastInvariance()]
