"""Sums over the wrong axis of w1 (takes w1 as (C0, C1, k, k))."""
import torch


def compose_convs(w1, w2):
    c1, c0, k1, _ = w1.shape
    c2, _, k2, _ = w2.shape
    w = torch.zeros(c2, c0, k1 + k2 - 1, k1 + k2 - 1, dtype=w1.dtype, device=w1.device)
    for a in range(k2):
        for b in range(k2):
            w[:, :, a:a + k1, b:b + k1] += torch.einsum("oc,ickl->oikl", w2[:, :, a, b], w1)
    return w
