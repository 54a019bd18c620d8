"""The release's self-check: public cases and the reference's answers, stored as data.

For each problem of an assignment, the cases its hidden checks draw (the same
generators) are drawn once more at :data:`PUBLIC_SEED`; those whose builder says how
the self-check may use them (``Case.public``, see :class:`autograder.problem.Public`)
are run on the reference, and the fields of its record that every right answer must
share are stored next to the notebook::

    course/source/<assignment>/selfcheck/<name>.json      requests, labels, stored answers
    course/source/<assignment>/selfcheck/<name>_<k>.npy   their arrays

``nbgrader generate_assignment`` copies the folder into the release like any file
beside the notebook, and :func:`gradekit.selfcheck` reads it in the student's kernel.
The folder holds inputs and numbers, never code; the hidden cases stay stronger (drawn
at a new seed for every notebook, more of them, heavy cases and training runs too).

The folder is generated, not kept in git: ``nbgrader generate_assignment`` writes it
first (:func:`release_hook`, the course config's ``GenerateAssignment.pre_convert_hook``),
and so does::

    python -m autograder.selfcheck_pack [ASSIGNMENT ...]      (make selfcheck)

for running the instructor's notebooks in ``course/source`` directly.
"""
from __future__ import annotations

import importlib
import itertools
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from gradekit.capture import run_request
from gradekit.codec import Random, Reader, Writer, dump_json
from gradekit.public_cases import PACK_DIR, resolve, stored

from .cases.sample import Draw
from .checks import ASSIGNMENTS, problems_for
from .judge import case_rng
from .problem import Case, Outcome, Problem

#: The seed the public cases are drawn at (grading draws a fresh 31-bit seed per notebook).
PUBLIC_SEED = 5_318_008
#: A public case whose request and stored answer take more bytes than this is left out.
MAX_CASE_BYTES = 192 * 1024
#: At most this many public cases per check group (the first drawn).
MAX_PER_GROUP = 8
COURSE_SOURCE = Path(__file__).resolve().parent.parent / "course" / "source"


class PackError(RuntimeError):
    """The reference fails one of its own public cases: a bug in a check or in the reference."""


def public_cases(problem: Problem) -> list[Case]:
    """The cases of ``problem`` the self-check uses, drawn at the public seed."""
    chosen, per_group = [], {}
    for case in problem.cases(Draw(case_rng(PUBLIC_SEED, problem.name))):
        facts_only = bool(case.public and case.public.fields) and \
            all(f.startswith("facts.") for f in case.public.fields)  # a full-size model built, never run
        if case.public is None or (case.heavy and case.public.speed is None and not facts_only):
            continue
        per_group[case.group] = per_group.get(case.group, 0) + 1
        if per_group[case.group] <= MAX_PER_GROUP:
            chosen.append(case)
    return chosen


def _drawn_where_run(request: dict, seed: int) -> dict:
    """A timing request whose input arrays are drawn in the kernel (:class:`gradekit.codec.Random`)."""
    seeds = itertools.count(seed)

    def swap(value):
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            return Random(tuple(value.shape), str(value.dtype), next(seeds))
        if isinstance(value, list):
            return [swap(v) for v in value]
        if isinstance(value, tuple):
            return tuple(swap(v) for v in value)
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        return value
    return {**request, "inputs": swap(request["inputs"])}


def _size(folder: Path, prefix: str, first: int, last: int) -> int:
    return sum((folder / f"{prefix}{k}.npy").stat().st_size for k in range(first, last))


def problem_pack(problem: Problem, reference: dict, dest: Path) -> dict:
    """Write ``dest/<name>.json`` (and arrays) for one problem; return a summary."""
    name = problem.name
    writer = Writer(dest, prefix=f"{name}_")
    entries, left_out = [], 0
    with tempfile.TemporaryDirectory(prefix="selfcheck-pack-") as tmp:
        for i, case in enumerate(public_cases(problem)):
            first = writer.count
            request = case.request() if callable(case.request) else case.request
            seed = PUBLIC_SEED % 2**31 + i
            if case.public.speed is not None:
                request = _drawn_where_run(request, seed * 1000)
            encoded = writer.encode({"seconds": problem.seconds, "seed": seed, **request})
            out = Path(tmp) / str(i)
            record = Reader(out, as_torch=False).decode(
                run_request(encoded, reference, dest, out, prefix="r"))
            outcome = Outcome(record["status"], record)
            raised = (record.get("error") or {}).get("type")
            if case.raises:
                if raised != case.raises:
                    raise PackError(f"{name}: the reference does not raise {case.raises} on {case.label}")
            elif not outcome.ok:
                raise PackError(f"{name}: the reference fails on {case.label}: {record.get('error')}")
            elif case.public.speed is None and (msg := case.check(outcome)) is not None:
                raise PackError(f"{name}: the reference fails its own check on {case.label}: {msg}")
            expect = {path: stored(resolve(record, path), path) for path in case.public.fields}
            entry = {"index": i, "label": case.label, "group": case.group, "raises": case.raises, "tol": case.public.tol,
                     "speed": case.public.speed, "request": encoded, "expect": writer.encode(expect)}
            if case.public.rule is not None:
                entry["rule"], entry["params"] = case.public.rule, writer.encode(dict(case.public.params or {}))
            if case.public.speed is not None:
                entry["baseline"] = request["baseline"].rsplit(".", 1)[-1]
            if _size(dest, writer.prefix, first, writer.count) + len(repr(entry)) > MAX_CASE_BYTES:
                for k in range(first, writer.count):
                    (dest / f"{writer.prefix}{k}.npy").unlink()
                writer.count = first
                left_out += 1
                continue
            entries.append(entry)
    dump_json(dest / f"{name}.json", {
        "name": name, "seed": PUBLIC_SEED, "banned_names": sorted(problem.banned_names),
        "banned_ops": sorted(problem.banned_ops), "banned_calls": list(problem.banned_calls),
        "banned_classes": list(problem.banned_classes), "hints": problem.hints, "cases": entries})
    return {"cases": len(entries), "left_out": left_out,
            "groups": f"{len({e['group'] for e in entries})}/{len(problem.groups)}"}


def build(assignment: str, dest: Path | None = None) -> dict[str, dict]:
    """Write the self-check folder of ``assignment`` (default: beside its source notebook)."""
    dest = Path(dest) if dest is not None else COURSE_SOURCE / assignment / PACK_DIR
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    reference = vars(importlib.import_module(f"solutions.{assignment}"))
    return {name: problem_pack(problem, reference, dest) for name, problem in problems_for(assignment).items()}


def release_hook(assignment: str, student=None, notebooks=None, **_) -> None:  # noqa: ARG001
    """``GenerateAssignment.pre_convert_hook``: the self-check folder of ``assignment``, written
    beside its source notebooks (``notebooks``, their paths) just before nbgrader copies that
    folder into the release."""
    import logging

    log = logging.getLogger("autograder.selfcheck")
    if assignment not in ASSIGNMENTS or not notebooks:
        return
    try:
        summary = build(assignment, Path(notebooks[0]).parent / PACK_DIR)
    except Exception:  # nbgrader only logs a failed hook at INFO level: say it louder
        log.exception("the self-check cases of %s could not be written: the release will lack them", assignment)
        raise
    log.warning("self-check of %s: %d public cases written", assignment, sum(s["cases"] for s in summary.values()))


def main(argv=None) -> int:
    import torch

    torch.set_num_threads(1)
    for assignment in (list(sys.argv[1:] if argv is None else argv) or ASSIGNMENTS):
        summary = build(assignment)
        size = sum(p.stat().st_size for p in (COURSE_SOURCE / assignment / PACK_DIR).iterdir())
        print(f"{assignment}: {sum(s['cases'] for s in summary.values())} public cases, {size / 1024:.0f} KiB")
        for name, s in summary.items():
            print(f"  {name:28s} {s['cases']:3d} cases, groups {s['groups']}"
                  + (f", {s['left_out']} left out (too large)" if s["left_out"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
