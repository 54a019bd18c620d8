"""Rounds the number of window positions up instead of down."""
import math


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    out = math.ceil((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1
    if out < 1:
        raise ValueError("the kernel does not fit in the padded input")
    return out
