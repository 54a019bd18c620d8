"""Synthetic segmentation data: shapes on textured, noisy backgrounds (offline, numpy).

- :func:`shapes`: ``n`` grey images of shape (n, 1, size, size), float32, with per-pixel
  labels (n, size, size), int64: 0 background, then one class per shape kind (see
  :data:`CLASSES`), and :data:`IGNORE_INDEX` (255) on a thin band along every boundary
  between two labels, where a pixel's class is ambiguous. Reproducible from ``seed``,
  any ``size`` (>= 8), fast (vectorised numpy: ~1,000 images of 32x32 in well under a
  second).
- :func:`show_segmentation`: a figure of images, ground truths and predictions, with a
  legend of the classes.
- :class:`Backbone`: the small VGG-style feature extractor the week-4 FCN is built on
  (five stages of conv 3x3 - ReLU - max pool 2; strides 2, 4, 8, 16, 32).

What makes the task a segmentation task rather than a threshold: the background is a
random mix of stripes and smooth blobs with pixel noise, and each shape's brightness is
drawn from a range that overlaps the background's brightest parts, so a pixel's class
depends on its neighbourhood (the shape's outline), not on its value alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch.nn as nn

#: Class names, by label.
CLASSES = ("background", "disc", "square", "triangle")
#: The label of the boundary band (excluded from losses and metrics).
IGNORE_INDEX = 255
#: RGB colours of the classes in figures (background dark grey).
COLORS = ((0.15, 0.15, 0.15), (0.90, 0.30, 0.25), (0.25, 0.60, 0.95), (0.95, 0.80, 0.20))


@dataclass
class Shapes:
    """Images ``x`` (N, 1, H, W) float32 and labels ``y`` (N, H, W) int64 (255: ignore)."""

    x: "np.ndarray"
    y: "np.ndarray"
    classes: tuple = CLASSES

    def __len__(self):
        return len(self.x)

    def tensors(self):
        """``(x, y)`` as torch tensors (float32 images, int64 labels)."""
        import torch

        return torch.from_numpy(self.x), torch.from_numpy(self.y)


def _background(rng, n, size):
    """Stripes at a random angle and frequency plus smooth blobs, in [0, 0.55]."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
    freq = rng.uniform(2.0, 6.0, (n, 1, 1)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1)).astype(np.float32)
    stripes = np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
    # Smooth blobs: a coarse random grid upsampled (nearest) then box-blurred.
    coarse = max(2, size // 8)
    grid = rng.uniform(-1, 1, (n, coarse, coarse)).astype(np.float32)
    rep = -(-size // coarse)
    blobs = np.repeat(np.repeat(grid, rep, axis=1), rep, axis=2)[:, :size, :size]
    k = max(1, rep // 2)
    blobs = _box_blur(blobs, k)
    mix = rng.uniform(0.3, 1.0, (n, 1, 1)).astype(np.float32)
    texture = mix * stripes + (1 - mix) * blobs
    base = rng.uniform(0.15, 0.3, (n, 1, 1)).astype(np.float32)
    return np.clip(base + 0.18 * texture, 0.0, 0.55)


def _box_blur(a, k):
    """Mean over a (2k+1) x (2k+1) window on the last two axes (edges replicated)."""
    p = np.pad(a, ((0, 0), (k, k), (k, k)), mode="edge")
    c = p.cumsum(1).cumsum(2)
    c = np.pad(c, ((0, 0), (1, 0), (1, 0)))
    w = 2 * k + 1
    h, wd = a.shape[1], a.shape[2]
    s = c[:, w:w + h, w:w + wd] - c[:, :h, w:w + wd] - c[:, w:w + h, :wd] + c[:, :h, :wd]
    return s / (w * w)


def _masks(kind, cy, cx, r, rot, yy, xx):
    """Boolean masks (n, H, W) of one shape per image; ``kind`` 1 disc, 2 square, 3 triangle."""
    dy, dx = yy[None] - cy[:, None, None], xx[None] - cx[:, None, None]
    c, s = np.cos(rot)[:, None, None], np.sin(rot)[:, None, None]
    u, v = c * dx + s * dy, -s * dx + c * dy  # rotated coordinates
    rr = r[:, None, None]
    disc = dx * dx + dy * dy <= rr * rr
    square = (np.abs(u) <= rr * 0.85) & (np.abs(v) <= rr * 0.85)
    # Equilateral triangle inscribed in the circle of radius 1.3 r (pointing along -v).
    tri = (v <= rr * 0.65)
    for a in (2 * np.pi / 3, 4 * np.pi / 3):
        ca, sa = np.cos(a), np.sin(a)
        tri &= (ca * v - sa * u) <= rr * 0.65
    k = kind[:, None, None]
    return np.where(k == 1, disc, np.where(k == 2, square, tri))


def _boundary(labels, width):
    """Shape pixels within ``width`` steps (4-neighbourhood, Manhattan distance) of a
    pixel with another label: the outer ring(s) of every visible shape."""
    band = np.zeros(labels.shape, dtype=bool)
    h, w = labels.shape[1:]
    for dy in range(-width, width + 1):
        for dx in range(-width, width + 1):
            if abs(dy) + abs(dx) == 0 or abs(dy) + abs(dx) > width:
                continue
            src = labels[:, max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)]
            dst = labels[:, max(0, -dy):h + min(0, -dy), max(0, -dx):w + min(0, -dx)]
            band[:, max(0, -dy):h + min(0, -dy), max(0, -dx):w + min(0, -dx)] |= src != dst
    return band & (labels > 0)


def shapes(n: int, size: int = 32, seed: int = 0, max_shapes: int = 3, noise: float = 0.08,
           boundary: int = 1, classes: int | None = None, radius=(0.15, 0.3)) -> Shapes:
    """``n`` images of ``size`` x ``size`` with 1 to ``max_shapes`` shapes each.

    Each shape is a disc, a square or a triangle (random rotation), of radius between
    ``radius[0] * size`` and ``radius[1] * size`` (default 0.15 and 0.3), placed anywhere with its centre inside the image; later shapes
    cover earlier ones. Images: textured background in [0, 0.55], shapes of brightness
    U(0.45, 1) with a little shading, Gaussian pixel noise of std ``noise``, clipped to
    [0, 1]. Labels: the class of the visible shape (0 background); pixels within
    ``boundary`` pixels (4-neighbour steps) of another label, on the shape's side, get
    255: a band ``boundary`` pixels thick inside every outline (``boundary=0``: none).
    ``classes`` limits the shape kinds to the first ``classes`` of disc, square,
    triangle. The same ``(n, size, seed, ...)`` always gives the same arrays.
    """
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    if n < 0 or max_shapes < 1 or boundary < 0:
        raise ValueError("n must be >= 0, max_shapes >= 1 and boundary >= 0")
    kinds = len(CLASSES) - 1 if classes is None else int(classes)
    if not 1 <= kinds <= len(CLASSES) - 1:
        raise ValueError(f"classes must be between 1 and {len(CLASSES) - 1}")
    rng = np.random.default_rng(seed)
    img = _background(rng, n, size)
    labels = np.zeros((n, size, size), dtype=np.int64)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    count = rng.integers(1, max_shapes + 1, n)
    for i in range(max_shapes):
        present = count > i
        kind = rng.integers(1, kinds + 1, n)
        r = rng.uniform(size * radius[0], size * radius[1], n).astype(np.float32)
        cy = rng.uniform(0, size, n).astype(np.float32)
        cx = rng.uniform(0, size, n).astype(np.float32)
        rot = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
        bright = rng.uniform(0.45, 1.0, (n, 1, 1)).astype(np.float32)
        gy, gx = rng.uniform(-0.15, 0.15, (2, n, 1, 1)).astype(np.float32)
        mask = _masks(kind, cy, cx, r, rot, yy, xx) & present[:, None, None]
        shade = bright + (gy * (yy[None] - cy[:, None, None]) + gx * (xx[None] - cx[:, None, None])) / r[:, None, None]
        img = np.where(mask, shade, img)
        labels = np.where(mask, kind[:, None, None], labels)
    img = img + rng.normal(0, noise, img.shape).astype(np.float32)
    img = np.clip(img, 0.0, 1.0).astype(np.float32)
    if boundary:
        labels[_boundary(labels, boundary)] = IGNORE_INDEX
    return Shapes(img[:, None], labels)


def colorize(labels, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """Labels (H, W) as an RGB image (H, W, 3): :data:`COLORS`, ignored pixels white."""
    labels = np.asarray(labels)
    palette = np.array(COLORS + ((0.5, 0.5, 0.5),) * 256, dtype=np.float32)[:256]
    out = palette[np.clip(labels, 0, 255).astype(np.int64)]
    out[labels == ignore_index] = 1.0
    out[(labels >= len(COLORS)) & (labels != ignore_index)] = (0.5, 0.5, 0.5)
    return out


def _numpy(a):
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def show_segmentation(images, target=None, pred=None, n: int = 4, classes=CLASSES,
                      ignore_index: int = IGNORE_INDEX, title: str | None = None):
    """A matplotlib figure: one row per image (the first ``n``), columns image, ground
    truth, prediction (those given), and a legend of the classes (ignored pixels white).

    ``images`` (N, 1, H, W) or (N, H, W); ``target`` and ``pred`` (N, H, W) labels
    (numpy arrays or tensors; ``pred`` may also be logits (N, K, H, W), arg-maxed here).
    Returns the figure (closed for pyplot, so a notebook shows it once, when it is the
    cell's value or passed to ``display``).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    images = _numpy(images)
    if images.ndim == 4:
        images = images[:, 0]
    columns = [("image", None)]
    if target is not None:
        columns.append(("ground truth", _numpy(target)))
    if pred is not None:
        pred = _numpy(pred)
        if pred.ndim == 4:
            pred = pred.argmax(1)
        columns.append(("prediction", pred))
    rows = min(n, len(images))
    fig, axes = plt.subplots(rows, len(columns), figsize=(2.2 * len(columns) + 1.6, 2.2 * rows),
                             squeeze=False)
    for i in range(rows):
        for j, (name, labels) in enumerate(columns):
            ax = axes[i, j]
            if labels is None:
                ax.imshow(images[i], cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(colorize(labels[i], ignore_index))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name)
    handles = [Patch(color=COLORS[k % len(COLORS)], label=c) for k, c in enumerate(classes)]
    handles.append(Patch(facecolor="white", edgecolor="black", label=f"ignored ({ignore_index})"))
    fig.legend(handles=handles, loc="center right", frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1 - 1.5 / (2.2 * len(columns) + 1.6), 1))
    plt.close(fig)
    return fig


class Backbone(nn.Module):
    """The week-4 FCN's backbone: five stages, each conv 3x3 (padding 1) - ReLU - max
    pool 2, so stage ``i`` (0-based) has ``widths[i]`` channels at stride ``2 ** (i + 1)``.

    ``forward(x)`` returns the list of the five stage outputs ``[f1, f2, f3, f4, f5]``
    (strides 2, 4, 8, 16, 32: FCN's ``pool3`` is ``f3``, ``pool4`` is ``f4``, ``pool5``
    is ``f5``); ``channels`` is ``widths``. Height and width must be divisible by 32.
    Its parameters are ``stages.<i>.0.weight`` and ``stages.<i>.0.bias``.
    """

    def __init__(self, in_channels: int = 1, widths=(8, 16, 32, 64, 64)):
        super().__init__()
        if len(widths) != 5:
            raise ValueError(f"the backbone has five stages, got {len(widths)} widths")
        self.channels = tuple(int(w) for w in widths)
        stages, c = [], in_channels
        for w in self.channels:
            stages.append(nn.Sequential(nn.Conv2d(c, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)))
            c = w
        self.stages = nn.ModuleList(stages)

    def forward(self, x):
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"the backbone takes sizes divisible by 32, got {tuple(x.shape[-2:])}")
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features
