"""Rescales conv's own weight and bias in place and returns the same conv object."""
import torch
import torch.nn as nn


def fuse_conv_bn(conv, bn):
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        b = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        new_bias = (b - bn.running_mean) * scale + bn.bias
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        conv.bias = nn.Parameter(new_bias)
    return conv
