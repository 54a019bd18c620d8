"""BasicBlock is the student's own class (nn.Module, the reference's layers), but its forward
is torchvision's BasicBlock.forward, taken as a plain function.

class: 1 (the library's own implementation)
control: blank

Nothing of torchvision is in the class's type hierarchy or among its submodules: only the
function that runs is torchvision's.
"""
from torchvision.models.resnet import BasicBlock as _LibraryBlock


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    forward = _LibraryBlock.forward
