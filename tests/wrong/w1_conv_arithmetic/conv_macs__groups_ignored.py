"""Ignores groups: every output value sums over all input channels."""


def conv_macs(in_channels, out_channels, kernel_size, out_size, groups=1):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    oh, ow = (out_size, out_size) if isinstance(out_size, int) else out_size
    return out_channels * oh * ow * in_channels * kh * kw
