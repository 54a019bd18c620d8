"""Forgets dilation."""


def receptive_field(layers):
    field, jump = 1, 1
    for kernel_size, stride, dilation in layers:
        field += (kernel_size - 1) * jump
        jump *= stride
    return field
