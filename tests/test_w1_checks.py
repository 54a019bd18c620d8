"""The week-1 hidden checks: references pass, every wrong implementation loses points.

The wrong-answer corpus lives in ``tests/wrong/w1_conv_arithmetic/<name>__<mistake>.py``;
each file defines ``<name>`` with one plausible student mistake.
"""
from __future__ import annotations

import inspect
import re
import time

import pytest

from autograder.checks import problems_for
from autograder.checks.w1_conv_arithmetic import PROBLEMS, check_profile
from autograder.local import grade_namespace
from solutions import w1_conv_arithmetic as ref

from .corpus import corpus, grade_wrong, solution_lines, stub

ASSIGNMENT = "w1_conv_arithmetic"
NAMES = ["conv_output_size", "conv_transpose_output_size", "same_padding", "conv_params", "conv_macs",
         "receptive_field", "conv2d", "max_pool2d", "compose_convs", "profile_model"]
CORPUS = corpus(ASSIGNMENT)
pytestmark = pytest.mark.usefixtures("one_thread")


def test_problems_follow_the_spec_order():
    assert [p.name for p in PROBLEMS] == NAMES
    assert list(problems_for(ASSIGNMENT)) == NAMES


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_references_pass(seed):
    namespace = {name: getattr(ref, name) for name in NAMES}
    sources = [inspect.getsource(getattr(ref, name)) for name in NAMES]
    start = time.perf_counter()
    verdicts = grade_namespace(ASSIGNMENT, namespace, seed=seed, sources=sources)
    elapsed = time.perf_counter() - start
    assert set(verdicts) == set(NAMES)
    for name, verdict in verdicts.items():
        assert (verdict.status, verdict.fraction) == ("passed", 1.0), "\n".join(verdict.lines)
        assert verdict.groups and all(verdict.groups.values())
    # The whole week-1 hidden run for one submission stays quick (target: well under 15 s).
    assert elapsed < 60, f"grading the references took {elapsed:.1f} s"


def test_corpus_covers_every_name():
    counts = {name: 0 for name in NAMES}
    for path in CORPUS:
        name = path.stem.split("__")[0]
        assert name in counts, f"{path.name} does not start with a graded name"
        counts[name] += 1
    assert all(n >= 3 for n in counts.values()), counts


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_wrong_implementation_loses_points(path):
    grade_wrong(ASSIGNMENT, path, ref)


def test_blank_stubs_score_zero():
    namespace = {name: stub(name) for name in NAMES}
    sources = [f"def {name}(*args, **kwargs):\n    raise NotImplementedError\n" for name in NAMES]
    verdicts = grade_namespace(ASSIGNMENT, namespace, seed=3, sources=sources)
    for name in NAMES:
        verdict = verdicts[name]
        assert (verdict.status, verdict.fraction) == ("error", 0.0), (name, verdict.lines)
        assert "not implemented" in "\n".join(verdict.lines)


def test_missing_definitions_are_reported():
    verdicts = grade_namespace(ASSIGNMENT, {}, names=["conv_params", "conv2d"], seed=0)
    for verdict in verdicts.values():
        assert verdict.fraction == 0.0 and verdict.status == "missing"
        assert "not defined" in "\n".join(verdict.lines)


def test_int_answers_must_be_ints():
    verdict = grade_namespace(ASSIGNMENT, {"conv_macs": lambda *a, **k: float(ref.conv_macs(*a, **k))},
                              names=["conv_macs"], seed=0)["conv_macs"]
    assert verdict.fraction < 1.0
    assert "float" in "\n".join(verdict.lines)


def test_profile_messages_do_not_reveal_counts():
    expected = [{"name": "0", "output_shape": (8, 5, 7), "params": 224, "macs": 75264, "activations": 280},
                {"name": "1", "output_shape": (8, 5, 7), "params": 0, "macs": 0, "activations": 280}]
    types = {"0": "Conv2d", "1": "ReLU"}
    got = [dict(expected[0], macs=12345), dict(expected[1])]
    message = check_profile(got, expected, types, "profile_model on a model")
    assert "row 0 (name '0', a Conv2d): macs is 12345, which is not right" in message
    assert "75264" not in message and "224" not in message
    got = [dict(expected[0], params=3), dict(expected[1])]
    assert "params is 3" in check_profile(got, expected, types, "x") and "224" not in check_profile(got, expected, types, "x")
    assert "rows" in check_profile(expected[:1], expected, types, "x")
    assert "name" in check_profile([expected[1], expected[0]], expected, types, "x")
    assert "batch" in check_profile([dict(expected[0], output_shape=(1, 8, 5, 7)), expected[1]], expected, types, "x")
    assert "float" in check_profile([dict(expected[0], macs=75264.0), expected[1]], expected, types, "x")
    assert "list" in check_profile(7, expected, types, "x")
    assert "no 'activations' key" in check_profile([{k: v for k, v in expected[0].items() if k != "activations"},
                                                     expected[1]], expected, types, "x")
    assert check_profile([dict(r, output_shape=list(r["output_shape"])) for r in expected], expected, types, "x") is None


def test_hints_do_not_state_reference_code():
    for problem in PROBLEMS:
        lines = solution_lines(ref, problem.name)
        for hint in problem.hints.values():
            assert not any(line in hint for line in lines), (problem.name, hint)
            assert not re.search(r"return\s", hint)
