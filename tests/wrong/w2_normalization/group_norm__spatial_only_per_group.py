"""Normalises each channel over its positions (instance norm) and ignores the grouping."""
import torch


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    n, c = x.shape[0], x.shape[1]
    if c % num_groups:
        raise ValueError("channels must be divisible by num_groups")
    shape = [1, c] + [1] * (x.dim() - 2)
    flat = x.reshape(n, c, -1)
    mean = flat.mean(dim=-1, keepdim=True)
    var = flat.var(dim=-1, unbiased=False, keepdim=True)
    out = ((flat - mean) / torch.sqrt(var + eps)).reshape(x.shape)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out
