"""Hidden checks for week 5 (``course/source/w5_augmentation_transfer``).

References come from :mod:`solutions.w5_augmentation_transfer` (checked against
``torchvision.transforms.v2`` and ``F.cross_entropy`` / ``F.kl_div`` in
``tests/test_solutions_w5.py``). Every random choice of an augmentation (the crop
offsets, the angle, lam, the permutation, the box centre) is an argument the judge
draws, so a student's randomness is never what is graded. When a result is wrong,
the judge compares it with classic mistakes (a vertical flip, a clockwise rotation,
lam not corrected after clipping, eps spread over K - 1 classes, KL the wrong way
round, no T^2, ...) and names the one it matches.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from gradekit import public_cases
from gradekit.values import as_ints
from solutions import w5_augmentation_transfer as ref

from ..cases import Draw, call, compare, raises, spec, tensor, torch_args
from ..cases import nn as tnn
from ..cases.training import (Budget, accuracy_at_least, all_of, augment_step, augmentation, fixed,
                              more_accurate, training_case)
from ..compare import check_int, describe, fmt_shape
from ..ops import family_names, family_ops
from ..problem import Case, Outcome, Problem, Public, hints

#: torchvision's names for the transforms students write here (banned in their source).
TV_NAMES = {
    "hflip": {"hflip", "hflip_image", "horizontal_flip", "RandomHorizontalFlip"},
    "pad_and_crop": {"crop", "crop_image", "RandomCrop", "pad_image", "center_crop", "resized_crop"},
    "adjust_brightness": {"adjust_brightness", "adjust_brightness_image", "ColorJitter"},
    "adjust_contrast": {"adjust_contrast", "adjust_contrast_image", "ColorJitter", "rgb_to_grayscale",
                        "to_grayscale", "_rgb_to_grayscale_image"},
    "rotate": {"rotate", "rotate_image", "affine", "affine_image", "RandomRotation", "RandomAffine",
               "_apply_grid_transform"} | family_names("grid_sample"),
    "cutmix_box": {"CutMix", "make_params"},
    "cutmix": {"CutMix", "make_params"},
    "mixup": {"MixUp"},
}
KL_NAMES = frozenset(n for n in family_names("cross_entropy") if "kl" in n.lower())
KL_OPS = frozenset(o for o in family_ops("cross_entropy") if "kl" in o.lower())
DTYPE_HINT = "float32 images give float32 results: build new tensors with the input's dtype and device."


def _images(draw: Draw, shape, dtype=np.float64):
    return draw.uniform(0.0, 1.0, shape, dtype)


def _shape(draw: Draw, batch: bool, channels=(1, 3)):
    h, w = draw.hw(5, 14)
    c = draw.choice(list(channels))
    return (draw.int(2, 5), c, h, w) if batch else (c, h, w)


class _Transform(Problem):
    """An image transform: compared with the reference on random images."""

    def __init__(self):
        self.banned_names = frozenset(TV_NAMES.get(self.name, ()))

    def alternatives(self, *args):
        return lambda targs, tkwargs: []

    def add(self, group, x, *args, **kwargs):
        return tensor(self, group, getattr(ref, self.name), x, *args, alternatives=self.alternatives(*args), **kwargs)


# ----------------------------------------------------------------------------- geometric transforms
class HFlip(_Transform):
    name = "hflip"
    groups = hints("""
        (C, H, W): a horizontal flip mirrors each row: column j goes to column W - 1 - j; the rows stay where
            they are.
        batches: the width is the last dimension whatever comes before it: the same code must work on (C, H, W)
            and (N, C, H, W).
        float32: keep the input's dtype.""")

    def alternatives(self, *args):
        return lambda t, k: [("a vertical flip (the rows reversed): flip the width, the last dimension",
                              lambda: t[0].flip(-2).numpy()),
                             ("both axes flipped (a rotation by 180 degrees)", lambda: t[0].flip(-1, -2).numpy())]

    def cases(self, draw: Draw):
        return [self.add("(C, H, W)", _images(draw, _shape(draw, False))),
                self.add("(C, H, W)", _images(draw, (3, draw.int(2, 6), draw.int(7, 12)))),
                self.add("batches", _images(draw, _shape(draw, True))),
                self.add("batches", _images(draw, (draw.int(2, 4), 2, *_shape(draw, True)[1:]))),
                self.add("float32", _images(draw, _shape(draw, True), np.float32))]


class PadAndCrop(_Transform):
    name = "pad_and_crop"
    groups = hints("""
        shift: pad with zeros on all four sides, then cut a window of the original size whose top-left corner
            is (top, left) in the padded image: the picture moves by (padding - top, padding - left) pixels and
            zeros come in where it moved away.
        no shift: with top = left = padding the window is exactly where the image sits: the image comes back
            unchanged; with 0 or 2 * padding it touches a border of the padded image.
        batches: pad and crop the last two dimensions only, whatever comes before them.
        float32: keep the input's dtype.
        invalid [0.5]: a window that does not fit inside the padded image (top or left outside
            [0, 2 * padding], or a negative padding) raises ValueError.
        shifts help (smoke test) [2]: a CNN trained on 300 centred digits is tested on digits moved 1 or 2
            pixels down and to the right. The same CNN trained with your pad_and_crop(img, 2, top, left) applied
            before each epoch (top and left drawn by the grader in 0..2: moves of 0 to 2 pixels down and right)
            should beat it by more than 5 points and reach 70% on them. If it does not, check which way
            (top, left) moves the picture: the window starting above the image moves the picture down.""")

    def alternatives(self, padding, top, left):
        def variant(x, p, t, l_, fill=0.0):
            h, w = x.shape[-2:]
            padded = torch.full((*x.shape[:-2], h + 2 * p, w + 2 * p), fill, dtype=x.dtype)
            padded[..., p:p + h, p:p + w] = x
            return padded[..., t:t + h, l_:l_ + w].numpy()

        return lambda t, k: [
            ("top and left swapped: top is the row offset, left the column offset",
             lambda: variant(t[0], padding, left, top)),
            ("a shift the wrong way: the window starts at (top, left) in the padded image",
             lambda: variant(t[0], padding, 2 * padding - top, 2 * padding - left)),
            ("padding with ones: the padding is zeros", lambda: variant(t[0], padding, top, left, 1.0))]

    def cases(self, draw: Draw):
        def add(group, shape, padding, top, left, dtype=np.float64):
            return self.add(group, _images(draw, shape, dtype), padding, top, left)

        def offsets(p):
            a, b = draw.distinct(list(range(0, 2 * p + 1)), 2)
            return a, b

        p = draw.int(2, 5)
        shape = _shape(draw, False)
        return [add("shift", shape, p, *offsets(p)), add("shift", _shape(draw, False), p + 1, *offsets(p + 1)),
                add("shift", _shape(draw, False), 1, 0, 2),
                add("no shift", _shape(draw, False), p, p, p), add("no shift", shape, p, 0, 2 * p),
                add("no shift", _shape(draw, False), p, 2 * p, 0), add("no shift", _shape(draw, False), 0, 0, 0),
                add("batches", _shape(draw, True), p, *offsets(p)),
                add("float32", _shape(draw, True), p, *offsets(p), dtype=np.float32)] + \
            [raises(self, "invalid", _images(draw, _shape(draw, False)), *args)
             for args in ((p, 2 * p + 1, 0), (p, 0, -1), (p, -1, p), (-1, 0, 0))] + \
            [augment_case("shifts help (smoke test)", "pad_and_crop", draw.int(0, 1000), draw)]


class Rotate(_Transform):
    name = "rotate"
    banned_ops = family_ops("grid_sample")
    groups = hints("""
        small angles: work backwards: for each output pixel find the source position it comes from (rotate its
            centred coordinates by the angle the other way), then interpolate bilinearly between the four
            neighbouring pixels. Positive angles turn the picture counter-clockwise as you see it (y points down).
        any angle: angles are in degrees, can be negative or larger than 360; the output keeps the input's size
            and corners that come from outside the image are 0.
        non-square: the centre of an H x W image is at ((W - 1) / 2, (H - 1) / 2) in pixel coordinates (pixel
            centres at integers); x goes with the width, y with the height.
        batches: rotate the last two dimensions, the same way for every image of a batch.
        float32: keep the input's dtype.
        rotations help (smoke test) [2]: a CNN trained on 300 upright digits is tested on digits turned 10 to
            30 degrees counter-clockwise. The same CNN trained with your rotate(img, angle) applied before each
            epoch (angles drawn by the grader in 0..30 degrees) should beat it by more than 5 points and reach
            70% on them. If it does not, check the direction: positive angles turn the picture counter-clockwise.""")

    def alternatives(self, angle):
        def variant(x, a, centre=0.0, border=False):
            h, w = x.shape[-2:]
            cos, sin = math.cos(a), math.sin(a)
            cx, cy = (w - 1) / 2 + centre, (h - 1) / 2 + centre
            yc, xc = torch.meshgrid(torch.arange(h, dtype=x.dtype) - cy, torch.arange(w, dtype=x.dtype) - cx,
                                    indexing="ij")
            sx, sy = cos * xc - sin * yc + cx, sin * xc + cos * yc + cy
            if border:
                sx, sy = sx.clamp(0, w - 1), sy.clamp(0, h - 1)
            grid = torch.stack([(2 * sx + 1) / w - 1, (2 * sy + 1) / h - 1], -1)
            flat = x.reshape(-1, 1, h, w)
            out = F.grid_sample(flat, grid.expand(len(flat), h, w, 2), mode="bilinear", padding_mode="zeros",
                                align_corners=False)
            return out.reshape(x.shape).numpy()

        a = math.radians(angle)
        return lambda t, k: [
            ("a clockwise rotation: positive angles turn the picture counter-clockwise", lambda: variant(t[0], -a)),
            ("a rotation about (W / 2, H / 2): the centre is at ((W - 1) / 2, (H - 1) / 2)",
             lambda: variant(t[0], a, 0.5)),
            ("the angle used as radians: it is in degrees", lambda: variant(t[0], angle)),
            ("positions outside the image clamped to the border: outside counts as 0",
             lambda: variant(t[0], a, border=True))]

    def cases(self, draw: Draw):
        def angle(low, high):
            return float(round(draw.uniform(low, high, 1)[0], 1))

        def add(group, shape, a, dtype=np.float64):
            return self.add(group, _images(draw, shape, dtype), a)

        s = draw.int(6, 12)
        return [add("small angles", (1, s, s), angle(5, 40)), add("small angles", (3, s, s), -angle(5, 40)),
                add("any angle", (2, s, s), angle(100, 170)), add("any angle", (1, s, s), -angle(190, 350)),
                add("any angle", (1, s, s), angle(370, 700)),
                add("non-square", _shape(draw, False), angle(10, 80)),
                add("non-square", (1, *draw.hw(5, 12)), -angle(20, 160)),
                add("batches", _shape(draw, True), angle(10, 350)),
                add("float32", _shape(draw, True), angle(10, 80), np.float32),
                augment_case("rotations help (smoke test)", "rotate", draw.int(0, 1000), draw)]


# ----------------------------------------------------------------------------- photometric transforms
class AdjustBrightness(_Transform):
    name = "adjust_brightness"
    groups = hints("""
        darker: brightness multiplies every value by the factor (a blend with a black image).
        brighter and clamped: images live in [0, 1]: values pushed above 1 by a factor > 1 stay at 1.
        batches: the same factor for every value, whatever the shape.
        float32: keep the input's dtype.
        invalid [0.5]: a negative factor raises ValueError.""")

    def alternatives(self, factor):
        return lambda t, k: [("a result that is not clamped to [0, 1]", lambda: (t[0] * factor).numpy()),
                             ("brightness added instead of multiplied",
                              lambda: (t[0] + factor - 1).clamp(0, 1).numpy())]

    def cases(self, draw: Draw):
        def factor(low, high):
            return float(round(draw.uniform(low, high, 1)[0], 2))

        return [self.add("darker", _images(draw, _shape(draw, False)), factor(0.1, 0.9)),
                self.add("darker", _images(draw, _shape(draw, False)), 0.0),
                self.add("brighter and clamped", _images(draw, _shape(draw, False)), factor(1.3, 2.5)),
                self.add("brighter and clamped", _images(draw, _shape(draw, True)), factor(1.5, 3.0)),
                self.add("batches", _images(draw, _shape(draw, True)), factor(0.3, 1.8)),
                self.add("float32", _images(draw, _shape(draw, True), np.float32), factor(1.2, 2.0)),
                raises(self, "invalid", _images(draw, _shape(draw, False)), -factor(0.1, 1.0))]


class AdjustContrast(_Transform):
    name = "adjust_contrast"
    groups = hints("""
        RGB: contrast blends the image with one grey level per image: the mean of its grayscale version
            (the luma weights of R, G and B, roughly 0.3, 0.59 and 0.11), not the plain mean of the three
            channels.
        one channel: a one-channel image is its own grayscale: blend with its mean.
        per image: in a batch each image has its own mean grey level; the batch is never averaged together.
        clamped: factors above 1 push values out of [0, 1]: clamp the result.
        float32: keep the input's dtype.
        invalid [0.5]: a negative factor raises ValueError.""")

    def alternatives(self, factor):
        def blend(x, mean):
            return (factor * x + (1 - factor) * mean).clamp(0, 1).numpy()

        def gray(x):
            if x.shape[-3] != 3:
                return x
            return (0.2989 * x[..., 0, :, :] + 0.587 * x[..., 1, :, :] + 0.114 * x[..., 2, :, :]).unsqueeze(-3)

        return lambda t, k: [
            ("a blend with the plain mean of all channels: use the grayscale image's mean",
             lambda: blend(t[0], t[0].mean(dim=(-3, -2, -1), keepdim=True))),
            ("a mean per channel: one grey level per image, from its grayscale version",
             lambda: blend(t[0], t[0].mean(dim=(-2, -1), keepdim=True))),
            ("a blend with the grayscale image itself (that is saturation): use its mean",
             lambda: blend(t[0], gray(t[0]))),
            ("one mean over the whole batch: each image has its own",
             lambda: blend(t[0], gray(t[0]).mean())),
            ("a result that is not clamped to [0, 1]",
             lambda: (factor * t[0] + (1 - factor) * gray(t[0]).mean(dim=(-3, -2, -1), keepdim=True)).numpy())]

    def cases(self, draw: Draw):
        def factor(low, high):
            return float(round(draw.uniform(low, high, 1)[0], 2))

        rgb = functools.partial(_shape, draw, channels=(3,))
        return [self.add("RGB", _images(draw, rgb(False)), factor(0.2, 0.8)),
                self.add("RGB", _images(draw, rgb(False)), 0.0),
                self.add("one channel", _images(draw, _shape(draw, False, (1,))), factor(0.2, 0.9)),
                self.add("per image", _images(draw, rgb(True)), factor(0.2, 0.8)),
                self.add("per image", _images(draw, _shape(draw, True, (1,))), factor(0.3, 0.9)),
                self.add("clamped", _images(draw, rgb(False)), factor(1.5, 3.0)),
                self.add("clamped", _images(draw, rgb(True)), factor(1.5, 3.0)),
                self.add("float32", _images(draw, rgb(True), np.float32), factor(0.2, 1.8)),
                raises(self, "invalid", _images(draw, rgb(False)), -factor(0.1, 1.0))]


# ----------------------------------------------------------------------------- CutMix and MixUp
def _box_variant(height, width, lam, cx, cy, half=int, clip=True, area=lambda lam: 1 - lam, full=False):
    r = (1.0 if full else 0.5) * math.sqrt(area(lam))
    rh, rw = half(r * height), half(r * width)
    y1, y2, x1, x2 = cy - rh, cy + rh, cx - rw, cx + rw
    if clip:
        y1, y2, x1, x2 = max(y1, 0), min(y2, height), max(x1, 0), min(x2, width)
    return y1, y2, x1, x2




class CutmixBox(Problem):
    name = "cutmix_box"
    banned_names = frozenset(TV_NAMES["cutmix_box"])
    groups = hints("""
        inside: the box covers a share 1 - lam of the image: its half sizes are 0.5 * sqrt(1 - lam) times the
            height and the width, each truncated to an int (int(), as torchvision does), around (cy, cx).
        clipped: a centre near a border makes the box stick out: clip its corners to the image (y1, x1 >= 0,
            y2 <= height, x2 <= width), so the slice y1:y2, x1:x2 stays inside.
        lam at the ends: lam = 1 gives an empty box (no area), lam = 0 a box with the image's size around the
            centre (still clipped).
        order: the four ints come in the order (y1, y2, x1, x2): rows first, as in img[..., y1:y2, x1:x2].""")

    def alternatives(self, h, w, lam, cx, cy):
        return [("a box that is not clipped to the image", lambda: _box_variant(h, w, lam, cx, cy, clip=False)),
                ("half sizes rounded to the nearest int: torchvision truncates them with int()",
                 lambda: _box_variant(h, w, lam, cx, cy, half=round)),
                ("half sizes taken as the full sizes: 0.5 * sqrt(1 - lam) * size is the half size",
                 lambda: _box_variant(h, w, lam, cx, cy, full=True)),
                ("a box covering lam of the image: it covers 1 - lam",
                 lambda: _box_variant(h, w, lam, cx, cy, area=lambda lam: lam)),
                ("(x1, x2, y1, y2): the order is (y1, y2, x1, x2)",
                 lambda: tuple(np.array(ref.cutmix_box(h, w, lam, cx, cy))[[2, 3, 0, 1]].tolist()))]

    def box(self, group, height, width, lam, cx, cy):
        expected = ref.cutmix_box(height, width, lam, cx, cy)
        label = f"cutmix_box(height={height}, width={width}, lam={lam}, cx={cx}, cy={cy})"

        def check(outcome: Outcome):
            got = as_ints(outcome.value, 4)
            if got is None:
                return f"{label} should return four ints (y1, y2, x1, x2) but returned {describe(outcome.value)}"
            if got == expected:
                return None
            named = next((text for text, make in self.alternatives(height, width, lam, cx, cy)
                          if tuple(make()) == got), None)
            return f"{label} returned {got}, which is not right" + (f"; it matches {named}" if named else "")

        return Case(call(self.name, height=height, width=width, lam=lam, cx=cx, cy=cy), check, label, group,
                    public=Public(("value:ints",)))

    def cases(self, draw: Draw):
        def lam():
            return round(float(draw.uniform(0.3, 0.9, 1)[0]), 2)

        def inside():
            h, w = draw.hw(12, 30)
            lm = lam()
            rh, rw = int(0.5 * math.sqrt(1 - lm) * h), int(0.5 * math.sqrt(1 - lm) * w)
            return h, w, lm, draw.int(rw, w - rw + 1), draw.int(rh, h - rh + 1)

        def border():
            h, w = draw.hw(10, 25)
            return h, w, round(float(draw.uniform(0.1, 0.5, 1)[0]), 2), draw.choice([0, 1, w - 1]), \
                draw.choice([0, h - 2, h - 1])

        h, w = draw.hw(8, 20)
        return [self.box("inside", *inside()) for _ in range(3)] + \
            [self.box("clipped", *border()) for _ in range(3)] + \
            [self.box("lam at the ends", h, w, 1.0, draw.int(0, w), draw.int(0, h)),
             self.box("lam at the ends", h, w, 0.0, draw.int(0, w), draw.int(0, h))] + \
            [self.box("order", *inside()) for _ in range(2)]


def _pair_case(problem: Problem, group: str, reference, args: list, alternatives, keep: bool = False) -> Case:
    """``problem.name(*args)`` returns (mixed images, soft labels), compared with the reference's;
    with ``keep``, x must come back unchanged."""
    x, y, k = args[0], args[1], args[2]
    label = f"{problem.name}(x of shape {fmt_shape(x.shape)}, y of shape {fmt_shape(y.shape)}, num_classes={k}, " \
            + ", ".join(f"{n}={v if not isinstance(v, np.ndarray) else v.tolist()}"
                        for n, v in zip(("lam", "perm", "cx", "cy"), args[3:])) + ")" \
            + (" (float32)" if x.dtype == np.float32 else "")
    request = call(problem.name, *args)
    if keep:
        request["return_args"] = [0, 1]

    def check(outcome: Outcome):
        got = outcome.value
        if not isinstance(got, (list, tuple)) or len(got) != 2:
            return f"{label}: should return (mixed images, soft labels) but returned {describe(got)}"
        if keep:
            after = outcome.args_after if isinstance(outcome.args_after, dict) else {}
            for key, what, before in (("0", "x", x), ("1", "y", y)):
                now = after.get(key)
                if not isinstance(now, np.ndarray) or now.shape != before.shape or not np.array_equal(now, before):
                    return f"{label}: {what} changed; work on a copy and leave the batch as it was"
        targs, tkwargs = torch_args(args, {})
        mixed, soft = reference(*targs)
        alts = alternatives(*targs)
        for i, (what, expected) in enumerate((("the mixed images", mixed), ("the soft labels", soft))):
            named = [(text, lambda make=make, i=i: make()[i]) for text, make in alts]
            msg = compare(got[i], expected.numpy(), what, label, named)
            if msg:
                return msg
        return None

    # The pair is unique, and x and y come back as they were.
    return Case(request, check, label, group, public=Public(("value", "args_after") if keep else ("value",)))


def _perm(draw: Draw, n: int, roll: bool = False) -> np.ndarray:
    """A permutation of range(n) that moves every index (torchvision's roll when ``roll``)."""
    if roll:
        return np.roll(np.arange(n), 1)
    while True:
        p = draw.rng.permutation(n)
        if np.all(p != np.arange(n)) and not np.array_equal(p, np.roll(np.arange(n), 1)):
            return p.astype(np.int64)


def _labels(draw: Draw, n: int, k: int) -> np.ndarray:
    """Labels with at least two classes, so mixing them shows."""
    y = draw.rng.integers(0, k, n)
    y[:2] = draw.distinct(list(range(k)), 2)
    return y.astype(np.int64)


def _onehot(y, k, dtype):
    return F.one_hot(y, k).to(dtype)


class CutMix(Problem):
    name = "cutmix"
    banned_names = frozenset(TV_NAMES["cutmix"])
    groups = hints("""
        box pasted: copy the box of the permuted batch, x[perm], into a copy of x: image i gets the patch of
            image perm[i]; everything outside the box stays x.
        lam corrected: the label weights follow the area actually pasted: after clipping the box, recompute
            lam as 1 - box area / image area, and give that weight to y and the rest to y[perm].
        any permutation: perm is any permutation, not only torchvision's roll by one: image i is mixed with
            image perm[i], and so are their labels.
        inputs unchanged: x and y are left as they were: mix into a copy.
        float32: the mixed images and the soft labels have the images' dtype.""")

    def alternatives(self, x, y, k, lam, perm, cx, cy):
        h, w = x.shape[-2:]

        def make(box=None, lam_=None, swap=False, src=None):
            y1, y2, x1, x2 = box or ref.cutmix_box(h, w, lam, cx, cy)
            mixed = x.clone()
            mixed[..., y1:y2, x1:x2] = (x[perm] if src is None else src)[..., y1:y2, x1:x2]
            lm = 1 - (y2 - y1) * (x2 - x1) / (h * w) if lam_ is None else lam_
            a, b = _onehot(y, k, x.dtype), _onehot(y, k, x.dtype)[perm]
            if swap:
                a, b = b, a
            return mixed.numpy(), (lm * a + (1 - lm) * b).numpy()

        inverse = torch.argsort(perm)
        return [("lam as drawn: after clipping the box, correct lam to the area actually pasted",
                 lambda: make(lam_=lam)),
                ("the two labels swapped: lam weights y, the image's own label, and 1 - lam weights y[perm]",
                 lambda: make(swap=True)),
                ("the batch rolled by one instead of permuted with perm", lambda: make(src=x.roll(1, 0))),
                ("the inverse permutation: image i gets the patch of image perm[i]", lambda: make(src=x[inverse])),
                ("a box with x and y swapped: cx is a column, cy a row",
                 lambda: make(box=ref.cutmix_box(h, w, lam, cy, cx)))]

    def cases(self, draw: Draw):
        def add(group, border=False, roll=False, keep=False, dtype=np.float64):
            n, k = draw.int(3, 7), draw.int(3, 8)
            h, w = draw.hw(8, 16)
            lam = round(float(draw.uniform(0.3, 0.8, 1)[0]), 2)
            cx, cy = (draw.choice([0, w - 1]), draw.choice([1, h - 1])) if border else \
                (draw.int(w // 3, 2 * w // 3 + 1), draw.int(h // 3, 2 * h // 3 + 1))
            args = [_images(draw, (n, draw.choice([1, 3]), h, w), dtype), _labels(draw, n, k), k, lam,
                    _perm(draw, n, roll), cx, cy]
            return _pair_case(self, group, ref.cutmix, args, self.alternatives, keep)

        return [add("box pasted", roll=True), add("box pasted"), add("lam corrected", border=True, roll=True),
                add("lam corrected", border=True), add("any permutation"), add("any permutation", border=True),
                add("inputs unchanged", keep=True), add("float32", dtype=np.float32)]


class MixUp(Problem):
    name = "mixup"
    banned_names = frozenset(TV_NAMES["mixup"])
    groups = hints("""
        images: mix each image with its partner: lam * x + (1 - lam) * x[perm].
        labels: the soft labels mix the one-hot labels with the same weights as the images: lam for y and
            1 - lam for y[perm].
        any permutation: perm is any permutation, not only torchvision's roll by one.
        any shape: mix whole samples: x may be (N, C, H, W) or (N, D).
        float32: the mixed images and the soft labels have the inputs' dtype.
        inputs unchanged: x and y are left as they were: mix into new tensors (no x.mul_(lam), no x *= lam).""")

    def alternatives(self, x, y, k, lam, perm):
        a, b = _onehot(y, k, x.dtype), _onehot(y, k, x.dtype)[perm]
        images = (lam * x + (1 - lam) * x[perm]).numpy()
        return [("labels mixed with 1 - lam on y: y takes lam, like the image it labels",
                 lambda: (images, ((1 - lam) * a + lam * b).numpy())),
                ("images mixed with lam on x[perm]: x takes lam",
                 lambda: (((1 - lam) * x + lam * x[perm]).numpy(), (lam * a + (1 - lam) * b).numpy())),
                ("the batch rolled by one instead of permuted with perm",
                 lambda: ((lam * x + (1 - lam) * x.roll(1, 0)).numpy(), (lam * a + (1 - lam) * a.roll(1, 0)).numpy())),
                ("hard labels: the labels are mixed like the images", lambda: (images, a.numpy()))]

    def cases(self, draw: Draw):
        def add(group, roll=False, dtype=np.float64, flat=False, keep=False):
            n, k = draw.int(3, 7), draw.int(3, 8)
            shape = (n, draw.int(3, 9)) if flat else (n, draw.choice([1, 3]), *draw.hw(4, 9))
            lam = round(float(draw.uniform(0.2, 0.8, 1)[0]), 2)
            args = [_images(draw, shape, dtype), _labels(draw, n, k), k, lam, _perm(draw, n, roll)]
            return _pair_case(self, group, ref.mixup, args, self.alternatives, keep)

        return [add("images", roll=True), add("images"), add("labels", roll=True), add("labels"),
                add("any permutation"), add("any permutation"), add("any shape", flat=True),
                add("float32", dtype=np.float32), add("inputs unchanged", keep=True),
                add("inputs unchanged", flat=True, keep=True)]


# ----------------------------------------------------------------------------- losses
def _scalar(reference):
    """``reference`` answering a scalar at once on the meta device (where its output shape is asked)."""
    @functools.wraps(reference)
    def wrapper(*args, **kwargs):
        if any(isinstance(a, torch.Tensor) and a.is_meta for a in (*args, *kwargs.values())):
            return torch.empty((), device="meta")
        return reference(*args, **kwargs)
    return wrapper


def _logits(draw: Draw, n, k, scale=2.0, dtype=np.float64):
    return draw.normal((n, k), dtype, scale)


def _targets(draw: Draw, n, k):
    return draw.rng.integers(0, k, n).astype(np.int64)


class LabelSmoothingLoss(Problem):
    name = "label_smoothing_loss"
    banned_names = family_names("cross_entropy")
    banned_ops = family_ops("cross_entropy")
    groups = hints("""
        no smoothing: with epsilon = 0 this is the plain cross-entropy: the mean over the batch of
            -log softmax(logits)[target].
        smoothing: the smoothed target puts epsilon / K on every class (the true one included) and 1 - epsilon
            more on the true class: the loss is (1 - epsilon) * nll + epsilon * (the mean over all K classes of
            -log p), averaged over the batch.
        gradients: use differentiable operations: the gradient for the logits must match.
        large logits: compute log-probabilities with log_softmax (or logsumexp), never log(softmax(...)): a
            probability that underflows to 0 gives log(0) = -inf.
        float32: keep the logits' dtype.""")

    def alternatives(self, eps):
        def loss(z, y, spread=None, true_part=True, batch="mean"):
            logp = z.log_softmax(1)
            k = z.shape[1]
            nll = -logp.gather(1, y.unsqueeze(1)).squeeze(1)
            if spread == "k-1":
                other = (-logp.sum(1) - nll) / (k - 1)
                per = (1 - eps) * nll + eps * other
            elif spread == "sum":
                per = (1 - eps) * nll + eps * (-logp.sum(1))
            else:
                per = ((1 - eps) if true_part else 1.0) * nll + eps * (-logp.mean(1))
            return (per.sum() if batch == "sum" else per.mean()).detach().numpy()

        return lambda t, k: [
            ("eps / (K - 1) on the other classes only: F.cross_entropy spreads eps / K over all K classes",
             lambda: loss(t[0], t[1], "k-1")),
            ("eps on every class (a sum over the classes instead of the mean)", lambda: loss(t[0], t[1], "sum")),
            ("the true class keeps weight 1: it gets 1 - eps + eps / K", lambda: loss(t[0], t[1], true_part=False)),
            ("a sum over the batch: the loss is the batch mean", lambda: loss(t[0], t[1], batch="sum"))]

    def cases(self, draw: Draw):
        def add(group, eps, n=None, k=None, scale=2.0, dtype=np.float64, grad=False):
            n, k = n or draw.int(3, 9), k or draw.int(3, 10)
            return tensor(self, group, _scalar(ref.label_smoothing_loss), _logits(draw, n, k, scale, dtype), _targets(draw, n, k),
                          eps, grad={0: "logits"} if grad else None, draw=draw, alternatives=self.alternatives(eps))

        def eps():
            return draw.choice([0.05, 0.1, 0.2, 0.3, 0.45])

        return [add("no smoothing", 0.0), add("no smoothing", 0.0, k=2),
                add("smoothing", eps()), add("smoothing", eps(), k=draw.int(10, 20)), add("smoothing", 1.0, n=2),
                add("gradients", eps(), grad=True), add("gradients", 0.0, grad=True),
                add("large logits", eps(), scale=80.0, dtype=np.float32),
                add("large logits", eps(), scale=500.0),
                add("float32", eps(), dtype=np.float32)]


class DistillationLoss(Problem):
    name = "distillation_loss"
    banned_names = KL_NAMES
    banned_ops = KL_OPS
    groups = hints("""
        soft term: with alpha = 1 only the soft term is left: T^2 times KL(teacher || student) between the
            softmax of teacher_logits / T and of student_logits / T, summed over classes, averaged over the batch.
        direction: KL(p || q) = sum p * (log p - log q) with p the teacher's distribution (the target) and q the
            student's: the student enters through its log-softmax.
        temperature: divide both sets of logits by T before the softmax, and multiply the KL by T * T so its
            gradients keep the hard term's scale.
        hard term: with alpha = 0 only the ordinary cross-entropy of the student's (unscaled) logits with the
            labels is left.
        mixed: alpha weighs the soft term and 1 - alpha the hard one.
        gradients: the gradient for the student's logits must match (the teacher is a fixed target).
        teacher detached: the teacher's logits are a fixed target: detach them (or compute their softmax under
            torch.no_grad()), so that no gradient flows into the teacher even when its logits require one.
        large logits: logits of a hundred or more (and T = 1) must give a finite loss: take both log-probabilities with
            log_softmax, never log(softmax(...)): a probability that underflows to 0 gives log(0) = -inf (and 0 * -inf =
            NaN in the KL).
        defaults: without T and alpha the loss is the one of T = 4.0 and alpha = 0.9.
        float32: keep the logits' dtype.
        distils (smoke test): an MLP student trained with your distillation_loss (T = 4, alpha = 0.9) on the
            logits of a CNN teacher, both on 300 digits, should reach the named accuracy on held-out digits: a loss
            that trains (finite, decreasing, gradients reaching the student) gets there easily.""")

    def alternatives(self, target_T, alpha):
        def loss(s, t, y, T=target_T, square=True, swap=False, probs=False, batch="batchmean", hard_T=1.0):
            ls, lt = F.log_softmax(s / T, 1), F.log_softmax(t / T, 1)
            if swap:
                kl = (ls.exp() * (ls - lt)).sum()
            elif probs:
                kl = (lt.exp() * (lt - ls.exp())).sum()
            else:
                kl = (lt.exp() * (lt - ls)).sum()
            kl = kl / (s.shape[0] * (s.shape[1] if batch == "mean" else 1))
            soft = kl * (T * T if square else 1.0)
            return (alpha * soft + (1 - alpha) * F.cross_entropy(s / hard_T, y)).detach().numpy()

        return lambda t, k: [
            ("no T^2 factor on the soft term", lambda: loss(*t[:3], square=False)),
            ("KL(student || teacher): the teacher's distribution is the target p in KL(p || q)",
             lambda: loss(*t[:3], swap=True)),
            ("the student's softmax where its log-softmax belongs", lambda: loss(*t[:3], probs=True)),
            ("the KL averaged over classes too ('mean'): 'batchmean' divides by the batch size only",
             lambda: loss(*t[:3], batch="mean")),
            ("the hard term on logits / T: the cross-entropy uses the plain logits",
             lambda: loss(*t[:3], hard_T=target_T))]

    def cases(self, draw: Draw):
        def add(group, T, alpha, dtype=np.float64, grad=False, scale=1.0):
            n, k = draw.int(3, 9), draw.int(3, 10)
            s, t = _logits(draw, n, k, 2.0 * scale, dtype), _logits(draw, n, k, 3.0 * scale, dtype)
            kwargs = {} if T is None else {"T": T, "alpha": alpha}
            return tensor(self, group, _scalar(ref.distillation_loss), s, t, _targets(draw, n, k), **kwargs,
                          grad={0: "student_logits"} if grad else None, draw=draw,
                          alternatives=self.alternatives(4.0 if T is None else T, 0.9 if T is None else alpha))

        def temp():
            return draw.choice([2.0, 3.0, 4.0, 5.0, 8.0])

        def alpha():
            return draw.choice([0.3, 0.5, 0.7, 0.9])

        return [add("soft term", temp(), 1.0), add("soft term", 1.0, 1.0),
                add("direction", temp(), 1.0), add("direction", temp(), alpha()),
                add("temperature", temp(), 1.0), add("temperature", temp(), alpha()),
                add("hard term", temp(), 0.0), add("mixed", temp(), alpha()), add("mixed", 4.0, 0.9),
                add("gradients", temp(), alpha(), grad=True), add("gradients", temp(), 1.0, grad=True),
                add("float32", temp(), alpha(), dtype=np.float32),
                self.detached(draw, temp(), alpha()), self.detached(draw, 1.0, 1.0),
                add("large logits", 1.0, alpha(), dtype=np.float32, scale=40.0),
                add("large logits", draw.choice([1.0, 2.0]), alpha(), scale=250.0),
                add("defaults", None, None), add("defaults", None, None, grad=True),
                distill_case("distils (smoke test)", draw.int(0, 1000), draw)]

    def detached(self, draw: Draw, T: float, alpha: float) -> Case:
        """Both logits require gradients: the student's must get the reference's gradient, the teacher's
        none (None, or zeros)."""
        n, k = draw.int(3, 9), draw.int(3, 10)
        s, t, y = _logits(draw, n, k, 2.0), _logits(draw, n, k, 3.0), _targets(draw, n, k)
        grad_output = np.asarray(draw.normal((1,))[0])
        label = f"distillation_loss(student_logits of shape {fmt_shape(s.shape)}, teacher_logits that require " \
                f"gradients, target, T={T}, alpha={alpha})"
        request = call(self.name, torch.from_numpy(s.copy()).requires_grad_(True),
                       torch.from_numpy(t.copy()).requires_grad_(True), y, T=T, alpha=alpha)
        request["grad"] = {"grad_output": grad_output, "wrt": [0, 1]}

        def check(outcome: Outcome):
            leaf = torch.from_numpy(s.copy()).requires_grad_(True)
            out = ref.distillation_loss(leaf, torch.from_numpy(t.copy()).requires_grad_(True), torch.from_numpy(y),
                                        T=T, alpha=alpha)
            msg = compare(outcome.value, out.detach().numpy(), "the output", label)
            if msg:
                return msg
            if outcome.grad_error:
                err = outcome.grad_error if isinstance(outcome.grad_error, dict) else {}
                return f"{label}: backward raised {err.get('type')}: {str(err.get('message', ''))[:150]}"
            grads = outcome.grads if isinstance(outcome.grads, dict) else {}
            teacher = grads.get("1")
            if teacher is not None and (not isinstance(teacher, np.ndarray) or np.any(teacher != 0)):
                return f"{label}: a gradient reached teacher_logits: the teacher's logits must be detached"
            expected, = torch.autograd.grad(out, leaf, torch.from_numpy(grad_output))
            return compare(grads.get("0"), expected.numpy(), "the gradient for student_logits", label)
        return Case(request, check, label, "teacher detached", public=Public(("value", "grads.0")))


# ----------------------------------------------------------------------------- transfer learning
#: Per module (path, args, kwargs): its state_dict layout and parameter names, found once on the meta device.
_LAYOUTS: dict[str, tuple] = {}


def _layout(module_spec) -> tuple:
    """((state key, shape), ...) and ((parameter name, numel), ...) of a ModuleSpec's module."""
    from ..cases import build

    key = repr((module_spec.path, module_spec.args, module_spec.kwargs))
    if key not in _LAYOUTS:
        with torch.device("meta"):
            model = build(type(module_spec)(module_spec.path, module_spec.args, module_spec.kwargs))
        _LAYOUTS[key] = (tuple((k, tuple(v.shape)) for k, v in model.state_dict().items()),
                         tuple((n, p.numel()) for n, p in model.named_parameters()))
    return _LAYOUTS[key]


def _random_state(module_spec, draw: Draw):
    """``module_spec`` with a random float32 state (as ``cases.random_state`` draws a container's:
    weights N(0, 1/2), other entries N(0, 1), running variances U(0.2, 3)), from the cached layout."""
    state = {}
    for key, shape in _layout(module_spec)[0]:
        if key.endswith("num_batches_tracked"):
            state[key] = np.array(draw.int(1, 500), dtype=np.int64)
        elif key.endswith("running_var"):
            state[key] = draw.uniform(0.2, 3.0, shape, np.float32)
        else:
            state[key] = draw.normal(shape, np.float32, 0.5 if key.endswith("weight") else 1.0)
    return type(module_spec)(module_spec.path, module_spec.args, module_spec.kwargs, state, module_spec.train)


def _shufflenet(draw: Draw, classes: int | None = None):
    """A tiny torchvision ShuffleNetV2 (BatchNorm everywhere, head 'fc') with a random state."""
    classes = classes or draw.int(3, 8)
    return _random_state(spec("torchvision.models.shufflenetv2.ShuffleNetV2", [1, 1, 1], [4, 8, 16, 24, 32],
                              num_classes=classes), draw)


def _sequential(draw: Draw, length: int):
    """nn.Sequential of ``length`` small Linear layers (names '0' ... 'length - 1')."""
    sizes = [(draw.int(2, 5), draw.int(2, 5), draw.bool()) for _ in range(length)]
    module_spec = tnn("Sequential", *[tnn("Linear", i, o, bias=b) for i, o, b in sizes])
    state = tuple((f"{n}.{k}", shape) for n, (i, o, b) in enumerate(sizes)
                  for k, shape in (("weight", (o, i)), ("bias", (o,)))[:2 if b else 1])
    _LAYOUTS.setdefault(repr((module_spec.path, module_spec.args, module_spec.kwargs)),
                        (state, tuple((k, int(np.prod(shape))) for k, shape in state)))
    return _random_state(module_spec, draw)


def _embedding_net(draw: Draw, hidden: int):
    """nn.Sequential('0': an embedding frozen with requires_grad False (nn.Embedding(..., _freeze=True)), then
    ``hidden`` Linear-ReLU pairs and a Linear head), with a random state."""
    d = draw.int(2, 5)
    layers, width = [tnn("Embedding", draw.int(4, 9), d, _freeze=True)], d
    for _ in range(hidden):
        out = draw.int(2, 6)
        layers += [tnn("Linear", width, out), tnn("ReLU")]
        width = out
    return _random_state(tnn("Sequential", *layers, tnn("Linear", width, draw.int(2, 5))), draw)


def _param_names(module_spec) -> list[tuple[str, int]]:
    return list(_layout(module_spec)[1])


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


#: The freeze probe: one training step on random images, then the first step's loss.
FREEZE_BUDGET = Budget(epochs=1, optimizer="adam", lr=0.01, batch_size=16, seconds=60.0)


class Freeze(Problem):
    name = "freeze"
    groups = hints("""
        count: the result is the number of trainable parameter values (elements, p.numel()), not of tensors;
            without trainable, only 'fc' trains.
        prefixes: a parameter is trainable when its name is a prefix of `trainable` or starts with a prefix
            followed by a dot: 'fc' covers 'fc.weight' but not 'fc2.weight', '1' covers '1.bias' but not
            '10.bias'. Every other parameter gets requires_grad False.
        frozen training step [2]: after freeze, a training step (model.train(), forward, backward, optimizer
            step) must change nothing outside the head: no weight and no BatchNorm running statistic. model.train()
            switches every BatchNorm back to training mode (batch statistics, running statistics updated):
            keep the frozen ones in eval mode (a forward pre-hook, or overriding their train method).
        BatchNorm on both sides [2]: only the frozen part's BatchNorm layers (BatchNorm1d and BatchNorm2d alike) stay in
            eval mode: those of the trainable part (the head) keep training, with the batch's statistics, after
            model.train(). Select them by name, with the same prefixes as the parameters.
        transfer (smoke test): a CNN pretrained on the digits 0-4, its first two conv blocks frozen with your
            freeze, trained on 5 labelled images of each of 5-9 for 15 short epochs, should beat the same network
            trained from scratch on the same budget (held-out 5-9 digits, mean accuracies of 3 runs). If the
            frozen run is worse, check that only the head trains and that the frozen BatchNorm layers keep their
            pretrained statistics.""")

    def count_case(self, group, model, trainable, default=False):
        """freeze(model, trainable=...) (``default``: without trainable, which is ('fc',))."""
        names = _param_names(model)
        expected = sum(n for name, n in names if _under(name, trainable))
        label = f"freeze(model with parameters {', '.join(n for n, _ in names[:6])}" \
                + (", ..." if len(names) > 6 else "") + (")" if default else f"; trainable={trainable})")
        request = call(self.name, model) if default else call(self.name, model, trainable=trainable)
        return Case(request, lambda o: check_int(o.value, expected, label),
                    label, group, secret=expected, public=Public(("value",)))

    def step_case(self, draw: Draw):
        """Train a frozen tiny ShuffleNetV2 for one epoch in the kernel (transfer recipe, no pretraining):
        nothing outside 'fc' may change, and the first step's loss must be the eval-mode one."""
        model = _shufflenet(draw, 4)
        n, k = 48, 4
        x = _images(draw, (n, 3, 16, 16), np.float32)
        y = draw.rng.integers(0, k, n).astype(np.int64)
        expected = sum(c for name, c in _param_names(model) if _under(name, ("fc",)))
        seed = draw.int(0, 1000)

        def first_loss():
            from ..cases import build

            net = build(model, torch.float64).eval()
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:FREEZE_BUDGET.batch_size]
            with torch.no_grad():
                return float(F.cross_entropy(net(torch.from_numpy(x).double()[order]), torch.from_numpy(y)[order]))

        def verdict(result):
            run = result.runs["frozen"]
            if run.info.get("num_trainable") != expected:
                return (f"after freeze, {run.info.get('num_trainable')} parameter values require gradients; only "
                        "the head's should")
            changed = run.info.get("changed_outside_head")
            if changed:
                what = "entry" if changed == 1 else "entries"
                return (f"a training step changed {changed} state_dict {what} outside the head (weights or "
                        "BatchNorm running statistics): the backbone is not frozen")
            steps = run.step_losses
            want = first_loss()
            if not steps or abs(steps[0] - want) > 0.02 * max(1.0, abs(want)):
                return ("in training mode the frozen BatchNorm layers normalise with the batch's statistics: the "
                        "first step's loss is not the one running statistics give")
            return None

        return training_case("frozen training step", "freeze(ShuffleNetV2 with BatchNorm, trainable=('fc',)) then "
                             "one epoch of training on random images", "transfer", {"model": fixed(model)},
                             {"x_pre": x[:4], "y_pre": y[:4], "x_train": x, "y_train": y, "x_eval": x[:4]},
                             FREEZE_BUDGET, verdict, num_classes=k, variants=["frozen"], freeze="freeze",
                             pretrain={"epochs": 0}, record_steps=True, seed=seed)

    def cases(self, draw: Draw):
        n = draw.int(11, 14)
        two = draw.distinct(list(range(n)), 2)
        return [self.count_case("count", _shufflenet(draw), ("fc",)),
                self.count_case("count", _shufflenet(draw), ("fc",), default=True),
                self.count_case("count", _sequential(draw, 4), (str(draw.int(0, 4)),)),
                self.count_case("prefixes", _sequential(draw, n), ("1",)),
                self.count_case("prefixes", _sequential(draw, n), tuple(str(i) for i in two)),
                self.count_case("prefixes", _shufflenet(draw), ("conv5", "fc")),
                self.step_case(draw), self.both_sides(draw, conv=True), self.both_sides(draw, conv=False),
                transfer_case("transfer (smoke test)", "frozen", draw.int(0, 1000), draw)]

    def both_sides(self, draw: Draw, conv: bool):
        """A frozen backbone '0' and a trainable head '1', each with BatchNorm layers (2d and 1d with
        ``conv``, 1d without), trained one epoch: nothing in '0' may change, and the first step's loss is
        the one of the frozen BatchNorm layers in eval mode and the head's in training mode."""
        k, c, h = 4, draw.int(3, 6), draw.int(4, 8)
        if conv:
            model = tnn("Sequential", tnn("Sequential", tnn("Conv2d", 3, c, 3, padding=1), tnn("BatchNorm2d", c),
                                          tnn("ReLU")),
                        tnn("Sequential", tnn("Conv2d", c, c, 1), tnn("BatchNorm2d", c), tnn("ReLU"),
                            tnn("AdaptiveAvgPool2d", 1), tnn("Flatten"), tnn("Linear", c, h), tnn("BatchNorm1d", h),
                            tnn("ReLU"), tnn("Linear", h, k)))
        else:
            model = tnn("Sequential", tnn("Sequential", tnn("Flatten"), tnn("Linear", 3 * 8 * 8, h),
                                          tnn("BatchNorm1d", h), tnn("ReLU")),
                        tnn("Sequential", tnn("Linear", h, h), tnn("BatchNorm1d", h), tnn("ReLU"), tnn("Linear", h, k)))
        model = _random_state(model, draw)
        n = 48
        x = _images(draw, (n, 3, 8, 8), np.float32)
        y = draw.rng.integers(0, k, n).astype(np.int64)
        expected = sum(count for name, count in _param_names(model) if _under(name, ("1",)))
        seed = draw.int(0, 1000)

        def first_loss():
            from ..cases import build

            net = build(model, torch.float64).train()
            for name, layer in net.named_modules():
                if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm) and not _under(name, ("1",)):
                    layer.eval()
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:FREEZE_BUDGET.batch_size]
            with torch.no_grad():
                return float(F.cross_entropy(net(torch.from_numpy(x).double()[order]), torch.from_numpy(y)[order]))

        def verdict(result):
            run = result.runs["frozen"]
            if run.info.get("num_trainable") != expected:
                return (f"after freeze, {run.info.get('num_trainable')} parameter values require gradients; only "
                        "the head's should")
            changed = run.info.get("changed_outside_head")
            if changed:
                return f"a training step changed {changed} state_dict entries of the frozen part: it is not frozen"
            steps, want = run.step_losses, first_loss()
            if not steps or abs(steps[0] - want) > 0.02 * max(1.0, abs(want)):
                return ("the first step's loss is not the one of the frozen part's BatchNorm layers in eval mode "
                        "and the head's in training mode (batch statistics)")
            return None

        kinds = "BatchNorm2d and BatchNorm1d" if conv else "BatchNorm1d"
        return training_case("BatchNorm on both sides", f"freeze(model with {kinds} in both its frozen part '0' and "
                             "its head '1', trainable=('1',)) then one epoch of training on random images", "transfer",
                             {"model": fixed(model)},
                             {"x_pre": x[:4], "y_pre": y[:4], "x_train": x, "y_train": y, "x_eval": x[:4]},
                             FREEZE_BUDGET, verdict, num_classes=k, variants=["frozen"], freeze="freeze", head="1",
                             pretrain={"epochs": 0}, record_steps=True, seed=seed)


class ParamGroups(Problem):
    name = "param_groups"
    groups = hints("""
        two groups: the result is a list of two dicts, {'params': [...], 'lr': ...}: the backbone with base_lr
            and the head with head_lr.
        every parameter once: each parameter of the model appears in exactly one group (an optimizer refuses
            a parameter in two groups, and silently never trains one left out).
        head prefix: the head is the parameters named head_prefix or starting with head_prefix followed by a
            dot ('1' covers '1.weight' but not '10.weight').
        no head [0.5]: a model without any parameter under head_prefix raises ValueError (a typo in the
            prefix should not silently train everything at the backbone's rate).
        frozen parameters: a parameter with requires_grad False (a frozen embedding) is a parameter of the model
            all the same: it goes into its group like any other (the optimizer skips it while it has no gradient,
            and trains it once it is unfrozen).
        defaults: param_groups(model) uses head_prefix 'fc', base_lr 1e-3 and head_lr 1e-2.
        fine-tuning (smoke test): a CNN pretrained on the digits 0-4, fine-tuned with your groups (backbone at
            base_lr, head at head_lr) on 5 labelled images of each of 5-9 for 15 short epochs, should beat the
            same network trained from scratch on the same budget (held-out 5-9 digits, mean accuracies of 3 runs).""")

    def group_case(self, group, model, head, base_lr, head_lr, defaults=False, what="model"):
        names = [name for name, _ in _param_names(model)]
        params = {"values": {name: np.asarray(model.state[name]) for name in names},
                  "head": [n for n in names if _under(n, (head,))], "base_lr": base_lr, "head_lr": head_lr}
        label = f"param_groups({what} with parameters {', '.join(names[:6])}" + (", ..." if len(names) > 6 else "") \
            + (")" if defaults else f"; head_prefix={head!r}, base_lr={base_lr}, head_lr={head_lr})")
        kwargs = {} if defaults else {"head_prefix": head, "base_lr": base_lr, "head_lr": head_lr}
        return Case(call(self.name, model, **kwargs),
                    lambda o: public_cases.optimizer_groups(o.data, label, **params), label, group,
                    public=Public(rule="optimizer_groups", params=params))

    def cases(self, draw: Draw):
        def lrs():
            base, head = draw.distinct([0.01, 0.02, 0.05, 0.1, 0.2, 0.5], 2)
            return base, head

        n = draw.int(11, 14)
        return [self.group_case("two groups", _shufflenet(draw), "fc", *lrs()),
                self.group_case("two groups", _sequential(draw, 3), "2", *lrs()),
                self.group_case("every parameter once", _shufflenet(draw), "fc", *lrs()),
                self.group_case("every parameter once", _sequential(draw, 5), str(draw.int(0, 5)), *lrs()),
                self.group_case("head prefix", _sequential(draw, n), "1", *lrs()),
                self.group_case("head prefix", _shufflenet(draw), "conv5", *lrs()),
                raises(self, "no head", _sequential(draw, 3), head_prefix="head", label="param_groups(Sequential of "
                       "3 Linear layers, head_prefix='head')"),
                raises(self, "no head", _shufflenet(draw), head_prefix="fc2", label="param_groups(ShuffleNetV2, "
                       "head_prefix='fc2')"),
                self.group_case("frozen parameters", _embedding_net(draw, 1), "3", *lrs(), what="a model whose "
                                "embedding is frozen"),
                self.group_case("frozen parameters", _embedding_net(draw, 2), "5", *lrs(), what="a model whose "
                                "embedding is frozen"),
                self.group_case("defaults", _shufflenet(draw), "fc", 1e-3, 1e-2, defaults=True),
                transfer_case("fine-tuning (smoke test)", "finetune", draw.int(0, 1000), draw)]


PROBLEMS = [HFlip(), PadAndCrop(), AdjustBrightness(), AdjustContrast(), Rotate(), CutmixBox(), CutMix(), MixUp(),
            LabelSmoothingLoss(), Freeze(), ParamGroups(), DistillationLoss()]
#: The transforms, CutMix and MixUp are torchvision's (v1 and v2, under any name): none of its
#: transforms may run while they do. freeze, param_groups and the losses may use torchvision.
for _problem in PROBLEMS[:8]:
    _problem.banned_calls = _problem.banned_classes = ("torchvision.transforms.",)


# ----------------------------------------------------------------------------- smoke tests
@functools.lru_cache(maxsize=4)
def _digits(classes=None):
    import coursedata

    return coursedata.digits(classes=classes)


def _cnn(widths, num_classes, split=None):
    """The grader's small CNN for 8x8 digits: (conv-BN-ReLU) blocks, a 2x2 max-pool after the
    second, global average pooling and a linear layer. With ``split``, module '0' holds the
    first ``split`` blocks (the backbone) and module '1' the rest (the head)."""
    blocks, cin = [], 1
    for i, width in enumerate(widths):
        blocks.append([tnn("Conv2d", cin, width, 3, padding=1), tnn("BatchNorm2d", width), tnn("ReLU")]
                      + ([tnn("MaxPool2d", 2)] if i == 1 else []))
        cin = width
    tail = [tnn("AdaptiveAvgPool2d", 1), tnn("Flatten"), tnn("Linear", cin, num_classes)]
    if split is None:
        return tnn("Sequential", *[layer for block in blocks for layer in block], *tail)
    return tnn("Sequential", tnn("Sequential", *[layer for block in blocks[:split] for layer in block]),
               tnn("Sequential", *[layer for block in blocks[split:] for layer in block], *tail))


#: (a) transfer: pretrain on the digits 0-4, then SHOTS labelled images of each of 5-9 and a short
#: budget (one batch per epoch). The backbone is the first two conv blocks (generic strokes), the
#: head the third block and the classifier.
SHOTS = 5
TRANSFER_NET = _cnn((16, 32, 32), 5, split=2)
TRANSFER_PRETRAIN = Budget(epochs=5, optimizer="adam", lr=3e-3, batch_size=32)
TRANSFER_BUDGET = Budget(epochs=15, optimizer="adam", lr=0.01, batch_size=32, seconds=60.0)
TRANSFER_LRS = {"base_lr": 0.001, "head_lr": 0.01}
#: Runs per case, each from its own seed (pretraining included): the verdict compares mean
#: accuracies. One run each loses to a lucky scratch run on a few seeds in a hundred (see
#: docs/course-spec.md, "Choices").
TRANSFER_REPEATS = 3


def transfer_case(group: str, variant: str, seed: int, draw: Draw) -> Case:
    """``variant`` ('frozen' with the student's freeze, 'finetune' with their param_groups)
    against training from scratch on SHOTS images of each of the digits 5-9."""
    pre, new = _digits(tuple(range(5))), _digits(tuple(range(5, 10)))
    pick = np.concatenate([draw.rng.choice(np.flatnonzero(new.y_train == c), SHOTS, replace=False)
                           for c in range(5, 10)])
    labels = new.y_test - 5
    what = {"frozen": "freeze(model, trainable=('1',)) (a frozen backbone)",
            "finetune": f"param_groups(model, '1', base_lr={TRANSFER_LRS['base_lr']}, "
                        f"head_lr={TRANSFER_LRS['head_lr']}) (fine-tuning)"}[variant]
    extra = {"freeze": "freeze"} if variant == "frozen" else \
        {"param_groups": {"fn": "param_groups", "kwargs": dict(TRANSFER_LRS)}}
    label = f"transfer learning: a CNN pretrained on the digits 0-4 ({len(pre.y_train)} images), then trained " \
            f"on {SHOTS} images of each of 5-9 with {what} against from scratch, tested on {len(labels)} images " \
            f"(mean accuracies of {TRANSFER_REPEATS} runs from different seeds)"
    return training_case(group, label, "transfer", {"model": fixed(TRANSFER_NET)},
                         {"x_pre": pre.x_train, "y_pre": pre.y_train, "x_train": new.x_train[pick],
                          "y_train": new.y_train[pick] - 5, "x_eval": new.x_test},
                         TRANSFER_BUDGET, more_accurate(variant, "scratch", labels), num_classes=5,
                         variants=["scratch", variant], head="1", pretrain=TRANSFER_PRETRAIN, seed=seed,
                         repeats=TRANSFER_REPEATS, **extra)


#: (b) distillation: a CNN teacher, an MLP student, a few hundred training digits.
DISTILL_TRAIN = 300
DISTILL_TEACHER = _cnn((16, 32, 32), 10)
DISTILL_STUDENT = tnn("Sequential", tnn("Flatten"), tnn("Linear", 64, 32), tnn("ReLU"), tnn("Linear", 32, 10))
DISTILL_TEACHER_BUDGET = Budget(epochs=15, optimizer="adam", lr=3e-3, batch_size=32)
DISTILL_BUDGET = Budget(epochs=30, optimizer="adam", lr=3e-3, batch_size=32, seconds=60.0)
DISTILL_KWARGS = {"T": 4.0, "alpha": 0.9}
DISTILL_BAR = 0.80


def distill_case(group: str, seed: int, draw: Draw) -> Case:
    data = _digits()
    pick = draw.rng.choice(len(data.y_train), DISTILL_TRAIN, replace=False)
    label = f"distillation: an MLP student trained with distillation_loss(T=4, alpha=0.9) from a CNN teacher, " \
            f"both on {DISTILL_TRAIN} digits, tested on {len(data.y_test)}"
    return training_case(group, label, "distill", {"teacher": fixed(DISTILL_TEACHER), "student": fixed(DISTILL_STUDENT)},
                         {"x_train": data.x_train[pick], "y_train": data.y_train[pick], "x_eval": data.x_test},
                         DISTILL_BUDGET, accuracy_at_least(data.y_test, DISTILL_BAR, run="student"), num_classes=10,
                         loss={"fn": "distillation_loss", "kwargs": dict(DISTILL_KWARGS)},
                         teacher=DISTILL_TEACHER_BUDGET, compare_hard=True, seed=seed)


#: (c) augmentation: a CNN trained on AUGMENT_TRAIN centred, upright digits, tested on held-out
#: digits of a shifted "world" (the test split moved down and right, or turned counter-clockwise,
#: by the reference functions); the same CNN trained on the student's augmented images (values
#: drawn here, per epoch and image, covering that world) must beat it by more than AUGMENT_MARGIN
#: and reach AUGMENT_BAR on that world (augmenting the wrong way sometimes beats a weak plain run,
#: but never gets near the bar). Lead and bar leave room for a weak augmented run (82% against 67%
#: on one seed in a few dozen; docs/course-spec.md, "Choices").
AUGMENT_TRAIN = 300
AUGMENT_NET = _cnn((16, 32, 32), 10)
AUGMENT_BUDGET = Budget(epochs=30, optimizer="adam", lr=3e-3, batch_size=32, seconds=90.0)
AUGMENT_MARGIN = 0.05
AUGMENT_BAR = 0.70
AUGMENT_PADDING = 2
#: The world's offsets (top, left in 0..1: moves of 1-2 pixels down and right) and the training ones (0..2).
AUGMENT_WORLD_OFFSETS, AUGMENT_OFFSETS = (0, 1), (0, 1, 2)
#: The world's angles (counter-clockwise) and the training ones, in degrees.
AUGMENT_WORLD_ANGLES, AUGMENT_ANGLES = (10.0, 15.0, 20.0, 25.0, 30.0), (0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0)


def _grouped(fn, x: torch.Tensor, values: dict) -> torch.Tensor:
    """``fn(img, **{k: values[k][i]})`` for every image i, images sharing values in one call."""
    names = list(values)
    cast = {k: int if np.issubdtype(np.asarray(values[k]).dtype, np.integer) else float for k in names}
    keys = np.stack([np.asarray(values[k]) for k in names], 1)
    out = x.clone()
    for combo in np.unique(keys, axis=0):
        rows = torch.from_numpy(np.flatnonzero(np.all(keys == combo, 1)))
        out[rows] = fn(x[rows], **{k: cast[k](v) for k, v in zip(names, combo)})
    return out


@functools.lru_cache(maxsize=2)
def _world(kind: str) -> np.ndarray:
    """The held-out digits of the world, once per kind (fixed values): moved with the reference
    pad_and_crop or turned with the reference rotate."""
    x, rng = torch.from_numpy(_digits().x_test), np.random.default_rng(5)
    if kind == "pad_and_crop":
        x = _grouped(functools.partial(ref.pad_and_crop, padding=AUGMENT_PADDING), x,
                     {k: rng.choice(AUGMENT_WORLD_OFFSETS, len(x)) for k in ("top", "left")})
    else:
        x = _grouped(ref.rotate, x, {"angle": rng.choice(AUGMENT_WORLD_ANGLES, len(x))})
    return x.numpy().astype(np.float32)


def augment_case(group: str, kind: str, seed: int, draw: Draw) -> Case:
    """``kind`` 'pad_and_crop' (shifts) or 'rotate': the student's function as augmentation
    against no augmentation, on held-out digits of a shifted or turned world."""
    data = _digits()
    pick = draw.rng.choice(len(data.y_train), AUGMENT_TRAIN, replace=False)
    n_eval, epochs = len(data.y_test), AUGMENT_BUDGET.epochs
    if kind == "pad_and_crop":
        offsets = {k: draw.rng.choice(AUGMENT_OFFSETS, (epochs, AUGMENT_TRAIN)).astype(np.int64)
                   for k in ("top", "left")}
        step = augment_step("pad_and_crop", offsets, padding=AUGMENT_PADDING)
        what = (f"pad_and_crop(img, {AUGMENT_PADDING}, top, left) with top, left in 0..2 before each epoch, "
                f"tested on {n_eval} digits moved 1-2 pixels down and right")
    elif kind == "rotate":
        step = augment_step("rotate", {"angle": draw.rng.choice(AUGMENT_ANGLES, (epochs, AUGMENT_TRAIN))})
        what = f"rotate(img, angle) with angles in 0..30 degrees before each epoch, tested on {n_eval} digits " \
               "turned 10-30 degrees counter-clockwise"
    else:
        raise ValueError(f"unknown augmentation {kind!r}")
    label = f"augmentation: a CNN trained on {AUGMENT_TRAIN} digits with {what}, against the same CNN without it"
    return training_case(group, label, "classify", {"plain": fixed(AUGMENT_NET), "augmented": fixed(AUGMENT_NET)},
                         {"x_train": data.x_train[pick], "y_train": data.y_train[pick],
                          "x_eval": _world(kind)},
                         AUGMENT_BUDGET, all_of(more_accurate("augmented", "plain", data.y_test, AUGMENT_MARGIN),
                                                accuracy_at_least(data.y_test, AUGMENT_BAR, run="augmented")),
                         num_classes=10, augment=augmentation("augmented", step), seed=seed)
