"""Comparisons the judge uses, each returning ``None`` (fine) or a teaching message.

Messages may state shapes, dtypes and error sizes, never the reference's values.

Relative error (as in EECS 498): ``max|x - y| / max(|x| + |y|)`` over the whole
tensor, floored at 1e-12, so elements near zero do not blow it up.

Default tolerances: 1e-9 for float64 results (forward and autograd gradients),
2e-4 for float32 results. Both are far below what any conceptual mistake produces
(an off-by-one pad or a wrong variance is off by 1e-2 or more) and far above the
round-off of a correct vectorised implementation.
"""
from __future__ import annotations

import numpy as np

from gradekit.codec import ReturnedModule, Unsupported

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


def check_int(got, expected: int, what: str) -> str | None:
    """Compare an integer answer without revealing the expected value."""
    if isinstance(got, bool) or not isinstance(got, int):
        if isinstance(got, float) and float(got).is_integer():
            return f"{what} returned the float {got}; return an int"
        return f"{what} should return an int but returned {describe(got)}"
    if got != expected:
        return f"{what} returned {got}, which is not right"
    return None


def _field_error(kind: str, key: str, value) -> str | None:
    """Whether ``value`` has the kind a record field asks for ('str', 'int' or 'shape')."""
    if kind == "str":
        return None if isinstance(value, str) else f"'{key}' should be a str but is {describe(value)}"
    if kind == "shape":
        ints = isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        return None if ints else f"'{key}' should be a tuple of ints but is {describe(value)}"
    if isinstance(value, float) and value.is_integer():
        return f"'{key}' is the float {value}; use an int"
    if isinstance(value, bool) or not isinstance(value, int):
        return f"'{key}' should be an int but is {describe(value)}"
    return None


def check_records(got, expected: list[dict], fields: dict[str, str], label: str, what: str, where,
                  notes: dict[str, str] | None = None) -> str | None:
    """Compare a list of records (dicts) field by field without giving the expected values away.

    fields: name -> 'str' | 'int' | 'shape', in the order they are compared; the first
        field identifies a record (it must match in every row before values are compared).
    what: what one record stands for ('leaf module'), for the row-count message.
    where(i, expected_row): how row ``i`` is named in messages; notes: per field, a
        reminder added when that field is wrong.
    """
    if not isinstance(got, (list, tuple)):
        return f"{label}: should return a list of dicts but returned {describe(got)}"
    for i, row in enumerate(got):
        if not isinstance(row, dict):
            return f"{label}: row {i} should be a dict but is {describe(row)}"
        missing = [k for k in fields if k not in row]
        if missing:
            return f"{label}: row {i} has no {', '.join(repr(k) for k in missing)} key"
        for key, kind in fields.items():
            msg = _field_error(kind, key, row[key])
            if msg:
                return f"{label}: row {i}: {msg}"
    if len(got) != len(expected):
        return f"{label}: returned {len(got)} rows for {len(expected)} {what}s (one row per {what}, in order)"
    key, *values = fields
    for i, (row, exp) in enumerate(zip(got, expected)):
        if row[key] != exp[key]:
            return f"{label}: row {i} has {key} {row[key]!r}, which is not the {key} of the {what} at that point"
    for i, (row, exp) in enumerate(zip(got, expected)):
        for field in values:
            mine = tuple(row[field]) if fields[field] == "shape" else row[field]
            if mine != (tuple(exp[field]) if fields[field] == "shape" else exp[field]):
                return f"{label}: {where(i, exp)}: {field} is {mine}, which is not right" + (notes or {}).get(field, "")
    return None
