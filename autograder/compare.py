"""Comparisons the judge uses, each returning ``None`` (fine) or a teaching message.

Messages may state shapes, dtypes and error sizes, never the reference's values.
Tensor comparison (relative error, tolerances by dtype) lives in
:mod:`gradekit.values`, shared with the students' self-check.
"""
from __future__ import annotations

from gradekit.values import TOL, check_tensor, describe, fmt_shape, rel_error  # noqa: F401  (the judge's names)


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
