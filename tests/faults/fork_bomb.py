"""conv2d forks sleeping children until it cannot (at most 600, so a broken process
limit cannot take the machine down), then reports how many it got."""
import os
import time


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    raise NotImplementedError()


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    started = 0
    try:
        for _ in range(600):
            if os.fork() == 0:
                time.sleep(120)
                os._exit(0)
            started += 1
    except OSError:
        pass
    raise RuntimeError(f"forked {started} processes")
