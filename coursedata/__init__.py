"""Data sets that ship with the course (offline: nothing is downloaded).

- :func:`needs`: runs a notebook's demonstration, or says which problem to implement first;
- :func:`digits`: scikit-learn's 8x8 handwritten digits (1,797 images), as float
  tensors in [0, 1] of shape (N, 1, 8, 8), split into train and test sets.
- :func:`shapes` (:mod:`coursedata.shapes`): procedurally generated segmentation data
  (discs, squares, triangles on textured noisy backgrounds, per-pixel labels, 255 on a
  thin boundary band), :func:`show_segmentation` to draw it, and :class:`Backbone`, the
  small feature extractor the week-4 FCN is built on.

Real data sets (CIFAR-10, Oxford-IIIT Pet) are optional extras, used only where
their files are present under ``course/data``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Split:
    x_train: "np.ndarray"
    y_train: "np.ndarray"
    x_test: "np.ndarray"
    y_test: "np.ndarray"

    def tensors(self):
        """The four arrays as torch tensors (float32 images, int64 labels)."""
        import torch

        return (torch.from_numpy(self.x_train), torch.from_numpy(self.y_train),
                torch.from_numpy(self.x_test), torch.from_numpy(self.y_test))


def digits(test_fraction: float = 0.25, seed: int = 0, classes=None) -> Split:
    """scikit-learn's digits as (N, 1, 8, 8) float32 images in [0, 1] and int64 labels.

    ``classes`` keeps only those digits (labels unchanged); the split is stratified
    by a fixed ``seed`` so every run sees the same images.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = data.target.astype(np.int64)
    if classes is not None:
        keep = np.isin(y, list(classes))
        x, y = x[keep], y[keep]
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        test[rng.choice(idx, size=int(round(len(idx) * test_fraction)), replace=False)] = True
    return Split(x[~test], y[~test], x[test], y[test])


from .shapes import CLASSES as SHAPE_CLASSES  # noqa: E402  (segmentation data, week 4)
from .shapes import Backbone, Shapes, shapes, show_segmentation  # noqa: E402,F401
from .notebook import needs  # noqa: E402,F401  (the notebooks' guarded demonstrations)
