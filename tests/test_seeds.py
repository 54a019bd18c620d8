"""A notebook's seed: secret, per student, and the same at every regrade (autograder.seeds)."""
from __future__ import annotations

import stat

import pytest

from autograder.seeds import course_secret, grading_seed


def test_the_secret_is_made_once_private_and_then_kept(tmp_path):
    path = tmp_path / ".grading-secret"
    first = course_secret(path)
    assert len(first) == 64 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert course_secret(path) == first
    path.write_text("short")
    with pytest.raises(ValueError, match="too short"):
        course_secret(path)


def test_the_seed_is_reproducible_and_depends_on_everything_it_is_made_of():
    secret, other = b"a" * 64, b"b" * 64
    seed = grading_seed(secret, "w1_conv_arithmetic", "alice", "w1_conv_arithmetic")
    assert seed == grading_seed(secret, "w1_conv_arithmetic", "alice", "w1_conv_arithmetic")
    assert 0 <= seed < 2**31
    variants = {grading_seed(other, "w1_conv_arithmetic", "alice", "w1_conv_arithmetic"),
                grading_seed(secret, "w2_normalization", "alice", "w1_conv_arithmetic"),
                grading_seed(secret, "w1_conv_arithmetic", "bob", "w1_conv_arithmetic"),
                grading_seed(secret, "w1_conv_arithmetic", "alic", "ew1_conv_arithmetic")}
    assert seed not in variants and len(variants) == 4
