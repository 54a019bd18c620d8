"""Adds eps after the square root: (x - mean) / (std + eps)."""
import torch


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    dims = tuple(range(x.dim() - len(normalized_shape), x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    std = x.std(dim=dims, unbiased=False, keepdim=True)
    out = (x - mean) / (std + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out
