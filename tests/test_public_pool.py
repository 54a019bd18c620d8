"""The self-check's public answers are no hidden answers (autograder.selfcheck_pack).

- The public seed is not a grading seed, and week 4's module problems draw their
  configuration (sizes, weights, inputs) per grading: no hidden case that carries drawn
  data (an array holding two or more distinct values, a module's weights included) has the
  request of a public case, in any week, and no two gradings share such a case.
- A case without drawn data (a few small ints, a fixed array) can be asked by many
  gradings: the pack stores no answer that every grading asks (a fixed, hand-picked case)
  and withholds answers until no check group of its probe gradings is wholly answered; on
  other gradings a table of the public answers earns at most :data:`TABLE_BOUND` of any
  problem on average (full-size models' layouts, torchvision's own, aside).
- A lookup table of the public answers (the stored answer where a hidden request is a
  public one, the stored exception where a public case raises, nothing elsewhere) scores 0
  on week 4's module problems, graded by the judge on what the kernel recorded.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import io
from pathlib import Path

import numpy as np
import pytest

import gradekit
from autograder.cases import Draw
from autograder.checks import ASSIGNMENTS, problems_for
from autograder.judge import Judge, case_rng, group_score
from autograder.seeds import grading_seed
from autograder.selfcheck_pack import HIDDEN_SEEDS, PROBE_SEEDS, PUBLIC_SEED, carries_drawn_data, public_cases, \
    request_key, stores_answer, withheld
from gradekit.codec import dump_json

pytestmark = pytest.mark.usefixtures("one_thread")
#: Grading seeds drawn by the tests here (none of them a probe seed of the pack).
HIDDEN = tuple(range(100, 116))
#: The most a table of the public answers may earn of a problem on average over HIDDEN (measured
#: over 100 gradings: at most 1%, round_repeats', whose cases come from EfficientNet's table).
TABLE_BOUND = 0.05
#: Week 4's module problems, whose configurations used to come from a fixed pool of six.
W4_MODULES = ("convolutionalize", "FCN", "UNet", "DepthwiseSeparableConv", "ASPP", "DeepLabV3Plus")


def _request(case):
    return case.request() if callable(case.request) else case.request


def published_layout(case) -> bool:
    """A full-size model's parameter count and layout: torchvision's, public by nature."""
    return case.heavy and bool(case.public and case.public.fields) and \
        all(f.startswith("facts.") for f in case.public.fields)


@functools.lru_cache(maxsize=None)
def hidden_gradings(assignment: str, name: str) -> tuple:
    """Per seed of :data:`HIDDEN`: the problem's cases as (request key, drawn data?, group, raises?,
    answerable by a table?); training runs are not answerable (their requests are not made)."""
    problem = problems_for(assignment)[name]
    gradings = []
    for seed in HIDDEN:
        rows = []
        for case in problem.cases(Draw(case_rng(seed, name))):
            if case.heavy and case.public is None:
                rows.append((None, True, case.group, bool(case.raises), False))
            else:
                rows.append((request_key(case), carries_drawn_data(_request(case)), case.group, bool(case.raises),
                             not published_layout(case)))
        gradings.append(rows)
    return tuple(gradings)


def table_score(problem, rows, answers: set) -> float:
    """What a table of ``answers`` (request keys) earns on one grading's ``rows``: a case passes
    exactly when its request is a stored answer's; the judge's scoring (a validation group's share)."""
    passed: dict = {}
    for key, _, group, _, answerable in rows:
        passed[group] = passed.get(group, True) and answerable and key in answers
    validation = {r[2] for r in rows if r[3]} - {r[2] for r in rows if not r[3]}
    return group_score(passed, {g: problem.group(g).weight for g in passed}, validation)


def test_the_public_seed_is_no_grading_seed():
    assert PUBLIC_SEED >= HIDDEN_SEEDS and not set(HIDDEN) & set(PROBE_SEEDS)
    secret = b"x" * 32
    assert all(0 <= grading_seed(secret, "w4_segmentation", f"student{i}", "w4_segmentation.ipynb") < HIDDEN_SEEDS
               for i in range(200))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_hidden_case_with_drawn_data_is_a_public_case(assignment):
    for name, problem in problems_for(assignment).items():
        public = {request_key(c): c.label for c in public_cases(problem)}
        for seed, rows in zip(HIDDEN, hidden_gradings(assignment, name)):
            shared = [public[row[0]] for row in rows if row[1] and row[0] in public]
            assert not shared, f"{name}, seed {seed}: hidden cases equal to public ones: {shared[:3]}"


def test_withheld_answers_leave_no_group_wholly_answered():
    """Four probe gradings, answers a-e: a is asked by every grading (withheld first); then the
    groups [b, c] and [d] consist of answers only: c (asked more often overall than b), then d."""
    answers = dict.fromkeys("abcde")
    asked = ({"g": ["a", "b"], "h": ["c", "x"]}, {"g": ["a"], "h": ["b", "c"]}, {"g": ["a", "d"], "h": ["c", None]},
             {"g": ["a", "e"], "h": ["d"]})
    held = withheld(answers, asked)
    assert held == {"a", "c", "d"}
    assert not [keys for grading in asked for keys in grading.values()
                if all(k in answers and k not in held for k in keys)]
    assert withheld(answers, ()) == frozenset() and withheld({}, asked) == frozenset()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_table_of_public_answers_earns_little(assignment):
    for name, problem in problems_for(assignment).items():
        answers = {request_key(c): c.label for c in public_cases(problem) if stores_answer(c)}
        gradings = hidden_gradings(assignment, name)
        fixed = [label for key, label in answers.items()
                 if all(key in {row[0] for row in rows if row[4]} for rows in gradings)]
        assert not fixed, f"{name}: every grading asks the public answers to {fixed[:3]}"
        scores = [table_score(problem, rows, set(answers)) for rows in gradings]
        assert np.mean(scores) <= TABLE_BOUND, f"{name}: a table of the public answers earns {np.mean(scores):.1%}"


def test_week_4_module_problems_draw_a_configuration_per_grading():
    for name in W4_MODULES:
        seen: dict = {}
        for seed, rows in zip(HIDDEN, hidden_gradings("w4_segmentation", name)):
            for key, data, group, _, _ in rows:
                if data and key is not None:
                    assert seen.setdefault(key, seed) == seed, f"{name}: seeds {seen[key]} and {seed} share a " \
                                                               f"{group!r} case"
        assert seen, name


def lookup_table_verdict(assignment: str, name: str, seed: int, workdir: Path, cases=None):
    """The judge's verdict on a lookup table of ``name``'s public answers at grading ``seed``
    (on ``cases`` instead of the grading's own when given).

    The kernel runs the reference on every (non-training) case; then every record whose request
    is not that of a public case storing an answer or an exception is replaced by the table's
    error (it has no answer there): what remains is what a table of the public answers returns."""
    problem = problems_for(assignment)[name]
    known = {request_key(c) for c in public_cases(problem) if stores_answer(c) or c.raises}
    judge = Judge({name: problem}, seed, workdir, strict=True)
    if cases is None:
        judge.prepare(select=lambda case: not case.heavy)
    else:
        judge.write(name, cases)
    reference = vars(importlib.import_module(f"solutions.{assignment}"))
    with contextlib.redirect_stdout(io.StringIO()):
        gradekit.capture(name, reference, root=workdir)
    for i, case in enumerate(judge.cases[name]):
        if request_key(case) not in known:
            dump_json(workdir / "out" / name / f"{i}.json", {
                "status": "error", "stage": "call", "error": {"type": "KeyError", "message": "not in the table"}})
    return judge.judge_problem(name, None)


@pytest.mark.parametrize("name", W4_MODULES)
def test_a_lookup_table_of_public_answers_scores_zero_on_week_4_modules(name, tmp_path):
    for seed in (0, 1, 2):
        verdict = lookup_table_verdict("w4_segmentation", name, seed, tmp_path / str(seed))
        assert verdict.fraction == 0.0, "\n".join(verdict.lines)


def test_the_lookup_table_answers_the_public_cases(tmp_path):
    """The harness itself: on the public cases' own requests the table earns every group they cover."""
    problem = problems_for("w4_segmentation")["FCN"]
    cases = public_cases(problem)
    verdict = lookup_table_verdict("w4_segmentation", "FCN", 0, tmp_path, cases)
    assert verdict.groups and all(verdict.groups.values()), "\n".join(verdict.lines)
    assert {c.group for c in cases} == set(verdict.groups)
