"""Applies a layer's stride to the jump before adding that layer's growth."""


def receptive_field(layers):
    field, jump = 1, 1
    for kernel_size, stride, dilation in layers:
        jump *= stride
        field += dilation * (kernel_size - 1) * jump
    return field
