"""The module contract row (``autograder.cases.contract``) on torchvision's own blocks.

The twin passes its own contract; plausible wrong modules (a missing layer, another
name, a ReLU in the wrong place, a stride forgotten) each fail the groups they break.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
import torch.nn as nn
from torchvision.models.resnet import BasicBlock

import gradekit
from autograder.cases import spec
from autograder.cases.contract import TWIN_GROUPS as GROUPS, contract, twin_target
from autograder.judge import Judge
from autograder.problem import Group, Problem


def downsample(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class Block(BasicBlock):
    """The course's signature over torchvision's block: Block(in, out, stride)."""

    def __init__(self, in_channels, out_channels, stride=1):
        proj = downsample(in_channels, out_channels, stride) if stride != 1 or in_channels != out_channels else None
        super().__init__(in_channels, out_channels, stride, proj)


class Contract(Problem):
    name = "Block"
    groups = tuple(Group(g, f"hint for {g}") for g in GROUPS)

    def cases(self, draw):
        twin = spec("torchvision.models.resnet.BasicBlock", 4, 8, 2,
                    spec("torch.nn.Sequential", spec("torch.nn.Conv2d", 4, 8, 1, 2, bias=False),
                         spec("torch.nn.BatchNorm2d", 8)))
        return contract(self, twin_target(twin), (4, 8, 2), draw.normal((2, 4, 9, 11), np.float32), draw,
                        train_x=draw.normal((3, 4, 9, 11), np.float32))


def grade(cls) -> dict[str, bool]:
    with tempfile.TemporaryDirectory() as tmp:
        judge = Judge({"Block": Contract()}, 3, Path(tmp), strict=True)
        judge.prepare()
        with contextlib.redirect_stdout(io.StringIO()):
            gradekit.capture("Block", {"Block": cls}, root=tmp)
        verdict = judge.collect(None)["Block"]
    print("\n".join(verdict.lines))
    return verdict.groups


def test_the_twin_meets_its_contract():
    assert all(grade(Block).values())


def test_a_missing_batchnorm_breaks_weights_count_and_keys():
    class NoBN2(Block):
        def __init__(self, *args):
            super().__init__(*args)
            self.bn2 = nn.Identity()

    groups = grade(NoBN2)
    assert groups["output shape"]
    assert not groups["parameters"] and not groups["state_dict"] and not groups["torchvision weights"]
    assert not groups["submodules"]


def test_other_names_fail_keys_and_weights_but_not_the_shape():
    class Renamed(nn.Module):
        def __init__(self, cin, cout, stride=1):
            super().__init__()
            self.block = Block(cin, cout, stride)

        def forward(self, x):
            return self.block(x)

    groups = grade(Renamed)
    assert groups["output shape"] and groups["parameters"]
    assert not groups["state_dict"] and not groups["torchvision weights"] and not groups["submodules"]


def test_relu_after_the_addition_forgotten_fails_only_the_outputs():
    class NoFinalReLU(Block):
        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
            return out + identity

    groups = grade(NoFinalReLU)
    assert groups["output shape"] and groups["parameters"] and groups["state_dict"] and groups["submodules"]
    assert not groups["torchvision weights"]


def test_a_forgotten_stride_fails_the_shape():
    class NoStride(Block):
        def __init__(self, cin, cout, stride=1):
            super().__init__(cin, cout, stride)
            self.conv1.stride = (1, 1)
            self.downsample[0].stride = (1, 1)

    groups = grade(NoStride)
    assert not groups["output shape"] and groups["parameters"] and groups["state_dict"]
