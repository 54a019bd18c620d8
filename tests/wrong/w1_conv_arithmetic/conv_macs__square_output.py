"""Assumes a square output: uses the first entry of an (h, w) out_size for both sides."""


def conv_macs(in_channels, out_channels, kernel_size, out_size, groups=1):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    if isinstance(out_size, (tuple, list)):
        out_size = out_size[0]
    if in_channels % groups or out_channels % groups:
        raise ValueError("channels must be divisible by groups")
    return out_channels * out_size * out_size * (in_channels // groups) * kh * kw
