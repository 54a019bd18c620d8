"""conv2d through ATen's reference 3-D kernel (aten::slow_conv_dilated3d) on a depth-1 volume.

slow_conv_dilated3d (and slow_conv3d, slow_conv3d_forward) were on no hand-written
list; the name is assembled at run time.
"""
import torch

_slow = getattr(getattr(torch, "op" + "s").aten, "slow_conv" + "_dilated3d")


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    def pair(v):
        return [v, v] if isinstance(v, int) else list(v)

    st, pd, dl = pair(stride), pair(padding), pair(dilation)
    c, f, cg = x.shape[1], weight.shape[0], weight.shape[1]
    if groups < 1 or c != cg * groups or f % groups:
        raise ValueError("channels do not match the groups")
    fg = f // groups
    outs = []
    for g in range(groups):
        b = None if bias is None else bias[g * fg:(g + 1) * fg]
        wg = weight[g * fg:(g + 1) * fg].unsqueeze(2)
        outs.append(_slow(x[:, g * cg:(g + 1) * cg].unsqueeze(2), wg, [1, *wg.shape[-2:]], b,
                          [1, *st], [0, *pd], [1, *dl]).squeeze(2))
    return torch.cat(outs, dim=1)
