"""Padding counted once (as a total) instead of on each side."""


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    out = (size + padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError("the kernel does not fit in the padded input")
    return out
