"""Crashes the kernel with a segmentation fault (ctypes reads address 0)."""
import ctypes


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return ctypes.string_at(0)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return ctypes.string_at(0)
