"""conv_transpose2d: a hand-written forward (no gradient of its own) in an autograd.Function
whose backward asks F.conv_transpose2d, imported in another cell, for the gradients.

class: 3 (banned work in the backward)
control: control_w4_transpose_forward_only

The forward is the reference's scatter, run without autograd; only the backward group
depends on the trick. The import sits in convolutionalize's cell (the cell before), which
does not define the graded name.
"""
# --- cell: convolutionalize ---
from torch.nn.functional import conv_transpose2d as _library_transpose

# --- reference: convolutionalize ---

# --- cell: conv_transpose2d ---
def _scatter_forward(x, weight, bias, stride, padding, output_padding):
    """The reference's scatter, (N, C_in, H, W) -> (N, C_out, Ho, Wo); raises ValueError as the spec says."""
    def pair(v):
        return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))

    (sh, sw), (ph, pw), (oph, opw) = pair(stride), pair(padding), pair(output_padding)
    n, c_in, h, w = x.shape
    c_in_w, c_out, kh, kw = weight.shape
    if c_in != c_in_w:
        raise ValueError(f"the input has {c_in} channels, the weight expects {c_in_w}")
    if min(sh, sw) < 1 or min(ph, pw) < 0 or not (0 <= oph < sh and 0 <= opw < sw):
        raise ValueError("need stride >= 1, padding >= 0 and 0 <= output_padding < stride")
    out_h = (h - 1) * sh - 2 * ph + kh + oph
    out_w = (w - 1) * sw - 2 * pw + kw + opw
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"the output would be {out_h}x{out_w}")
    full_h = max((h - 1) * sh + kh, ph + out_h)
    full_w = max((w - 1) * sw + kw, pw + out_w)
    out = x.new_zeros((n, c_out, full_h, full_w))
    for a in range(kh):
        for b in range(kw):
            tap = torch.einsum("nchw,cd->ndhw", x, weight[:, :, a, b])
            out[:, :, a:a + (h - 1) * sh + 1:sh, b:b + (w - 1) * sw + 1:sw] += tap
    out = out[:, :, ph:ph + out_h, pw:pw + out_w]
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


class _TransposeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, output_padding):
        ctx.save_for_backward(x, weight, bias)
        ctx.options = (stride, padding, output_padding)
        return _scatter_forward(x, weight, bias, stride, padding, output_padding)

    @staticmethod
    def backward(ctx, grad):
        saved = [None if t is None else t.detach().requires_grad_(True) for t in ctx.saved_tensors]
        with torch.enable_grad():
            out = _library_transpose(*saved, *ctx.options)
            wrt = [t for t in saved if t is not None]
            grads = iter(torch.autograd.grad(out, wrt, grad))
        return (*[None if t is None else next(grads) for t in saved], None, None, None)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    with torch.no_grad():
        _scatter_forward(x[:1, :, :1, :1], weight, None, stride, padding, output_padding)  # the checks
    return _TransposeFunction.apply(x, weight, bias, stride, padding, output_padding)
