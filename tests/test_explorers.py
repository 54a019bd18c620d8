"""The notebooks' explorers (coursedata/explorers.py), without a browser or a kernel: each is
built in this process, its controls are set as a slider would set them, and what it shows
(``state``, the readout's text, the drawing's PNG) must follow, with the numbers PyTorch's
own layers give."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from coursedata import digits, explorers


def shown_ints(html: str) -> list[int]:
    """The bold numbers of a readout, in order (thousands separators removed)."""
    return [int(x.replace(",", "")) for x in re.findall(r"<b>([\d,]+)</b>", html)]


def move(explorer, **values) -> None:
    for name, value in values.items():
        explorer.controls[name].value = value


# ----------------------------------------------------------------------------- week 1
CONV_SETTINGS = [dict(size=7, kernel=3, stride=1, padding=0, dilation=1, in_channels=4, out_channels=8, groups=1),
                 dict(size=9, kernel=3, stride=2, padding=1, dilation=1, in_channels=3, out_channels=6, groups=3),
                 dict(size=16, kernel=5, stride=3, padding=2, dilation=2, in_channels=8, out_channels=16, groups=4),
                 dict(size=10, kernel=4, stride=2, padding=3, dilation=3, in_channels=16, out_channels=16, groups=16),
                 dict(size=5, kernel=7, stride=1, padding=1, dilation=1, in_channels=1, out_channels=2, groups=1)]


@pytest.mark.parametrize("settings", CONV_SETTINGS)
def test_conv_arithmetic_shows_what_nn_conv2d_computes(settings):
    explorer = explorers.conv_arithmetic()
    move(explorer, **settings)
    s = explorer.state
    size, k, stride, pad, dil = (settings[key] for key in ("size", "kernel", "stride", "padding", "dilation"))
    layer = nn.Conv2d(settings["in_channels"], settings["out_channels"], k, stride=stride, padding=pad,
                      dilation=dil, groups=settings["groups"])
    out = layer(torch.zeros(1, settings["in_channels"], size, size))
    assert s["output_size"] == tuple(out.shape[-2:])
    assert f"output: <b>{out.shape[-2]} x {out.shape[-1]}</b>" in explorer.readout.value
    assert s["params"] == sum(p.numel() for p in layer.parameters()) and s["params"] in shown_ints(explorer.readout.value)
    macs = out.numel() * (settings["in_channels"] // settings["groups"]) * k * k
    assert s["macs"] == macs and macs in shown_ints(explorer.readout.value)
    assert explorer.controls["step"].max == out.shape[-2] * out.shape[-1] - 1
    # the receptive field of 1, 2, 3 stacked layers: r <- r + d (k - 1) j, j <- j s (the notebook's formula)
    fields, r, jump = [], 1, 1
    for _ in range(3):
        r, jump = r + dil * (k - 1) * jump, jump * stride
        fields.append(r)
    assert s["receptive_fields"] == fields
    assert f"{fields[0]}x{fields[0]} (1 layer)" in explorer.readout.value


def test_conv_arithmetic_window_slides_with_the_step_slider():
    explorer = explorers.conv_arithmetic(size=7, kernel=3, stride=2, padding=1, dilation=2)
    h, w = explorer.state["output_size"]
    before, drawing = explorer.state["taps"], explorer.image.value
    explorer.controls["step"].value = w + 1  # second row, second column
    s = explorer.state
    assert s["position"] == (1, 1) and s["window"] == (2, 2)
    assert s["taps"] == [(2 + 2 * u, 2 + 2 * v) for u in range(3) for v in range(3)] != before
    assert explorer.image.value != drawing and bytes(explorer.image.value).startswith(b"\x89PNG")
    # the window's taps are the input pixels F.conv2d reads for that output pixel
    x = torch.zeros(1, 1, 7, 7, requires_grad=True)
    F.conv2d(x, torch.ones(1, 1, 3, 3), stride=2, padding=1, dilation=2)[0, 0, 1, 1].backward()
    read = {(r + 1, c + 1) for r, c in torch.nonzero(x.grad[0, 0]).tolist()}  # in padded coordinates
    assert read == {t for t in s["taps"] if 1 <= t[0] < 8 and 1 <= t[1] < 8}
    assert s["taps_on_padding"] == 9 - len(read)
    explorer.controls["step"].value = h * w - 1
    assert explorer.state["position"] == (h - 1, w - 1)


def test_conv_arithmetic_keeps_its_controls_consistent():
    explorer = explorers.conv_arithmetic()
    move(explorer, in_channels=6, out_channels=8)
    assert list(explorer.controls["groups"].options) == [1, 2]
    move(explorer, groups=2, size=12, step=20)
    move(explorer, stride=3)  # fewer output pixels: the step slider follows
    assert explorer.controls["step"].max == 15 and explorer.state["step"] == explorer.controls["step"].value <= 15
    move(explorer, size=4, kernel=7, padding=0)  # the kernel no longer fits
    assert explorer.state["output_size"] is None and explorer.state["macs"] == 0
    assert explorer.controls["step"].disabled and "no output" in explorer.readout.value
    move(explorer, padding=2)
    assert explorer.state["output_size"] == (1, 1) and not explorer.controls["step"].disabled  # (4 + 4 - 7) // 3 + 1


# ----------------------------------------------------------------------------- week 2
def expected_sets(norm: str, n: int, c: int, groups: int) -> np.ndarray:
    """Which (sample, channel) pairs share statistics, from the axes each layer averages over."""
    sample, channel = np.indices((n, c))
    if norm == "BatchNorm":
        return channel
    if norm == "LayerNorm":
        return sample
    if norm == "InstanceNorm":
        return sample * c + channel
    return sample * groups + channel // (c // groups)


@pytest.mark.parametrize("norm", explorers.NORMS)
def test_normalization_axes_shows_the_values_that_share_statistics(norm):
    explorer = explorers.normalization_axes()
    for batch, channels, groups, sample, channel in [(4, 6, 3, 1, 2), (2, 8, 2, 0, 7), (3, 4, 4, 2, 1)]:
        move(explorer, norm=norm, batch=batch, channels=channels)
        move(explorer, groups=groups, sample=sample, channel=channel)
        s = explorer.state
        sets = expected_sets(norm, batch, channels, groups)
        assert np.array_equal(s["shared"], sets == sets[sample, channel]), (norm, batch, channels, groups)
        assert s["statistics"] == len(np.unique(sets))
        hw = explorer.HW
        assert s["values_per_statistic"] == int((sets == sets[sample, channel]).sum()) * hw * hw
        assert shown_ints(explorer.readout.value)[:2] == [s["statistics"], s["values_per_statistic"]]


def test_normalization_axes_redraws_and_guards_its_controls():
    explorer = explorers.normalization_axes(norm="BatchNorm")
    drawing = explorer.image.value
    assert explorer.controls["groups"].disabled
    explorer.controls["norm"].value = "GroupNorm"
    assert explorer.image.value != drawing and not explorer.controls["groups"].disabled
    explorer.controls["channels"].value = 5  # 5 channels: groups 1 or 5
    assert list(explorer.controls["groups"].options) == [1, 5]
    assert explorer.controls["channel"].max == 4
    explorer.controls["batch"].value = 2
    assert explorer.controls["sample"].max == 1 and explorer.state["chosen"][0] <= 1
    # only batch norm's output depends on the rest of the batch
    assert "depend on the other samples? <b>no</b>" in explorer.readout.value
    explorer.controls["norm"].value = "BatchNorm"
    assert "depend on the other samples? <b>yes</b>" in explorer.readout.value


# ----------------------------------------------------------------------------- week 3
def test_block_costs_counts_torchvisions_blocks():
    from torchvision.models.resnet import BasicBlock, Bottleneck

    explorer = explorers.block_costs(channels=64, size=56, reduction=16)
    blocks = explorer.state["blocks"]
    assert blocks["basic"]["params"] == sum(p.numel() for p in BasicBlock(64, 64).parameters())
    assert blocks["bottleneck"]["params"] == sum(p.numel() for p in Bottleneck(256, 64).parameters())
    c4, squeezed = 256, 256 // 16
    assert blocks["bottleneck + SE"]["params"] - blocks["bottleneck"]["params"] == 2 * c4 * squeezed + squeezed + c4
    # MACs: each conv's output values times the weights each one uses (checked with a conv on 56x56)
    conv = nn.Conv2d(64, 64, 3, padding=1, bias=False)
    per_conv = conv(torch.zeros(1, 64, 56, 56)).numel() * 64 * 9
    assert blocks["basic"]["macs"] == 2 * per_conv
    assert blocks["bottleneck"]["macs"] == 56 * 56 * (256 * 64 + 64 * 64 * 9 + 64 * 256)
    assert blocks["bottleneck + SE"]["macs"] == blocks["bottleneck"]["macs"] + 2 * c4 * squeezed
    assert f"{blocks['basic']['params']:,}" in explorer.readout.value


def test_block_costs_follow_the_map_size_and_the_reduction():
    explorer = explorers.block_costs(channels=64, size=56, reduction=16)
    before, drawing = explorer.state["blocks"], explorer.image.value
    explorer.controls["size"].value = 28
    after = explorer.state["blocks"]
    for kind in explorer.KINDS:  # a quarter of the positions, the same weights
        assert after[kind]["params"] == before[kind]["params"]
        convs = sum(r["macs"] for r in after[kind]["rows"] if not r["name"].startswith("se."))
        assert 4 * convs == sum(r["macs"] for r in before[kind]["rows"] if not r["name"].startswith("se."))
    assert explorer.image.value != drawing
    explorer.controls["reduction"].value = 4
    se = explorer.state["blocks"]["bottleneck + SE"]["params"] - explorer.state["blocks"]["bottleneck"]["params"]
    assert se == 2 * 256 * 64 + 64 + 256


# ----------------------------------------------------------------------------- week 4
@pytest.mark.parametrize("settings", [dict(size=6, kernel=3, stride=2), dict(size=6, kernel=4, stride=2),
                                      dict(size=5, kernel=4, stride=2, padding=1),
                                      dict(size=4, kernel=3, stride=2, padding=1, output_padding=1),
                                      dict(size=7, kernel=1, stride=3), dict(size=5, kernel=6, stride=3)])
def test_transposed_conv_shows_sizes_and_tap_counts(settings):
    explorer = explorers.transposed_conv()
    move(explorer, **{"padding": 0, "output_padding": 0, **settings})
    s = explorer.state
    layer = nn.ConvTranspose2d(1, 1, settings["kernel"], settings["stride"], settings.get("padding", 0),
                               settings.get("output_padding", 0))
    out = layer(torch.zeros(1, 1, settings["size"], settings["size"]))
    assert s["output_size"] == tuple(out.shape[-2:])
    assert f"output <b>{out.shape[-2]} x {out.shape[-1]}</b>" in explorer.readout.value
    # the counts, pixel by pixel: input pixels i with i*stride - padding + tap = output pixel, per axis
    k, st, p, n = settings["kernel"], settings["stride"], settings.get("padding", 0), settings["size"]
    per_axis = np.zeros(out.shape[-1], dtype=int)
    for i in range(n):
        for tap in range(k):
            if 0 <= i * st - p + tap < len(per_axis):
                per_axis[i * st - p + tap] += 1
    assert np.array_equal(s["counts"], np.outer(per_axis, per_axis))
    assert s["even"] == (k % st == 0)
    assert ("checkerboard</b>" in explorer.readout.value) == (k % st != 0)


def test_transposed_conv_reports_settings_pytorch_refuses():
    explorer = explorers.transposed_conv(size=6, kernel=3, stride=2)
    drawing = explorer.image.value
    explorer.controls["output_padding"].value = 2  # not smaller than the stride
    with pytest.raises(RuntimeError):
        nn.ConvTranspose2d(1, 1, 3, 2, output_padding=2)(torch.zeros(1, 1, 6, 6))
    assert explorer.state["output_size"] is None and "refuses" in explorer.readout.value
    assert explorer.image.value != drawing
    explorer.controls["output_padding"].value = 1
    assert explorer.state["output_size"] == (14, 14)


# ----------------------------------------------------------------------------- week 5
def test_mixing_blends_and_pastes_the_two_digits():
    data = digits()
    a, b = (data.x_train[data.y_train == d][0, 0] for d in (3, 8))
    explorer = explorers.mixing(mode="MixUp", lam=0.7, pair=(3, 8))
    assert np.allclose(explorer.state["image"], 0.7 * a + 0.3 * b)
    assert explorer.state["label"] == {3: 0.7, 8: 0.3}
    assert explorer.controls["top"].disabled and not explorer.controls["lam"].disabled
    explorer.controls["lam"].value = 0.25
    assert np.allclose(explorer.state["image"], 0.25 * a + 0.75 * b)
    assert "<b>0.25</b> x digit 3 + <b>0.75</b> x digit 8" in explorer.readout.value

    drawing = explorer.image.value
    move(explorer, mode="CutMix", top=5, left=1, height=4, width=3)  # the box runs off the bottom edge
    s = explorer.state
    assert s["box"] == (5, 8, 1, 4) and explorer.controls["lam"].disabled
    inside = np.zeros((8, 8), bool)
    inside[5:8, 1:4] = True
    assert np.array_equal(s["image"][inside], b[inside]) and np.array_equal(s["image"][~inside], a[~inside])
    assert s["label"] == {3: round(1 - 9 / 64, 6), 8: round(9 / 64, 6)}  # the clipped box's area, not 4 x 3
    assert explorer.image.value != drawing
    move(explorer, height=0)
    assert s is not explorer.state and explorer.state["label"] == {3: 1.0, 8: 0.0}
