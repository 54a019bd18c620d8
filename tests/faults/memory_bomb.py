"""conv2d keeps allocating (and touching) memory, 64 MiB at a time, up to 8 GiB: more
than the sandbox allows. The 8 GiB bound keeps the machine safe if a limit is broken."""
import torch


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    raise NotImplementedError()


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    hoard = []
    for _ in range(128):
        hoard.append(torch.ones(16 * 2**20))  # 64 MiB, written
    raise RuntimeError(f"allocated {len(hoard) * 64} MiB without being stopped")
