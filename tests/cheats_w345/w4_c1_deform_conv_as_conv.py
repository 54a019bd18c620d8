"""conv_transpose2d as a convolution of the zero-inserted input with the flipped kernel, the
convolution being torchvision.ops.deform_conv2d with zero offsets, imported in another
cell (convolutionalize's, the cell before) under another name.

class: 1 (the library's own implementation)
control: blank

A transposed convolution is a plain convolution (stride 1) of the input with stride - 1
zeros between its pixels, padded by k - 1 - padding (plus output_padding at the bottom and
right), with the kernel flipped and its channel axes swapped; torchvision's deformable
convolution with all offsets 0 is that plain convolution.
"""
# --- cell: convolutionalize ---
from torchvision.ops import deform_conv2d as _sample_and_sum

# --- reference: convolutionalize ---

# --- cell: conv_transpose2d ---
def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    def pair(v):
        return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))

    (sh, sw), (ph, pw), (oh, ow) = pair(stride), pair(padding), pair(output_padding)
    n, c_in, h, w = x.shape
    if c_in != weight.shape[0]:
        raise ValueError(f"the input has {c_in} channels, the weight expects {weight.shape[0]}")
    if min(sh, sw) < 1 or min(ph, pw) < 0 or not (0 <= oh < sh and 0 <= ow < sw):
        raise ValueError("need stride >= 1, padding >= 0 and 0 <= output_padding < stride")
    kh, kw = weight.shape[-2:]
    spread = x.new_zeros((n, c_in, (h - 1) * sh + 1, (w - 1) * sw + 1))
    spread[:, :, ::sh, ::sw] = x
    spread = F.pad(spread, (kw - 1 - pw, kw - 1 - pw + ow, kh - 1 - ph, kh - 1 - ph + oh))
    kernel = weight.flip(-2, -1).transpose(0, 1)
    ho, wo = spread.shape[-2] - kh + 1, spread.shape[-1] - kw + 1
    offsets = x.new_zeros((n, 2 * kh * kw, ho, wo))
    return _sample_and_sum(spread, offsets, kernel, bias)
