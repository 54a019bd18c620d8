"""The week-2 references agree with PyTorch (the judge trusts them, so they are checked here)."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from solutions import w2_normalization as ref

from .conftest import gen, randn

pytestmark = pytest.mark.usefixtures("one_thread")

DTYPES = [torch.float64, torch.float32]
#: Forward tolerance per dtype (absolute and relative, as torch.testing uses them).
TOL = {torch.float64: {"atol": 1e-10, "rtol": 1e-9}, torch.float32: {"atol": 2e-5, "rtol": 2e-5}}
#: (N, C), (N, C, L), (N, C, H, W) and (N, C, D, H, W) inputs, batch 1 included.
SHAPES = [(6, 4), (3, 5, 7), (4, 3, 5, 6), (1, 3, 4, 5), (2, 2, 3, 4, 3)]


AFFINE = [(True, True), (False, False), (True, False), (False, True)]


def _data(*shape, seed=0, dtype=torch.float64):
    """Channels and samples with their own offsets and spreads (statistics over the wrong axes show)."""
    x = randn(*shape, seed=seed, dtype=dtype)
    if len(shape) >= 2:
        per_channel = [1, shape[1]] + [1] * (len(shape) - 2)
        per_sample = [shape[0]] + [1] * (len(shape) - 1)
        g = gen(seed + 1000)
        x = x * (0.5 + 2 * torch.rand(per_channel, generator=g, dtype=dtype))
        x = x + 3 * torch.rand(per_channel, generator=g, dtype=dtype) - 1.5
        x = x + torch.rand(per_sample, generator=g, dtype=dtype) - 0.5
    return x


def _close(got, expected, dtype=None):
    dtype = dtype or expected.dtype
    assert got.dtype == expected.dtype and got.shape == expected.shape
    torch.testing.assert_close(got, expected, **TOL[dtype])


def _grads(fn, inputs: dict, grad_out):
    """Autograd gradients of fn(**leaves) against grad_out, for every tensor in ``inputs``."""
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in inputs.items()}
    out = fn(**leaves)
    return dict(zip(leaves, torch.autograd.grad(out, list(leaves.values()), grad_out)))


def _stats(c, seed, dtype):
    return 0.5 * randn(c, seed=seed, dtype=dtype), 0.5 + torch.rand(c, generator=gen(seed), dtype=dtype) * 1.5


# ----------------------------------------------------------------------------- batch_norm
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_F_batch_norm(dtype, shape, training):
    c = shape[1]
    x = _data(*shape, seed=1, dtype=dtype)
    rm, rv = _stats(c, 4, dtype)
    rm2, rv2 = rm.clone(), rv.clone()
    for affine, (momentum, eps) in itertools.product(AFFINE, ((0.1, 1e-5), (0.3, 0.1))):
        weight = randn(c, seed=2, dtype=dtype) if affine[0] else None
        bias = randn(c, seed=3, dtype=dtype) if affine[1] else None
        got = ref.batch_norm(x, rm, rv, weight, bias, training=training, momentum=momentum, eps=eps)
        expected = F.batch_norm(x, rm2, rv2, weight, bias, training=training, momentum=momentum, eps=eps)
        _close(got, expected)
        _close(rm, rm2)
        _close(rv, rv2)
        assert rm.dtype == rv.dtype == dtype


def test_batch_norm_default_arguments_match():
    x = _data(5, 3, 4, 4)
    rm, rv = _stats(3, 1, torch.float64)
    rm2, rv2 = rm.clone(), rv.clone()
    _close(ref.batch_norm(x, rm, rv), F.batch_norm(x, rm2, rv2))  # eval mode by default
    _close(ref.batch_norm(x, rm, rv, training=True), F.batch_norm(x, rm2, rv2, training=True))
    _close(rm, rm2)
    _close(rv, rv2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spatial", [(), (6,), (4, 5)])
def test_batch_norm_running_statistics_over_several_steps(dtype, spatial):
    c = 3
    weight, bias = randn(c, seed=1, dtype=dtype), randn(c, seed=2, dtype=dtype)
    rm, rv = _stats(c, 3, dtype)
    rm_before = rm.clone()
    bn = nn.BatchNorm1d(c, momentum=0.2, dtype=dtype) if len(spatial) < 2 else \
        nn.BatchNorm2d(c, momentum=0.2, dtype=dtype)
    with torch.no_grad():
        bn.weight.copy_(weight)
        bn.bias.copy_(bias)
        bn.running_mean.copy_(rm)
        bn.running_var.copy_(rv)
    bn.train()
    for step in range(5):
        x = _data(2 + step, c, *spatial, seed=10 + step, dtype=dtype)
        with torch.no_grad():
            expected = bn(x)
        got = ref.batch_norm(x, rm, rv, weight, bias, training=True, momentum=0.2)
        _close(got, expected)
        _close(rm, bn.running_mean)
        _close(rv, bn.running_var)
    assert not torch.equal(rm, rm_before)  # the caller's tensors were updated in place
    bn.eval()
    x = _data(1, c, *spatial, seed=99, dtype=dtype) if spatial else _data(3, c, seed=99, dtype=dtype)
    with torch.no_grad():
        expected = bn(x)
    rm_eval, rv_eval = rm.clone(), rv.clone()
    _close(ref.batch_norm(x, rm, rv, weight, bias, training=False, momentum=0.2), expected)
    assert torch.equal(rm, rm_eval) and torch.equal(rv, rv_eval)  # eval mode leaves them alone


def test_batch_norm_training_without_running_statistics():
    x = _data(4, 3, 5)
    _close(ref.batch_norm(x, None, None, training=True), F.batch_norm(x, None, None, training=True))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(6, 3), (3, 2, 5), (2, 3, 4, 4)])
def test_batch_norm_gradients_match_autograd(training, shape):
    c = shape[1]
    inputs = {"x": _data(*shape, seed=1), "weight": randn(c, seed=2), "bias": randn(c, seed=3)}
    rm, rv = _stats(c, 4, torch.float64)
    grad_out = randn(*shape, seed=5)

    def ours(x, weight, bias):
        return ref.batch_norm(x, rm.clone(), rv.clone(), weight, bias, training=training)

    def theirs(x, weight, bias):
        return F.batch_norm(x, rm.clone(), rv.clone(), weight, bias, training=training)

    got, expected = _grads(ours, inputs, grad_out), _grads(theirs, inputs, grad_out)
    for key in inputs:
        torch.testing.assert_close(got[key], expected[key], atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("shape", [(1, 4), (1, 3, 1), (1, 2, 1, 1)])
def test_batch_norm_one_value_per_channel_raises_like_pytorch(shape):
    x = randn(*shape)
    rm, rv = _stats(shape[1], 1, torch.float64)
    with pytest.raises(ValueError):
        F.batch_norm(x, rm.clone(), rv.clone(), training=True)
    rm_before = rm.clone()
    with pytest.raises(ValueError):
        ref.batch_norm(x, rm, rv, training=True)
    assert torch.equal(rm, rm_before)
    # eval mode needs no batch statistics: a single value per channel is fine
    _close(ref.batch_norm(x, rm, rv), F.batch_norm(x, rm.clone(), rv.clone()))


def test_batch_norm_invalid_arguments():
    with pytest.raises(ValueError):
        ref.batch_norm(randn(5), torch.zeros(5, dtype=torch.float64), torch.ones(5, dtype=torch.float64))
    with pytest.raises(ValueError):
        ref.batch_norm(randn(4, 3), None, None, training=False)


# ----------------------------------------------------------------------------- layer_norm
LAYER_CASES = [((6, 5), 5), ((6, 5), (5,)), ((3, 4, 7), [7]), ((3, 4, 7), (4, 7)), ((2, 3, 4, 5), (3, 4, 5)),
               ((2, 3, 4, 5), (4, 5)), ((1, 3, 4, 5), (3, 4, 5)), ((1, 6), 6)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,nshape", LAYER_CASES)
def test_layer_norm_matches_F_layer_norm(dtype, shape, nshape):
    x = _data(*shape, seed=1, dtype=dtype)
    wshape = (nshape,) if isinstance(nshape, int) else tuple(nshape)
    for affine in AFFINE:
        weight = randn(*wshape, seed=2, dtype=dtype) if affine[0] else None
        bias = randn(*wshape, seed=3, dtype=dtype) if affine[1] else None
        for eps in (1e-5, 0.3):
            expected = F.layer_norm(x, wshape, weight, bias, eps=eps)
            _close(ref.layer_norm(x, nshape, weight, bias, eps=eps), expected)
        _close(ref.layer_norm(x, nshape, weight, bias), F.layer_norm(x, wshape, weight, bias))


@pytest.mark.parametrize("shape,nshape", [((4, 6), 6), ((3, 4, 5), (5,)), ((2, 3, 4, 5), (3, 4, 5))])
def test_layer_norm_gradients_match_autograd(shape, nshape):
    wshape = (nshape,) if isinstance(nshape, int) else tuple(nshape)
    inputs = {"x": _data(*shape, seed=1), "weight": randn(*wshape, seed=2), "bias": randn(*wshape, seed=3)}
    grad_out = randn(*shape, seed=4)
    got = _grads(lambda x, weight, bias: ref.layer_norm(x, nshape, weight, bias), inputs, grad_out)
    expected = _grads(lambda x, weight, bias: F.layer_norm(x, wshape, weight, bias), inputs, grad_out)
    for key in inputs:
        torch.testing.assert_close(got[key], expected[key], atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("shape,nshape", [((3, 4, 5), (4,)), ((4, 5), (3, 4, 5)), ((3, 4), (4, 4)),
                                          ((2, 3), 4), ((4, 5), ())])
def test_layer_norm_invalid_shape_raises_value_error(shape, nshape):
    with pytest.raises(ValueError):
        ref.layer_norm(randn(*shape), nshape)


# ----------------------------------------------------------------------------- instance_norm
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 4, 7), (2, 3, 5, 6), (1, 3, 4, 5), (1, 2, 6), (2, 2, 3, 2, 4), (2, 3, 2)])
def test_instance_norm_matches_F_instance_norm(dtype, shape):
    c = shape[1]
    x = _data(*shape, seed=1, dtype=dtype)
    for affine in AFFINE:
        weight = randn(c, seed=2, dtype=dtype) if affine[0] else None
        bias = randn(c, seed=3, dtype=dtype) if affine[1] else None
        for eps in (1e-5, 0.3):
            _close(ref.instance_norm(x, weight, bias, eps=eps), F.instance_norm(x, weight=weight, bias=bias, eps=eps))
        _close(ref.instance_norm(x, weight, bias), F.instance_norm(x, weight=weight, bias=bias))


@pytest.mark.parametrize("shape", [(3, 2, 6), (2, 3, 4, 5)])
def test_instance_norm_gradients_match_autograd(shape):
    c = shape[1]
    inputs = {"x": _data(*shape, seed=1), "weight": randn(c, seed=2), "bias": randn(c, seed=3)}
    grad_out = randn(*shape, seed=4)
    got = _grads(lambda x, weight, bias: ref.instance_norm(x, weight, bias), inputs, grad_out)
    expected = _grads(lambda x, weight, bias: F.instance_norm(x, weight=weight, bias=bias), inputs, grad_out)
    for key in inputs:
        torch.testing.assert_close(got[key], expected[key], atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 1), (1, 2, 1, 1)])
def test_instance_norm_without_positions_raises_like_pytorch(shape):
    x = randn(*shape)
    with pytest.raises(ValueError):
        F.instance_norm(x)
    with pytest.raises(ValueError):
        ref.instance_norm(x)


# ----------------------------------------------------------------------------- group_norm
GROUP_CASES = [((5, 6), 2), ((5, 6), 3), ((3, 8, 5), 4), ((3, 8, 5), 2), ((2, 6, 4, 5), 3), ((2, 6, 4, 5), 2),
               ((1, 12, 3, 4), 4), ((2, 5, 3, 3), 1), ((2, 5, 3, 3), 5), ((2, 4, 2, 3, 2), 2)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,groups", GROUP_CASES)
def test_group_norm_matches_F_group_norm(dtype, shape, groups):
    c = shape[1]
    x = _data(*shape, seed=1, dtype=dtype)
    for affine in AFFINE:
        weight = randn(c, seed=2, dtype=dtype) if affine[0] else None
        bias = randn(c, seed=3, dtype=dtype) if affine[1] else None
        for eps in (1e-5, 0.3):
            _close(ref.group_norm(x, groups, weight, bias, eps=eps), F.group_norm(x, groups, weight, bias, eps=eps))
        _close(ref.group_norm(x, groups, weight, bias), F.group_norm(x, groups, weight, bias))


def test_group_norm_extremes_are_layer_and_instance_norm():
    x = _data(3, 6, 4, 5, seed=1)
    _close(ref.group_norm(x, 1), F.layer_norm(x, x.shape[1:]))
    _close(ref.group_norm(x, 6), F.instance_norm(x))


@pytest.mark.parametrize("shape,groups", [((4, 6), 3), ((2, 6, 5), 2), ((2, 8, 3, 4), 4)])
def test_group_norm_gradients_match_autograd(shape, groups):
    c = shape[1]
    inputs = {"x": _data(*shape, seed=1), "weight": randn(c, seed=2), "bias": randn(c, seed=3)}
    grad_out = randn(*shape, seed=4)
    got = _grads(lambda x, weight, bias: ref.group_norm(x, groups, weight, bias), inputs, grad_out)
    expected = _grads(lambda x, weight, bias: F.group_norm(x, groups, weight, bias), inputs, grad_out)
    for key in inputs:
        torch.testing.assert_close(got[key], expected[key], atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("shape,groups", [((1, 6), 6), ((1, 4, 1), 4), ((1, 3, 1, 1), 3)])
def test_group_norm_one_value_in_all_raises_like_pytorch(shape, groups):
    x = randn(*shape)
    with pytest.raises(ValueError):
        F.group_norm(x, groups)
    with pytest.raises(ValueError):
        ref.group_norm(x, groups)


@pytest.mark.parametrize("shape,groups", [((2, 6, 3, 3), 4), ((2, 5, 4), 2), ((3, 7), 3), ((2, 6, 3), 0)])
def test_group_norm_invalid_groups_raise_value_error(shape, groups):
    with pytest.raises(ValueError):
        ref.group_norm(randn(*shape), groups)


# ----------------------------------------------------------------------------- fuse_conv_bn
def _conv_bn(cin, cout, kernel, bias, dtype=torch.float32, eps=1e-5, seed=0, **kw):
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin, cout, kernel, bias=bias, dtype=dtype, **kw)
    bn = nn.BatchNorm2d(cout, eps=eps, dtype=dtype)
    g = gen(seed + 1)
    with torch.no_grad():
        bn.weight.copy_((0.5 + 1.5 * torch.rand(cout, generator=g)) * torch.sign(torch.randn(cout, generator=g)))
        bn.bias.copy_(torch.randn(cout, generator=g))
        bn.running_mean.copy_(torch.randn(cout, generator=g))
        bn.running_var.copy_(0.2 + 2.8 * torch.rand(cout, generator=g))
    bn.num_batches_tracked.fill_(7)
    return conv.eval(), bn.eval()


FUSE_CASES = [
    (3, 4, 3, True, {"padding": 1}),
    (3, 4, 3, False, {"padding": 1}),
    (2, 5, 1, True, {}),
    (2, 5, 1, False, {}),
    (4, 6, 3, True, {"stride": 2, "padding": 2}),
    (4, 6, (3, 5), False, {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2)}),
    (6, 9, 3, True, {"groups": 3, "padding": 1}),
    (5, 5, 3, False, {"groups": 5, "stride": 2, "padding": 1}),
    (4, 4, 3, True, {"padding": 1, "padding_mode": "reflect"}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cin,cout,kernel,bias,kw", FUSE_CASES)
def test_fuse_conv_bn_equals_bn_of_conv_in_eval(dtype, cin, cout, kernel, bias, kw):
    for eps in (1e-5, 1e-2):
        _check_fusion(dtype, cin, cout, kernel, bias, kw, eps)


def _check_fusion(dtype, cin, cout, kernel, bias, kw, eps):
    conv, bn = _conv_bn(cin, cout, kernel, bias, dtype=dtype, eps=eps, seed=cin * 7 + cout, **kw)
    before = {**{f"conv.{k}": v.clone() for k, v in conv.state_dict().items()},
              **{f"bn.{k}": v.clone() for k, v in bn.state_dict().items()}}
    fused = ref.fuse_conv_bn(conv, bn)
    assert type(fused) is nn.Conv2d and fused is not conv
    assert fused.bias is not None and fused.weight.dtype == dtype
    for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                 "padding_mode"):
        assert getattr(fused, attr) == getattr(conv, attr), attr
    x = randn(2, cin, 9, 11, seed=5, dtype=dtype)
    with torch.no_grad():
        expected = bn(conv(x))
        got = fused(x)
    tol = {"atol": 1e-10, "rtol": 1e-9} if dtype == torch.float64 else {"atol": 1e-4, "rtol": 1e-4}
    torch.testing.assert_close(got, expected, **tol)
    after = {**{f"conv.{k}": v for k, v in conv.state_dict().items()},
             **{f"bn.{k}": v for k, v in bn.state_dict().items()}}
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), f"{key} changed"
    assert not conv.training and not bn.training


def test_fuse_conv_bn_matches_torch_fusion_helper():
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    conv, bn = _conv_bn(3, 4, 3, True, padding=1, stride=2)
    fused = ref.fuse_conv_bn(conv, bn)
    theirs = fuse_conv_bn_eval(conv, bn)
    torch.testing.assert_close(fused.weight, theirs.weight, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(fused.bias, theirs.bias, atol=1e-6, rtol=1e-5)


def test_fuse_conv_bn_without_bn_affine():
    conv, _ = _conv_bn(3, 4, 3, True, padding=1)
    bn = nn.BatchNorm2d(4, affine=False)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(4))
        bn.running_var.copy_(torch.rand(4) + 0.5)
    bn.eval()
    x = randn(2, 3, 6, 6, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(ref.fuse_conv_bn(conv, bn)(x), bn(conv(x)), atol=1e-5, rtol=1e-5)


def test_fuse_conv_bn_without_running_statistics_raises():
    conv, _ = _conv_bn(3, 4, 3, True)
    with pytest.raises(ValueError):
        ref.fuse_conv_bn(conv, nn.BatchNorm2d(4, track_running_stats=False))


# ----------------------------------------------------------------------------- make_cnn
NORM_LAYERS = {"batch": (nn.BatchNorm2d,), "layer": (nn.GroupNorm, nn.LayerNorm), "instance": (nn.InstanceNorm2d,),
               "group": (nn.GroupNorm,), "none": ()}
ALL_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d)


@pytest.mark.parametrize("norm", list(NORM_LAYERS))
def test_make_cnn_builds_every_norm(norm):
    torch.manual_seed(0)
    model = ref.make_cnn(norm)
    assert isinstance(model, nn.Module)
    found = [m for m in model.modules() if isinstance(m, ALL_NORMS)]
    if norm == "none":
        assert not found
    else:
        assert found and all(isinstance(m, NORM_LAYERS[norm]) for m in found)
    if norm == "layer":
        assert all(m.num_groups == 1 for m in found if isinstance(m, nn.GroupNorm))
    if norm == "group":
        assert all(1 < m.num_groups < m.num_channels for m in found)
    for train in (True, False):
        model.train(train)
        out = model(torch.rand(5, 1, 8, 8))
        assert out.shape == (5, 10) and out.dtype == torch.float32
    model.eval()
    x = torch.rand(6, 1, 8, 8)
    with torch.no_grad():  # eval mode: every sample on its own
        torch.testing.assert_close(model(x)[:2], model(x[:2]))
    model.train()
    with torch.no_grad():  # training mode: only batch norm mixes the samples of a batch
        mixes = not torch.allclose(model(x)[:2], model(x[:2]), atol=1e-5, rtol=1e-4)
    assert mixes == (norm == "batch")


@pytest.mark.parametrize("norm", list(NORM_LAYERS))
def test_make_cnn_other_classes_and_channels(norm):
    model = ref.make_cnn(norm, num_classes=4, in_channels=3).eval()
    assert model(torch.rand(2, 3, 8, 8)).shape == (2, 4)
    model = ref.make_cnn(norm, 7, 2).train()
    assert model(torch.rand(3, 2, 8, 8)).shape == (3, 7)
    assert model.double()(torch.rand(3, 2, 8, 8, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("norm", ["batchnorm", "Batch", "bn", "", "None", None, "groups", "layernorm"])
def test_make_cnn_unknown_norm_raises_value_error(norm):
    with pytest.raises(ValueError):
        ref.make_cnn(norm)


# ----------------------------------------------------------------------------- conceptual questions
def test_question_answers_are_what_pytorch_says():
    # GroupNorm(6, 48) on (8, 48, 14, 14): change one value, count the outputs that move
    x = randn(8, 48, 14, 14)
    moved = x.clone()
    moved[3, 20, 5, 7] += 1.0
    changed = (F.group_norm(moved, 6) - F.group_norm(x, 6)).abs() > 1e-12
    assert ref.q_group_norm_values() == int(changed.sum())
    # a per-image, per-channel a * x + b (a > 0): whose normalised output stays the same?
    x = randn(4, 6, 5, 5, seed=1)
    a = torch.rand(4, 6, 1, 1, generator=gen(2), dtype=torch.float64) * 3 + 0.2
    b = randn(4, 6, 1, 1, seed=3)
    layers = {"A": lambda t: F.batch_norm(t, None, None, training=True, eps=1e-30),
              "B": lambda t: F.layer_norm(t, t.shape[1:], eps=0.0),
              "C": lambda t: F.instance_norm(t, eps=0.0),
              "D": lambda t: F.group_norm(t, 3, eps=0.0)}
    unchanged = [k for k, f in layers.items() if torch.allclose(f(a * x + b), f(x), atol=1e-9)]
    assert unchanged == [ref.q_contrast_invariance()]
