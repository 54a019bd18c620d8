"""An honest BasicBlock that uses hooks on its own submodules: a forward hook registered on
its conv1 when it is built (it counts the calls, and stays), and one registered on bn2
inside forward to keep the branch's activation for inspection, removed before forward
returns.

It must keep full marks, smoke tests included: the hooks are the student's own, on the
student's own modules, and change no value.
"""
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
        self.calls = 0
        self.conv1.register_forward_hook(self._count)
        self.last_branch = None

    def _count(self, module, inputs, output):
        self.calls += 1

    def _keep(self, module, inputs, output):
        self.last_branch = output.detach()

    def forward(self, x):
        handle = self.bn2.register_forward_hook(self._keep)
        try:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
        finally:
            handle.remove()
        return self.relu(out + identity)
