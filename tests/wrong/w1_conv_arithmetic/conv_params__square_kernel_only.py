"""Assumes an int kernel_size (kernel_size ** 2), so (h, w) tuples fail."""


def conv_params(in_channels, out_channels, kernel_size, bias=True, groups=1):
    if in_channels % groups or out_channels % groups:
        raise ValueError("channels must be divisible by groups")
    return out_channels * (in_channels // groups) * kernel_size ** 2 + (out_channels if bias else 0)
