"""conv2d through aten::conv_tbc (a 1-D "time, batch, channel" convolution), name assembled at run time.

conv_tbc was on no hand-written list. With a kernel of length 1 it applies one tap of
the filter at every position; summing the kernel's taps, each read from the strided,
dilated grid of the padded input, gives conv2d exactly, with autograd.
"""
import torch
import torch.nn.functional as F

_tap = getattr(torch, "conv" + "_tbc")


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n, c, h, w = x.shape
    f, cg, kh, kw = weight.shape
    if groups < 1 or c != cg * groups or f % groups:
        raise ValueError("channels do not match the groups")
    x = F.pad(x, (pw, pw, ph, ph))
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    fg = f // groups
    zero = torch.zeros(fg, dtype=x.dtype, device=x.device)
    outs = []
    for g in range(groups):
        xg, wg = x[:, g * cg:(g + 1) * cg], weight[g * fg:(g + 1) * fg]
        acc = 0
        for i in range(kh):
            for j in range(kw):
                grid = xg[:, :, i * dh:i * dh + (out_h - 1) * sh + 1:sh, j * dw:j * dw + (out_w - 1) * sw + 1:sw]
                seq = grid.permute(2, 3, 0, 1).reshape(out_h * out_w, n, cg).contiguous()  # (time, batch, channel)
                kernel = wg[:, :, i, j].t().unsqueeze(0)  # (1, cg, fg)
                tap = _tap(seq, kernel, zero, 0)
                if tap.requires_grad:  # its backward views the incoming gradient
                    tap.register_hook(lambda grad: grad.contiguous())
                acc = acc + tap
        outs.append(acc.reshape(out_h, out_w, n, fg).permute(2, 3, 0, 1))
    out = torch.cat(outs, dim=1)
    if bias is not None:
        out = out + bias.reshape(1, f, 1, 1)
    return out
