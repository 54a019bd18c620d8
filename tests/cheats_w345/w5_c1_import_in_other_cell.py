"""adjust_brightness and adjust_contrast call torchvision's video kernels
(adjust_brightness_video, adjust_contrast_video), imported in hflip's cell, a cell that
defines another graded name.

class: 1 (the library's own implementation)
control: blank

The defining cells name nothing of torchvision; the import is in the cell before, whose own
definition (hflip) is the reference's.
"""
# --- cell: hflip ---
from torchvision.transforms.v2.functional import adjust_brightness_video as _scale_frames
from torchvision.transforms.v2.functional import adjust_contrast_video as _blend_frames

# --- reference: hflip ---

# --- cell: adjust_brightness ---
def adjust_brightness(img, factor):
    return _scale_frames(img, factor)

# --- cell: adjust_contrast ---
def adjust_contrast(img, factor):
    return _blend_frames(img, factor)
