"""Calls the built-in functional layer norm instead of implementing it."""
import torch.nn.functional as F


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    return F.layer_norm(x, tuple(normalized_shape), weight, bias, eps)
