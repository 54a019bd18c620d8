"""Tap-by-tap accumulation with a spurious flip of w2 (the taps are already a convolution)."""
import torch


def compose_convs(w1, w2):
    c1, c0, k1, _ = w1.shape
    c2, _, k2, _ = w2.shape
    w = torch.zeros(c2, c0, k1 + k2 - 1, k1 + k2 - 1, dtype=w1.dtype, device=w1.device)
    for a in range(k2):
        for b in range(k2):
            tap = w2[:, :, k2 - 1 - a, k2 - 1 - b]
            w[:, :, a:a + k1, b:b + k1] += torch.einsum("oc,cikl->oikl", tap, w1)
    return w
