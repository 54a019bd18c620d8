"""Sets InteractiveShell.showtraceback to None, so the error handler itself fails silently."""
from IPython.core.interactiveshell import InteractiveShell

InteractiveShell.showtraceback = None


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    raise NotImplementedError()


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    raise NotImplementedError()
