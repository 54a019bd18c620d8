"""conv2d as the *weight gradient* of another convolution (aten::convolution_backward).

The weight gradient of a convolution correlates its input with grad_output: feeding
the batch as channels and the filters as grad_output, with stride and dilation
swapped, gives conv2d exactly. The op is fetched by a computed name, so the source
never spells it; it was on no hand-written list.
"""
import torch
import torch.nn.functional as F

_ns = getattr(torch, "op" + "s").aten
_grad = getattr(_ns, "convolu" + "tion_backward")


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    def pair(v):
        return [v, v] if isinstance(v, int) else list(v)

    st, pd, dl = pair(stride), pair(padding), pair(dilation)
    n, c, h, w = x.shape
    f, cg, kh, kw = weight.shape
    if groups < 1 or c != cg * groups or f % groups:
        raise ValueError("channels do not match the groups")
    out_h = (h + 2 * pd[0] - dl[0] * (kh - 1) - 1) // st[0] + 1
    out_w = (w + 2 * pd[1] - dl[1] * (kw - 1) - 1) // st[1] + 1
    x = F.pad(x, (pd[1], pd[1], pd[0], pd[0]))
    fg = f // groups
    outs = []
    for g in range(groups):
        xg = x[:, g * cg:(g + 1) * cg].transpose(0, 1).contiguous()       # (cg, n, H, W): "input"
        wg = weight[g * fg:(g + 1) * fg].transpose(0, 1).contiguous()     # (cg, fg, kh, kw): "grad_output"
        _, gw, _ = _grad(wg, xg, torch.empty(fg, n, out_h, out_w, dtype=x.dtype, device=x.device),
                         [0], dl, [0, 0], st, False, [0, 0], 1, [False, True, False])
        outs.append(gw.transpose(0, 1))
    out = torch.cat(outs, dim=1)
    if bias is not None:
        out = out + bias.reshape(1, f, 1, 1)
    return out
