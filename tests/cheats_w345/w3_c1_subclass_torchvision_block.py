"""BasicBlock is torchvision's own BasicBlock: a subclass that only builds the projection.

class: 1 (the library's own implementation)
control: blank

The forward pass, the layer names and the initialisation are all torchvision's; the
student's class adds nothing but the ``downsample`` argument torchvision expects.
"""
import torchvision.models.resnet as tv_resnet


class BasicBlock(tv_resnet.BasicBlock):
    def __init__(self, in_channels, out_channels, stride=1):
        projection = None
        if stride != 1 or in_channels != out_channels:
            projection = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(out_channels))
        super().__init__(in_channels, out_channels, stride, projection)
