"""The week-2 hidden checks: references pass, every wrong implementation loses points.

The wrong-answer corpus lives in ``tests/wrong/w2_normalization/<name>__<mistake>.py``;
each file defines ``<name>`` with one plausible student mistake.
"""
from __future__ import annotations

import inspect
import re
import time

import pytest

from autograder.checks import problems_for
from autograder.checks.w2_normalization import PROBLEMS, TRAIN_ACCURACY, TRAIN_BUDGET
from autograder.local import grade_namespace
from solutions import w2_normalization as ref

from .corpus import corpus, grade_wrong, is_ban, load, solution_lines, stub

ASSIGNMENT = "w2_normalization"
NAMES = ["batch_norm", "layer_norm", "instance_norm", "group_norm", "fuse_conv_bn", "make_cnn"]
CORPUS = corpus(ASSIGNMENT)
pytestmark = pytest.mark.usefixtures("one_thread")
#: Classic mistakes the corpus must hold, and what the message says when the
#: judge recognises the mistake (it names what the student did, never the answer).
DIAGNOSED = {
    "batch_norm__unbiased_variance": "unbiased variance",
    "batch_norm__momentum_reversed": "momentum weighting the old value",
    "batch_norm__no_running_update": "still holds its value before the call",
    "batch_norm__running_stats_rebound": "still holds its value before the call",
    "batch_norm__running_var_biased": "storing the biased variance",
    "batch_norm__batch_axis_only": "statistics over the batch axis only",
    "batch_norm__eps_outside_sqrt": "adding eps after the square root",
    "batch_norm__eval_uses_batch_stats": "in eval mode use running_mean and running_var",
    "layer_norm__unbiased_variance": "unbiased variance",
    "layer_norm__eps_outside_sqrt": "adding eps after the square root",
    "layer_norm__last_dim_only": "statistics over the last dimension only",
    "layer_norm__leading_dims": "statistics over the dimensions right after the batch",
    "instance_norm__unbiased_variance": "unbiased variance",
    "instance_norm__eps_outside_sqrt": "adding eps after the square root",
    "instance_norm__is_batch_norm": "batch norm's statistics",
    "instance_norm__layer_norm_stats": "layer norm's statistics",
    "instance_norm__last_axis_only": "statistics over the last axis only",
    "group_norm__unbiased_variance": "unbiased variance",
    "group_norm__groups_channels_mixed": "mixed up with groups of num_groups channels",
    "group_norm__round_robin_groups": "round-robin",
    "fuse_conv_bn__forgets_conv_bias": "as if the conv had no bias",
    "fuse_conv_bn__hardcoded_eps": "instead of the BatchNorm's own eps",
    "fuse_conv_bn__bias_only_if_conv_had_one": "has no bias",
    "make_cnn__ignores_norm": "which is not",
    "make_cnn__layernorm_last_dim": "last 1 dimension(s) only",
    "make_cnn__batch_stats_in_eval": "running statistics",
    "make_cnn__global_pool_one_pixel": "below the",
}


def test_problems_follow_the_spec_order():
    assert [p.name for p in PROBLEMS] == NAMES
    assert list(problems_for(ASSIGNMENT)) == NAMES


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_references_pass(seed):
    namespace = {name: getattr(ref, name) for name in NAMES}
    sources = [inspect.getsource(getattr(ref, name)) for name in NAMES]
    start, cpu = time.perf_counter(), time.process_time()
    verdicts = grade_namespace(ASSIGNMENT, namespace, seed=seed, sources=sources)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"week-2 hidden run (seed {seed}): {elapsed:.1f} s wall, {cpu:.1f} s CPU")
    assert set(verdicts) == set(NAMES)
    for name, verdict in verdicts.items():
        assert (verdict.status, verdict.fraction) == ("passed", 1.0), "\n".join(verdict.lines)
        assert verdict.groups and all(verdict.groups.values())
    # The whole week-2 hidden run for one submission stays quick on one CPU core
    # (target: well under 60 s; about 3-5 s, most of it make_cnn's five training runs).
    assert elapsed < 60, f"grading the references took {elapsed:.1f} s"


@pytest.mark.parametrize("seed", [3, 4])
def test_make_cnn_reference_trains_for_other_seeds(seed):
    """The training bars leave a wide margin: no seed makes the reference fail."""
    verdict = grade_namespace(ASSIGNMENT, {"make_cnn": ref.make_cnn}, names=["make_cnn"], seed=seed,
                              sources=[inspect.getsource(ref.make_cnn)])["make_cnn"]
    assert (verdict.status, verdict.fraction) == ("passed", 1.0), "\n".join(verdict.lines)


def test_corpus_covers_every_name():
    counts = {name: 0 for name in NAMES}
    mistakes = {name: 0 for name in NAMES}
    for path in CORPUS:
        name = path.stem.split("__")[0]
        assert name in counts, f"{path.name} does not start with a graded name"
        counts[name] += 1
        mistakes[name] += not is_ban(path)
    assert all(n >= 3 for n in counts.values()), counts
    assert all(n >= 3 for n in mistakes.values()), mistakes
    stems = {path.stem for path in CORPUS}
    assert set(DIAGNOSED) <= stems, sorted(set(DIAGNOSED) - stems)


@pytest.mark.filterwarnings("ignore:var\\(\\).*degrees of freedom:UserWarning")
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_wrong_implementation_loses_points(path):
    doc = (load(path).__doc__ or "").strip()
    assert len(doc.splitlines()) == 1, f"{path.name}: the docstring should be one line"
    message = grade_wrong(ASSIGNMENT, path, ref)
    if path.stem in DIAGNOSED:
        assert DIAGNOSED[path.stem] in message, message


def test_blank_stubs_score_zero():
    namespace = {name: stub(name) for name in NAMES}
    sources = [f"def {name}(*args, **kwargs):\n    raise NotImplementedError\n" for name in NAMES]
    verdicts = grade_namespace(ASSIGNMENT, namespace, seed=3, sources=sources)
    for name in NAMES:
        verdict = verdicts[name]
        assert (verdict.status, verdict.fraction) == ("error", 0.0), (name, verdict.lines)
        assert "not implemented" in "\n".join(verdict.lines)


def test_missing_definitions_are_reported():
    verdicts = grade_namespace(ASSIGNMENT, {}, names=["batch_norm", "fuse_conv_bn", "make_cnn"], seed=0)
    for verdict in verdicts.values():
        assert verdict.fraction == 0.0 and verdict.status == "missing"
        assert "not defined" in "\n".join(verdict.lines)


def test_every_group_has_a_hint():
    rng = __import__("numpy").random.default_rng(0)
    for problem in PROBLEMS:
        groups = {case.group for case in problem.cases(rng)}
        assert groups == set(problem.hints), (problem.name, groups ^ set(problem.hints))
        assert set(problem.weights) <= groups, problem.name


def test_hints_do_not_state_reference_code():
    for problem in PROBLEMS:
        lines = solution_lines(ref, problem.name)
        for hint in problem.hints.values():
            assert not any(line in hint for line in lines), (problem.name, hint)
            assert not re.search(r"return\s", hint)


def test_training_bars_are_stated_in_the_hints():
    hints = problems_for(ASSIGNMENT)["make_cnn"].hints
    for norm, bar in TRAIN_ACCURACY.items():
        hint = hints[f"trains ({norm})"]
        assert f"{bar:.0%}" in hint and f"{TRAIN_BUDGET['epochs']} epochs" in hint
    assert TRAIN_ACCURACY["none"] < min(v for k, v in TRAIN_ACCURACY.items() if k != "none")


def test_running_statistics_message_does_not_reveal_values():
    """A wrong running_var is reported by its error size, never by the expected numbers."""
    def shifted(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
        out = ref.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
        if training and running_var is not None:
            running_var.add_(0.123)
        return out

    verdict = grade_namespace(ASSIGNMENT, {"batch_norm": shifted}, names=["batch_norm"], seed=5)["batch_norm"]
    message = "\n".join(verdict.lines)
    assert not verdict.groups["running statistics"] and verdict.groups["eval mode"]
    assert "running_var" in message and "relative error" in message
    # error sizes are printed as 7.1e-02; nothing else with more than two decimals appears
    assert not re.search(r"\d\.\d{3,}", re.sub(r"\d\.\de[-+]\d+", "", message)), message
