"""Helpers for the notebooks' ungraded demonstrations.

:func:`needs` lets a demonstration that uses a student's function run while that
function is still a stub: instead of stopping the notebook at ``NotImplementedError``,
the cell prints one line saying what to implement, and the notebook goes on::

    with needs("conv2d"):
        ...  # a timing of conv2d, a figure of its outputs

A later demonstration that uses a result of a skipped one (a ``NameError`` on a name
the skipped cell would have defined) is skipped the same way.
"""
from __future__ import annotations

from contextlib import contextmanager

#: Graded names a demonstration found unfinished in this kernel.
NOT_DONE: set[str] = set()


def _figures() -> set:
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    return set(plt.get_fignums()) if plt else set()


def _close_new(before: set) -> None:
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    for number in (set(plt.get_fignums()) - before) if plt else ():
        plt.close(number)  # a half-drawn figure says nothing


def _unfinished(exc: BaseException) -> str | None:
    """The function or class whose stub raised ``exc`` (the innermost frame's function, or
    the class of its ``self`` for a method such as ``__init__``)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return None
    frame = tb.tb_frame
    owner = frame.f_locals.get("self")
    return type(owner).__name__ if owner is not None else frame.f_code.co_name


@contextmanager
def needs(*names: str):
    """Run the indented block; while one of ``names`` is not implemented yet, print a note
    ("implement `conv2d` above to see this") instead of an error, and close the figures the
    block started. Without names, the note names the stub that raised."""
    before = _figures()
    try:
        yield
    except NotImplementedError as exc:
        names = names or tuple(filter(None, [_unfinished(exc)]))
        NOT_DONE.update(names)
        _close_new(before)
        print(f"implement {' and '.join(f'`{name}`' for name in names) or 'the problems'} above to see this")
    except NameError:
        if not (NOT_DONE.intersection(names) if names else NOT_DONE):
            raise
        _close_new(before)
        what = " and ".join(f"`{name}`" for name in names or sorted(NOT_DONE))
        print(f"implement {what} above (and run the cells after it) to see this")
