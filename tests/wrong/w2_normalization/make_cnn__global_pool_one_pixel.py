"""Pools one small conv layer straight down to 1x1: too little capacity, no variant learns within the budget."""
EXPECT = 'below the'
import torch.nn as nn


def make_cnn(norm, num_classes=10, in_channels=1):
    if norm not in ("batch", "layer", "instance", "group", "none"):
        raise ValueError(f"unknown norm {norm!r}")

    def norm_layer(c):
        return {"batch": lambda: nn.BatchNorm2d(c), "layer": lambda: nn.GroupNorm(1, c),
                "instance": lambda: nn.InstanceNorm2d(c, affine=True), "group": lambda: nn.GroupNorm(2, c),
                "none": lambda: nn.Identity()}[norm]()

    return nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), norm_layer(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))
