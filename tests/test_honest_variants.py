"""Honest variants keep full marks: right answers written another way than the reference.

The module contract compares what a module does (training-mode passes with torch's generator
seeded alike, the state after them, backward through it and through two in a row, edge
shapes), so it must not penalise what the spec leaves free. ``tests/honest/<assignment>/``
holds such variants in the wrong-answer corpus's format (``<name>__<variant>.edit`` against the
reference, or ``.py``; the first line or the docstring says what differs): dropout as a
functional call instead of a module, BatchNorm layers declared in another order, global pooling
written with ``mean`` instead of ``adaptive_avg_pool2d``, in-place operations on tensors a module
made itself, frozen BatchNorm kept in eval by another mechanism, mixing into a clone. Each one is
graded at a seed of its own (derived from its name) and must keep every group.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from autograder.checks import ASSIGNMENTS
from autograder.local import grade_namespace

from .corpus import load

pytestmark = pytest.mark.usefixtures("one_thread")
HONEST = Path(__file__).parent / "honest"
FILES = sorted(p for p in HONEST.glob("*/*__*") if p.suffix in (".edit", ".py"))
#: What each week's variants must include (a substring of a variant's file name, per kind).
KINDS = {"w3_architectures": ("dropout", "batchnorm_declared", "mean", "in_place"),
         "w4_segmentation": ("dropout", "in_place"),
         "w5_augmentation_transfer": ("in_place", "no_grad", "train_overridden")}


@pytest.mark.filterwarnings("ignore:var\\(\\).*degrees of freedom:UserWarning")
@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_honest_variant_keeps_full_marks(path):
    variant = load(path)
    assert variant.mistake and "\n" not in variant.mistake, f"{path.name}: say what differs in one line"
    seed = zlib.crc32(path.name.encode()) % 1000
    verdict = grade_namespace(path.parent.name, {variant.name: variant.obj}, names=[variant.name], seed=seed,
                              sources=[variant.source])[variant.name]
    assert (verdict.status, verdict.fraction) == ("passed", 1.0), "\n".join(verdict.lines)


def test_the_variants_cover_the_kinds_each_week_needs():
    for assignment, kinds in KINDS.items():
        assert assignment in ASSIGNMENTS
        names = [p.stem for p in FILES if p.parent.name == assignment]
        for kind in kinds:
            assert any(kind in n for n in names), (assignment, kind, names)
