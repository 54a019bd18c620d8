"""Week 3 references: GoogLeNet, ResNet, ResNeXt, DenseNet, SENet, EfficientNet, deformable conv.

Each definition is self-contained (the notebook's solution cells are copies of these
definitions) and uses only the imports below, which the notebook's set-up cell also
makes; the models (`resnet`, `resnext50_32x4d`, `densenet121`) are built from the
graded blocks of this week. Module and parameter names follow torchvision's, so that
the models load torchvision's `state_dict()` with `strict=True`.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------- GoogLeNet
class InceptionModule(nn.Module):
    """The inception module of GoogLeNet: four branches concatenated on channels.

    branch1: 1x1 conv (in_channels -> ch1x1), ReLU
    branch2: 1x1 conv (-> ch3x3red), ReLU, 3x3 conv padding 1 (-> ch3x3), ReLU
    branch3: 1x1 conv (-> ch5x5red), ReLU, 5x5 conv padding 2 (-> ch5x5), ReLU
    branch4: 3x3 max pool stride 1 padding 1, 1x1 conv (-> pool_proj), ReLU
    Every conv has a bias (no BatchNorm, as in the paper); each branch is an
    nn.Sequential named branch1..branch4 holding these layers in this order.
    (N, in_channels, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W), branches
    concatenated in the order 1, 2, 3, 4.
    """

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        ### BEGIN SOLUTION
        self.branch1 = nn.Sequential(nn.Conv2d(in_channels, ch1x1, 1), nn.ReLU(inplace=True))
        self.branch2 = nn.Sequential(nn.Conv2d(in_channels, ch3x3red, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(ch3x3red, ch3x3, 3, padding=1), nn.ReLU(inplace=True))
        self.branch3 = nn.Sequential(nn.Conv2d(in_channels, ch5x5red, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(ch5x5red, ch5x5, 5, padding=2), nn.ReLU(inplace=True))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                     nn.Conv2d(in_channels, pool_proj, 1), nn.ReLU(inplace=True))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)
        ### END SOLUTION


class AuxClassifier(nn.Module):
    """GoogLeNet's auxiliary classifier, for an input of any spatial size.

    pool: adaptive average pool to 4x4 (the paper's 5x5/3 pool on a 14x14 map);
    conv: 1x1 conv (in_channels -> 128, with bias), ReLU;
    flatten, fc1: Linear(128 * 4 * 4 -> 1024), ReLU, dropout: Dropout(p=0.7);
    fc2: Linear(1024 -> num_classes).
    (N, in_channels, H, W) -> logits (N, num_classes). Submodules named pool, conv,
    fc1, dropout, fc2.
    """

    def __init__(self, in_channels, num_classes):
        super().__init__()
        ### BEGIN SOLUTION
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv = nn.Conv2d(in_channels, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.dropout = nn.Dropout(p=0.7)
        self.fc2 = nn.Linear(1024, num_classes)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = F.relu(self.conv(self.pool(x)))
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(self.dropout(x))
        ### END SOLUTION


def googlenet_loss(main_logits, aux_logits, target, aux_weight=0.3):
    """GoogLeNet's training loss: CE(main) + aux_weight * sum(CE(a) for a in aux_logits).

    main_logits (N, K); aux_logits a list of (N, K) logits (possibly empty); target (N,)
    class indices. Each CE is the mean cross-entropy over the batch. Returns a scalar.
    """
    ### BEGIN SOLUTION
    loss = F.cross_entropy(main_logits, target)
    for logits in aux_logits:
        loss = loss + aux_weight * F.cross_entropy(logits, target)
    return loss
    ### END SOLUTION


# ----------------------------------------------------------------------------- ResNet
class BasicBlock(nn.Module):
    """ResNet's basic block: out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    conv1: 3x3, stride `stride`, padding 1, no bias (in -> out channels); conv2: 3x3,
    stride 1, padding 1, no bias; bn1, bn2: BatchNorm2d; relu: one nn.ReLU. The
    shortcut is the identity when the shape is kept (stride 1 and in == out) and
    otherwise `downsample` = nn.Sequential(1x1 conv stride `stride` no bias, BatchNorm2d)
    (`downsample` is None for the identity). Names as torchvision's BasicBlock.
    (N, in, H, W) -> (N, out, floor((H - 1) / stride) + 1, same for W).
    """
    expansion = 1

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)
        ### END SOLUTION


class Bottleneck(nn.Module):
    """ResNet's bottleneck block (expansion 4): 1x1 reduce, 3x3, 1x1 expand.

    conv1: 1x1 (in -> mid), conv2: 3x3 stride `stride` padding 1 (mid -> mid; the
    stride is on the 3x3, as in torchvision), conv3: 1x1 (mid -> 4 * mid), all without
    bias, each followed by bn1, bn2, bn3; relu after bn1, bn2 and after the addition.
    Projection shortcut `downsample` = nn.Sequential(1x1 conv stride `stride` no bias,
    BatchNorm2d) exactly when stride != 1 or in_channels != 4 * mid_channels (else
    None). Names as torchvision's Bottleneck.
    (N, in, H, W) -> (N, 4 * mid, floor((H - 1) / stride) + 1, same for W).
    """
    expansion = 4

    def __init__(self, in_channels, mid_channels, stride=1):
        super().__init__()
        ### BEGIN SOLUTION
        out_channels = 4 * mid_channels
        self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = nn.Conv2d(mid_channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)
        ### END SOLUTION


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al., 2016): BN-ReLU-conv twice, identity untouched.

    a = relu(bn1(x)); out = conv2(relu(bn2(conv1(a)))) + shortcut, nothing after the
    addition. conv1: 3x3 stride `stride` padding 1, conv2: 3x3 padding 1, no biases;
    bn1 (in channels), bn2 (out channels). The shortcut is x itself when the shape is
    kept, else `downsample` = nn.Sequential(1x1 conv stride `stride`, no bias) applied
    to the pre-activated a (`downsample` is None for the identity).
    (N, in, H, W) -> (N, out, floor((H - 1) / stride) + 1, same for W).
    """

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        ### BEGIN SOLUTION
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        a = F.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(a)
        out = self.conv1(a)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut
        ### END SOLUTION


def resnet(depth, num_classes=1000):
    """ResNet-18/34 (BasicBlock) or ResNet-50/101 (Bottleneck) with torchvision's layout.

    Stem: conv1 7x7 stride 2 padding 3 (3 -> 64, no bias), bn1, relu, maxpool 3x3
    stride 2 padding 1; layer1..layer4 (nn.Sequential of blocks) with 64, 128, 256,
    512 (times the block's expansion) output channels and [2,2,2,2] (18), [3,4,6,3]
    (34, 50) or [3,4,23,3] (101) blocks, the first block of layers 2-4 with stride 2;
    avgpool (adaptive, 1x1), flatten, fc. Any other depth raises ValueError.
    (N, 3, H, W) -> (N, num_classes). ResNet-18 has 11,689,512 parameters.
    """
    ### BEGIN SOLUTION
    configs = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]),
               50: (Bottleneck, [3, 4, 6, 3]), 101: (Bottleneck, [3, 4, 23, 3])}
    if depth not in configs:
        raise ValueError(f"depth must be one of 18, 34, 50, 101, got {depth}")
    block, counts = configs[depth]
    expansion = 1 if block is BasicBlock else 4

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            channels = 64
            for i, (width, count) in enumerate(zip([64, 128, 256, 512], counts)):
                blocks = []
                for j in range(count):
                    blocks.append(block(channels, width, 2 if i > 0 and j == 0 else 1))
                    channels = width * expansion
                setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(channels, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet()
    ### END SOLUTION


# ----------------------------------------------------------------------------- ResNeXt
class ResNeXtBlock(nn.Module):
    """ResNeXt's block: 1x1 -> grouped 3x3 -> 1x1, with a residual shortcut.

    width = cardinality * bottleneck_width. conv1: 1x1 (in -> width), conv2: 3x3 stride
    `stride` padding 1 with groups=cardinality (width -> width), conv3: 1x1 (width ->
    out_channels), no biases, each followed by bn1, bn2, bn3; relu after bn1, bn2 and
    after the addition. Projection `downsample` = nn.Sequential(1x1 conv stride
    `stride` no bias, BatchNorm2d) exactly when stride != 1 or in != out (else None).
    Names as torchvision's Bottleneck. width % cardinality is 0 by construction.
    (N, in, H, W) -> (N, out, floor((H - 1) / stride) + 1, same for W).
    """

    def __init__(self, in_channels, out_channels, cardinality=32, bottleneck_width=4, stride=1):
        super().__init__()
        ### BEGIN SOLUTION
        width = cardinality * bottleneck_width
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)
        ### END SOLUTION


def resnext50_32x4d(num_classes=1000):
    """ResNeXt-50 (32x4d) built from ResNeXtBlock with torchvision's layout.

    The ResNet-50 stem and head (conv1, bn1, relu, maxpool, avgpool, fc); layer1..4
    with [3, 4, 6, 3] blocks of cardinality 32 and bottleneck width 4, 8, 16, 32
    (inner widths 128, 256, 512, 1024), output channels 256, 512, 1024, 2048, the first
    block of layers 2-4 with stride 2. (N, 3, H, W) -> (N, num_classes);
    25,028,904 parameters.
    """
    ### BEGIN SOLUTION
    class ResNeXt(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            channels = 64
            for i, count in enumerate([3, 4, 6, 3]):
                blocks = []
                for j in range(count):
                    blocks.append(ResNeXtBlock(channels, 256 * 2 ** i, 32, 4 * 2 ** i, 2 if i > 0 and j == 0 else 1))
                    channels = 256 * 2 ** i
                setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(channels, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNeXt()
    ### END SOLUTION


# ----------------------------------------------------------------------------- DenseNet
class DenseLayer(nn.Module):
    """One DenseNet-BC layer: BN-ReLU-1x1 conv (-> bn_size * growth_rate), BN-ReLU-3x3 conv
    padding 1 (-> growth_rate), no biases; submodules norm1, relu1, conv1, norm2, relu2,
    conv2 (torchvision's names). (N, in_channels, H, W) -> the growth_rate *new*
    channels (N, growth_rate, H, W); the block does the concatenation.
    """

    def __init__(self, in_channels, growth_rate, bn_size=4):
        super().__init__()
        ### BEGIN SOLUTION
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        out = self.conv1(self.relu1(self.norm1(x)))
        return self.conv2(self.relu2(self.norm2(out)))
        ### END SOLUTION


class DenseBlock(nn.Module):
    """num_layers DenseLayers named denselayer1, denselayer2, ...; layer i (from 1) takes
    in_channels + (i - 1) * growth_rate channels: the concatenation, on channels, of the
    block's input and every earlier layer's new features, in that order. Returns
    torch.cat([x, new_1, ..., new_L], dim=1): (N, in + num_layers * growth_rate, H, W).
    """

    def __init__(self, num_layers, in_channels, growth_rate, bn_size=4):
        super().__init__()
        ### BEGIN SOLUTION
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        features = [x]
        for layer in self.children():
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)
        ### END SOLUTION


class Transition(nn.Module):
    """DenseNet's transition: norm (BatchNorm2d), relu, conv (1x1, no bias, in -> out),
    pool (2x2 average pool, stride 2), in this order and with these names.
    (N, in, H, W) -> (N, out, H // 2, W // 2).
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()
        ### BEGIN SOLUTION
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.pool(self.conv(self.relu(self.norm(x))))
        ### END SOLUTION


def densenet121(num_classes=1000):
    """DenseNet-121 (growth 32, blocks of 6, 12, 24, 16 layers, bn_size 4) with
    torchvision's layout: `features` = nn.Sequential with conv0 (7x7 stride 2 padding 3,
    3 -> 64, no bias), norm0, relu0, pool0 (3x3 max pool stride 2 padding 1),
    denseblock1, transition1 (halving the channels), ..., denseblock4, norm5; then
    relu, adaptive average pool to 1x1, flatten and `classifier` (Linear 1024 ->
    num_classes). (N, 3, H, W) -> (N, num_classes); 7,978,856 parameters.
    """
    ### BEGIN SOLUTION
    class DenseNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential()
            self.features.add_module("conv0", nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False))
            self.features.add_module("norm0", nn.BatchNorm2d(64))
            self.features.add_module("relu0", nn.ReLU(inplace=True))
            self.features.add_module("pool0", nn.MaxPool2d(3, stride=2, padding=1))
            channels = 64
            for i, num_layers in enumerate([6, 12, 24, 16]):
                self.features.add_module(f"denseblock{i + 1}", DenseBlock(num_layers, channels, 32, 4))
                channels += num_layers * 32
                if i < 3:
                    self.features.add_module(f"transition{i + 1}", Transition(channels, channels // 2))
                    channels //= 2
            self.features.add_module("norm5", nn.BatchNorm2d(channels))
            self.classifier = nn.Linear(channels, num_classes)

        def forward(self, x):
            x = F.adaptive_avg_pool2d(F.relu(self.features(x)), 1)
            return self.classifier(torch.flatten(x, 1))

    return DenseNet()
    ### END SOLUTION


# ----------------------------------------------------------------------------- SENet
class SEBlock(nn.Module):
    """Squeeze-and-excitation: s = sigmoid(fc2(relu(fc1(avgpool(x))))), out = x * s.

    avgpool: AdaptiveAvgPool2d(1) (one value per channel); fc1, fc2: the two FC layers
    written as 1x1 convs with bias (channels -> channels // reduction -> channels);
    activation: ReLU; scale_activation: Sigmoid (torchvision.ops.SqueezeExcitation's
    names). The gate s (N, C, 1, 1) rescales each channel of x at every position.
    (N, C, H, W) -> (N, C, H, W).
    """

    def __init__(self, channels, reduction=16):
        super().__init__()
        ### BEGIN SOLUTION
        squeeze = channels // reduction
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Sigmoid()
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return x * s
        ### END SOLUTION


class SEBasicBlock(nn.Module):
    """BasicBlock with an SEBlock on the residual branch, before the addition:
    out = relu(se(bn2(conv2(relu(bn1(conv1(x)))))) + shortcut(x)).

    Submodules conv1, bn1, relu, conv2, bn2 and downsample exactly as BasicBlock's
    (projection exactly when the shape changes), plus se = SEBlock(out_channels, reduction).
    (N, in, H, W) -> (N, out, floor((H - 1) / stride) + 1, same for W).
    """

    def __init__(self, in_channels, out_channels, stride=1, reduction=16):
        super().__init__()
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.se = SEBlock(out_channels, reduction)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        return self.relu(out + identity)
        ### END SOLUTION


# ----------------------------------------------------------------------------- EfficientNet
def efficientnet_scaling(phi, alpha=1.2, beta=1.1, gamma=1.15):
    """Compound scaling multipliers (depth, width, resolution) = (alpha**phi, beta**phi,
    gamma**phi), floats. With the defaults alpha * beta**2 * gamma**2 ~ 2, so the FLOPs
    grow about 2**phi."""
    ### BEGIN SOLUTION
    return alpha ** phi, beta ** phi, gamma ** phi
    ### END SOLUTION


def round_filters(filters, width_mult, divisor=8):
    """Channels after width scaling, as in the EfficientNet reference code: the nearest
    multiple of `divisor` to filters * width_mult (halves rounding up), at least
    `divisor`, plus one more `divisor` if that fell below 90% of filters * width_mult.
    Returns an int."""
    ### BEGIN SOLUTION
    scaled = filters * width_mult
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if new < 0.9 * scaled:
        new += divisor
    return int(new)
    ### END SOLUTION


def round_repeats(repeats, depth_mult):
    """Layers of a stage after depth scaling: ceil(depth_mult * repeats), an int."""
    ### BEGIN SOLUTION
    return int(math.ceil(depth_mult * repeats))
    ### END SOLUTION


# ----------------------------------------------------------------------------- deformable conv
def deform_conv2d(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    """Deformable convolution (v1), matching torchvision.ops.deform_conv2d with one
    offset group and groups=1, without calling it (nor any convolution built-in).

    x (N, C, H, W); weight (C_out, C, kh, kw); bias (C_out,) or None; stride, padding,
    dilation ints or pairs. The output size is a conv's: Ho = (H + 2*ph - dh*(kh-1) - 1)
    // sh + 1 (same for Wo). offset (N, 2*kh*kw, Ho, Wo): for kernel tap k = i*kw + j,
    channel 2k is the row offset dy and 2k+1 the column offset dx. Tap k of output
    (p, q) samples x at the real position
        (p*sh - ph + i*dh + dy,  q*sw - pw + j*dw + dx)
    by bilinear interpolation of the four neighbouring pixels, a neighbour outside the
    image counting as 0. out[n, o, p, q] = bias[o] + sum_{c, k} weight[o, c, i, j] *
    sample(x[n, c], tap k). With zero offsets this is F.conv2d(x, weight, bias, ...).
    """
    ### BEGIN SOLUTION
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n, c, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    k = kh * kw
    off = offset.reshape(n, k, 2, ho, wo)
    rows = torch.arange(ho, device=x.device, dtype=x.dtype) * sh - ph
    cols = torch.arange(wo, device=x.device, dtype=x.dtype) * sw - pw
    tap_rows = (torch.arange(kh, device=x.device, dtype=x.dtype) * dh).repeat_interleave(kw)
    tap_cols = (torch.arange(kw, device=x.device, dtype=x.dtype) * dw).repeat(kh)
    py = rows.view(1, 1, ho, 1) + tap_rows.view(1, k, 1, 1) + off[:, :, 0]  # (N, K, Ho, Wo)
    px = cols.view(1, 1, 1, wo) + tap_cols.view(1, k, 1, 1) + off[:, :, 1]
    y0, x0 = torch.floor(py), torch.floor(px)
    ly, lx = py - y0, px - x0
    flat = x.reshape(n, c, h * w)
    sampled = 0
    for yc, xc, wgt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x0 + 1, (1 - ly) * lx),
                        (y0 + 1, x0, ly * (1 - lx)), (y0 + 1, x0 + 1, ly * lx)):
        inside = (yc >= 0) & (yc <= h - 1) & (xc >= 0) & (xc <= w - 1)
        index = (yc.clamp(0, h - 1) * w + xc.clamp(0, w - 1)).long().reshape(n, 1, -1).expand(n, c, -1)
        values = flat.gather(2, index).reshape(n, c, k, ho, wo)
        sampled = sampled + values * (wgt * inside).unsqueeze(1)
    out = torch.einsum("nckhw,ock->nohw", sampled, weight.reshape(c_out, c, k))
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out
    ### END SOLUTION
