"""Never adds the bias."""
import torch
import torch.nn.functional as F


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n, c, h, w = x.shape
    f, cg, kh, kw = weight.shape
    if c != cg * groups or f % groups:
        raise ValueError("channels do not match groups")
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cols = F.unfold(x, (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))
    cols = cols.reshape(n, groups, cg * kh * kw, out_h * out_w)
    return torch.matmul(weight.reshape(groups, f // groups, -1).unsqueeze(0), cols).reshape(n, f, out_h, out_w)
