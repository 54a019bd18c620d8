"""Defaults the stride to 1 instead of kernel_size."""
import torch.nn.functional as F


def max_pool2d(x, kernel_size, stride=None, padding=0):
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    kh, kw = pair(kernel_size)
    sh, sw = pair(1 if stride is None else stride)
    ph, pw = pair(padding)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError("padding must be at most half the kernel size")
    x = F.pad(x, (pw, pw, ph, ph), value=float("-inf"))
    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)
    return windows.amax(dim=(-2, -1))
