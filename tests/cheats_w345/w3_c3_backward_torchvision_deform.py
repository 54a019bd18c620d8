"""deform_conv2d: a hand-written forward (no gradient of its own) in an autograd.Function
whose backward asks torchvision's deform_conv2d, imported in another cell, for the gradients.

class: 3 (banned work in the backward)
control: control_w3_deform_forward_only

The forward is the sampling of the reference, run without autograd; only the backward group
depends on the trick. The import sits in BasicBlock's cell, which does not define the graded
name, so the defining cell never names the built-in.
"""
# --- cell: BasicBlock ---
from torchvision.ops import deform_conv2d as _offset_conv

# --- reference: BasicBlock ---

# --- cell: deform_conv2d ---
def _sample_forward(x, offset, weight, bias, stride, padding, dilation):
    """The reference's sampling, (N, C, H, W) -> (N, C_out, Ho, Wo), without autograd."""
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n, c, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    k = kh * kw
    off = offset.reshape(n, k, 2, ho, wo)
    rows = torch.arange(ho, dtype=x.dtype) * sh - ph
    cols = torch.arange(wo, dtype=x.dtype) * sw - pw
    tap_rows = (torch.arange(kh, dtype=x.dtype) * dh).repeat_interleave(kw)
    tap_cols = (torch.arange(kw, dtype=x.dtype) * dw).repeat(kh)
    py = rows.view(1, 1, ho, 1) + tap_rows.view(1, k, 1, 1) + off[:, :, 0]
    px = cols.view(1, 1, 1, wo) + tap_cols.view(1, k, 1, 1) + off[:, :, 1]
    y0, x0 = torch.floor(py), torch.floor(px)
    ly, lx = py - y0, px - x0
    flat = x.reshape(n, c, h * w)
    sampled = 0
    for yc, xc, wgt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x0 + 1, (1 - ly) * lx),
                        (y0 + 1, x0, ly * (1 - lx)), (y0 + 1, x0 + 1, ly * lx)):
        inside = (yc >= 0) & (yc <= h - 1) & (xc >= 0) & (xc <= w - 1)
        index = (yc.clamp(0, h - 1) * w + xc.clamp(0, w - 1)).long().reshape(n, 1, -1).expand(n, c, -1)
        sampled = sampled + flat.gather(2, index).reshape(n, c, k, ho, wo) * (wgt * inside).unsqueeze(1)
    out = torch.einsum("nckhw,ock->nohw", sampled, weight.reshape(c_out, c, k))
    return out if bias is None else out + bias.view(1, -1, 1, 1)


class _DeformFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, offset, weight, bias, stride, padding, dilation):
        ctx.save_for_backward(x, offset, weight, bias)
        ctx.options = (stride, padding, dilation)
        return _sample_forward(x, offset, weight, bias, stride, padding, dilation)

    @staticmethod
    def backward(ctx, grad):
        saved = [None if t is None else t.detach().requires_grad_(True) for t in ctx.saved_tensors]
        with torch.enable_grad():
            out = _offset_conv(*saved, *ctx.options)
            wrt = [t for t in saved if t is not None]
            grads = iter(torch.autograd.grad(out, wrt, grad))
        return (*[None if t is None else next(grads) for t in saved], None, None, None)


def deform_conv2d(x, offset, weight, bias=None, stride=1, padding=0, dilation=1):
    return _DeformFunction.apply(x, offset, weight, bias, stride, padding, dilation)
