"""The reference against every training smoke test of weeks 2-5, over many grading seeds.

A smoke test's bar must be one the reference clears on every seed: a failure is an honest
student's lost points. A smoke test is a group of training cases
(:func:`autograder.cases.training.training_case`), found by drawing the weeks' problems. For
each one and each grading seed, this draws the problem's cases as grading does
(``Draw(case_rng(seed, name))``), writes their requests with the judge
(:meth:`autograder.judge.Judge.write`: the same per-case training seeds), runs the group's
requests in this process on the reference's namespace (:func:`gradekit.capture.run_request`:
the kernel's recipe), reads the records back as the judge does and applies each case's own
check and its verdict's margin (``case.check`` and ``case.check.margin``). Prints, per smoke
test, the pass rate, the smallest margin over the bar (accuracy or mIoU as a fraction, or
loss; none for checks without a bar), the median margin, and the wall and CPU seconds per run
of the requests (the drawing and the judge's check not counted); ``--jsonl`` keeps one line
per run.

    python benchmarks/smoke_margins.py --seeds 200 [--start 0] [--only make_cnn degradation]
                                       [--threads 1] [--time-scale 1] [--by-seed] [--jsonl results.jsonl]
                                       [--list]

``--only`` keeps the smoke tests whose problem or group contains one of the words.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.cases import Draw  # noqa: E402
from autograder.cases.training import is_training_case  # noqa: E402
from autograder.checks import problems_for  # noqa: E402
from autograder.judge import Judge, case_rng  # noqa: E402
from autograder.problem import Outcome  # noqa: E402
from gradekit.capture import run_request  # noqa: E402
from gradekit.codec import Reader, dump_json, load_json  # noqa: E402

WEEKS = ("w2_normalization", "w3_architectures", "w4_segmentation", "w5_augmentation_transfer")


def smoke_tests(weeks=WEEKS) -> list[tuple[str, str, str]]:
    """(assignment, problem, group) of every training case the weeks draw (at seed 0)."""
    found = []
    for assignment in weeks:
        for name, problem in problems_for(assignment).items():
            for case in problem.cases(Draw(case_rng(0, name))):
                key = (assignment, name, case.group)
                if is_training_case(case) and key not in found:
                    found.append(key)
    return found


def reference_namespace(assignment: str) -> dict:
    ref = importlib.import_module(f"solutions.{assignment}")
    return {n: getattr(ref, n) for n in problems_for(assignment) if hasattr(ref, n)}


def run_one(assignment: str, name: str, group: str, seed: int, namespace: dict, time_scale: float = 1.0) -> dict:
    """One grading seed of one smoke test, through the judge's writing, the kernel's recipe and the check
    (``time_scale``: the case's time limit multiplied, for a machine busy with other work). A group with
    several training cases passes when all do; its margin is the smallest."""
    problem = problems_for(assignment)[name]
    cases = problem.cases(Draw(case_rng(seed, name)))
    indices = [i for i, c in enumerate(cases) if c.group == group and is_training_case(c)]
    messages, margins, seconds, cpu = [], [], 0.0, 0.0
    with tempfile.TemporaryDirectory(prefix="smoke-") as tmp:
        tmp = Path(tmp)
        judge = Judge({name: problem}, seed, tmp)
        judge.write(name, cases)
        requests = load_json(tmp / "cases" / f"{name}.json")
        for index in indices:
            case, request, out = cases[index], requests[index], tmp / f"out{index}"
            request["seconds"] = float(request["seconds"]) * time_scale
            out.mkdir()
            start, clock = time.perf_counter(), time.process_time()
            with contextlib.redirect_stdout(io.StringIO()):
                record = run_request(request, namespace, tmp / "cases", out, prefix="c0_")
            seconds, cpu = seconds + time.perf_counter() - start, cpu + time.process_time() - clock
            dump_json(out / "0.json", record)
            outcome = Outcome(record["status"], Reader(out, as_torch=False).decode(load_json(out / "0.json")))
            messages.append(case.check(outcome) if outcome.ok else f"status {outcome.status}: {record.get('error')}")
            margins.append(case.check.margin(outcome))
    failed = [m for m in messages if m is not None]
    margin = None if None in margins else min(margins)
    return {"assignment": assignment, "problem": name, "group": group, "seed": seed, "passed": not failed,
            "margin": margin, "seconds": seconds, "cpu_seconds": cpu, "message": failed[0] if failed else None}


def summary(rows: list[dict]) -> str:
    margins = [r["margin"] for r in rows if r["margin"] is not None]
    passed = sum(r["passed"] for r in rows)
    seconds, cpu = [r["seconds"] for r in rows], [r["cpu_seconds"] for r in rows]
    text = f"{passed}/{len(rows)} passed"
    if margins:
        text += f", smallest margin {min(margins):+.4f}, median {float(np.median(margins)):+.4f}"
    return text + (f", {float(np.mean(seconds)):.2f} s per run, {float(np.mean(cpu)):.2f} s of CPU "
                   f"({sum(seconds):.0f} s in all)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=None, help="words of the problem or group names")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: seconds per core)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="multiply the cases' time limits (a busy machine); CPU seconds are printed")
    parser.add_argument("--jsonl", type=Path, default=None, help="append one JSON line per run here")
    parser.add_argument("--by-seed", action="store_true",
                        help="all the smoke tests of a seed before the next seed (partial runs cover every test)")
    parser.add_argument("--list", action="store_true", help="list the smoke tests and stop")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    tests = smoke_tests()
    if args.only:
        tests = [t for t in tests if any(w in t[1] or w in t[2] for w in args.only)]
    if args.list:
        print("\n".join(f"{a}  {n}  {g}" for a, n, g in tests))
        return 0
    seeds = range(args.start, args.start + args.seeds)
    order = [(t, s) for s in seeds for t in tests] if args.by_seed else [(t, s) for t in tests for s in seeds]
    rows: dict = {t: [] for t in tests}
    namespaces = {a: reference_namespace(a) for a in {t[0] for t in tests}}
    for test, seed in order:
        row = run_one(*test, seed, namespaces[test[0]], args.time_scale)
        rows[test].append(row)
        if args.jsonl:
            with args.jsonl.open("a") as f:
                f.write(json.dumps(row) + "\n")
        if not row["passed"]:
            print(f"  {test[1]} [{test[2]}] seed {seed}: {row['message']}", flush=True)
        if len(rows[test]) == len(seeds):
            print(f"{' '.join(test[:2])} [{test[2]}]: seeds {seeds.start}-{seeds.stop - 1}: {summary(rows[test])}",
                  flush=True)
    return 1 if any(not r["passed"] for test_rows in rows.values() for r in test_rows) else 0


if __name__ == "__main__":
    sys.exit(main())
