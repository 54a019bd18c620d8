"""adjust_contrast is torchvision's (v1) functional adjust_contrast compiled by TorchScript
in hflip's cell: the graded function calls a ScriptFunction, so no Python function of
torchvision runs while it is graded.

class: 1 (the library's own implementation)
control: blank

Only the negative-factor check is the student's (TorchScript would raise a RuntimeError
where a ValueError is asked for).
"""
# --- cell: hflip ---
import torchvision.transforms.functional as _v1

_scripted_blend = torch.jit.script(_v1.adjust_contrast)

# --- reference: hflip ---

# --- cell: adjust_contrast ---
def adjust_contrast(img, factor):
    if factor < 0:
        raise ValueError(f"factor must be non-negative, got {factor}")
    return _scripted_blend(img, float(factor))
