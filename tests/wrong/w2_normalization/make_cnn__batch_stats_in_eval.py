"""Writes its own batch-norm layer that always normalises with batch statistics (none kept for eval mode)."""
EXPECT = 'running statistics'
import torch
import torch.nn as nn
import torch.nn.functional as F


class BatchStats(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return F.batch_norm(x, None, None, self.weight, self.bias, training=True)


def make_cnn(norm, num_classes=10, in_channels=1):
    layers = {"batch": BatchStats, "layer": lambda c: nn.GroupNorm(1, c),
              "instance": lambda c: nn.InstanceNorm2d(c, affine=True), "group": lambda c: nn.GroupNorm(4, c),
              "none": lambda c: nn.Identity()}
    if norm not in layers:
        raise ValueError(f"unknown norm {norm!r}")

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), layers[norm](cout), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(in_channels, 16), *block(16, 32), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(128, num_classes))
