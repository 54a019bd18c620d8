"""Sums the kernel sizes (k each layer instead of k - 1, no jump, no dilation)."""


def receptive_field(layers):
    return sum(kernel_size for kernel_size, stride, dilation in layers)
