"""Uses kernel_size // 2, ignoring dilation."""


def same_padding(kernel_size, dilation=1):
    if kernel_size % 2 == 0:
        raise ValueError("even kernels cannot be padded symmetrically")
    return kernel_size // 2
