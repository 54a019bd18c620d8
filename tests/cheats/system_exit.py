"""Raises SystemExit in the cell and from the functions (an exception that is not an Exception)."""


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    raise SystemExit(0)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    raise SystemExit(0)


raise SystemExit("stop here")
