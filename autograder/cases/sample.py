"""One random sampler for every week's cases.

``Draw`` wraps the ``numpy`` generator the judge seeds per (grading, problem) and
returns plain Python numbers and ``numpy`` arrays, so cases are easy to print
and to send to the kernel. Ranges are half-open, as in ``numpy``: ``draw.int(2, 5)``
is 2, 3 or 4.
"""
from __future__ import annotations

import numpy as np


class Draw:
    def __init__(self, rng: np.random.Generator | int):
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    # ------------------------------------------------------------------ numbers
    def int(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high))

    def ints(self, low: int, high: int):
        """A function drawing a fresh ``int(low, high)`` at every call (a size used many times)."""
        return lambda: self.int(low, high)

    def odd(self, low: int, high: int) -> int:
        """An odd number in [low, high) (low and high inclusive of their odd neighbours)."""
        return int(self.rng.integers(low // 2, high // 2)) * 2 + 1

    def bool(self) -> bool:
        return bool(self.rng.integers(0, 2))

    def sign(self) -> int:
        return 1 if self.bool() else -1

    def choice(self, options):
        """One of ``options``, as a plain Python value."""
        return options[int(self.rng.integers(0, len(options)))]

    def distinct(self, options, k: int) -> list:
        """``k`` different values of ``options``."""
        return [options[i] for i in self.rng.choice(len(options), size=k, replace=False)]

    def hw(self, low: int = 9, high: int = 20) -> tuple[int, int]:
        """A non-square (h, w), each at least ``low``."""
        h, d = self.int(low, high), self.int(1, 6) * self.sign()
        return h, h + d if h + d >= low else h - d

    # ------------------------------------------------------------------ arrays
    def normal(self, shape, dtype=np.float64, scale: float = 1.0) -> np.ndarray:
        """Standard normal values times ``scale``: an array also for ``shape == ()`` (the output
        gradient of a scalar loss)."""
        return np.asarray(self.rng.standard_normal(tuple(shape)) * scale).astype(dtype)

    def uniform(self, low: float, high: float, shape, dtype=np.float64) -> np.ndarray:
        return self.rng.uniform(low, high, tuple(shape) if not isinstance(shape, int) else shape).astype(dtype)

    def data(self, shape, dtype=np.float64, scale: float = 1.0) -> np.ndarray:
        """Input whose channels (axis 1) and samples have their own offsets and spreads,
        so that statistics over the wrong axes give visibly wrong results."""
        x = self.rng.standard_normal(tuple(shape))
        if len(shape) >= 2:
            per_channel = [1] * len(shape)
            per_channel[1] = shape[1]
            per_sample = [shape[0]] + [1] * (len(shape) - 1)
            x = x * self.rng.uniform(0.5, 3.0, per_channel) * self.rng.uniform(0.5, 2.0, per_sample)
            x = x + self.rng.uniform(-2.0, 2.0, per_channel) + self.rng.uniform(-1.0, 1.0, per_sample)
        return (x * scale).astype(dtype)
