"""A week's full reference submission graded by two checkouts side by side: this one and a
baseline (a worktree of an older commit: ``git worktree add /tmp/base <commit>``).

Each run is a fresh process that grades every problem of the week in process
(:func:`autograder.local.grade_namespace`: the requests the kernel would run, traced as in a
kernel, and the judge; no notebook, kernel start or nbgrader bookkeeping, which the change under
test leaves alone), with the checkout's own ``gradekit``, ``autograder`` and ``solutions`` first
on ``sys.path``. Runs alternate (baseline, this, baseline, ...) so that both see the same load;
the medians and their ratio are printed. Asserts nothing.

    python benchmarks/grading_time_ab.py --baseline /tmp/base [--assignment w3_architectures] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

RUN = """
import importlib, json, sys, time
from autograder.checks import problems_for
from autograder.local import grade_namespace
assignment, seed = sys.argv[1], int(sys.argv[2])
reference = importlib.import_module("solutions." + assignment)
namespace = {name: getattr(reference, name) for name in problems_for(assignment)}
start = time.perf_counter()
verdicts = grade_namespace(assignment, namespace, seed=seed)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "full": all(v.fraction == 1.0 for v in verdicts.values()),
                  "where": importlib.import_module("gradekit").__file__}))
"""


def run(tree: Path, assignment: str, seed: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", RUN, assignment, str(seed)], env=env, cwd=tree,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout (a git worktree)")
    parser.add_argument("--assignment", default="w3_architectures")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    if not (args.baseline / "autograder").is_dir():
        parser.error(f"{args.baseline} is not a checkout of this project (no autograder/ in it)")
    times: dict[str, list[float]] = {"baseline": [], "this": []}
    for i in range(args.runs):
        for label, tree in (("baseline", args.baseline.resolve()), ("this", REPO)):
            result = run(tree, args.assignment, args.seed)
            assert str(tree) in result["where"], result  # the tree's own gradekit ran
            times[label].append(result["seconds"])
            print(f"run {i + 1} {label:8s} {result['seconds']:7.2f} s  full marks: {result['full']}", flush=True)
    base, this = statistics.median(times["baseline"]), statistics.median(times["this"])
    print(f"\n{args.assignment}, full reference, in process: baseline {base:.2f} s, this checkout {this:.2f} s, "
          f"ratio {this / base:.2f}x (medians of {args.runs})")


if __name__ == "__main__":
    main()
