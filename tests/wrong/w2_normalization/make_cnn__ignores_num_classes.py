"""Hard-codes one input channel and ten classes instead of using in_channels and num_classes."""
import torch.nn as nn


def make_cnn(norm, num_classes=10, in_channels=1):
    if norm not in ("batch", "layer", "instance", "group", "none"):
        raise ValueError(f"unknown norm {norm!r}")

    def norm_layer(c):
        return {"batch": lambda: nn.BatchNorm2d(c), "layer": lambda: nn.GroupNorm(1, c),
                "instance": lambda: nn.InstanceNorm2d(c, affine=True), "group": lambda: nn.GroupNorm(4, c),
                "none": lambda: nn.Identity()}[norm]()

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), norm_layer(cout), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(1, 16), *block(16, 32), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, 10))
