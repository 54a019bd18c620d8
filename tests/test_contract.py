"""The contract every assignment's hidden checks keep, tested once for all of them.

Assignments are found by name (``autograder.checks.ASSIGNMENTS``); adding a week adds
its notebook, reference, checks and wrong-answer corpus, and no test code here:

- the reference gets full marks and the blank release zero; missing definitions are
  reported as missing;
- every wrong answer of the corpus loses points, with a message that never shows the
  reference's code (and a ban message, and 0, for forbidden built-ins);
- every group a problem draws is declared with a hint and a weight;
- messages never show the reference's values;
- for ``CONTRACT_SEEDS`` seeds (1,000 by default) every case a problem's generator
  draws is one the reference passes (heavy cases on a few: timing and full-size models on
  ``HEAVY_SEEDS``, training smoke tests on ``TRAINING_SEEDS``).
"""
from __future__ import annotations

import contextlib
import inspect
import io
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

import gradekit
from autograder.cases import Draw
from autograder.cases.training import is_training_case
from autograder.checks import ASSIGNMENTS, problems_for
from autograder.judge import Judge, case_rng
from autograder.local import grade_namespace
from autograder.problem import Outcome
from gradekit.codec import ModuleSpec

from .corpus import BAN_TEXT, corpus, load, solution_lines, stub

pytestmark = pytest.mark.usefixtures("one_thread")
SEEDS = int(os.environ.get("CONTRACT_SEEDS", "1000"))
HEAVY_SEEDS = 3
#: Training smoke tests run for more seeds than the other heavy cases, every one of them: each
#: seed draws its own data (evaluation images, shapes, picks) and trains from its own seed. One
#: seed of all 14 costs about 40 s of one core (12 s of it week 4's U-Net); 8 seeds add about 4
#: minutes to the suite. benchmarks/smoke_margins.py measures the reference over 200.
TRAINING_SEEDS = int(os.environ.get("CONTRACT_TRAINING_SEEDS", "8"))
#: Distinct cases run per problem: all of them up to this many, else the boundary ones and a sample.
DISTINCT_BUDGET = int(os.environ.get("CONTRACT_DISTINCT", "400"))
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
CORPUS = [p for a in ASSIGNMENTS for p in corpus(a)]


def reference(assignment: str):
    import importlib

    return importlib.import_module(f"solutions.{assignment}")


def reference_namespace(assignment: str) -> tuple[dict, list[str]]:
    ref = reference(assignment)
    names = list(problems_for(assignment))
    return {n: getattr(ref, n) for n in names}, [inspect.getsource(getattr(ref, n)) for n in names]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.parametrize("seed", [0, 1])
def test_reference_gets_full_marks(assignment, seed):
    namespace, sources = reference_namespace(assignment)
    verdicts = grade_namespace(assignment, namespace, seed=seed, sources=sources)
    assert list(verdicts) == list(problems_for(assignment))
    for verdict in verdicts.values():
        assert (verdict.status, verdict.fraction) == ("passed", 1.0), "\n".join(verdict.lines)
        assert verdict.groups and all(verdict.groups.values())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_blank_release_scores_zero(assignment):
    names = list(problems_for(assignment))
    sources = [f"def {name}(*args, **kwargs):\n    raise NotImplementedError\n" for name in names]
    verdicts = grade_namespace(assignment, {n: stub(n) for n in names}, seed=3, sources=sources)
    for name, verdict in verdicts.items():
        assert (verdict.status, verdict.fraction) == ("error", 0.0), (name, verdict.lines)
        assert "not implemented" in "\n".join(verdict.lines)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_missing_definitions_are_reported(assignment):
    for name, verdict in grade_namespace(assignment, {}, seed=0).items():
        assert (verdict.status, verdict.fraction) == ("missing", 0.0), name
        assert "not defined" in "\n".join(verdict.lines)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_corpus_covers_every_name(assignment):
    mistakes = {name: 0 for name in problems_for(assignment)}
    for path in corpus(assignment):
        wrong = load(path)
        assert wrong.name in mistakes, f"{path.name} does not start with a graded name"
        mistakes[wrong.name] += not wrong.is_ban
    assert all(n >= 3 for n in mistakes.values()), mistakes


@pytest.mark.filterwarnings("ignore:var\\(\\).*degrees of freedom:UserWarning")
@pytest.mark.parametrize("path", CORPUS, ids=[f"{p.parent.name}/{p.name}" for p in CORPUS])
def test_wrong_answer_loses_points(path):
    wrong = load(path)
    assert wrong.mistake and "\n" not in wrong.mistake, f"{path.name}: name the mistake in one line"
    verdict = grade_namespace(path.parent.name, {wrong.name: wrong.obj}, names=[wrong.name], seed=11,
                              sources=[wrong.source])[wrong.name]
    message = "\n".join(verdict.lines)
    print(message)
    assert verdict.fraction < 1.0 and verdict.status != "passed", message
    for line in solution_lines(reference(path.parent.name), wrong.name):
        assert line not in message, f"the message shows the reference's code: {line!r}"
    if wrong.is_ban:
        assert verdict.fraction == 0.0 and BAN_TEXT in message, message
    else:  # the mistake itself is what fails: a group fails with a message, not the ban
        assert BAN_TEXT not in message and "FAIL" in message, message
    for text in wrong.expect:
        assert text in message, f"{path.name}: expected {text!r} in the message"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_groups_are_declared_with_hints(assignment):
    ref = reference(assignment)
    for name, problem in problems_for(assignment).items():
        declared = [g.name for g in problem.groups]
        assert len(declared) == len(set(declared)), name
        drawn = {case.group for seed in range(20) for case in problem.cases(Draw(case_rng(seed, name)))}
        assert drawn == set(declared), (name, drawn ^ set(declared))
        lines = solution_lines(ref, name)
        for group in problem.groups:
            assert group.hint.strip() and group.weight > 0, (name, group)
            assert not any(line in group.hint for line in lines) and not re.search(r"return\s", group.hint)


def _without_error_sizes(text: str) -> str:
    return re.sub(r"\d\.\de[-+]\d+", "", text)


def _perturbed(fn):
    """A right answer made slightly wrong: ints + 1, float tensors x 1.01."""
    def wrong(*args, **kwargs):
        out = fn(*args, **kwargs)
        if isinstance(out, int) and not isinstance(out, bool):
            return out + 1
        if hasattr(out, "dtype") and getattr(out.dtype, "is_floating_point", False):
            return out * 1.01 + 0.01
        return out
    return wrong


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_messages_never_show_reference_values(assignment):
    """Wrong ints are answered without the right int; wrong tensors by error sizes only."""
    for name, problem in problems_for(assignment).items():
        for seed in range(3):
            for case in problem.cases(Draw(case_rng(seed, name))):
                if case.secret is not None and not case.raises:
                    message = case.check(Outcome("ok", {"value": case.secret + 1}))
                    assert message and not re.search(rf"\b{case.secret}\b", message.replace(case.label, "")), message
    namespace, _ = reference_namespace(assignment)
    verdicts = grade_namespace(assignment, {n: _perturbed(f) for n, f in namespace.items()}, seed=5)
    for verdict in verdicts.values():
        text = _without_error_sizes("\n".join(verdict.lines))
        assert not re.search(r"\d\.\d{3,}", text), text


def _signature(value):
    """What decides whether the reference can pass a case: scalars, and the shapes and
    dtypes of arrays (random values only move round-off, which the tolerances cover)."""
    if isinstance(value, np.ndarray):
        return ("array", value.shape, str(value.dtype))
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), str(value.dtype), value.requires_grad)
    if isinstance(value, ModuleSpec):
        return ("module", value.path, _signature(value.args), _signature(value.kwargs), value.state is not None)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _signature(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_signature(v) for v in value)
    return repr(value)


def _numbers(signature) -> tuple[list, list]:
    """A signature split into its structure and its numbers (sizes and scalars), in order."""
    if isinstance(signature, tuple):
        parts = [_numbers(s) for s in signature]
        return ["(", *(x for p in parts for x in p[0]), ")"], [n for p in parts for n in p[1]]
    try:
        return ["#"], [float(signature)]
    except (TypeError, ValueError):
        return [signature], []


def _boundary(cases: dict, budget: int, rng: np.random.Generator) -> list:
    """Among distinct cases, those at the boundary of every number of their structure (each
    size and scalar at its smallest and largest), then a random sample up to ``budget``."""
    by_structure: dict = {}
    for key, case in cases.items():
        structure, numbers = _numbers(key)
        by_structure.setdefault(tuple(structure), []).append((numbers, key))
    chosen = set()
    for members in by_structure.values():
        for i in range(len(members[0][0])):
            chosen.add(min(members, key=lambda m: m[0][i])[1])
            chosen.add(max(members, key=lambda m: m[0][i])[1])
    rest = [k for k in cases if k not in chosen]
    extra = max(0, budget - len(chosen))
    chosen |= {rest[i] for i in rng.choice(len(rest), size=min(extra, len(rest)), replace=False)}
    return [cases[k] for k in cases if k in chosen]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_drawn_case_passes_the_reference(assignment):
    """A case the reference fails is an honest student's lost points, or a grading crash.

    Every case of ``CONTRACT_SEEDS`` seeds is drawn: an integer case passes by
    construction once drawn (its answer is the reference's, computed as it is drawn,
    so a reference that raises fails here). The others are told apart by their group,
    scalars, shapes and dtypes; each distinct one runs through the kernel's procedures
    and the judge's check with the reference as the student, up to ``DISTINCT_BUDGET``
    per problem; past that, every one at the boundary (the smallest and the largest
    value of each size and scalar, per structure) and a random sample of the rest.
    Heavy cases (timing, full-size models) run for the first ``HEAVY_SEEDS`` seeds, training
    smoke tests for the first ``TRAINING_SEEDS``, every one of them.
    """
    namespace, _ = reference_namespace(assignment)
    problems = problems_for(assignment)
    for name, problem in problems.items():
        distinct, drawn, training = {}, 0, []
        for seed in range(SEEDS):
            for case in problem.cases(Draw(case_rng(seed, name))):
                drawn += 1
                if is_training_case(case):
                    training += [case] if seed < TRAINING_SEEDS else []
                    continue
                if (case.heavy and seed >= HEAVY_SEEDS) or (case.secret is not None and not case.raises):
                    continue  # (an integer case's answer is the reference's, computed as it was drawn)
                request = case.request() if callable(case.request) else case.request
                distinct.setdefault(_signature((case.group, case.raises, request)), case)
        cases = _boundary(distinct, DISTINCT_BUDGET, np.random.default_rng(0)) + training
        for start in range(0, len(cases), 400):
            chunk = cases[start:start + 400]
            with tempfile.TemporaryDirectory(prefix="contract-", dir=SCRATCH) as tmp:
                judge = Judge({name: problem}, 0, Path(tmp), strict=True)
                judge.write(name, chunk)
                with contextlib.redirect_stdout(io.StringIO()):
                    gradekit.capture(name, namespace, root=tmp)
                verdict = judge.judge_problem(name, None)
            assert verdict.fraction == 1.0, f"{name}, {len(cases)} distinct cases:\n" + "\n".join(verdict.lines)
        print(f"{name}: {drawn} cases drawn over {SEEDS} seeds, {len(distinct)} distinct, {len(cases)} run")
