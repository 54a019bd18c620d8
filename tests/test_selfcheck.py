"""The students' self-check: public cases with stored answers (gradekit.public_cases,
autograder.selfcheck_pack).

- the reference passes every public case of every problem, a stub is "not implemented";
- on the wrong-answer corpus: at least 85% of each week's answers fail it, and every
  answer that calls a forbidden built-in is told so ("forbidden");
- it never fails a case the grader passes: for every corpus answer, each public case the
  self-check fails is one the hidden check (the judge, on the same inputs) fails too;
- the comparison rules, the drawn-where-read inputs of timing cases, grading mode;
- ``nbgrader validate`` on a released notebook agrees with it.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import io
import json
import subprocess
import tempfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

import gradekit
from autograder.cases import Draw
from autograder.checks import ASSIGNMENTS, problems_for
from autograder.judge import Judge, case_rng
from autograder.notebooks import fill, reference_definitions
from autograder.selfcheck_pack import PUBLIC_SEED, build, public_cases
from gradekit.codec import Random, Reader, ReturnedModule, Writer
from gradekit.public_cases import SelfCheckFailed, check_field, compare, run

from .conftest import REPO, make_course
from .corpus import corpus, load, stub

pytestmark = pytest.mark.usefixtures("one_thread")
#: The share of each week's wrong-answer corpus the self-check must catch.
CATCH_RATE = 0.85


@functools.lru_cache(maxsize=None)
def pack(assignment: str) -> Path:
    """The assignment's self-check folder, built once per test session."""
    folder = Path(tempfile.mkdtemp(prefix=f"selfcheck-{assignment}-")) / "selfcheck"
    build(assignment, folder)
    return folder


def reference(assignment: str):
    return importlib.import_module(f"solutions.{assignment}")


def self_check(assignment: str, name: str, obj, source: str):
    namespace = dict(vars(reference(assignment)))
    namespace[name] = obj
    return run(name, namespace, pack(assignment), sources=[source])


@functools.lru_cache(maxsize=None)
def corpus_reports(assignment: str) -> dict[str, object]:
    """corpus file name -> the self-check's report on that wrong answer."""
    reports = {}
    for path in corpus(assignment):
        wrong = load(path)
        with contextlib.redirect_stderr(io.StringIO()):
            reports[path.name] = (wrong, self_check(assignment, wrong.name, wrong.obj, wrong.source))
    return reports


# ----------------------------------------------------------------------------- the reference and stubs
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_passes_every_public_case(assignment):
    ref = reference(assignment)
    for name in problems_for(assignment):
        report = self_check(assignment, name, getattr(ref, name), inspect.getsource(getattr(ref, name)))
        assert report.status == "passed", report.lines
        assert report.messages, f"{name} has no public case"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_a_stub_is_not_implemented(assignment):
    for name in problems_for(assignment):
        report = self_check(assignment, name, stub(name), f"def {name}(*args):\n    raise NotImplementedError()\n")
        assert report.status == "not implemented", (name, report.lines)


def test_every_problem_has_public_cases_in_most_groups():
    """The self-check covers each problem: public cases in at least half of the groups it could
    judge from data (not those of training runs or full-size forward passes only), though
    answers that gradings ask again are withheld (tests/test_public_pool.py)."""
    for assignment in ASSIGNMENTS:
        for name, problem in problems_for(assignment).items():
            groups = {c.group for c in public_cases(problem)}
            judged = {c.group for c in problem.cases(Draw(case_rng(PUBLIC_SEED, name))) if c.public is not None}
            assert groups and len(groups) >= len(judged) / 2, (name, sorted(groups), sorted(judged))


# ----------------------------------------------------------------------------- the wrong-answer corpus
@pytest.mark.filterwarnings("ignore:var\\(\\).*degrees of freedom:UserWarning")
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_self_check_catches_the_corpus(assignment):
    reports = corpus_reports(assignment)
    passing = sorted(f for f, (_, r) in reports.items() if r.passed)
    rate = 1 - len(passing) / len(reports)
    print(f"{assignment}: {len(reports) - len(passing)}/{len(reports)} caught ({rate:.0%}); passing: {passing}")
    assert rate >= CATCH_RATE, passing
    for file, (wrong, report) in reports.items():
        if wrong.is_ban:
            assert report.status == "forbidden", (file, report.lines)
            assert "a built-in this problem asks you to implement yourself" in report.lines[0]


@pytest.mark.filterwarnings("ignore:var\\(\\).*degrees of freedom:UserWarning")
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_self_check_never_fails_a_case_the_grader_passes(assignment, tmp_path):
    """For every corpus answer, on the same inputs: a public case the self-check fails is failed
    by the hidden check too (the reference's stored answer never demands more than the grader)."""
    problems = problems_for(assignment)
    for file, (wrong, report) in corpus_reports(assignment).items():
        if report.status != "failed":  # forbidden / not implemented: no case was judged
            continue
        problem = problems[wrong.name]
        stored = json.loads((pack(assignment) / f"{wrong.name}.json").read_text())["cases"]
        cases = [public_cases(problem)[entry["index"]] for entry in stored]  # those not left out for size
        workdir = tmp_path / file
        judge = Judge({wrong.name: problem}, 0, workdir, strict=True)
        judge.write(wrong.name, cases)
        namespace = dict(vars(reference(assignment)))
        namespace[wrong.name] = wrong.obj
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            gradekit.capture(wrong.name, namespace, root=workdir)
        outcomes, _ = judge._outcomes(wrong.name)
        assert len(outcomes) == len(report.messages) == len(cases)
        for case, outcome, mine in zip(cases, outcomes, report.messages):
            if mine is None or case.public.speed is not None:  # timing: the inputs differ, the bound is the same
                continue
            assert judge.case_message(wrong.name, case, outcome) is not None, \
                f"{file}: the self-check fails {case.label!r} ({mine}) but the grader passes it"


# ----------------------------------------------------------------------------- rules
def test_compare_rules():
    assert compare(3, 3, "x") is None
    assert "int" in compare(3.0, 3, "x") and "int" in compare(True, 1, "x")
    assert compare(np.array(0.25), 0.25, "x") is None  # a 0-d tensor counts as a number
    assert compare(float("nan"), float("nan"), "x") is None and "NaN" in compare(0.5, float("nan"), "x")
    assert "expected" in compare(0.5, 0.25, "x", tol=1e-9)
    assert compare([1, (2, 3)], (1, [2, 3]), "x") is None  # lists and tuples alike
    assert "items" in compare([1, 2], [1, 2, 3], "x")
    assert compare({"a": 1, "extra": 2}, {"a": 1}, "x") is None
    assert "no 'a'" in compare({}, {"a": 1}, "x")
    assert compare(np.ones(3), np.ones(3) + 1e-12, "x") is None
    assert "dtype" in compare(np.ones(3, np.float32), np.ones(3), "x")
    conv = ReturnedModule("Conv2d", {"stride": (1, 1), "training": False}, {"weight": np.ones((2, 1, 3, 3), np.float32)})
    same = ReturnedModule("Conv2d", {"stride": (1, 1), "training": True}, {"weight": np.ones((2, 1, 3, 3), np.float32)})
    assert compare(same, conv, "m") is None  # the mode does not count
    strided = ReturnedModule("Conv2d", {"stride": (2, 2)}, conv.state)
    assert "settings" in compare(strided, conv, "m")


def test_field_rules():
    record = {"value": (1, np.array([2]), 3, 4), "outputs": [np.zeros((2, 3))],
              "facts": {"state_shapes": {"w": [3, 1]}, "modules": [["", "Net"], ["fc", "Linear"]]}}
    assert check_field(record, "outputs.0:shape", [2, 3], None) is None
    assert "shape" in check_field(record, "outputs.0:shape", [2, 4], None)
    assert check_field(record, "value:ints", [1, 2, 3, 4], None) is None  # 1-element int tensors count
    assert check_field(record, "facts.state_shapes:keys", {"w": [3, 1]}, None) is None
    assert "unexpected" in check_field({"facts": {"state_shapes": {"w": [3, 1], "b": [3]}}},
                                       "facts.state_shapes:keys", {"w": [3, 1]}, None)
    assert check_field(record, "facts.modules:contains", [["fc", "Linear"]], None) is None
    assert "not recorded" in check_field(record, "grads", {}, None)


def test_random_inputs_are_the_same_numbers_wherever_they_are_read(tmp_path):
    encoded = Writer(tmp_path).encode({"x": Random((2, 3), "float32", 7)})
    a = Reader(tmp_path, as_torch=True).decode(encoded)["x"]
    b = Reader(tmp_path, as_torch=False).decode(encoded)["x"]
    assert a.dtype == torch.float32 and np.array_equal(a.numpy(), b)
    assert np.array_equal(a.numpy(), torch.randn(2, 3, generator=torch.Generator().manual_seed(7)).numpy())
    assert not list(tmp_path.iterdir())  # nothing stored


def test_a_forbidden_built_in_is_named_from_the_source_or_the_trace():
    import torch.nn.functional as F

    report = self_check("w1_conv_arithmetic", "conv2d", F.conv2d, "conv2d = F.conv2d\n")
    assert report.status == "forbidden" and "conv2d" in report.lines[0]

    def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        return getattr(F, "con" + "v2d")(x, weight, bias, stride, padding, dilation, groups)
    report = self_check("w1_conv_arithmetic", "conv2d", conv2d, inspect.getsource(conv2d))
    assert report.status == "forbidden" and "calls" in report.lines[0]


def test_the_self_check_prints_or_raises_and_steps_aside_while_grading(tmp_path, capsys):
    folder = pack("w1_conv_arithmetic")
    ref = reference("w1_conv_arithmetic")
    gradekit.selfcheck("same_padding", {"same_padding": ref.same_padding}, root=folder.parent)
    assert "self-check passed" in capsys.readouterr().out
    with pytest.raises(SelfCheckFailed) as failure:
        gradekit.selfcheck("same_padding", {"same_padding": lambda kernel_size, dilation=1: 1}, root=folder.parent)
    assert "FAILED" in str(failure.value) and "hint:" in str(failure.value)
    assert failure.value._render_traceback_() == str(failure.value).splitlines()  # no traceback in a notebook
    (tmp_path / ".gradekit" / "cases").mkdir(parents=True)
    (tmp_path / ".gradekit" / "cases" / "same_padding.json").write_text("[]")
    gradekit.selfcheck("same_padding", {}, root=tmp_path)
    assert "graded by the autograder" in capsys.readouterr().out


# ----------------------------------------------------------------------------- nbgrader validate
def _validate(course: Path, nb) -> subprocess.CompletedProcess:
    path = course / "release" / "w1_conv_arithmetic" / "attempt.ipynb"
    nbformat.write(nb, path)
    return subprocess.run(["nbgrader", "validate", str(path)], cwd=course, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
def test_nbgrader_validate_agrees_with_the_self_check(tmp_path):
    course = make_course(tmp_path / "course", ["w1_conv_arithmetic"])
    released = nbformat.read(course / "release" / "w1_conv_arithmetic" / "w1_conv_arithmetic.ipynb", as_version=4)
    assert (course / "release" / "w1_conv_arithmetic" / "selfcheck" / "conv2d.json").is_file()
    answers = reference_definitions("w1_conv_arithmetic")

    right = _validate(course, fill(nbformat.from_dict(json.loads(json.dumps(released))), answers))
    assert "Success! Your notebook passes all the tests." in right.stdout, right.stdout[-3000:] + right.stderr[-3000:]

    banned = dict(answers, conv2d="def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):\n"
                                  "    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)\n")
    wrong = _validate(course, fill(nbformat.from_dict(json.loads(json.dumps(released))), banned))
    assert "VALIDATION FAILED ON 1 CELL(S)" in wrong.stdout, wrong.stdout[-3000:]
    assert "conv2d uses conv2d, a built-in this problem asks you to implement yourself" in wrong.stdout

    off_by_one = dict(answers, same_padding=answers["same_padding"].replace("return (span - 1) // 2",
                                                                             "return (span + 1) // 2"))
    assert off_by_one != answers
    slip = _validate(course, fill(nbformat.from_dict(json.loads(json.dumps(released))), off_by_one))
    assert "VALIDATION FAILED ON 1 CELL(S)" in slip.stdout and "same_padding: self-check FAILED" in slip.stdout


def test_packs_are_generated_not_kept_in_git():
    ignored = subprocess.run(["git", "check-ignore", "course/source/w1_conv_arithmetic/selfcheck/conv2d.json"],
                             cwd=REPO, capture_output=True, text=True)
    assert ignored.returncode == 0


def test_the_notebooks_random_stream_is_left_alone():
    ref = reference("w1_conv_arithmetic")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    report = self_check("w1_conv_arithmetic", "conv2d", ref.conv2d, inspect.getsource(ref.conv2d))
    assert report.passed and torch.equal(torch.rand(3), expected)
