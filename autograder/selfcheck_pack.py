"""The release's self-check: public cases and the reference's answers, stored as data.

For each problem of an assignment, the cases its hidden checks draw (the same
generators) are drawn once more at a public seed; those whose builder says how
the self-check may use them (``Case.public``, see :class:`autograder.problem.Public`)
are run on the reference, and the fields of its record that every right answer must
share are stored next to the notebook::

    course/source/<assignment>/selfcheck/<name>.json      requests, labels, stored answers
    course/source/<assignment>/selfcheck/<name>_<k>.npy   their arrays

``nbgrader generate_assignment`` copies the folder into the release like any file
beside the notebook, and :func:`gradekit.selfcheck` reads it in the student's kernel.
The folder holds inputs and numbers, never code; the hidden cases stay stronger (drawn
at a new seed for every notebook, more of them, heavy cases and training runs too).

The public answers are no hidden answers: the public seed is outside the grading seeds,
so a case with drawn data (inputs, labels, weights) is never a grading's, and of the
cases without (a few small ints, a fixed array), which gradings may ask again, the pack
stores none that every probe grading asks and withholds enough (:func:`withheld`) that no
check group of those gradings consists of stored answers only: on other gradings a table
of the public answers earns about 1% of a problem at most, on average.

The folder is generated, not kept in git: ``nbgrader generate_assignment`` writes it
first (:func:`release_hook`, the course config's ``GenerateAssignment.pre_convert_hook``),
and so does::

    python -m autograder.selfcheck_pack [ASSIGNMENT ...]      (make selfcheck)

for running the instructor's notebooks in ``course/source`` directly.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import itertools
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from gradekit.capture import run_request
from gradekit.codec import ModuleSpec, Random, Reader, Var, Writer, dump_json
from gradekit.public_cases import PACK_DIR, resolve, stored

from .cases.sample import Draw
from .checks import ASSIGNMENTS, problems_for
from .judge import case_rng
from .problem import Case, Outcome, Problem

#: The seed the public cases are drawn at. Grading seeds are 31-bit (:func:`autograder.seeds.grading_seed`,
#: below ``HIDDEN_SEEDS``); this one is not, so the public cases come from a random stream that no
#: grading draws from, and a problem whose configuration is drawn per grading never hands a student
#: the public one.
PUBLIC_SEED = 2**31 + 5_318_008
#: Every grading seed is below this.
HIDDEN_SEEDS = 2**31
#: A public case whose request and stored answer take more bytes than this is left out.
MAX_CASE_BYTES = 192 * 1024
#: At most this many public cases per check group (the first drawn).
MAX_PER_GROUP = 8
#: The gradings (seeds) the pack draws to see which of its answers the hidden checks ask again.
PROBE_SEEDS = tuple(range(32))
#: Property rules that only restate the specification (which layer kinds, which mode mixes the
#: samples, an answer's form): their public cases store nothing of the reference's answer.
SPEC_RULES = frozenset({"answer_form", "layer_kinds", "has_kind", "batch_independence", "repeated_passes"})
COURSE_SOURCE = Path(__file__).resolve().parent.parent / "course" / "source"


class PackError(RuntimeError):
    """The reference fails one of its own public cases: a bug in a check or in the reference."""


def request_key(request) -> tuple:
    """A request (or a :class:`Case`'s) as a hashable value: equal exactly when the kernel would be
    given the same inputs (arrays by dtype, shape and a digest of their bytes)."""
    import torch

    if isinstance(request, Case):
        request = request.request() if callable(request.request) else request.request
    if isinstance(request, torch.Tensor):
        return request_key(request.detach().numpy()) + (request.requires_grad,)
    if isinstance(request, np.ndarray):
        data = np.ascontiguousarray(request)
        return "array", data.shape, str(data.dtype), hashlib.sha256(data.tobytes()).hexdigest()
    if isinstance(request, ModuleSpec):
        return "module", request.path, request_key(request.args), request_key(request.kwargs), \
            request_key(request.state), request.train
    if isinstance(request, (Random, Var)):
        return type(request).__name__, repr(request)
    if isinstance(request, dict):
        return "dict", tuple(sorted((str(k), request_key(v)) for k, v in request.items()))
    if isinstance(request, (list, tuple)):
        return "seq", tuple(request_key(v) for v in request)
    return type(request).__name__, repr(request)


def stores_answer(case: Case) -> bool:
    """Whether the public ``case`` would store what only a right answer knows: the reference's
    values at its fields, or a rule's parameters computed from them (not an expected exception,
    nor a rule of :data:`SPEC_RULES`)."""
    return case.public is not None and not case.raises and case.public.rule not in SPEC_RULES


def carries_drawn_data(value) -> bool:
    """Whether a request holds an array of two or more distinct values (inputs, labels, weights):
    such a case is never drawn twice, by a grading or by the pack."""
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().numpy()
    if isinstance(value, np.ndarray):
        return value.size > 1 and bool(np.any(value.reshape(-1) != value.reshape(-1)[0]))
    if isinstance(value, ModuleSpec):
        return carries_drawn_data([value.args, value.kwargs, value.state])
    if isinstance(value, dict):
        return any(carries_drawn_data(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(carries_drawn_data(v) for v in value)
    return False


def _facts_only(case: Case) -> bool:
    """A full-size model's parameter count and layout (built on the meta device, never run):
    torchvision's own, which the specification names."""
    return bool(case.public and case.public.fields) and all(f.startswith("facts.") for f in case.public.fields)


def _could_be_public(case: Case) -> bool:
    return case.public is not None and (not case.heavy or case.public.speed is not None or _facts_only(case))


def _request(case: Case):
    return case.request() if callable(case.request) else case.request


def _candidates(problem: Problem) -> list[Case]:
    """The cases the self-check could use, drawn at the public seed."""
    return [c for c in problem.cases(Draw(case_rng(PUBLIC_SEED, problem.name))) if _could_be_public(c)]


def _reusable_answers(cases: list[Case]) -> dict:
    """request -> (group, label) of the answer-storing ``cases`` that a grading could ask again:
    those without drawn data (full-size models' layouts, torchvision's, stay public)."""
    return {request_key(c): (c.group, c.label) for c in cases
            if stores_answer(c) and not (c.heavy and _facts_only(c)) and not carries_drawn_data(_request(c))}


@functools.lru_cache(maxsize=None)
def _asked(problem: Problem) -> tuple:
    """Per grading of :data:`PROBE_SEEDS`: check group -> the requests of its cases that a reusable
    public answer could match (None for the others). Equal requests have equal labels, so only
    the cases whose label is an answer's are compared."""
    labels = set(_reusable_answers(_candidates(problem)).values())
    if not labels:
        return ()
    relevant, asked = {group for group, _ in labels}, []
    for seed in PROBE_SEEDS:
        groups: dict = {}
        for case in problem.cases(Draw(case_rng(seed, problem.name))):
            if case.group in relevant:
                groups.setdefault(case.group, []).append(
                    request_key(case) if (case.group, case.label) in labels else None)
        asked.append(groups)
    return tuple(asked)


def withheld(answers: dict, asked) -> frozenset:
    """The ``answers`` (requests) to leave out, given ``asked`` (:func:`_asked`): those every probe
    grading asks (a fixed, hand-picked case), then, while some grading's group consists of stored
    answers only, the answer such groups ask most often (then the one asked most overall). A
    table of the stored answers then earns no group of those gradings."""
    often: dict = {}
    for grading in asked:
        for key in {k for keys in grading.values() for k in keys if k in answers}:
            often[key] = often.get(key, 0) + 1
    dropped = {k for k, n in often.items() if n == len(asked)}
    groups = [keys for grading in asked for keys in grading.values()]
    while covered := [keys for keys in groups if all(k in answers and k not in dropped for k in keys)]:
        counts: dict = {}
        for keys in covered:
            for key in set(keys):
                counts[key] = counts.get(key, 0) + 1
        dropped.add(min(counts, key=lambda k: (-counts[k], -often[k], repr(k))))
    return frozenset(dropped)


@functools.lru_cache(maxsize=None)
def withheld_answers(problem: Problem) -> frozenset:
    """The requests whose answers ``problem``'s public pack withholds (:func:`withheld`)."""
    answers = _reusable_answers(_candidates(problem))
    return withheld(answers, _asked(problem)) if answers else frozenset()


def public_cases(problem: Problem) -> list[Case]:
    """The cases of ``problem`` the self-check uses, drawn at the public seed: those the self-check
    can judge from data, less the withheld answers (at most :data:`MAX_PER_GROUP` a group)."""
    chosen, per_group = [], {}
    held = withheld_answers(problem)
    for case in _candidates(problem):
        if held and stores_answer(case) and request_key(case) in held:
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
