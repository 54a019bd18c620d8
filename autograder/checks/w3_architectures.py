"""Hidden checks for week 3 (``course/source/w3_architectures``): references from
:mod:`solutions.w3_architectures` and torchvision's models, computed in the judge's process.

Modules with a torchvision twin (the residual blocks, ResNeXt's block, DenseNet's
layers and the full models) are held to the module contract against it; the others
(the inception module, the auxiliary classifier, the pre-activation and SE blocks)
to the reference of this week, whose layout the course spec fixes. Full-size models
are heavy cases: one build per case, outputs compared on small inputs.
"""
from __future__ import annotations

import functools
import textwrap

import numpy as np
import torch

from gradekit import public_cases
from solutions import w3_architectures as ref

from ..cases import Draw, call, module, nn, raises, rows, spec, tensor
from ..cases.contract import BACKWARD_HINT, MODULE_GROUPS, TRAINING_HINT, TWIN_GROUPS, call_text, contract, \
    reference_target, twin_target
from ..cases.training import Budget, accuracy_at_least, fixed, lower_train_loss, sequential, student, \
    training_case, unseen_images
from ..compare import check_tensor, describe, fmt_shape
from ..ops import family_names, family_ops
from ..problem import Case, Outcome, Problem, Public, hints

TV = "torchvision.models"

# ----------------------------------------------------------------------------- smoke tests
#: (a) a small residual net of the student's BasicBlocks on the digits: held-out accuracy bar
#: (the reference reaches 77.1-98.7% over 200 grading seeds, docs/course-spec.md).
DIGITS_BAR = 0.70
DIGITS_WIDTH = 16
DIGITS_BUDGET = Budget(epochs=2, optimizer="adam", lr=3e-3, batch_size=32, seconds=60.0)
#: (b) degradation: a plain stack of DEEP_BLOCKS pairs of conv-BN-ReLU layers against the same
#: stack of the student's BasicBlocks; the residual one must end lower by DEEP_MARGIN, on the mean
#: of DEEP_REPEATS runs from different seeds (one run of two epochs left a residual net stuck
#: on one seed in a few dozen; two runs of one epoch cost the same).
DEEP_BLOCKS, DEEP_WIDTH, DEEP_MARGIN, DEEP_REPEATS = 8, 8, 0.1, 2
DEEP_BUDGET = Budget(epochs=1, optimizer="adam", lr=1e-3, batch_size=32, seconds=60.0)


@functools.lru_cache(maxsize=1)
def _digits():
    import coursedata

    return coursedata.digits()


def _stem(width: int) -> list:
    return [fixed(nn("Conv2d", 1, width, 3, padding=1, bias=False)), fixed(nn("BatchNorm2d", width)), fixed(nn("ReLU"))]


def _head(width: int, classes: int = 10) -> list:
    return [fixed(nn("AdaptiveAvgPool2d", 1)), fixed(nn("Flatten")), fixed(nn("Linear", width, classes))]


def residual_digits_net() -> dict:
    """stem, BasicBlock(16, 16), BasicBlock(16, 32, 2), head: the student's blocks in the judge's frame."""
    w = DIGITS_WIDTH
    return sequential(*_stem(w), student("BasicBlock", w, w), student("BasicBlock", w, 2 * w, 2), *_head(2 * w))


def plain_and_residual(blocks: int = DEEP_BLOCKS, width: int = DEEP_WIDTH) -> tuple[dict, dict]:
    """A deep plain net (each block conv-BN-ReLU-conv-BN-ReLU) and its residual twin (the student's BasicBlock
    in place of each block; same widths, so the same parameters and, built in the same order, the same init)."""
    conv = [fixed(nn("Conv2d", width, width, 3, padding=1, bias=False)), fixed(nn("BatchNorm2d", width)),
            fixed(nn("ReLU"))]
    plain = sequential(*_stem(width), *[p for _ in range(blocks) for p in conv + conv], *_head(width))
    residual = sequential(*_stem(width), *[student("BasicBlock", width, width) for _ in range(blocks)], *_head(width))
    return plain, residual


# ----------------------------------------------------------------------------- module cases
#: A full-size model's inputs: a small batch of two (eval mode), and for the training passes one
#: larger non-square image, a batch of one, whose last feature map is neither 1x1 nor square: 2x3
#: (the ResNets at 49x65, DenseNet-121, whose transitions floor, at 65x97). Over the 1x1 maps of two
#: small images the deepest BatchNorm layers would normalise two values per channel, where float32
#: round-off decides the outputs; over six, deep float32 training passes still differ from the
#: target's by up to a few 1e-5 (ResNet-50), hence their tolerance FULL_TRAIN_TOL.
FULL_X, FULL_TRAIN_PASSES, FULL_TRAIN_TOL = (2, 3, 33, 37), 2, 1e-3
FULL_EDGE = {"resnet": (1, 3, 49, 65), "densenet": (1, 3, 65, 97)}  # (ResNeXt-50: the ResNets')


def full_weights(problem: Problem, twin, args: tuple, kwargs: dict, draw: Draw) -> list[Case]:
    """A full-size model's outputs with random weights in torchvision's layout: in eval mode on a batch
    of two, then training-mode passes on one larger non-square image and the buffers after them (one
    heavy case: one state sent, one build)."""
    family = "densenet" if "densenet" in twin.path else "resnet"
    x, edge = draw.normal(FULL_X, np.float32), draw.normal(FULL_EDGE[family], np.float32)
    return contract(problem, twin_target(twin), args, x, draw, groups=("torchvision weights",), kwargs=kwargs,
                    heavy=True, one=False, train_x=edge, with_training=FULL_TRAIN_PASSES, judge_dtype=torch.float32,
                    train_tol=FULL_TRAIN_TOL)


def full_model(problem: Problem, builder: str, draw: Draw) -> list[Case]:
    """A full-size torchvision model (``torchvision.models.<builder>``, no arguments): its layout
    (count and ``state_dict``, on the meta device), then its outputs with random weights
    (:func:`full_weights`) for a drawn number of classes. Both heavy: one build per case."""
    classes = draw.int(3, 12)
    x = draw.normal((1, 3, 33, 35), np.float32)
    return contract(problem, twin_target(spec(f"{TV}.{builder}")), (), x, draw, groups=("torchvision layout",),
                    heavy=True) + \
        full_weights(problem, spec(f"{TV}.{builder}", num_classes=classes), (), {"num_classes": classes}, draw)


def downsample(cin: int, cout: int, stride: int):
    """torchvision's projection shortcut, or None when the shape is kept."""
    if stride == 1 and cin == cout:
        return None
    return nn("Sequential", nn("Conv2d", cin, cout, 1, stride=stride, bias=False), nn("BatchNorm2d", cout))


def _x(draw: Draw, n: int, c: int) -> np.ndarray:
    """A float32 input of odd and even, non-square sizes (from a few, so that drawn cases repeat)."""
    return draw.normal((n, c, draw.choice((5, 8, 11)), draw.choice((7, 10))), np.float32)


CONTRACT_HINTS = """
    output shape: check the output size on odd inputs: a 3x3 conv with padding 1 keeps the size at stride 1, and a
        stride-2 layer gives floor((H - 1) / 2) + 1.
    parameters: count the weights of every layer: convs followed by BatchNorm have no bias, and a projection
        shortcut adds a 1x1 conv and a BatchNorm only when the shape changes.
    state_dict: name the layers as torchvision does (conv1, bn1, ..., downsample as an nn.Sequential of the 1x1 conv
        and its BatchNorm) so that torchvision's weights load by name.
    torchvision weights: with torchvision's weights loaded (strict=True) the outputs must be torchvision's in eval
        mode: the order of the layers, where the stride sits, and where the ReLUs and the addition happen all matter.
    submodules: use torch.nn layers as attributes (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Sequential), with
        torchvision's names.
    training mode: TRAINING
    backward: BACKWARD"""


def _hints(*tables: str):
    """One hint table from several (each dedented on its own); TRAINING and BACKWARD stand for the
    contract's hints of those groups."""
    text = "\n".join(textwrap.dedent(t).strip("\n") for t in tables)
    return hints(text.replace("TRAINING", TRAINING_HINT).replace("BACKWARD", BACKWARD_HINT))


# ----------------------------------------------------------------------------- GoogLeNet
class InceptionModule(Problem):
    name = "InceptionModule"
    groups = _hints("""
        output shape: every branch keeps the spatial size (a k x k conv needs padding (k - 1) / 2, the max pool stride 1
            and padding 1), and the branches are concatenated on the channel axis.
        parameters: four branches: 1x1; 1x1 then 3x3; 1x1 then a real 5x5; 3x3 max pool then 1x1; every conv with
            its bias (no BatchNorm).
        state_dict: four nn.Sequential named branch1 to branch4, holding their layers in the order of the spec (the
            pool first in branch4), so that weights in that layout load by name.
        outputs: every conv is followed by a ReLU, and the branches are concatenated in the order 1, 2, 3, 4.
        training mode: the module has no BatchNorm and no dropout: training mode must compute what eval mode does
            and change nothing in the state_dict.
        backward: BACKWARD""")

    def cases(self, draw: Draw):
        cases = []
        for i in range(2):
            args = (draw.choice((3, 5)), *draw.distinct([2, 3, 4, 5, 6, 7], 6))
            x = _x(draw, draw.int(1, 3), args[0])
            cases += contract(self, reference_target(ref.InceptionModule, *args), args, x, draw,
                              groups=MODULE_GROUPS if i == 0 else MODULE_GROUPS[:4], alternatives=self.alternatives)
        return cases

    @staticmethod
    def alternatives(m, x, train):
        branches = [m.branch1(x), m.branch2(x), m.branch3(x), m.branch4(x)]
        return [("the branches concatenated in another order (the spec's order is 1x1, 3x3, 5x5, pool)",
                 lambda: torch.cat(branches[::-1], 1)),
                ("the branches concatenated in another order (the spec's order is 1x1, 3x3, 5x5, pool)",
                 lambda: torch.cat([branches[1], branches[0], branches[2], branches[3]], 1))]


class AuxClassifier(Problem):
    name = "AuxClassifier"
    groups = _hints("""
        output shape: the classifier maps a feature map of any size to (N, num_classes): pool to 4x4 first, whatever
            the input size.
        parameters: pool (4x4, adaptive), 1x1 conv to 128 channels, Linear(128 * 4 * 4, 1024), Linear(1024,
            num_classes), with biases.
        state_dict: name the layers pool, conv, fc1, dropout, fc2, as the spec does.
        outputs: in eval mode: pool, conv, ReLU, flatten, fc1, ReLU, (dropout does nothing), fc2.
        dropout: in training mode dropout (p = 0.7) zeroes activations at random, so two passes over the same input
            differ; in eval mode it must do nothing. Use nn.Dropout, which follows model.train() and model.eval().
        training mode: with torch's random generator seeded alike before each pass, training-mode outputs must be the
            spec's: one nn.Dropout(p=0.7) between fc1's ReLU and fc2 (nowhere else), which draws the same mask as
            F.dropout(x, 0.7, training=True) for the same seed.
        backward: BACKWARD""")

    def cases(self, draw: Draw):
        cases = []
        for size, outputs in (((draw.choice((4, 7)), draw.choice((9, 16))), True), ((14, 14), False)):
            args = (draw.int(2, 10), draw.int(2, 11))  # 72 layouts: a grading seldom asks the public ones
            x = draw.normal((draw.int(1, 3), args[0], *size), np.float32)
            target = reference_target(ref.AuxClassifier, *args)
            cases += contract(self, target, args, x, draw, groups=MODULE_GROUPS[:3])
            if outputs:  # 2.1 million weights to send: heavy (the backward pass: x's gradient only)
                cases += contract(self, target, args, x, draw, groups=("outputs", "training mode", "backward"),
                                  heavy=True, train_x=draw.normal((3, *x.shape[1:]), np.float32), param_grads=False)
        args = (draw.choice((3, 6)), draw.choice((4, 7)))
        x = draw.normal((3, args[0], 8, 8), np.float32)
        for train in (True, False):  # dropout: two passes differ in training mode, agree in eval mode
            label = f"{call_text(self.name, args)} in {'training' if train else 'eval'} mode, twice on the same input"
            cases.append(module(self, "dropout", label,
                                lambda o, label=label, train=train: public_cases.repeated_passes(o.data, label, train),
                                *args, inputs=[x, x], train=train))
            cases[-1].public = Public(rule="repeated_passes", params={"differ": train})
        return cases


def _googlenet_loss(main_logits, aux_logits, target, aux_weight=0.3):
    return ref.googlenet_loss(main_logits, [torch.from_numpy(np.array(a)) for a in aux_logits], target, aux_weight)


class GoogLeNetLoss(Problem):
    name = "googlenet_loss"
    groups = hints("""
        main only: with no auxiliary logits (an empty list) the loss is the mean cross-entropy of the main logits.
        auxiliary losses: each auxiliary classifier adds its own mean cross-entropy, weighted by aux_weight, to the
            main loss: a weighted sum, not an average over the classifiers.
        aux_weight: aux_weight scales the auxiliary terms only, never the main one; use the argument, not a constant.
        backward: build the loss from differentiable operations so that the gradient reaches the main logits.
        large logits: logits of a few hundred must give a finite loss: take log-probabilities with F.log_softmax or
            F.cross_entropy (which subtract the largest logit), never log(softmax(...)), where a probability that
            underflows to 0 gives log(0) = -inf.""")

    def cases(self, draw: Draw):
        def add(group, n_aux, weight=None, grad=False, scale=2.0, dtype=np.float64):
            n, k = draw.int(3, 9), draw.int(3, 11)
            main = draw.normal((n, k), dtype, scale)
            aux = [draw.normal((n, k), dtype, scale) for _ in range(n_aux)]
            target = draw.rng.integers(0, k, n).astype(np.int64)
            kwargs = {} if weight is None else {"aux_weight": weight}
            label = f"{'gradients of ' if grad else ''}googlenet_loss(main_logits of shape {fmt_shape((n, k))}, " \
                    f"{n_aux} auxiliary logits, target" + (f", aux_weight={weight}" if weight is not None else "") + ")"
            if grad:
                return self.backward(draw, label, main, aux, target, **kwargs)
            return tensor(self, group, _googlenet_loss, main, aux, target, label=label,
                          alternatives=self.alternatives, **kwargs)
        return [add("main only", 0), add("main only", 0, 0.5),
                add("auxiliary losses", 2), add("auxiliary losses", 1), add("auxiliary losses", 3),
                add("aux_weight", 2, draw.choice([0.1, 0.5, 1.0])), add("aux_weight", 1, draw.choice([0.2, 0.7])),
                add("backward", 2, grad=True), add("backward", 0, grad=True),
                add("large logits", 2, scale=80.0, dtype=np.float32), add("large logits", 1, scale=500.0)]

    def backward(self, draw: Draw, label: str, main, aux, target, **kwargs) -> Case:
        """The gradient reaching main_logits for a random scalar output gradient (a 0-d tensor)."""
        grad_output = np.asarray(draw.normal((1,))[0])
        request = call(self.name, torch.from_numpy(main.copy()).requires_grad_(True), aux, target, **kwargs)
        request["grad"] = {"grad_output": grad_output, "wrt": [0]}

        def check(outcome: Outcome):
            leaf = torch.from_numpy(main.copy()).requires_grad_(True)
            out = _googlenet_loss(leaf, aux, torch.from_numpy(target), **kwargs)
            msg = check_tensor(outcome.value, out.detach().numpy(), "the output")
            if msg:
                return f"{label}: {msg}"
            if outcome.grad_error:
                err = outcome.grad_error if isinstance(outcome.grad_error, dict) else {}
                return f"{label}: backward raised {err.get('type')}: {str(err.get('message', ''))[:150]}"
            expected, = torch.autograd.grad(out, leaf, torch.from_numpy(grad_output))
            got = (outcome.grads if isinstance(outcome.grads, dict) else {}).get("0")
            if got is None:
                return f"{label}: no gradient reached main_logits (is the loss still connected to it?)"
            msg = check_tensor(got, expected.numpy(), "the gradient for main_logits")
            return f"{label}: {msg}" if msg else None
        return Case(request, check, label, "backward")

    @staticmethod
    def alternatives(targs, tkwargs):
        import torch.nn.functional as F
        main, aux, target = targs
        w = tkwargs.get("aux_weight", 0.3)
        aux = [torch.from_numpy(np.array(a)) for a in aux]
        ce = [F.cross_entropy(a, target) for a in aux]
        return [("the auxiliary losses averaged instead of summed",
                 lambda: (F.cross_entropy(main, target) + w * sum(ce) / len(ce)).detach()),
                ("aux_weight applied to the main loss too",
                 lambda: (w * (F.cross_entropy(main, target) + sum(ce))).detach()),
                ("the auxiliary losses not weighted by aux_weight",
                 lambda: (F.cross_entropy(main, target) + sum(ce)).detach()),
                ("summed cross-entropies over the batch instead of means",
                 lambda: (F.cross_entropy(main, target, reduction="sum")
                          + w * sum(F.cross_entropy(a, target, reduction="sum") for a in aux)).detach())]


# ----------------------------------------------------------------------------- ResNet blocks
def _basic_twin(cin, cout, stride):
    return spec(f"{TV}.resnet.BasicBlock", cin, cout, stride, downsample(cin, cout, stride))


def _bottleneck_twin(cin, mid, stride):
    return spec(f"{TV}.resnet.Bottleneck", cin, mid, stride, downsample(cin, 4 * mid, stride))


#: The configurations of ``_block_shapes`` that also get a backward case: the identity (through two
#: blocks in a row) and the projection with a stride.
BACKWARD_CONFIGS = (0, 3)


def _args(cin: int, cout: int, stride: int, i: int) -> tuple:
    """A block's positional arguments; the first configuration (the identity) relies on the default stride."""
    return (cin, cout) if i == 0 and stride == 1 else (cin, cout, stride)


def _block_shapes(draw: Draw, c: int):
    """(in, out, stride) for: the identity, a stride, a channel change, both."""
    return [(c, c, 1), (c, c, 2), (c, c + draw.choice((1, 3)), 1), (c, 2 * c, 2)]


class BasicBlock(Problem):
    name = "BasicBlock"
    groups = _hints(CONTRACT_HINTS, f"""
        trains on digits [2]: a small residual net of your blocks (a conv stem, BasicBlock({DIGITS_WIDTH},
            {DIGITS_WIDTH}), BasicBlock({DIGITS_WIDTH}, {2 * DIGITS_WIDTH}, 2), global pooling and a linear layer)
            trained with {DIGITS_BUDGET.describe()} on the digits should reach {DIGITS_BAR:.0%} held-out accuracy.
            Check that the block learns: both convs, both BatchNorms, the shortcut added before the last ReLU.
        degradation [2]: a stack of {DEEP_BLOCKS} of your blocks should end with a clearly lower training loss than
            the same stack without shortcuts (plain conv-BN-ReLU layers), trained alike ({DEEP_BUDGET.describe()};
            mean of {DEEP_REPEATS} runs).
            The identity shortcut is what lets the deep residual net train: add x itself (untouched, no ReLU on it)
            to the branch's output, then apply the ReLU.""")

    def cases(self, draw: Draw):
        cases = []
        for i, (cin, cout, stride) in enumerate(_block_shapes(draw, draw.choice((3, 5)))):
            twin = _basic_twin(cin, cout, stride)
            x = _x(draw, draw.int(1, 3), cin)
            cases += contract(self, twin_target(twin), _args(cin, cout, stride, i), x, draw,
                              train_x=_x(draw, 3, cin), backward=i in BACKWARD_CONFIGS)
        return cases + [self.trains(draw), self.degradation()]

    def trains(self, draw: Draw):
        data = _digits()
        x_eval, y_eval = unseen_images(draw, data.x_test, data.y_test)
        w = DIGITS_WIDTH
        label = f"conv stem, BasicBlock({w}, {w}), BasicBlock({w}, {2 * w}, 2), pooling and a linear layer trained " \
                f"on the digits ({len(data.y_train)} images), tested on {len(y_eval)} held-out ones (with noise " \
                "of this grading)"
        return training_case("trains on digits", label, "classify", {"model": residual_digits_net()},
                             {"x_train": data.x_train, "y_train": data.y_train, "x_eval": x_eval},
                             DIGITS_BUDGET, accuracy_at_least(y_eval, DIGITS_BAR))

    def degradation(self):
        data = _digits()
        plain, residual = plain_and_residual()
        label = f"{DEEP_BLOCKS} BasicBlock({DEEP_WIDTH}, {DEEP_WIDTH}) against the same {2 * DEEP_BLOCKS} conv " \
                f"layers without shortcuts, trained on the digits from the same seed (mean of {DEEP_REPEATS} runs)"
        return training_case("degradation", label, "classify", {"plain": plain, "residual": residual},
                             {"x_train": data.x_train, "y_train": data.y_train, "x_eval": data.x_test[:8]},
                             DEEP_BUDGET, lower_train_loss("residual", "plain", DEEP_MARGIN), repeats=DEEP_REPEATS)


class Bottleneck(Problem):
    name = "Bottleneck"
    groups = _hints(CONTRACT_HINTS.replace("a 3x3 conv with padding 1", "the 1x1 convs keep the size, the 3x3 "
                                           "(padding 1) carries the stride"))

    def cases(self, draw: Draw):
        cases = []
        mid = draw.choice((2, 3))
        shapes = ((4 * mid, 1), (4 * mid, 2), (draw.choice((5, 7)), 1), (draw.choice((5, 7)), 2))
        for i, (cin, stride) in enumerate(shapes):
            twin = _bottleneck_twin(cin, mid, stride)
            x = _x(draw, draw.int(1, 3), cin)
            cases += contract(self, twin_target(twin), _args(cin, mid, stride, i), x, draw,
                              train_x=_x(draw, 3, cin), backward=i in BACKWARD_CONFIGS)
        return cases


class PreActBlock(Problem):
    name = "PreActBlock"
    groups = _hints("""
        output shape: the convs follow the BasicBlock's sizes: 3x3 with padding 1, the first with the stride.
        parameters: two 3x3 convs without bias, a BatchNorm before each (the first over the input's channels), and a
            1x1 conv (no BatchNorm after it) as the shortcut only when the shape changes.
        state_dict: name the layers bn1, conv1, bn2, conv2 and downsample (an nn.Sequential holding the 1x1 conv) as
            the spec does.
        outputs: pre-activation: BN and ReLU come before each conv, nothing after the addition; the identity path is
            x itself, and a projection is applied to the pre-activated input relu(bn1(x)).
        training mode: TRAINING
        backward: BACKWARD The identity path is x itself: add it, do not change it.""")

    def cases(self, draw: Draw):
        cases = []
        for i, (cin, cout, stride) in enumerate(_block_shapes(draw, draw.choice((3, 5)))):
            x = _x(draw, draw.int(2, 4), cin)
            cases += contract(self, reference_target(ref.PreActBlock, cin, cout, stride), _args(cin, cout, stride, i),
                              x, draw, alternatives=self.alternatives, backward=i in BACKWARD_CONFIGS)
        return cases

    @staticmethod
    def alternatives(m, x, train):
        import torch.nn.functional as F
        a = F.relu(m.bn1(x))
        short = x if m.downsample is None else m.downsample(a)
        branch = m.conv2(F.relu(m.bn2(m.conv1(a))))
        return [("a ReLU after the addition (a pre-activation block adds and stops)",
                 lambda: F.relu(branch + short)),
                ("the projection applied to x instead of the pre-activated relu(bn1(x))",
                 lambda: branch + (x if m.downsample is None else m.downsample(x)))]


class ResNet(Problem):
    name = "resnet"
    groups = hints("""
        torchvision layout: the stem (7x7 conv stride 2, BN, ReLU, 3x3 max pool stride 2), four stages of 64, 128,
            256, 512 channels (times 4 for bottlenecks) with [2, 2, 2, 2], [3, 4, 6, 3] or [3, 4, 23, 3] blocks, then
            pooling and fc: count the parameters against torchvision's, with its names (conv1, bn1, layer1.0.conv1,
            ..., fc).
        torchvision weights: with torchvision's weights loaded the outputs must be torchvision's, in eval mode on a
            batch of two, then in training mode (with the BatchNorm running statistics after the passes) on one large
            non-square image, whose last feature map is neither 1x1 nor square: the first block of stages 2 to 4 has
            stride 2; the model ends with adaptive average pooling to 1x1 and torch.flatten(x, 1) (never squeeze(),
            which drops a batch of one) before fc.
        invalid depth [0.5]: only depths 18, 34, 50 and 101 exist here: raise ValueError for any other.""")

    def cases(self, draw: Draw):
        classes = draw.int(3, 12)
        x = draw.normal((2, 3, 33, 37), np.float32)
        cases = [c for d in (18, 34, 50, 101) for c in contract(
            self, twin_target(spec(f"{TV}.resnet{d}")), (d,), x, draw, groups=("torchvision layout",), heavy=True)]
        for depth in (18, 50):
            cases += full_weights(self, spec(f"{TV}.resnet{depth}", num_classes=classes), (depth,),
                                  {"num_classes": classes}, draw)
        return cases + [raises(self, "invalid depth", d) for d in draw.distinct([16, 20, 32, 48, 152, 0], 2)]


# ----------------------------------------------------------------------------- ResNeXt
#: (in, out, cardinality, bottleneck_width, stride, torchvision planes, base_width): torchvision's Bottleneck
#: has width int(planes * base_width / 64) * groups = cardinality * bottleneck_width and 4 * planes outputs.
RESNEXT_SHAPES = [(16, 16, 2, 2, 1), (8, 16, 4, 2, 1), (16, 32, 4, 2, 2), (16, 16, 4, 4, 2), (12, 32, 8, 1, 1),
                  (32, 32, 4, 4, 1), (16, 64, 8, 2, 2)]


def _resnext_twin(cin, cout, card, width, stride):
    planes = cout // 4
    base = 64 * width // planes
    assert int(planes * (base / 64.0)) == width
    return spec(f"{TV}.resnet.Bottleneck", cin, planes, stride, downsample(cin, cout, stride), groups=card,
                base_width=base)


class ResNeXtBlock(Problem):
    name = "ResNeXtBlock"
    groups = _hints(CONTRACT_HINTS.replace(
        "count the weights of every layer:", "the 3x3 conv is grouped (groups=cardinality: each of its weights sees "
        "width / cardinality input channels), the inner width is cardinality * bottleneck_width;"))

    def cases(self, draw: Draw):
        cases = []
        for i, (cin, cout, card, width, stride) in enumerate(draw.distinct(RESNEXT_SHAPES, 3)):
            twin = _resnext_twin(cin, cout, card, width, stride)
            args = (cin, cout, card, width, stride)
            x = _x(draw, draw.int(1, 3), cin)
            cases += contract(self, twin_target(twin), args, x, draw, train_x=_x(draw, 3, cin), backward=i == 0)
        cin, cout, stride = draw.choice(((16, 32, 1), (32, 32, 2)))  # the defaults: cardinality 32, width 4
        x = _x(draw, 2, cin)
        return cases + contract(self, twin_target(_resnext_twin(cin, cout, 32, 4, stride)), (cin, cout),
                                x, draw, kwargs={"stride": stride}, groups=("parameters", "torchvision weights"))


class ResNeXt50(Problem):
    name = "resnext50_32x4d"
    groups = hints("""
        torchvision layout: ResNet-50's stem, stages and head, with ResNeXt blocks of cardinality 32 whose inner
            width doubles at every stage (128, 256, 512, 1024) and whose outputs are 256, 512, 1024 and 2048 channels:
            parameters and names as torchvision's resnext50_32x4d.
        torchvision weights: with torchvision's weights loaded the outputs must be torchvision's (eval mode on a batch
            of two, then training mode on one large non-square image, with the running statistics after it): stride 2
            in the first block of stages 2 to 4, on its grouped 3x3 conv; adaptive pooling and torch.flatten(x, 1).""")

    def cases(self, draw: Draw):
        return full_model(self, "resnext50_32x4d", draw)


# ----------------------------------------------------------------------------- DenseNet
DENSE_HINTS = """
    output shape: a dense layer returns only its growth_rate new channels and keeps the spatial size (3x3 conv,
        padding 1); a dense block returns its input and every layer's new channels, concatenated; a transition halves
        the size (2x2 average pool, stride 2, floor).
    parameters: BN-ReLU-1x1 conv to bn_size * growth_rate channels, then BN-ReLU-3x3 conv to growth_rate channels,
        no conv biases; layer i of a block sees in_channels + (i - 1) * growth_rate channels.
    state_dict: use torchvision's names: norm1, relu1, conv1, norm2, relu2, conv2 in a layer; denselayer1,
        denselayer2, ... in a block; norm, relu, conv, pool in a transition.
    torchvision weights: with torchvision's weights loaded the outputs must be torchvision's in eval mode:
        BatchNorm and ReLU come before each conv (pre-activation), and a block concatenates on the channel axis in
        the order input, layer 1, layer 2, ...
    submodules: use torch.nn layers as attributes (nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.AvgPool2d).
    training mode: TRAINING
    backward: BACKWARD A dense block concatenates into a new tensor (torch.cat): its input stays as it was."""


def _dense_layer_twin(cin, growth, bn_size):
    return spec(f"{TV}.densenet._DenseLayer", cin, growth, bn_size, 0.0)


class DenseLayer(Problem):
    name = "DenseLayer"
    groups = _hints(DENSE_HINTS)

    def cases(self, draw: Draw):
        cases = []
        for bn_size in (4, draw.choice([1, 2, 3])):
            cin, growth = draw.int(3, 9), draw.int(2, 7)  # 30 layouts per bn_size
            twin = _dense_layer_twin(cin, growth, bn_size)
            kwargs = {} if bn_size == 4 else {"bn_size": bn_size}
            x = _x(draw, draw.int(1, 3), cin)
            cases += contract(self, twin_target(twin), (cin, growth), x, draw, kwargs=kwargs,
                              train_x=_x(draw, 3, cin), backward=bn_size == 4)
        return cases


class DenseBlock(Problem):
    name = "DenseBlock"
    groups = _hints("\n".join(line for line in DENSE_HINTS.splitlines()
                              if not line.lstrip().startswith("submodules:")))  # (a one-line entry)

    def cases(self, draw: Draw):
        cases = []
        for layers, bn_size in ((draw.choice((2, 4)), 4), (draw.choice((1, 3)), draw.choice([1, 2]))):
            cin, growth = draw.choice((4, 6)), draw.choice((2, 4))
            twin = spec(f"{TV}.densenet._DenseBlock", layers, cin, bn_size, growth, 0.0)
            kwargs = {} if bn_size == 4 else {"bn_size": bn_size}
            x = _x(draw, draw.int(1, 3), cin)
            cases += contract(self, twin_target(twin), (layers, cin, growth), x, draw, kwargs=kwargs,
                              train_x=_x(draw, 3, cin), groups=tuple(g for g in TWIN_GROUPS if g != "submodules"),
                              backward=bn_size == 4)

        return cases


class Transition(Problem):
    name = "Transition"
    groups = _hints(DENSE_HINTS)

    def cases(self, draw: Draw):
        cases = []
        for i in range(2):
            cin = draw.int(4, 13)  # 54 layouts: a grading seldom asks the public ones
            cout = draw.int(2, 8)
            twin = spec(f"{TV}.densenet._Transition", cin, cout)
            x = _x(draw, draw.int(1, 3), cin)
            cases += contract(self, twin_target(twin), (cin, cout), x, draw, train_x=_x(draw, 3, cin),
                              backward=i == 0)
        return cases


class DenseNet121(Problem):
    name = "densenet121"
    groups = hints("""
        torchvision layout: features = stem (conv0, norm0, relu0, pool0), dense blocks of 6, 12, 24 and 16 layers
            (growth 32, bn_size 4) with a transition halving the channels between them, and norm5; then the
            classifier: parameters and names as torchvision's densenet121.
        torchvision weights: with torchvision's weights loaded the outputs must be torchvision's (eval mode on a batch
            of two, then training mode on one large non-square image, with the running statistics after it): after the
            features come a ReLU, global average pooling over the whole map (adaptive, whatever its size and shape),
            torch.flatten(x, 1) and the classifier.""")

    def cases(self, draw: Draw):
        return full_model(self, "densenet121", draw)


# ----------------------------------------------------------------------------- SENet
class SEBlock(Problem):
    name = "SEBlock"
    groups = _hints("""
        output shape: the block rescales its input: the output has the input's shape.
        parameters: squeeze to channels // reduction with a first FC layer, back to channels with a second, both with
            biases (1x1 convs on the pooled (N, C, 1, 1) tensor are FC layers).
        state_dict: name the layers avgpool, fc1, fc2, activation and scale_activation (torchvision's
            SqueezeExcitation), fc1 and fc2 as 1x1 nn.Conv2d.
        outputs: one gate per channel and sample, computed from the globally averaged input: pool, FC, ReLU, FC,
            sigmoid (each gate in (0, 1), independently of the others), then x times its channel's gate at every
            position.
        training mode: the block has no BatchNorm and no dropout: training mode must compute what eval mode does and
            change nothing in the state_dict.
        backward: BACKWARD Multiply x by the gate into a new tensor (x * s), not in place.""")

    def cases(self, draw: Draw):
        cases = []
        for reduction in (None, draw.choice([2, 4, 8])):
            channels = (reduction or 16) * draw.int(1, 4)
            kwargs = {} if reduction is None else {"reduction": reduction}
            x = 2 * _x(draw, draw.int(2, 4), channels)
            cases += contract(self, reference_target(ref.SEBlock, channels, **kwargs), (channels,), x, draw,
                              kwargs=kwargs, alternatives=self.alternatives, backward=reduction is None)
        return cases

    @staticmethod
    def alternatives(m, x, train):
        pooled = m.avgpool(x)
        inner = m.fc2(torch.relu(m.fc1(pooled)))
        return [("the gate without its sigmoid", lambda: x * inner),
                ("a softmax over the channels in place of the sigmoid", lambda: x * torch.softmax(inner, 1)),
                ("a gate for every position (no global average pooling)",
                 lambda: x * torch.sigmoid(m.fc2(torch.relu(m.fc1(x))))),
                ("the gate itself, not the rescaled input", lambda: torch.sigmoid(inner).expand_as(x))]


class SEBasicBlock(Problem):
    name = "SEBasicBlock"
    groups = _hints("""
        output shape: the block's sizes are BasicBlock's: 3x3 convs with padding 1, the first with the stride.
        parameters: BasicBlock's layers (and projection exactly when the shape changes) plus an SEBlock over the
            output channels.
        state_dict: BasicBlock's names (conv1, bn1, conv2, bn2, downsample) plus se, an SEBlock.
        outputs: the SE gate rescales the residual branch (after bn2) before the shortcut is added; then the ReLU.
        training mode: TRAINING
        backward: BACKWARD""")

    def cases(self, draw: Draw):
        cases = []
        for i, ((cin, cout, stride), reduction) in enumerate(zip(_block_shapes(draw, 8), (4, 2, 4, 8))):
            cout = max(cout, reduction)
            x = _x(draw, draw.int(2, 4), cin)
            args = (cin, cout, stride)
            cases += contract(self, reference_target(ref.SEBasicBlock, *args, reduction=reduction),
                              _args(cin, cout, stride, i), x,
                              draw, kwargs={"reduction": reduction}, alternatives=self.alternatives,
                              backward=i in BACKWARD_CONFIGS)
        cin = draw.choice((16, 32))  # the default reduction (16)
        args = (cin, cin, 1)
        return cases + contract(self, reference_target(ref.SEBasicBlock, *args), args, _x(draw, 2, cin), draw,
                                groups=("parameters", "outputs"), alternatives=self.alternatives)

    @staticmethod
    def alternatives(m, x, train):
        identity = x if m.downsample is None else m.downsample(x)
        branch = m.bn2(m.conv2(m.relu(m.bn1(m.conv1(x)))))
        return [("the SE gate applied after the addition", lambda: torch.relu(m.se(branch + identity))),
                ("the SE gate applied after the final ReLU", lambda: m.se(torch.relu(branch + identity)))]


# ----------------------------------------------------------------------------- EfficientNet
#: EfficientNet-B0's stage widths and depths, and (width, depth) multipliers of B0..B7.
B0_WIDTHS = (32, 16, 24, 40, 80, 112, 192, 320, 1280)
B0_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
B_MULTS = ((1.0, 1.0), (1.0, 1.1), (1.1, 1.2), (1.2, 1.4), (1.4, 1.8), (1.6, 2.2), (1.8, 2.6), (2.0, 3.1))
#: Width multipliers far from 1 (MobileNet-like 0.25-0.5, and 2.5-4).
FAR_BELOW, FAR_ABOVE = (0.25, 0.35, 0.5), (2.5, 3.1, 3.7)


def _close(got, expected: tuple, label: str) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 3 or \
            not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in got):
        return f"{label} should return three numbers (depth, width, resolution) but returned {describe(got)}"
    for what, g, e in zip(("depth", "width", "resolution"), got, expected):
        if not abs(g - e) <= 1e-9 * max(1.0, abs(e)):
            return f"{label}: the {what} multiplier {g:.4g} is not right"
    return None


class EfficientNetScaling(Problem):
    name = "efficientnet_scaling"
    groups = hints("""
        default coefficients: compound scaling raises each coefficient to the power phi: depth alpha ** phi, width
            beta ** phi, resolution gamma ** phi, returned in that order.
        other coefficients: use the alpha, beta and gamma given as arguments.""")

    def cases(self, draw: Draw):
        def case(group, phi, **kwargs):
            expected = ref.efficientnet_scaling(phi, **kwargs)
            label = call_text(self.name, (phi,), kwargs)
            return Case(call(self.name, phi, **kwargs), lambda o: _close(o.value, expected, label), label, group,
                        public=Public(("value",), tol=1e-9))
        phis = draw.distinct(list(range(8)), 3)
        return [case("default coefficients", p) for p in phis + [0]] + \
            [case("other coefficients", draw.int(1, 6), alpha=draw.choice([1.1, 1.3, 1.4]),
                  beta=draw.choice([1.05, 1.15, 1.2]), gamma=draw.choice([1.1, 1.25])) for _ in range(2)]


class RoundFilters(Problem):
    name = "round_filters"
    groups = hints("""
        B0 to B7 widths: scale the channels, then round to the nearest multiple of the divisor, as EfficientNet's
            reference code does (neither up nor down).
        halves: a value exactly halfway between two multiples rounds up: add divisor / 2, then floor to a multiple
            (Python's round() sends halves to the even neighbour).
        90% rule: when rounding to the nearest multiple lands below 90% of the scaled channels, add one more divisor:
            no layer may lose more than 10% of its width.
        minimum: the result is at least divisor channels, however small the layer (a layer keeps at least one group
            of channels).
        divisor: use the divisor given: the rounding is to its multiples.
        far from 1: the same rules hold for width multipliers far from 1 (0.25 to 3.7): the nearest multiple of the
            divisor to filters * width_mult, and the 90% rule compares with 90% of that scaled width (not of
            filters).""")

    def cases(self, draw: Draw):
        (w1, _), (w2, _) = draw.distinct(B_MULTS[1:], 2)
        table = [("B0 to B7 widths", 1, lambda: {"filters": draw.choice(B0_WIDTHS), "width_mult": 1.0}),
                 ("B0 to B7 widths", 1, lambda: {"filters": draw.choice([16, 24, 32, 112, 192]), "width_mult": 1.1}),
                 ("halves", 2, lambda: {"filters": draw.choice([52, 68, 84, 100]), "width_mult": 1.0}),
                 ("halves", 1, lambda: {"filters": draw.choice([26, 42]), "width_mult": 2.0}),
                 ("B0 to B7 widths", 3, lambda: {"filters": draw.choice(B0_WIDTHS), "width_mult": w1}),
                 ("B0 to B7 widths", 3, lambda: {"filters": draw.choice(B0_WIDTHS), "width_mult": w2}),
                 ("90% rule", 1, lambda: {"filters": draw.choice([11, 19, 27]), "width_mult": 1.0}),
                 ("90% rule", 1, lambda: {"filters": draw.choice([10, 18]), "width_mult": 1.1}),
                 ("90% rule", 1, lambda: {"filters": 20, "width_mult": 1.0, "divisor": 16}),
                 ("minimum", 1, lambda: {"filters": draw.int(1, 4), "width_mult": draw.choice([0.5, 1.0, 1.2])}),
                 ("minimum", 1, lambda: {"filters": draw.int(2, 6), "width_mult": 1.0, "divisor": 16}),
                 ("divisor", 1, lambda: {"filters": draw.choice([36, 52, 100]), "width_mult": draw.choice([1.4, 1.8]),
                                         "divisor": draw.choice([4, 16])}),
                 ("divisor", 1, lambda: {"filters": draw.int(30, 200), "width_mult": draw.choice([1.2, 2.0]),
                                         "divisor": 32}),
                 ("far from 1", 2, lambda: {"filters": draw.choice(B0_WIDTHS[2:]),
                                            "width_mult": draw.choice(FAR_BELOW)}),
                 ("far from 1", 1, lambda: self.ninety_far_above(draw))]
        return rows(self, ref.round_filters, table)

    @staticmethod
    def ninety_far_above(draw: Draw) -> dict:
        """A width multiplier far above 1 and a layer width where the 90% rule adds a divisor."""
        mult = draw.choice(FAR_ABOVE)
        found = [f for f in range(1, 60) if (f * mult + 4) // 8 * 8 < 0.9 * f * mult and (f * mult + 4) // 8 * 8 >= 8]
        return {"filters": draw.choice(found), "width_mult": mult}


class RoundRepeats(Problem):
    name = "round_repeats"
    groups = hints("""
        B0 to B7 depths: scale the number of layers of a stage and round up: a stage never loses a layer.
        exact products: when depth_mult * repeats is a whole number, keep it (rounding up adds nothing then); the
            result is an int.""")

    def cases(self, draw: Draw):
        (_, d1), (_, d2) = draw.distinct(B_MULTS[1:], 2)
        table = [("B0 to B7 depths", 3, lambda: {"repeats": draw.choice(B0_DEPTHS), "depth_mult": d1}),
                 ("B0 to B7 depths", 3, lambda: {"repeats": draw.choice(B0_DEPTHS), "depth_mult": d2}),
                 ("exact products", 1, lambda: {"repeats": draw.int(1, 6), "depth_mult": draw.choice([1.0, 2.0, 3.0])}),
                 ("exact products", 1, lambda: {"repeats": 2 * draw.int(1, 4), "depth_mult": 1.5})]
        return rows(self, ref.round_repeats, table)


# ----------------------------------------------------------------------------- deformable conv
def _conv_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _deform_conv2d(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    """The reference; on the meta device (output shapes, drawn cases) the shape the offsets give."""
    if x.device.type == "meta":
        return torch.empty((offset.shape[0], weight.shape[0], *offset.shape[2:]), dtype=x.dtype, device="meta")
    return ref.deform_conv2d(x, offset, weight, bias, stride, padding, dilation)


class DeformConv2d(Problem):
    name = "deform_conv2d"
    banned_names = family_names("deformable")
    banned_ops = family_ops("deformable")
    groups = hints("""
        zero offsets: with all offsets 0 every tap samples exactly the pixel a normal convolution would: the result
            must be conv2d's, stride, padding and dilation included.
        random offsets: tap k = i * kw + j of output (p, q) samples x at row p * stride - padding + i * dilation + dy
            and column q * stride - padding + j * dilation + dx, with dy = offset[:, 2k] and dx = offset[:, 2k + 1],
            by bilinear interpolation of its four neighbouring pixels.
        outside the image: a neighbouring pixel outside the image counts as 0 (zero padding): do not clamp to the
            border, and keep the neighbours that are inside.
        stride, padding, dilation: the output size is a normal convolution's; stride, padding and dilation may be
            pairs (rows, columns).
        bias: bias (C_out,) is added to every output position; it may be None.
        backward: build the sampling from differentiable operations (gather or indexing, floor only for the integer
            corners): the gradient flows to x, to the offsets (through the bilinear weights) and to the weight.
        float32: keep the input's dtype.""")

    def cases(self, draw: Draw):
        def add(group, stride=1, padding=0, dilation=1, kernel=(3, 3), offsets=1.0, bias=False, dtype=np.float64,
                grad=False, integer=False):
            n, c, cout = draw.int(1, 3), draw.int(1, 4), draw.int(1, 4)
            (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, _pair(stride), _pair(padding), _pair(dilation)
            h = max(draw.int(4, 9), dh * (kh - 1) + 1 - 2 * ph + 1)
            w = max(draw.int(4, 9), dw * (kw - 1) + 1 - 2 * pw + 1)
            ho, wo = _conv_size(h, kh, sh, ph, dh), _conv_size(w, kw, sw, pw, dw)
            off = draw.normal((n, 2 * kh * kw, ho, wo), dtype, offsets)
            if integer:
                off = np.round(off).astype(dtype)
            kwargs = {k: v for k, v in (("stride", stride), ("padding", padding), ("dilation", dilation))
                      if v != (0 if k == "padding" else 1)}
            if bias:
                kwargs["bias"] = draw.normal((cout,), dtype)
            gradients = {0: "x", 1: "offset", 2: "weight"} if grad else None
            return tensor(self, group, _deform_conv2d, draw.normal((n, c, h, w), dtype),
                          off, draw.normal((cout, c, kh, kw), dtype), grad=gradients, draw=draw,
                          alternatives=self.alternatives, **kwargs)
        return [add("zero offsets", offsets=0.0), add("zero offsets", stride=2, padding=1, offsets=0.0),
                add("zero offsets", padding=(1, 2), dilation=(2, 1), offsets=0.0, kernel=(3, 2)),
                add("random offsets"), add("random offsets", padding=1, offsets=1.5),
                add("random offsets", padding=1, kernel=(2, 3), integer=True),
                add("outside the image", padding=1, offsets=4.0), add("outside the image", offsets=3.0, kernel=(2, 2)),
                add("stride, padding, dilation", stride=2, padding=1, dilation=2),
                add("stride, padding, dilation", stride=(1, 2), padding=(2, 1), dilation=(1, 2), kernel=(3, 2)),
                add("bias", padding=1, bias=True), add("bias", stride=2, bias=True, kernel=(1, 3)),
                add("backward", padding=1, bias=True, grad=True),
                add("backward", stride=2, padding=(1, 2), dilation=(2, 1), grad=True, offsets=2.0),
                add("float32", padding=1, bias=True, dtype=np.float32)]

    @staticmethod
    def alternatives(targs, tkwargs):
        x, offset, weight = targs[:3]
        n, k2, ho, wo = offset.shape
        swapped = offset.reshape(n, k2 // 2, 2, ho, wo).flip(2).reshape(n, k2, ho, wo)
        rest = dict(tkwargs)
        return [("the offsets read as (dx, dy) instead of (dy, dx)",
                 lambda: ref.deform_conv2d(x, swapped, weight, **rest).detach())]


PROBLEMS = [InceptionModule(), AuxClassifier(), GoogLeNetLoss(), BasicBlock(), Bottleneck(), PreActBlock(), ResNet(),
            ResNeXtBlock(), ResNeXt50(), DenseLayer(), DenseBlock(), Transition(), DenseNet121(), SEBlock(),
            SEBasicBlock(), EfficientNetScaling(), RoundFilters(), RoundRepeats(), DeformConv2d()]
#: Week 3 builds torchvision's architectures: its model classes, builders and helpers (and its
#: ops) do the same job, so none may run or be inherited from while a graded name runs.
for _problem in PROBLEMS:
    _problem.banned_calls = _problem.banned_classes = ("torchvision.",)
