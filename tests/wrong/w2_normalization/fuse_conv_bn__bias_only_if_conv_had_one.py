"""Gives the fused conv a bias only when the original conv had one, so the BatchNorm's shift is lost otherwise."""
EXPECT = 'has no bias'
import torch
import torch.nn as nn


def fuse_conv_bn(conv, bn):
    has_bias = conv.bias is not None
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                      padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=has_bias)
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        if has_bias:
            fused.bias.copy_((conv.bias - bn.running_mean) * scale + bn.bias)
    return fused
