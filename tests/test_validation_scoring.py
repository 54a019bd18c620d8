"""Argument validation pays only with working code (autograder.judge.group_score).

A validation group (every case of it expects an exception) earns its weight times the share,
by weight, of the problem's other groups that pass:

- a submission that raises ValueError for every input scores 0 in every week;
- the reference keeps full marks (also tests/test_contract.py, every week);
- a wrong answer that passes the validation group and some of the others keeps partial
  credit, its validation group counting in proportion.
"""
from __future__ import annotations

import pytest

from autograder.checks import ASSIGNMENTS, problems_for
from autograder.judge import VALIDATION_NOTE, group_score
from autograder.local import grade_namespace

from .corpus import WRONG, load

pytestmark = pytest.mark.usefixtures("one_thread")


def test_group_score():
    weights = {"basic": 1.0, "stride": 1.0, "invalid": 0.5}
    every = {"basic": True, "stride": True, "invalid": True}
    assert group_score(every, weights, {"invalid"}) == 1.0
    assert group_score({**every, "basic": False, "stride": False}, weights, {"invalid"}) == 0.0
    assert group_score({**every, "stride": False}, weights, {"invalid"}) == pytest.approx((1 + 0.5 * 0.5) / 2.5)
    assert group_score({**every, "invalid": False}, weights, {"invalid"}) == pytest.approx(2 / 2.5)
    assert group_score({**every, "stride": False}, weights, set()) == pytest.approx(1.5 / 2.5)  # no validation group
    assert group_score({"invalid": True}, {"invalid": 1.0}, {"invalid"}) == 1.0  # nothing else to ask


def raise_everything(*args, **kwargs):
    raise ValueError("invalid argument")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_raising_for_every_input_scores_zero(assignment):
    names = list(problems_for(assignment))
    sources = [f"def {name}(*args, **kwargs):\n    raise ValueError('invalid argument')\n" for name in names]
    verdicts = grade_namespace(assignment, dict.fromkeys(names, raise_everything), seed=4, sources=sources)
    validated = [n for n, v in verdicts.items() if any(v.groups.values())]
    assert validated, "no validation group passed: the stub does not reach them"
    for name, verdict in verdicts.items():
        assert verdict.fraction == 0.0, "\n".join(verdict.lines)


def test_a_wrong_answer_keeps_its_partial_credit():
    """conv_output_size with the padding counted once: right without padding and on every invalid
    argument, wrong wherever padding matters."""
    wrong = load(WRONG / "w1_conv_arithmetic" / "conv_output_size__padding_once.edit")
    problem = problems_for("w1_conv_arithmetic")["conv_output_size"]
    verdict = grade_namespace("w1_conv_arithmetic", {wrong.name: wrong.obj}, names=[wrong.name], seed=2,
                              sources=[wrong.source])[wrong.name]
    groups = verdict.groups
    assert groups["invalid"] and any(groups.values()) and not all(groups.values()), groups
    weights = problem.weights
    valid = [g for g in groups if g != "invalid"]
    share = sum(weights[g] for g in valid if groups[g]) / sum(weights[g] for g in valid)
    earned = sum(weights[g] for g in valid if groups[g]) + weights["invalid"] * share
    assert 0 < share < 1 and verdict.fraction == pytest.approx(earned / sum(weights[g] for g in groups), abs=1e-4)
    assert VALIDATION_NOTE in "\n".join(verdict.lines)
