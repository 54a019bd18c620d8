"""Reuses the built-in batch norm on a reshaped input (one 'channel' per sample) instead of writing layer norm."""
import torch
import torch.nn.functional as F


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    k = len(normalized_shape)
    lead = x.shape[:x.dim() - k]
    flat = x.reshape(1, -1, int(torch.tensor(normalized_shape).prod()))
    out = F.batch_norm(flat, None, None, training=True, eps=eps).reshape(x.shape)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out
