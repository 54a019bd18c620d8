"""Does not raise for even spans: rounds the padding down instead."""


def same_padding(kernel_size, dilation=1):
    return dilation * (kernel_size - 1) // 2
