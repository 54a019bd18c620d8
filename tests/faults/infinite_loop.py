"""conv2d never returns (an interruptible infinite loop); conv_output_size is right."""


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    if size < 1 or kernel_size < 1 or stride < 1 or dilation < 1 or padding < 0:
        raise ValueError("bad arguments")
    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError("the kernel does not fit")
    return out


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    while True:
        pass
