"""Counts the bias addition as one more MAC per output value."""


def conv_macs(in_channels, out_channels, kernel_size, out_size, groups=1):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    oh, ow = (out_size, out_size) if isinstance(out_size, int) else out_size
    if in_channels % groups or out_channels % groups:
        raise ValueError("channels must be divisible by groups")
    return out_channels * oh * ow * ((in_channels // groups) * kh * kw + 1)
