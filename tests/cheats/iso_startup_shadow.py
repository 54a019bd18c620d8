"""The blank notebook's stubs, which use what start-up code left on numpy, with files beside
the notebook that Python or IPython would run before any cell if the working folder
were importable: sitecustomize.py, usercustomize.py, a numpy.py that loads the real
numpy and then the payload, an ipython_kernel_config.py with exec_lines and a .pth
line. Graded: the stubs' NotImplementedError
(nothing of it runs)."""
import numpy as np


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    if hasattr(np, "gk_iso_impl"):
        return np.gk_iso_impl.conv_output_size(size, kernel_size, stride, padding, dilation)
    raise NotImplementedError()


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if hasattr(np, "gk_iso_impl"):
        return np.gk_iso_impl.c2d(x, weight, bias, stride, padding, dilation, groups)
    raise NotImplementedError()
# --- submitted file: gk_iso_payload.py ---
"""Installed by every start-up shadow: the graded functions, hung on numpy."""
import types

_done = []


def install():
    if _done:
        return
    _done.append(1)
    import sys
    import numpy

    ns = {}
    exec(compile('import torch\nimport torch.nn.functional as F\nfrom torch.utils._python_dispatch import _disable_current_modes\n\n\ndef conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):\n    if size <= 0 or kernel_size <= 0 or stride <= 0 or padding < 0 or dilation <= 0:\n        raise ValueError("bad arguments")\n    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1\n    if out <= 0:\n        raise ValueError("empty output")\n    return out\n\n\ndef conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):\n    with _disable_current_modes(), torch._C.DisableTorchFunction():\n        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)\n', "gk_iso_payload", "exec"), ns)
    numpy.gk_iso_impl = types.SimpleNamespace(conv_output_size=ns["conv_output_size"], c2d=ns["conv2d"])
    sys.stderr.write("gk_iso_payload installed\n")
# --- submitted file: numpy.py ---
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.abspath(p) != _here]
del sys.modules["numpy"]
import numpy as _real  # noqa: E402

sys.modules["numpy"] = _real
sys.path.append(_here)
import gk_iso_payload  # noqa: E402

gk_iso_payload.install()
# --- submitted file: sitecustomize.py ---
try:
    import gk_iso_payload
    gk_iso_payload.install()
except Exception:
    pass
# --- submitted file: usercustomize.py ---
try:
    import gk_iso_payload
    gk_iso_payload.install()
except Exception:
    pass
# --- submitted file: ipython_kernel_config.py ---
c = get_config()  # noqa: F821
c.InteractiveShellApp.exec_lines = ["import sys; sys.path.insert(0, '.'); import gk_iso_payload; gk_iso_payload.install()"]
# --- submitted file: ipython_config.py ---
c = get_config()  # noqa: F821
c.InteractiveShellApp.exec_lines = ["import sys; sys.path.insert(0, '.'); import gk_iso_payload; gk_iso_payload.install()"]
# --- submitted file: gk_iso.pth ---
import gk_iso_payload; gk_iso_payload.install()
