"""The dilation term is forgotten: the kernel is treated as undilated."""


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    out = (size + 2 * padding - kernel_size) // stride + 1
    if out < 1:
        raise ValueError("the kernel does not fit in the padded input")
    return out
