"""Always uses BatchNorm2d, whatever norm asks for."""
EXPECT = 'which is not'
import torch.nn as nn


def make_cnn(norm, num_classes=10, in_channels=1):
    if norm not in ("batch", "layer", "instance", "group", "none"):
        raise ValueError(f"unknown norm {norm!r}")

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(in_channels, 16), *block(16, 32), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(128, num_classes))
