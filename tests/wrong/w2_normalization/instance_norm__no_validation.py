"""Does not refuse inputs with a single position per channel (e.g. (N, C)), which have nothing to normalise over."""
import torch


def instance_norm(x, weight=None, bias=None, eps=1e-5):
    dims = tuple(range(2, x.dim()))
    shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    out = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out
