"""Bottleneck is a factory that hands back an instance of torchvision's Bottleneck.

class: 1 (the library's own implementation)
control: blank

``Bottleneck(in, mid, stride)`` is a function, not a class: it returns
``torchvision.models.resnet.Bottleneck`` (imported under another name), whose type name
is the same as the problem's.
"""
from torchvision.models import resnet as _zoo

_Block = _zoo.Bottleneck


def Bottleneck(in_channels, mid_channels, stride=1):
    out_channels = 4 * mid_channels
    projection = None
    if stride != 1 or in_channels != out_channels:
        projection = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                   nn.BatchNorm2d(out_channels))
    return _Block(in_channels, mid_channels, stride, projection)
