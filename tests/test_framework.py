"""The grading machinery itself: codec, capture, judge and static checks."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.local import grade_namespace
from autograder.isolation.source_check import banned_uses, defining_cells
from gradekit.codec import CodecError, ModuleSpec, Reader, Unsupported, Var, Writer
from solutions import w1_conv_arithmetic as ref


def test_codec_round_trip(tmp_path):
    value = {"a": [1, 2.5, None, True, "s"], "t": (np.arange(6.0).reshape(2, 3),), "__odd": 3,
             "m": ModuleSpec("torch.nn.Conv2d", args=(2, 3, 1)), "v": Var("rm")}
    data = Writer(tmp_path).encode(value)
    json.dumps(data)  # plain JSON
    back = Reader(tmp_path, as_torch=True, variables={"rm": "kept"}).decode(data)
    assert back["a"] == [1, 2.5, None, True, "s"] and back["__odd"] == 3 and back["v"] == "kept"
    assert torch.equal(back["t"][0], torch.arange(6.0, dtype=torch.float64).reshape(2, 3))
    assert isinstance(back["m"], torch.nn.Conv2d) and back["m"].out_channels == 3


def test_codec_carries_no_objects(tmp_path):
    class AlwaysEqual:
        def __eq__(self, other):
            return True

    class Sneaky(torch.Tensor):
        pass

    data = Writer(tmp_path).encode([AlwaysEqual(), torch.zeros(2).as_subclass(Sneaky)])
    back = Reader(tmp_path, as_torch=False).decode(data)
    assert isinstance(back[0], Unsupported) and back[0] != 1
    assert type(back[1]) is np.ndarray  # a plain array, whatever the tensor's class was


def test_codec_rejects_path_tricks(tmp_path):
    with pytest.raises(CodecError):
        Reader(tmp_path, as_torch=False).decode({"__tensor__": "../../gradebook.db"})
    with pytest.raises(CodecError):
        Reader(tmp_path, as_torch=True).decode({"__module__": "os.system", "args": ["true"]})


def test_reference_passes_and_stub_scores_zero():
    ns = {"conv2d": ref.conv2d, "conv_output_size": ref.conv_output_size}
    verdicts = grade_namespace("w1_conv_arithmetic", ns, names=list(ns), seed=3)
    assert all(v.status == "passed" and v.fraction == 1.0 for v in verdicts.values())

    def conv2d(*args, **kwargs):
        raise NotImplementedError()

    verdict = grade_namespace("w1_conv_arithmetic", {"conv2d": conv2d}, names=["conv2d"])["conv2d"]
    assert verdict.fraction == 0.0 and "not implemented" in verdict.lines[0]


def test_missing_name_is_reported():
    verdict = grade_namespace("w1_conv_arithmetic", {}, names=["conv2d"])["conv2d"]
    assert verdict.fraction == 0.0
    assert "not defined" in "\n".join(verdict.lines)


def test_forbidden_builtin_is_caught_at_run_time_through_getattr():
    def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        fn = getattr(F, "con" + "v2d")
        return fn(x, weight, bias, stride, padding, dilation, groups)

    verdict = grade_namespace("w1_conv_arithmetic", {"conv2d": conv2d}, names=["conv2d"])["conv2d"]
    assert verdict.fraction == 0.0 and "asks you to implement yourself" in verdict.lines[0]


def test_forbidden_builtin_is_caught_in_source():
    src = "import torch.nn.functional as F\ndef conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):\n" \
          "    return getattr(F, 'conv2d')(x, w, b, stride, padding, dilation, groups)\n"
    assert banned_uses(src, {"conv2d"}) == ["conv2d"]
    assert banned_uses("from torch.nn.functional import *\n", {"conv2d"}) == ["from torch.nn.functional import *"]
    assert defining_cells(["x = 1", src], "conv2d") == [src]


def test_infinite_loop_times_out_and_other_problems_still_graded(monkeypatch):
    from autograder.checks import w1_conv_arithmetic as checks

    monkeypatch.setattr(checks.ConvOutputSize, "seconds", 0.2)

    def conv_output_size(*args, **kwargs):
        while True:
            pass

    start = time.perf_counter()
    verdicts = grade_namespace("w1_conv_arithmetic", {"conv_output_size": conv_output_size, "conv2d": ref.conv2d},
                               names=["conv_output_size", "conv2d"])
    assert verdicts["conv_output_size"].status == "timeout"
    assert verdicts["conv_output_size"].fraction == 0.0
    assert verdicts["conv2d"].fraction == 1.0
    assert time.perf_counter() - start < 60


def test_wrong_dtype_and_shape_messages_teach_without_values():
    def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        return ref.conv2d(x, weight, bias, stride, 0, dilation, groups).float()  # ignores padding, casts

    verdict = grade_namespace("w1_conv_arithmetic", {"conv2d": conv2d}, names=["conv2d"])["conv2d"]
    text = "\n".join(verdict.lines)
    assert verdict.fraction == 0.0  # only the validation group passes, which earns nothing alone
    assert "ok    invalid" in text and "argument validation" in text
    assert "dtype float32, expected float64" in text
    assert "has shape" in text and "expected" in text



# ----------------------------------------------------------------------------- bugs in check code
def _grade_with(problem, fn, strict=True):
    import contextlib
    import io
    import tempfile
    from pathlib import Path

    import gradekit
    from autograder.judge import Judge

    with tempfile.TemporaryDirectory() as tmp:
        judge = Judge({problem.name: problem}, 0, Path(tmp), strict=strict)
        judge.prepare()
        with contextlib.redirect_stdout(io.StringIO()):
            gradekit.capture(problem.name, {problem.name: fn}, root=tmp)
        return judge.collect(None)[problem.name]


def _problem(check, group="basic"):
    from autograder.cases import call
    from autograder.problem import Case, Group, Problem

    class Typo(Problem):
        name = "double"
        groups = (Group("basic", "twice the input."),)

        def cases(self, draw):
            return [Case(call("double", 3), check, "double(3)", group)]

    return Typo()


def test_a_misspelt_outcome_field_is_an_error_not_a_zero():
    from autograder.problem import CheckBug

    problem = _problem(lambda o: None if o.valeu == 6 else "wrong")
    for strict in (True, False):  # in tests and in production: never a silent zero for a right answer
        with pytest.raises(CheckBug, match="valeu"):
            _grade_with(problem, lambda x: 2 * x, strict=strict)
    assert _grade_with(_problem(lambda o: None if o.value == 6 else "wrong"), lambda x: 2 * x).fraction == 1.0


def test_a_case_of_an_undeclared_group_is_an_error():
    with pytest.raises(KeyError, match="not declared"):
        _grade_with(_problem(lambda o: None, group="typo"), lambda x: 2 * x)


def test_an_exception_in_a_check_is_raised_in_tests():
    problem = _problem(lambda o: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        _grade_with(problem, lambda x: 2 * x)
    verdict = _grade_with(problem, lambda x: 2 * x, strict=False)  # in production: a message, and no crash
    assert verdict.fraction == 0.0 and "could not be checked" in "\n".join(verdict.lines)
