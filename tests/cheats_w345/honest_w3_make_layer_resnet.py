"""An honest resnet in torchvision's style: a ResNet class at top level whose stages come
from a _make_layer method, the blocks being the notebook's BasicBlock and Bottleneck.

It must keep full marks: the layout and the values are torchvision's, built from the
student's own blocks.
"""
class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000):
        super().__init__()
        self.expansion = getattr(block, "expansion", 1)
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * self.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        layers = [block(self.inplanes, planes, stride)]
        self.inplanes = planes * self.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet(depth, num_classes=1000):
    if depth == 18:
        return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)
    if depth == 34:
        return ResNet(BasicBlock, [3, 4, 6, 3], num_classes)
    if depth == 50:
        return ResNet(Bottleneck, [3, 4, 6, 3], num_classes)
    if depth == 101:
        return ResNet(Bottleneck, [3, 4, 23, 3], num_classes)
    raise ValueError(f"no ResNet-{depth} here: depth is one of 18, 34, 50, 101")
