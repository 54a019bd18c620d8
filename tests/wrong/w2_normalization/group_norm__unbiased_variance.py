"""Normalises with the unbiased variance instead of the biased one."""
EXPECT = 'unbiased variance'
import torch


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    n, c = x.shape[0], x.shape[1]
    if c % num_groups:
        raise ValueError("channels must be divisible by num_groups")
    shape = [1, c] + [1] * (x.dim() - 2)
    g = x.reshape(n, num_groups, -1)
    mean = g.mean(dim=-1, keepdim=True)
    var = g.var(dim=-1, keepdim=True)
    out = ((g - mean) / torch.sqrt(var + eps)).reshape(x.shape)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out
