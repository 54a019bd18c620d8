"""Adds each layer's dilated kernel extent without scaling by the jump of earlier strides."""


def receptive_field(layers):
    field = 1
    for kernel_size, stride, dilation in layers:
        field += dilation * (kernel_size - 1)
    return field
