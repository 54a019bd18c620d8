"""Samples with F.grid_sample instead of writing the bilinear interpolation."""
import math

import torch
import torch.nn.functional as F


def rotate(img, angle):
    h, w = img.shape[-2:]
    a = math.radians(angle)
    theta = torch.tensor([[math.cos(a), -math.sin(a) * h / w, 0.0], [math.sin(a) * w / h, math.cos(a), 0.0]],
                         dtype=img.dtype).unsqueeze(0)
    flat = img.reshape(-1, 1, h, w)
    grid = F.affine_grid(theta.expand(len(flat), 2, 3), list(flat.shape), align_corners=False)
    return F.grid_sample(flat, grid, align_corners=False).reshape(img.shape)
