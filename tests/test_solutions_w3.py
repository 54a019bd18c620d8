"""The week-3 references agree with torchvision and PyTorch (the judge trusts them, so they are checked here)."""
from __future__ import annotations

import functools
import inspect
import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models import densenet, resnet
from torchvision.models._utils import _make_divisible
from torchvision.models.efficientnet import _MBConvConfig
from torchvision.ops import SqueezeExcitation
from torchvision.ops import deform_conv2d as tv_deform_conv2d

from solutions import w3_architectures as ref

from .conftest import gen, randn

pytestmark = pytest.mark.usefixtures("one_thread")

_randn = functools.partial(randn, dtype=torch.float32)  # this week's modules are float32

#: Parameter counts the course spec states (torchvision's).
COUNTS = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
          "resnext50_32x4d": 25_028_904, "densenet121": 7_978_856}
MODELS = {"resnet18": lambda: ref.resnet(18), "resnet34": lambda: ref.resnet(34), "resnet50": lambda: ref.resnet(50),
          "resnet101": lambda: ref.resnet(101), "resnext50_32x4d": ref.resnext50_32x4d, "densenet121": ref.densenet121}
#: EfficientNet-B0..B7 (width, depth) multipliers, as torchvision builds them.
B_MULTS = [(1.0, 1.0), (1.0, 1.1), (1.1, 1.2), (1.2, 1.4), (1.4, 1.8), (1.6, 2.2), (1.8, 2.6), (2.0, 3.1)]


def _count(model):
    return sum(p.numel() for p in model.parameters())


def _perturb_norms(model, seed=0):
    """BatchNorm statistics and affine parameters away from their defaults (so that mode and loading matter)."""
    g = gen(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.5 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(m.running_var.shape, generator=g))
    return model


def _same_as(mine, theirs, x, train=False):
    """``mine`` loads ``theirs``' state_dict with strict=True and computes the same outputs."""
    _perturb_norms(theirs)
    mine.load_state_dict(theirs.state_dict(), strict=True)
    mine.train(train), theirs.train(train)
    with torch.no_grad():
        torch.testing.assert_close(mine(x), theirs(x), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- full models
@pytest.mark.parametrize("name", list(COUNTS))
def test_parameter_counts_and_layout_match_torchvision(name):
    with torch.device("meta"):
        mine, theirs = MODELS[name](), getattr(torchvision.models, name)()
    assert _count(mine) == _count(theirs) == COUNTS[name]
    assert {k: v.shape for k, v in mine.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d", "densenet121"])
def test_full_models_load_torchvision_weights(name):
    torch.manual_seed(0)
    kwargs = {"num_classes": 7}
    mine = ref.resnet(int(name[6:]), **kwargs) if name.startswith("resnet") and name[6:].isdigit() else \
        getattr(ref, name)(**kwargs)
    _same_as(mine, getattr(torchvision.models, name)(**kwargs), _randn(2, 3, 33, 37))


def test_resnet_rejects_other_depths():
    for depth in (16, 152, 0):
        with pytest.raises(ValueError):
            ref.resnet(depth)


def test_resnet_uses_the_graded_blocks():
    assert type(ref.resnet(18).layer2[0]) is ref.BasicBlock and type(ref.resnet(50).layer4[2]) is ref.Bottleneck
    assert type(ref.resnext50_32x4d().layer3[0]) is ref.ResNeXtBlock
    blocks = dict(ref.densenet121().features.named_children())
    assert type(blocks["denseblock2"]) is ref.DenseBlock and type(blocks["transition3"]) is ref.Transition
    assert type(blocks["denseblock4"].denselayer16) is ref.DenseLayer


# ----------------------------------------------------------------------------- blocks
def _downsample(cin, cout, stride):
    if stride == 1 and cin == cout:
        return None
    return torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride=stride, bias=False), torch.nn.BatchNorm2d(cout))


BLOCK_SHAPES = [(8, 8, 1), (8, 8, 2), (6, 9, 1), (5, 10, 2)]


@pytest.mark.parametrize("cin, cout, stride", BLOCK_SHAPES)
@pytest.mark.parametrize("train", [False, True])
def test_basic_block_is_torchvisions(cin, cout, stride, train):
    mine = ref.BasicBlock(cin, cout, stride)
    assert (mine.downsample is None) == (stride == 1 and cin == cout)
    _same_as(mine, resnet.BasicBlock(cin, cout, stride, _downsample(cin, cout, stride)), _randn(3, cin, 9, 11), train)


@pytest.mark.parametrize("cin, mid, stride", [(16, 4, 1), (16, 4, 2), (7, 4, 1), (6, 3, 2)])
@pytest.mark.parametrize("train", [False, True])
def test_bottleneck_is_torchvisions(cin, mid, stride, train):
    mine = ref.Bottleneck(cin, mid, stride)
    assert (mine.downsample is None) == (stride == 1 and cin == 4 * mid)
    _same_as(mine, resnet.Bottleneck(cin, mid, stride, _downsample(cin, 4 * mid, stride)), _randn(3, cin, 9, 11),
             train)


@pytest.mark.parametrize("cin, cout, card, width, stride", [(16, 16, 2, 2, 1), (16, 32, 4, 2, 2), (12, 32, 8, 1, 1),
                                                              (64, 256, 32, 4, 1), (256, 512, 32, 8, 2)])
def test_resnext_block_is_torchvisions_grouped_bottleneck(cin, cout, card, width, stride):
    planes = cout // 4
    theirs = resnet.Bottleneck(cin, planes, stride, _downsample(cin, cout, stride), groups=card,
                               base_width=64 * width // planes)
    mine = ref.ResNeXtBlock(cin, cout, card, width, stride)
    assert mine.conv2.groups == card and mine.conv2.out_channels == card * width
    _same_as(mine, theirs, _randn(2, cin, 7, 9))


def test_preact_block():
    """BN-ReLU-conv twice, nothing after the addition; projection (1x1, no BN) of relu(bn1(x))."""
    for cin, cout, stride in BLOCK_SHAPES:
        block = _perturb_norms(ref.PreActBlock(cin, cout, stride)).eval()
        x = _randn(2, cin, 9, 8, dtype=torch.float64)
        block.double()
        a = F.relu(F.batch_norm(x, block.bn1.running_mean, block.bn1.running_var, block.bn1.weight, block.bn1.bias))
        out = F.conv2d(a, block.conv1.weight, stride=stride, padding=1)
        out = F.batch_norm(out, block.bn2.running_mean, block.bn2.running_var, block.bn2.weight, block.bn2.bias)
        out = F.conv2d(F.relu(out), block.conv2.weight, padding=1)
        short = x if block.downsample is None else F.conv2d(a, block.downsample[0].weight, stride=stride)
        assert (block.downsample is None) == (stride == 1 and cin == cout)
        with torch.no_grad():
            torch.testing.assert_close(block(x), out + short)


def test_dense_layer_block_and_transition_are_torchvisions():
    for train in (False, True):
        _same_as(ref.DenseLayer(6, 4), densenet._DenseLayer(6, 4, 4, 0.0), _randn(2, 6, 7, 9), train)
        _same_as(ref.DenseLayer(5, 3, bn_size=2), densenet._DenseLayer(5, 3, 2, 0.0), _randn(2, 5, 7, 9), train)
        _same_as(ref.DenseBlock(3, 6, 4), densenet._DenseBlock(3, 6, 4, 4, 0.0), _randn(2, 6, 7, 9), train)
        _same_as(ref.DenseBlock(2, 5, 3, bn_size=1), densenet._DenseBlock(2, 5, 1, 3, 0.0), _randn(2, 5, 7, 9), train)
        _same_as(ref.Transition(10, 5), densenet._Transition(10, 5), _randn(2, 10, 9, 7), train)
    assert ref.DenseBlock(4, 6, 5)(_randn(1, 6, 5, 5)).shape == (1, 26, 5, 5)


# ----------------------------------------------------------------------------- GoogLeNet
def test_inception_module():
    args = (5, 4, 3, 6, 2, 7, 3)
    m = ref.InceptionModule(*args).double()
    x = _randn(2, 5, 9, 7, dtype=torch.float64)
    assert m.branch3[2].kernel_size == (5, 5)
    b1 = F.relu(F.conv2d(x, m.branch1[0].weight, m.branch1[0].bias))
    b2 = F.relu(F.conv2d(F.relu(F.conv2d(x, m.branch2[0].weight, m.branch2[0].bias)), m.branch2[2].weight,
                         m.branch2[2].bias, padding=1))
    b3 = F.relu(F.conv2d(F.relu(F.conv2d(x, m.branch3[0].weight, m.branch3[0].bias)), m.branch3[2].weight,
                         m.branch3[2].bias, padding=2))
    b4 = F.relu(F.conv2d(F.max_pool2d(x, 3, 1, 1), m.branch4[1].weight, m.branch4[1].bias))
    with torch.no_grad():
        torch.testing.assert_close(m(x), torch.cat([b1, b2, b3, b4], 1))
    # parameters: every conv with bias, a real 5x5
    assert _count(m) == (5 * 4 + 4) + (5 * 3 + 3 + 3 * 9 * 6 + 6) + (5 * 2 + 2 + 2 * 25 * 7 + 7) + (5 * 3 + 3)


def test_aux_classifier():
    m = ref.AuxClassifier(512, 10)
    assert _count(m) == 512 * 128 + 128 + 2048 * 1024 + 1024 + 1024 * 10 + 10
    assert m.eval()(_randn(2, 512, 14, 14)).shape == (2, 10) and m(_randn(1, 512, 5, 9)).shape == (1, 10)
    m.train()
    x = _randn(2, 512, 14, 14)
    assert not torch.equal(m(x), m(x))


def test_googlenet_loss():
    main, a1, a2 = (_randn(6, 5, seed=s, dtype=torch.float64) for s in range(3))
    target = torch.randint(0, 5, (6,), generator=gen(3))
    ce = F.cross_entropy
    torch.testing.assert_close(ref.googlenet_loss(main, [a1, a2], target),
                               ce(main, target) + 0.3 * (ce(a1, target) + ce(a2, target)))
    torch.testing.assert_close(ref.googlenet_loss(main, [a1], target, aux_weight=0.7), ce(main, target) +
                               0.7 * ce(a1, target))
    torch.testing.assert_close(ref.googlenet_loss(main, [], target), ce(main, target))


# ----------------------------------------------------------------------------- SENet
@pytest.mark.parametrize("channels, reduction", [(32, 16), (24, 4), (16, 2)])
def test_se_block_is_torchvisions_squeeze_excitation(channels, reduction):
    _same_as(ref.SEBlock(channels, reduction), SqueezeExcitation(channels, channels // reduction),
             _randn(3, channels, 5, 7))


def test_se_basic_block():
    for cin, cout, stride in [(16, 16, 1), (8, 16, 2)]:
        block = _perturb_norms(ref.SEBasicBlock(cin, cout, stride, reduction=4)).eval()
        basic = ref.BasicBlock(cin, cout, stride).eval()
        basic.load_state_dict({k: v for k, v in block.state_dict().items() if not k.startswith("se.")})
        x = _randn(2, cin, 7, 9)
        with torch.no_grad():
            identity = x if basic.downsample is None else basic.downsample(x)
            branch = basic.bn2(basic.conv2(basic.relu(basic.bn1(basic.conv1(x)))))
            torch.testing.assert_close(block(x), F.relu(block.se(branch) + identity))


# ----------------------------------------------------------------------------- EfficientNet
def test_efficientnet_scaling():
    for phi in range(8):
        d, w, r = ref.efficientnet_scaling(phi)
        assert (d, w, r) == pytest.approx((1.2 ** phi, 1.1 ** phi, 1.15 ** phi), rel=1e-12)
        assert d * w * w * r * r == pytest.approx((1.2 * 1.1 ** 2 * 1.15 ** 2) ** phi) and 1.9 < 1.2 * 1.21 * 1.3225 < 2
    assert ref.efficientnet_scaling(2, 1.3, 1.2, 1.1) == pytest.approx((1.69, 1.44, 1.21))


def test_round_filters_and_repeats_match_torchvision():
    for width_mult, depth_mult in B_MULTS:
        for filters in (32, 16, 24, 40, 80, 112, 192, 320, 1280, 11, 19, 52, 3):
            assert ref.round_filters(filters, width_mult) == _MBConvConfig.adjust_channels(filters, width_mult)
            for divisor in (4, 16, 32):
                assert ref.round_filters(filters, width_mult, divisor) == _make_divisible(filters * width_mult, divisor)
        for repeats in (1, 2, 3, 4):
            assert ref.round_repeats(repeats, depth_mult) == int(math.ceil(repeats * depth_mult))
    assert ref.round_filters(84, 1.0) == 88 and ref.round_filters(11, 1.0) == 16 and ref.round_filters(2, 1.0) == 8
    assert isinstance(ref.round_filters(40, 1.1), int) and isinstance(ref.round_repeats(3, 1.1), int)


# ----------------------------------------------------------------------------- deformable conv
DEFORM = [((2, 3, 7, 9), (4, 3, 3, 3), 1, 0, 1), ((1, 2, 8, 6), (3, 2, 3, 2), 2, 1, 1),
          ((2, 2, 9, 8), (2, 2, 3, 3), (1, 2), (2, 1), (2, 1)), ((1, 3, 6, 7), (2, 3, 2, 2), 1, 1, 2),
          ((2, 1, 5, 5), (2, 1, 1, 3), (2, 1), (0, 1), 1)]


def _pair(v):
    return (v, v) if isinstance(v, int) else v


def _offset_shape(xs, ws, stride, padding, dilation):
    (s, t), (p, q), (d, e) = _pair(stride), _pair(padding), _pair(dilation)
    ho = (xs[2] + 2 * p - d * (ws[2] - 1) - 1) // s + 1
    wo = (xs[3] + 2 * q - e * (ws[3] - 1) - 1) // t + 1
    return (xs[0], 2 * ws[2] * ws[3], ho, wo)


@pytest.mark.parametrize("xs, ws, stride, padding, dilation", DEFORM)
@pytest.mark.parametrize("scale", [0.0, 1.5, 4.0])
def test_deform_conv2d_matches_torchvision(xs, ws, stride, padding, dilation, scale):
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-5)):
        x, w, b = _randn(*xs, dtype=dtype), _randn(*ws, seed=1, dtype=dtype), _randn(ws[0], seed=2, dtype=dtype)
        off = scale * _randn(*_offset_shape(xs, ws, stride, padding, dilation), seed=3, dtype=dtype)
        for bias in (None, b):
            got = ref.deform_conv2d(x, off, w, bias, stride, padding, dilation)
            want = tv_deform_conv2d(x, off, w, bias, _pair(stride), _pair(padding), _pair(dilation))
            assert got.dtype == dtype
            torch.testing.assert_close(got, want, rtol=tol, atol=tol)
            if scale == 0:
                torch.testing.assert_close(got, F.conv2d(x, w, bias, stride, padding, dilation), rtol=tol, atol=tol)


@pytest.mark.parametrize("xs, ws, stride, padding, dilation", DEFORM)
def test_deform_conv2d_gradients_match_torchvision(xs, ws, stride, padding, dilation):
    x, w, b = _randn(*xs, dtype=torch.float64), _randn(*ws, seed=1, dtype=torch.float64), \
        _randn(ws[0], seed=2, dtype=torch.float64)
    off = 2.0 * _randn(*_offset_shape(xs, ws, stride, padding, dilation), seed=3, dtype=torch.float64)
    grads = []
    for fn, args in ((ref.deform_conv2d, (stride, padding, dilation)),
                     (tv_deform_conv2d, (_pair(stride), _pair(padding), _pair(dilation)))):
        leaves = [t.clone().requires_grad_(True) for t in (x, off, w, b)]
        out = fn(*leaves, *args)
        grads.append(torch.autograd.grad(out, leaves, _randn(*out.shape, seed=4, dtype=torch.float64)))
    for mine, theirs in zip(*grads):
        torch.testing.assert_close(mine, theirs, rtol=1e-9, atol=1e-9)


def test_deform_conv2d_uses_no_deformable_builtin():
    source = inspect.getsource(ref.deform_conv2d).split("### BEGIN SOLUTION")[1]
    assert "torchvision" not in source and "F.conv" not in source and "grid_sample" not in source
