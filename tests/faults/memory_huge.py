"""Asks for far more memory than the machine has, in one allocation (1 TiB)."""
import torch


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return torch.ones(2**38).sum()


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return torch.ones(2**38)
