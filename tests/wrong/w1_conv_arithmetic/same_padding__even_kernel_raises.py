"""Raises for every even kernel_size, even when the dilated span is odd."""


def same_padding(kernel_size, dilation=1):
    if kernel_size % 2 == 0:
        raise ValueError("even kernels cannot be padded symmetrically")
    return dilation * (kernel_size - 1) // 2
