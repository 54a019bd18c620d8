"""Prints ten million lines before defining a correct conv2d (from the reference).

The lines go out 10,000 per ``print`` call (78 MB of output in all), so that the
kernel produces them well within the test's per-cell time limit even on a slow
machine: what is tested is the grader's side (output capped per cell, grades
unaffected), not how fast Python prints."""
for _start in range(0, 10_000_000, 10_000):
    print("\n".join(map(str, range(_start, _start + 10_000))))

__REFERENCE__
