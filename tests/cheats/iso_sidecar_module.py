"""The graded names live in gk_iso_helper.py, a module submitted beside the notebook,
which calls F.conv2d with the operator trace off; the solution cell only star-imports
it (nothing the static scan could see). Files after a ``# --- submitted file: NAME ---``
line are submitted beside the notebook (tests/test_hardening.py). Graded: "missing"
(the file is never copied where the kernel could import it)."""
from gk_iso_helper import *  # noqa: F401,F403
# --- submitted file: gk_iso_helper.py ---
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import _disable_current_modes


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    if size <= 0 or kernel_size <= 0 or stride <= 0 or padding < 0 or dilation <= 0:
        raise ValueError("bad arguments")
    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out <= 0:
        raise ValueError("empty output")
    return out


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    with _disable_current_modes(), torch._C.DisableTorchFunction():
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
