"""A cell that loops forever and swallows every interrupt (only the notebook limit stops it)."""
import time

while True:
    try:
        while True:
            time.sleep(0.01)
    except BaseException:
        pass


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return 0


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return x
