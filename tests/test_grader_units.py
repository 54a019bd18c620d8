"""Fast checks of the hardened grader's pieces (no kernel, no nbgrader run).

The end-to-end runs of the cheat and fault corpora are in ``tests/test_hardening.py``.
"""
from __future__ import annotations

import logging

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder.cases import Draw
from autograder.checks.w1_conv_arithmetic import Conv2d
from autograder.integration.execute import JudgedExecute
from autograder.isolation.sandbox.core import Sandbox
from autograder.isolation.sandbox.errors import SandboxError
from autograder.isolation.sandbox.kernel import SandboxedKernelManager
from autograder.isolation.sanitize.cell_source import strip_gradekit_statements
from autograder.isolation.sanitize.cells import SanitizeCells
from autograder.isolation.sanitize.integrity import integrity_findings
from autograder.problem import Outcome
from gradekit.codec import Unsupported
from solutions import w1_conv_arithmetic as ref

MISSING_BWRAP = "/nonexistent/gradekit-test/bwrap"


# ----------------------------------------------------------------------------- sandbox
def test_sandbox_refuses_to_start_without_bubblewrap(tmp_path):
    sandbox = Sandbox(tmp_path / "work", tmp_path / "run", bwrap=MISSING_BWRAP)
    with pytest.raises(SandboxError, match="bubblewrap is not installed"):
        sandbox.prepare()


def test_grading_refuses_without_bubblewrap_and_says_how_to_allow_it(tmp_path):
    executor = JudgedExecute(bwrap=MISSING_BWRAP)
    with pytest.raises(SandboxError) as info:
        executor.check_sandbox()
    message = str(info.value)
    assert "refusing to grade" in message and "bubblewrap" in message
    assert 'c.JudgedExecute.sandbox = "none"' in message

    # The whole executor refuses before running anything.
    nb = new_notebook(cells=[new_code_cell("print('hello')")])
    with pytest.raises(SandboxError, match="refusing to grade"):
        executor.preprocess(nb, {"nbgrader": {"assignment": "w1_conv_arithmetic"},
                                 "metadata": {"path": str(tmp_path)}})


def test_unsandboxed_grading_needs_the_flag_and_is_loud(caplog):
    logger = logging.getLogger("gradekit-test-unsandboxed")
    executor = JudgedExecute(sandbox="none", bwrap=MISSING_BWRAP, log=logger)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        executor.check_sandbox()  # no bubblewrap needed: the instructor allowed it
    text = caplog.text
    assert "GRADING WITHOUT A SANDBOX" in text and "sandbox = 'none'" in text
    assert sum(1 for r in caplog.records if r.levelno >= logging.WARNING) >= 3


def test_interrupts_reach_the_kernel_not_bubblewrap():
    """jupyter_client binds interrupt_kernel to its own method: ours must be the one called."""
    assert SandboxedKernelManager.interrupt_kernel is SandboxedKernelManager._async_interrupt_kernel


# ----------------------------------------------------------------------------- checks
def _speed_case():
    cases = [c for c in Conv2d().cases(Draw(0)) if c.group == "speed"]
    assert len(cases) == 1
    return cases[0]


def test_speed_group_checks_every_timed_call_on_fresh_inputs():
    import torch

    case = _speed_case()
    inputs = [([np.asarray(a) for a in item["args"]], item["kwargs"]) for item in case.request()["inputs"]]
    assert len(inputs) == case.request()["repeats"] + 1
    assert len({a[0].tobytes() for a, _ in inputs}) == len(inputs), "every call gets fresh inputs"
    right = [ref.conv2d(*(torch.from_numpy(a) for a in args), **kw).numpy() for args, kw in inputs]
    fast = {"student_s": 0.001, "baseline_s": 0.01}
    for value in (Unsupported("Anything"), 1, None, np.zeros((1, 1, 1, 1), np.float32)):
        message = case.check(Outcome("ok", {**fast, "values": [right[0]] + [value] * (len(right) - 1)}))
        assert message and "the output of call 2" in message, value
    memoised = [right[0]] * len(right)  # the warm-up's answer returned again: wrong for the later inputs
    assert "the output of call 2" in case.check(Outcome("ok", {**fast, "values": memoised}))
    assert case.check(Outcome("ok", {**fast, "values": right})) is None
    assert "slower" in case.check(Outcome("ok", {"student_s": 1.0, "baseline_s": 0.001, "values": right}))
    assert "results were recorded" in case.check(Outcome("ok", {**fast, "values": right[:2]}))


# ----------------------------------------------------------------------------- sanitize
TEST_SOURCE = ('### BEGIN HIDDEN TESTS\nimport gradekit; gradekit.capture("conv2d", globals())\n'
               '### END HIDDEN TESTS\n# Visible checks\nx = torch.randn(1, 2, 5, 5)\n'
               'assert torch.allclose(conv2d(x, x), F.conv2d(x, x))\nprint("ok")')
KNOWN = {
    "impl_conv2d": {"name": "impl_conv2d", "test": False, "solution": True, "source": "", "captures": []},
    "test_conv2d": {"name": "test_conv2d", "test": True, "solution": False, "source": TEST_SOURCE,
                    "captures": ["conv2d"]},
}


def _cell(source, grade_id=None):
    cell = new_code_cell(source)
    if grade_id:
        cell.metadata["nbgrader"] = {"grade_id": grade_id}
    return cell


@pytest.mark.parametrize("merged", [TEST_SOURCE, TEST_SOURCE.split("### END HIDDEN TESTS\n")[1]])
def test_a_test_cell_merged_into_the_solution_is_taken_out(merged):
    definition = "def conv2d(x, w):\n    return x\n"
    nb = new_notebook(cells=[_cell(definition + "\n\n" + merged + "\n", "impl_conv2d")])
    notes = []
    SanitizeCells()._take_out_merged_tests(nb, KNOWN, notes)
    assert nb.cells[0].source.strip() == definition.strip()
    assert notes and "test_conv2d" in notes[0]


def test_only_statements_that_name_gradekit_are_removed():
    source = ('"""Notes on the gradekit module,\nover two lines."""\nimport gradekit; gradekit.capture("a", globals())\n'
              'text = "gradekit"\n\ndef f():\n    import gradekit.capture\n    return 1\n')
    out = strip_gradekit_statements(source)
    compile(out, "cell", "exec")  # still valid Python
    assert '"""Notes on the gradekit module,' in out and 'text = "gradekit"' in out
    assert "import gradekit" not in out and "capture(" not in out and "    pass\n" in out


def test_integrity_scan_sees_through_computed_module_names():
    source = ('import importlib\nimport contextlib\n_m = importlib.import_module("grade" + "kit.capture")\n'
              '_m._op_trace = lambda seen: contextlib.nullcontext()\n')
    findings = "\n".join(integrity_findings([("cell 1", source)]))
    assert "builds the string 'gradekit'" in findings
    assert "assigns to gradekit.capture._op_trace" in findings


def test_reference_solutions_have_no_integrity_findings():
    from autograder.notebooks import reference_definitions

    refs = reference_definitions("w1_conv_arithmetic")
    setup = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\nimport numpy as np"
    assert integrity_findings([(name, src) for name, src in refs.items()], [setup]) == []
    nbformat.validate(new_notebook(cells=[new_code_cell(src) for src in refs.values()]))


def test_wrong_values_fail_rather_than_error():
    """Every group failing is "failed" when answers were wrong, "error" only when nothing ran."""
    import torch
    import torch.nn.functional as F

    from autograder.local import grade_namespace

    def flipped(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        if not isinstance(stride, int) or not isinstance(padding, int) or groups != 1:
            raise RuntimeError("not handled")
        w = torch.flip(weight, dims=(-2, -1))
        n, _, h, wd = x.shape
        f, _, kh, kw = w.shape
        cols = F.unfold(x, (kh, kw), dilation=dilation, padding=padding, stride=stride)
        oh = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
        ow = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
        out = (w.reshape(f, -1) @ cols).reshape(n, f, oh, ow)
        return out if bias is None else out + bias.reshape(1, -1, 1, 1)

    def crashes(*args, **kwargs):
        raise RuntimeError("boom")

    verdict = grade_namespace("w1_conv_arithmetic", {"conv2d": flipped}, names=["conv2d"], seed=0)["conv2d"]
    assert (verdict.status, verdict.fraction) == ("failed", 0.0), verdict.lines
    verdict = grade_namespace("w1_conv_arithmetic", {"conv2d": crashes}, names=["conv2d"], seed=0)["conv2d"]
    assert (verdict.status, verdict.fraction) == ("error", 0.0), verdict.lines


def test_hint_tables_give_groups_with_weights_and_continued_hints():
    from autograder.problem import Group, hints

    groups = hints("""
        basic: start from the kernel sliding: one pixel at a time.
        training, (N, C, *) [0.5]: statistics over every axis
            except the channel axis.""")
    assert groups == (Group("basic", "start from the kernel sliding: one pixel at a time."),
                      Group("training, (N, C, *)", "statistics over every axis except the channel axis.", 0.5))
    with pytest.raises(ValueError, match="not a hint table entry"):
        hints("""
            basic: fine.
            a line that is neither an entry nor a continuation""")


@pytest.mark.parametrize("assignment", sorted(__import__("autograder.demo_answers", fromlist=["x"]).MISTAKES))
def test_the_demos_mistakes_apply_to_todays_references(assignment):
    from autograder.demo import class_answers
    from autograder.demo_answers import MISTAKES

    answers = class_answers(assignment)
    for student, table in MISTAKES[assignment].items():
        for name in table:
            assert answers[student][name] != answers["alice"][name], (student, name)
            compile(answers[student][name], f"{student}:{name}", "exec")
