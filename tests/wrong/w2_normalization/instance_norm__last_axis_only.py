"""Averages over the last axis only, so images are normalised row by row."""
EXPECT = 'statistics over the last axis only'
import torch


def instance_norm(x, weight=None, bias=None, eps=1e-5):
    shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, unbiased=False, keepdim=True)
    out = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out
