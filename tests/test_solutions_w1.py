"""The week-1 references agree with PyTorch (the judge trusts them, so they are checked here)."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from solutions import w1_conv_arithmetic as ref

from .conftest import randn

torch.set_num_threads(2)


# ----------------------------------------------------------------------------- sizes
def test_conv_output_size_matches_conv2d():
    x_cache = {}
    for size, k, s, p, d in itertools.product((5, 8, 11), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2)):
        if d * (k - 1) + 1 > size + 2 * p:
            with pytest.raises(ValueError):
                ref.conv_output_size(size, k, s, p, d)
            continue
        x = x_cache.setdefault(size, torch.zeros(1, 1, size, size))
        out = F.conv2d(x, torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d)
        got = ref.conv_output_size(size, k, stride=s, padding=p, dilation=d)
        assert isinstance(got, int) and got == out.shape[-1], (size, k, s, p, d)


def test_conv_output_size_invalid():
    for args in [(2, 5), (3, 3, 1, 0, 2), (0, 1), (5, 3, 0), (5, 3, 1, -1), (5, 0)]:
        with pytest.raises(ValueError):
            ref.conv_output_size(*args)


def test_conv_transpose_output_size_matches_pytorch():
    for size, k, s, p, op, d in itertools.product((1, 4, 7), (1, 2, 3, 4), (1, 2, 3), (0, 1), (0, 1, 2), (1, 2)):
        valid_op = op < max(s, d)
        expected = (size - 1) * s - 2 * p + d * (k - 1) + op + 1
        if not valid_op or expected < 1:
            with pytest.raises(ValueError):
                ref.conv_transpose_output_size(size, k, s, p, op, d)
            continue
        layer = nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, output_padding=op, dilation=d, bias=False)
        out = layer(torch.zeros(1, 1, size, size + 1))
        got = ref.conv_transpose_output_size(size, k, stride=s, padding=p, output_padding=op, dilation=d)
        assert isinstance(got, int) and got == out.shape[-2], (size, k, s, p, op, d)
        functional = F.conv_transpose2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), stride=s,
                                        padding=p, output_padding=op, dilation=d)
        assert functional.shape[-1] == got


def test_conv_transpose_output_size_inverts_a_strided_conv():
    # output_padding picks which of the input sizes a stride-2 conv maps together comes back.
    for size in range(8, 14):
        down = ref.conv_output_size(size, 3, stride=2, padding=1)
        op = (size + 2 * 1 - 3) % 2
        assert ref.conv_transpose_output_size(down, 3, stride=2, padding=1, output_padding=op) == size


def test_same_padding_keeps_the_size():
    x = randn(1, 2, 13, 10)
    for k, d in itertools.product(range(1, 8), range(1, 5)):
        span = d * (k - 1) + 1
        w = randn(3, 2, k, k, seed=k * 10 + d)
        if span % 2 == 0:
            with pytest.raises(ValueError):
                ref.same_padding(k, dilation=d)
            continue
        p = ref.same_padding(k, dilation=d)
        assert isinstance(p, int)
        if span > 13 + 2 * p:
            continue
        ours = F.conv2d(x, w, padding=p, dilation=d)
        assert ours.shape[-2:] == x.shape[-2:]
        torch.testing.assert_close(ours, F.conv2d(x, w, padding="same", dilation=d))
    assert ref.same_padding(3) == 1 and ref.same_padding(3, dilation=2) == 2 and ref.same_padding(2, dilation=2) == 1
    with pytest.raises(ValueError):
        ref.same_padding(4)
    with pytest.raises(ValueError):
        ref.same_padding(2, dilation=3)


# ----------------------------------------------------------------------------- counting
def test_conv_params_match_nn_conv2d():
    for c_in, c_out, k, bias, groups in [(3, 10, 5, True, 1), (3, 64, 3, False, 1), (8, 16, (3, 1), True, 2),
                                         (12, 24, (1, 5), False, 4), (32, 32, 3, True, 32), (6, 9, 2, True, 3),
                                         (1, 1, 1, True, 1), (16, 48, (2, 3), True, 16)]:
        layer = nn.Conv2d(c_in, c_out, k, bias=bias, groups=groups)
        expected = sum(p.numel() for p in layer.parameters())
        got = ref.conv_params(c_in, c_out, k, bias=bias, groups=groups)
        assert isinstance(got, int) and got == expected, (c_in, c_out, k, bias, groups)
    assert ref.conv_params(3, 10, 5) == 760


def test_conv_params_invalid():
    with pytest.raises(ValueError):
        ref.conv_params(6, 8, 3, groups=4)
    with pytest.raises(ValueError):
        ref.conv_params(8, 6, 3, groups=4)
    with pytest.raises(ValueError):
        nn.Conv2d(6, 8, 3, groups=4)  # PyTorch refuses the same thing


def test_conv_macs():
    assert ref.conv_macs(3, 10, 5, 32) == 768_000
    assert ref.conv_macs(3, 10, (5, 5), (32, 32)) == 768_000
    for c_in, c_out, k, groups, size in [(3, 10, 5, 1, (36, 40)), (8, 16, (3, 1), 2, (9, 12)),
                                         (32, 32, 3, 32, (14, 15)), (6, 9, (2, 3), 3, (7, 7))]:
        layer = nn.Conv2d(c_in, c_out, k, groups=groups, bias=False)
        out = layer(torch.zeros(1, c_in, *size))
        oh, ow = out.shape[-2:]
        expected = layer.weight.numel() * oh * ow  # one MAC per weight per output position
        assert ref.conv_macs(c_in, c_out, k, (oh, ow), groups=groups) == expected
        if oh == ow:
            assert ref.conv_macs(c_in, c_out, k, oh, groups=groups) == expected
    with pytest.raises(ValueError):
        ref.conv_macs(5, 10, 3, 8, groups=2)


def _empirical_receptive_field(layers, size=200):
    """Width of the input region that one central output pixel depends on (1-D, all-positive weights)."""
    x = torch.ones(1, 1, 1, size, dtype=torch.float64, requires_grad=True)
    h = x
    for k, s, d in layers:
        h = F.conv2d(h, torch.ones(1, 1, 1, k, dtype=torch.float64), stride=(1, s), dilation=(1, d))
    h[0, 0, 0, h.shape[-1] // 2].backward()
    hit = torch.nonzero(x.grad[0, 0, 0]).flatten()
    return int(hit.max() - hit.min() + 1)


def test_receptive_field_known_stacks():
    assert ref.receptive_field([(3, 1, 1)] * 3) == 7
    assert ref.receptive_field([(3, 1, 1)] * 2) == 5
    assert ref.receptive_field([(7, 2, 1), (3, 2, 1)]) == 11  # ResNet's stem: 7x7/2 conv, 3x3/2 pool
    assert ref.receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)]) == 15  # dilations 1, 2, 4
    assert ref.receptive_field([(5, 1, 1)]) == 5
    assert ref.receptive_field([]) == 1


@pytest.mark.parametrize("layers", [
    [(3, 1, 1), (3, 1, 1), (3, 1, 1)],
    [(3, 2, 1), (3, 2, 1), (3, 1, 1)],
    [(7, 2, 1), (3, 2, 1), (3, 1, 1), (3, 1, 1)],
    [(3, 1, 2), (3, 2, 3), (2, 1, 1), (4, 1, 3)],
    [(2, 2, 1), (5, 3, 1), (3, 1, 2)],
])
def test_receptive_field_matches_gradient_support(layers):
    assert ref.receptive_field(layers) == _empirical_receptive_field(layers)


# ----------------------------------------------------------------------------- conv2d
CONV_CONFIGS = [
    # x shape, weight shape, kwargs, bias
    ((2, 3, 8, 8), (4, 3, 3, 3), {}, False),
    ((1, 3, 7, 9), (5, 3, 3, 3), {}, True),
    ((2, 3, 9, 11), (4, 3, 3, 3), {"stride": 2}, True),
    ((1, 2, 10, 10), (3, 2, 2, 2), {"stride": 3}, False),
    ((2, 3, 6, 7), (4, 3, 3, 3), {"padding": 1}, True),
    ((1, 3, 7, 7), (2, 3, 5, 5), {"padding": 2, "stride": 2}, True),
    ((1, 3, 9, 10), (4, 3, 3, 3), {"dilation": 2}, False),
    ((2, 2, 8, 9), (3, 2, 3, 3), {"dilation": 2, "padding": 2}, True),
    ((2, 4, 6, 7), (6, 2, 3, 3), {"groups": 2}, False),
    ((1, 6, 5, 6), (6, 2, 3, 3), {"groups": 3, "padding": 1}, True),
    ((1, 4, 5, 5), (4, 1, 3, 3), {"groups": 4, "padding": 1}, False),
    ((1, 3, 7, 11), (2, 3, 3, 3), {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2)}, True),
    ((2, 2, 5, 9), (3, 2, 3, 2), {"padding": 1}, False),
    ((1, 4, 9, 8), (4, 2, 2, 3), {"stride": (1, 2), "padding": (0, 1), "dilation": (2, 1), "groups": 2}, True),
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs, bias", CONV_CONFIGS)
def test_conv2d_forward_and_gradients_match(x_shape, w_shape, kwargs, bias):
    x = randn(*x_shape, seed=1).requires_grad_(True)
    w = randn(*w_shape, seed=2).requires_grad_(True)
    b = randn(w_shape[0], seed=3).requires_grad_(True) if bias else None
    ours = ref.conv2d(x, w, b, **kwargs)
    theirs = F.conv2d(x, w, b, **kwargs)
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    grad_out = randn(*theirs.shape, seed=4)
    inputs = [t for t in (x, w, b) if t is not None]
    for g_ours, g_theirs in zip(torch.autograd.grad(ours, inputs, grad_out),
                                torch.autograd.grad(theirs, inputs, grad_out)):
        torch.testing.assert_close(g_ours, g_theirs, rtol=1e-10, atol=1e-10)


def test_conv2d_float32_and_gradcheck():
    x, w, b = randn(2, 3, 6, 7, dtype=torch.float32), randn(4, 3, 3, 3, seed=1, dtype=torch.float32), \
        randn(4, seed=2, dtype=torch.float32)
    out = ref.conv2d(x, w, b, padding=1)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, F.conv2d(x, w, b, padding=1), rtol=1e-4, atol=1e-5)
    x = randn(1, 4, 5, 6).requires_grad_(True)
    w = randn(2, 2, 2, 3, seed=5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, c: ref.conv2d(a, c, stride=(2, 1), padding=1, groups=2), (x, w))


def test_conv2d_invalid_groups():
    with pytest.raises(ValueError):
        ref.conv2d(torch.zeros(1, 5, 6, 6), torch.zeros(4, 2, 3, 3), groups=2)
    with pytest.raises(ValueError):
        ref.conv2d(torch.zeros(1, 4, 6, 6), torch.zeros(3, 2, 3, 3), groups=2)


# ----------------------------------------------------------------------------- max_pool2d
POOL_CONFIGS = [
    ((2, 3, 8, 8), 2, {}),
    ((1, 2, 9, 7), 3, {}),
    ((2, 3, 11, 13), 3, {"stride": 1}),
    ((1, 4, 8, 11), 2, {"stride": 3}),
    ((2, 3, 7, 12), 3, {"stride": 2, "padding": 1}),
    ((1, 3, 7, 11), 5, {"stride": 2, "padding": 2}),
    ((2, 2, 9, 13), (3, 2), {"stride": (2, 1), "padding": (1, 0)}),
    ((1, 3, 10, 9), (2, 3), {"padding": (0, 1)}),
    ((1, 1, 5, 5), 5, {}),
]


@pytest.mark.parametrize("shape, kernel, kwargs", POOL_CONFIGS)
def test_max_pool2d_forward_and_gradients_match(shape, kernel, kwargs):
    for dtype in (torch.float64, torch.float32):
        x = randn(*shape, seed=7, dtype=dtype)
        ours, theirs = ref.max_pool2d(x, kernel, **kwargs), F.max_pool2d(x, kernel, **kwargs)
        assert ours.dtype == dtype
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
        negative = -x.abs() - 0.5  # padding must never win
        torch.testing.assert_close(ref.max_pool2d(negative, kernel, **kwargs), F.max_pool2d(negative, kernel, **kwargs))
    x = randn(*shape, seed=8).requires_grad_(True)
    ours, theirs = ref.max_pool2d(x, kernel, **kwargs), F.max_pool2d(x, kernel, **kwargs)
    grad_out = randn(*theirs.shape, seed=9)
    (g_ours,), (g_theirs,) = torch.autograd.grad(ours, [x], grad_out), torch.autograd.grad(theirs, [x], grad_out)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-12, atol=1e-12)


def test_max_pool2d_padding_too_large():
    x = torch.zeros(1, 2, 8, 8)
    with pytest.raises(ValueError):
        ref.max_pool2d(x, 3, stride=1, padding=2)
    with pytest.raises(RuntimeError):
        F.max_pool2d(x, 3, stride=1, padding=2)  # PyTorch refuses it too


# ----------------------------------------------------------------------------- compose_convs
@pytest.mark.parametrize("c0, c1, c2, k1, k2", [(1, 1, 1, 3, 3), (3, 4, 5, 3, 3), (2, 3, 1, 1, 4),
                                                 (3, 2, 4, 5, 2), (4, 4, 4, 2, 3)])
def test_compose_convs_equals_conv_then_conv(c0, c1, c2, k1, k2):
    w1, w2 = randn(c1, c0, k1, k1, seed=10), randn(c2, c1, k2, k2, seed=11)
    w = ref.compose_convs(w1, w2)
    k = k1 + k2 - 1
    assert w.shape == (c2, c0, k, k) and w.dtype == torch.float64
    x = randn(2, c0, 13, 11, seed=12)
    torch.testing.assert_close(F.conv2d(x, w), F.conv2d(F.conv2d(x, w1), w2), rtol=1e-10, atol=1e-10)


def test_compose_convs_tap_by_tap():
    # The composed kernel is the full convolution of the kernels, summed over the middle channels.
    w1, w2 = randn(3, 2, 3, 3, seed=13), randn(4, 3, 2, 2, seed=14)
    expected = torch.zeros(4, 2, 4, 4, dtype=torch.float64)
    for a, b in itertools.product(range(2), range(2)):
        expected[:, :, a:a + 3, b:b + 3] += torch.einsum("oc,cikl->oikl", w2[:, :, a, b], w1)
    torch.testing.assert_close(ref.compose_convs(w1, w2), expected)


# ----------------------------------------------------------------------------- profile_model
def test_profile_model_small_example():
    rows = ref.profile_model(nn.Sequential(nn.Conv2d(3, 10, 5, padding=2), nn.ReLU()), (3, 32, 32))
    assert [r["name"] for r in rows] == ["0", "1"]
    assert rows[0] == {"name": "0", "output_shape": (10, 32, 32), "params": 760, "macs": 768_000,
                       "activations": 10 * 32 * 32}
    assert rows[1]["params"] == 0 and rows[1]["macs"] == 0 and rows[1]["activations"] == 10 * 32 * 32


def test_profile_model_nested_grouped_linear():
    model = nn.Sequential(
        nn.Sequential(nn.Conv2d(2, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()),
        nn.Sequential(nn.Conv2d(8, 8, 3, groups=4, stride=2)),
        nn.AdaptiveAvgPool2d((2, 3)), nn.Flatten(), nn.Linear(48, 5))
    model.train()
    rows = ref.profile_model(model, (2, 11, 13))
    assert [r["name"] for r in rows] == ["0.0", "0.1", "0.2", "1.0", "2", "3", "4"]
    assert [r["output_shape"] for r in rows] == [(8, 11, 13), (8, 11, 13), (8, 11, 13), (8, 5, 6), (8, 2, 3),
                                                 (48,), (5,)]
    assert [r["params"] for r in rows] == [144, 16, 0, 8 * 2 * 9 + 8, 0, 0, 48 * 5 + 5]
    assert [r["macs"] for r in rows] == [8 * 11 * 13 * 2 * 9, 0, 0, 8 * 5 * 6 * 2 * 9, 0, 0, 5 * 48]
    assert [r["activations"] for r in rows] == [8 * 11 * 13] * 3 + [8 * 5 * 6, 8 * 2 * 3, 48, 5]
    assert all(type(r[k]) is int for r in rows for k in ("params", "macs", "activations"))
    assert model.training  # mode restored
    assert all(not m._forward_hooks for m in model.modules())  # hooks removed
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in model.parameters())


def test_profile_model_vgg16_totals():
    torch.manual_seed(0)
    model = torchvision.models.vgg16(weights=None)
    rows = ref.profile_model(model, (3, 224, 224))
    assert sum(r["params"] for r in rows) == 138_357_544
    assert sum(r["macs"] for r in rows) == 15_470_264_320
    assert len(rows) == sum(1 for m in model.modules() if not list(m.children()))
    assert rows[0]["name"] == "features.0" and rows[-1]["name"] == "classifier.6"
    assert rows[-1]["output_shape"] == (1000,)
    # The lesson: memory in the early convs, parameters in the fully connected layers.
    assert max(rows, key=lambda r: r["activations"])["name"].startswith("features.")
    fc = sum(r["params"] for r in rows if r["name"].startswith("classifier."))
    assert fc > 0.85 * 138_357_544


# ----------------------------------------------------------------------------- conceptual questions
def test_question_answers_are_what_pytorch_says():
    dense = nn.Linear(3 * 32 * 32, 16 * 32 * 32, bias=False, device="meta")  # shapes only
    assert ref.q_fc_layer_params() == dense.weight.numel()
    # (the 3x3 conv it is compared with holds 16 x 3 x 3 x 3 weights for the same output size)
    assert nn.Conv2d(3, 16, 3, padding=1)(torch.zeros(1, 3, 32, 32)).shape[1:] == (16, 32, 32)
    x = randn(8, 16, 32, 32, dtype=torch.float32)
    assert ref.q_unfold_shape() == tuple(F.unfold(x, kernel_size=3, padding=1, stride=2).shape)
    options = {"A": torch.ones(2, 2), "B": torch.full((2, 2), 0.25), "C": torch.tensor([[1.0, 0], [0, 0]]),
               "D": torch.full((2, 2), 0.5)}
    image = randn(1, 1, 6, 8)
    equal = [k for k, w in options.items()
             if torch.allclose(F.conv2d(image, w.double().reshape(1, 1, 2, 2), stride=2), F.avg_pool2d(image, 2))]
    assert equal == [ref.q_avg_pool_as_conv()]
