"""output_padding is ignored."""


def conv_transpose_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    if output_padding >= max(stride, dilation):
        raise ValueError("output_padding must be smaller than stride or dilation")
    out = (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + 1
    if out < 1:
        raise ValueError("the output would be empty")
    return out
