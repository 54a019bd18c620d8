"""The shapes segmentation data (coursedata.shapes): reproducible, any size, labels as documented."""
from __future__ import annotations

import time

import numpy as np
import pytest

import coursedata
from coursedata.shapes import CLASSES, IGNORE_INDEX, Backbone, colorize, shapes, show_segmentation


def test_reproducible_and_seed_dependent():
    a, b, c = shapes(20, 32, seed=3), shapes(20, 32, seed=3), shapes(20, 32, seed=4)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)
    assert coursedata.shapes is shapes and coursedata.Backbone is Backbone


@pytest.mark.parametrize("size", [8, 17, 32, 64])
def test_shapes_types_and_labels(size):
    data = shapes(30, size, seed=0)
    assert data.x.shape == (30, 1, size, size) and data.x.dtype == np.float32
    assert data.y.shape == (30, size, size) and data.y.dtype == np.int64
    assert 0.0 <= data.x.min() and data.x.max() <= 1.0
    assert set(np.unique(data.y)) <= set(range(len(CLASSES))) | {IGNORE_INDEX}
    x, y = data.tensors()
    assert tuple(x.shape) == data.x.shape and str(y.dtype) == "torch.int64"


def test_every_class_occurs_and_the_band_is_thin():
    y = shapes(200, 32, seed=1).y
    counts = np.bincount(y[y != IGNORE_INDEX].ravel(), minlength=len(CLASSES))
    assert (counts > 0).all()
    share = (y == IGNORE_INDEX).mean()
    assert 0.01 < share < 0.12
    assert (shapes(20, 32, seed=1, boundary=0).y != IGNORE_INDEX).all()
    assert set(np.unique(shapes(50, 32, seed=1, classes=1).y)) <= {0, 1, IGNORE_INDEX}


def test_band_lies_on_the_shape_side_of_every_outline():
    clean = shapes(40, 32, seed=5, boundary=0).y
    banded = shapes(40, 32, seed=5, boundary=1).y
    band = banded == IGNORE_INDEX
    assert (clean[band] > 0).all()  # only shape pixels are ignored
    assert np.array_equal(banded[~band], clean[~band])
    # every shape pixel with a 4-neighbour of another label is in the band
    edge = np.zeros_like(band)
    edge[:, 1:] |= clean[:, 1:] != clean[:, :-1]
    edge[:, :-1] |= clean[:, 1:] != clean[:, :-1]
    edge[:, :, 1:] |= clean[:, :, 1:] != clean[:, :, :-1]
    edge[:, :, :-1] |= clean[:, :, 1:] != clean[:, :, :-1]
    assert np.array_equal(band, edge & (clean > 0))


def test_fast():
    start = time.perf_counter()
    shapes(1000, 32, seed=0)
    assert time.perf_counter() - start < 5.0


def test_rejects():
    for kwargs in ({"size": 4}, {"max_shapes": 0}, {"classes": 4}, {"boundary": -1}):
        with pytest.raises(ValueError):
            shapes(3, **{"size": 16, **kwargs})


def test_figure_and_colours():
    import matplotlib

    matplotlib.use("Agg")
    data = shapes(5, 24, seed=0)
    fig = show_segmentation(data.x, data.y, np.zeros((5, 4, 24, 24)), n=3, title="t")
    assert len(fig.axes) == 9 and fig.legends
    rgb = colorize(data.y[0])
    assert rgb.shape == (24, 24, 3) and (rgb[data.y[0] == IGNORE_INDEX] == 1.0).all()


def test_backbone_strides():
    import torch

    model = Backbone(1, (4, 6, 8, 10, 12))
    feats = model(torch.zeros(2, 1, 64, 96))
    assert [tuple(f.shape) for f in feats] == [(2, c, 64 // s, 96 // s) for c, s in
                                               zip((4, 6, 8, 10, 12), (2, 4, 8, 16, 32))]
    assert model.channels == (4, 6, 8, 10, 12)
    with pytest.raises(ValueError):
        model(torch.zeros(1, 1, 40, 64))
