"""Reaches the built-in through getattr with the name as a literal string."""
import torch


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return getattr(torch, "conv2d")(x, weight, bias, stride, padding, dilation, groups)
