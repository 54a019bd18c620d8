"""Comparisons of recorded values with expected ones, each answering ``None`` or a message.

Shared by the judge (hidden cases, against the reference it computes) and the
students' self-check (public cases, against stored values): the same rules on both
sides. Messages state shapes, dtypes and error sizes, never expected values.

Relative error (as in EECS 498): ``max|x - y| / max(|x| + |y|)`` over the whole
tensor, floored at 1e-12, so elements near zero do not blow it up.

Default tolerances: 1e-9 for float64 results (forward and autograd gradients),
2e-4 for float32 results. Both are far below what any conceptual mistake produces
(an off-by-one pad or a wrong variance is off by 1e-2 or more) and far above the
round-off of a correct vectorised implementation.
"""
from __future__ import annotations

import numpy as np

from .codec import ReturnedModule, Unsupported

TOL = {"float64": 1e-9, "float32": 2e-4, "float16": 1e-2, "bfloat16": 2e-2}


def rel_error(x: np.ndarray, y: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y)) / max(1e-12, float(np.max(np.abs(x) + np.abs(y)))))


def describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, Unsupported):
        return f"a {value.type_name}"
    if isinstance(value, ReturnedModule):
        return f"a {value.type_name} module"
    if value is None:
        return "None"
    return f"a {type(value).__name__}"


def fmt_shape(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def check_tensor(got, expected: np.ndarray, what: str = "the output", tol: float | None = None,
                 expected_dtype: str | None = None) -> str | None:
    """Compare a returned tensor with the reference's (shape, dtype, finiteness, values)."""
    if not isinstance(got, np.ndarray):
        return f"{what} should be a tensor but is {describe(got)}"
    if tuple(got.shape) != tuple(expected.shape):
        return f"{what} has shape {fmt_shape(got.shape)}, expected {fmt_shape(expected.shape)}"
    dtype = expected_dtype or str(expected.dtype)
    if str(got.dtype) != dtype:
        return f"{what} has dtype {got.dtype}, expected {dtype} (keep the input's dtype)"
    if got.dtype.kind == "f" and not np.all(np.isfinite(got)) and np.all(np.isfinite(expected)):
        return f"{what} contains NaN or inf values"
    if got.dtype.kind in "fc":
        err = rel_error(got, expected)
        limit = TOL.get(dtype, 1e-6) if tol is None else tol
        if not err <= limit:
            return f"{what} has the right shape but wrong values (relative error {err:.1e})"
        return None
    if not np.array_equal(got, expected):
        return f"{what} has the right shape but wrong values"
    return None


def as_ints(value, count: int):
    """``value`` as a tuple of ``count`` Python ints (1-element integer arrays count as ints), or None."""
    if not isinstance(value, (list, tuple)) or len(value) != count:
        return None
    out = []
    for v in value:
        if isinstance(v, np.ndarray) and v.size == 1 and v.dtype.kind in "iu":
            v = int(v.reshape(()))
        if isinstance(v, bool) or not isinstance(v, int):
            return None
        out.append(v)
    return tuple(out)
