"""Adds one bias per input channel and output channel pair instead of one per output channel."""


def conv_params(in_channels, out_channels, kernel_size, bias=True, groups=1):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    if in_channels % groups or out_channels % groups:
        raise ValueError("channels must be divisible by groups")
    per_filter = (in_channels // groups) * kh * kw
    return out_channels * per_filter + (out_channels * (in_channels // groups) if bias else 0)
