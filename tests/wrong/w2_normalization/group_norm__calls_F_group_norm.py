"""Calls the built-in functional group norm instead of implementing it."""
import torch.nn.functional as F


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    if x.shape[1] % num_groups:
        raise ValueError("channels must be divisible by num_groups")
    return F.group_norm(x, num_groups, weight, bias, eps)
