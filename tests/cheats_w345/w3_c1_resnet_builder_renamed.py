"""resnet(depth) returns torchvision's model builders' output, the builders imported under
other names and the model's class renamed.

class: 1 (the library's own implementation)
control: blank

torchvision.models.resnet18/34/50/101 build the network; its class is swapped for a
subclass named ``Backbone`` so that nothing named ResNet comes back.
"""
from torchvision.models import resnet18 as _small, resnet34 as _medium, resnet50 as _large, \
    resnet101 as _huge


def resnet(depth, num_classes=1000):
    builders = {18: _small, 34: _medium, 50: _large, 101: _huge}
    if depth not in builders:
        raise ValueError(f"depth must be one of 18, 34, 50, 101, got {depth}")
    model = builders[depth](num_classes=num_classes)
    model.__class__ = type("Backbone", (type(model),), {})
    return model
