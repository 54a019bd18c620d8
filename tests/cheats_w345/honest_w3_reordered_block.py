"""An honest BasicBlock written in another order: the projection built first, the residual
branch computed before the shortcut, F.relu in place of calls to the relu module.

It must keep full marks: the layout is the spec's (the same names and shapes, in another
order), and the values are the block's.
"""
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        needs_projection = stride != 1 or in_channels != out_channels
        self.downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels)) if needs_projection else None
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x):
        branch = F.relu(self.bn1(self.conv1(x)))
        branch = self.bn2(self.conv2(branch))
        shortcut = x
        if self.downsample is not None:
            shortcut = self.downsample(x)
        return F.relu(shortcut + branch)
