"""Multiplies the whole input size by the stride (size * stride instead of (size - 1) * stride)."""


def conv_transpose_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    if output_padding >= max(stride, dilation):
        raise ValueError("output_padding must be smaller than stride or dilation")
    out = size * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding
    if out < 1:
        raise ValueError("the output would be empty")
    return out
