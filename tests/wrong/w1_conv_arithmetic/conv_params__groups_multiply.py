"""Multiplies by groups instead of dividing the input channels by it."""


def conv_params(in_channels, out_channels, kernel_size, bias=True, groups=1):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    if in_channels % groups or out_channels % groups:
        raise ValueError("channels must be divisible by groups")
    return out_channels * in_channels * groups * kh * kw + (out_channels if bias else 0)
