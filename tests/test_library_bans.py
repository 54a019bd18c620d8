"""Forbidden library work is decided by what runs (:mod:`gradekit.trace`, the judge's
``forbidden_at_run_time``): a library class in a graded module's type hierarchy or among its
submodules, a library function that ran in a forward, a build or a backward the judge asked for,
however it was named or imported, and the trace switched off from the notebook's code.

Graded in this process (:func:`autograder.local.grade_namespace`: the same requests and judge as a
kernel); the same attacks go through stock nbgrader in ``tests/cheats_w345/``.
"""
from __future__ import annotations

import importlib

import pytest
import torch
import torch.nn.functional as F
import torchvision

from autograder.local import grade_namespace
from solutions import w3_architectures as w3
from solutions import w4_segmentation as w4
from solutions import w5_augmentation_transfer as w5

W3, W4, W5 = "w3_architectures", "w4_segmentation", "w5_augmentation_transfer"


def grade(assignment: str, name: str, obj, seed: int = 5):
    verdict = grade_namespace(assignment, {name: obj}, names=[name], seed=seed)[name]
    return verdict, "\n".join(verdict.lines)


# ----------------------------------------------------------------------------- library classes
class TorchvisionBottleneck(torchvision.models.resnet.Bottleneck):
    """torchvision's block under the graded name (its layout is the spec's)."""


class WrappedSE(torch.nn.Module):
    """Holds torchvision's SqueezeExcitation and forwards to it."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        self.inner = torchvision.ops.SqueezeExcitation(channels, max(1, channels // reduction))

    def forward(self, x):
        return self.inner(x)


def torchvision_resnet(depth, num_classes=1000):
    builders = {18: "resnet18", 34: "resnet34", 50: "resnet50", 101: "resnet101"}
    return getattr(torchvision.models, builders[depth])(num_classes=num_classes)


@pytest.mark.parametrize("name, obj, shown", [
    ("Bottleneck", TorchvisionBottleneck, "torchvision.models.resnet.Bottleneck"),
    ("resnet", torchvision_resnet, "torchvision.models.resnet"),
])
def test_torchvision_classes_score_zero_in_week_3(name, obj, shown):
    verdict, lines = grade(W3, name, obj)
    assert verdict.fraction == 0 and shown in lines, lines


def test_a_wrapped_library_module_scores_zero_and_the_reference_full():
    verdict, lines = grade(W3, "SEBlock", WrappedSE)
    assert verdict.fraction == 0 and "torchvision.ops" in lines, lines
    verdict, lines = grade(W3, "SEBlock", w3.SEBlock)
    assert verdict.fraction == 1.0, lines


# ----------------------------------------------------------------------------- library functions
_v2 = importlib.import_module("torchvision.transforms.v2.functional")
_mirror = getattr(_v2, "horizontal_flip")  # an alias the name list never held


def hflip_by_alias(img):
    return _mirror(img)


def test_a_library_transform_under_another_name_scores_zero():
    verdict, lines = grade(W5, "hflip", hflip_by_alias)
    assert verdict.fraction == 0 and "torchvision.transforms.v2.functional" in lines, lines


def test_torchvision_where_the_problem_allows_it_keeps_full_marks():
    def label_smoothing_loss(logits, target, epsilon):
        # torchvision runs here (an identity: stochastic depth outside training); the problem allows it
        logits = torchvision.ops.stochastic_depth(logits, 0.5, "row", training=False)
        return w5.label_smoothing_loss(logits, target, epsilon)

    verdict, lines = grade(W5, "label_smoothing_loss", label_smoothing_loss)
    assert verdict.fraction == 1.0, lines


# ----------------------------------------------------------------------------- backward
class _TransposedByHand(torch.autograd.Function):
    """The forward written by hand (the reference); the backward delegates to the built-in."""

    @staticmethod
    def forward(ctx, x, weight, stride, padding, output_padding):
        ctx.save_for_backward(x, weight)
        ctx.args = (stride, padding, output_padding)
        with torch.no_grad():
            return w4.conv_transpose2d(x, weight, None, stride, padding, output_padding)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        stride, padding, output_padding = ctx.args
        with torch.enable_grad():
            x_, w_ = x.detach().requires_grad_(), weight.detach().requires_grad_()
            out = F.conv_transpose2d(x_, w_, None, stride, padding, output_padding)
            gx, gw = torch.autograd.grad(out, (x_, w_), grad)
        return gx, gw, None, None, None


def conv_transpose_backward_builtin(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    out = _TransposedByHand.apply(x, weight, stride, padding, output_padding)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def test_a_backward_that_calls_the_builtin_scores_zero():
    verdict, lines = grade(W4, "conv_transpose2d", conv_transpose_backward_builtin)
    assert verdict.fraction == 0 and "while it runs" in lines, lines


class _DistillationByHand(torch.autograd.Function):
    """The reference's value computed without autograd; the gradient from F.kl_div."""

    @staticmethod
    def forward(ctx, s, t, y, T, alpha):
        ctx.save_for_backward(s, t, y)
        ctx.args = (T, alpha)
        with torch.no_grad():
            return w5.distillation_loss(s, t, y, T, alpha)

    @staticmethod
    def backward(ctx, grad):
        s, t, y = ctx.saved_tensors
        T, alpha = ctx.args
        with torch.enable_grad():
            s_ = s.detach().requires_grad_()
            soft = F.kl_div(F.log_softmax(s_ / T, 1), F.log_softmax(t / T, 1), reduction="batchmean",
                            log_target=True)
            g, = torch.autograd.grad(alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s_, y), s_, grad)
        return g, None, None, None, None


def distillation_backward_builtin(student_logits, teacher_logits, target, T=4.0, alpha=0.9):
    return _DistillationByHand.apply(student_logits, teacher_logits.detach(), target, T, alpha)


def distillation_builtin_only_in_training(student_logits, teacher_logits, target, T=4.0, alpha=0.9):
    """The reference when the grader calls it directly; F.kl_div inside the training loop."""
    import sys

    frame, in_training = sys._getframe(1), False
    while frame is not None and not in_training:
        in_training, frame = frame.f_code.co_name == "_fit", frame.f_back
    if in_training:
        soft = F.kl_div(F.log_softmax(student_logits / T, 1), F.log_softmax(teacher_logits.detach() / T, 1),
                        reduction="batchmean", log_target=True)
        return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(student_logits, target)
    return w5.distillation_loss(student_logits, teacher_logits, target, T, alpha)


@pytest.mark.parametrize("loss", [distillation_backward_builtin, distillation_builtin_only_in_training])
def test_a_loss_whose_backward_or_training_calls_the_builtin_scores_zero(loss):
    """(The training run of the second one is checked on its own, with a small budget, in
    tests/test_training_cases.py: here, on a loaded machine, its smoke test can run out of time
    before the student's loss is first called; it then loses that group instead.)"""
    verdict, lines = grade(W5, "distillation_loss", loss)
    if loss is distillation_builtin_only_in_training and "did not finish within the time limit" in lines:
        assert verdict.fraction < 1, lines
        return
    assert verdict.fraction == 0 and "torch.nn.functional.kl_div" in lines, lines


# ----------------------------------------------------------------------------- the trace switched off
def conv_transpose_untraced(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    from torch.utils._python_dispatch import _disable_current_modes

    with _disable_current_modes(), torch._C.DisableTorchFunction():
        return F.conv_transpose2d(x, weight, bias, stride, padding, output_padding)


def test_switching_the_trace_off_scores_zero():
    verdict, lines = grade(W4, "conv_transpose2d", conv_transpose_untraced)
    assert verdict.fraction == 0 and "trace was switched off or bypassed" in lines, lines


#: A helper compiled under a library's file name (the frames claim to be the standard library's)
#: that switches the modes and the profile function off around the built-in.
_DISGUISED = compile("""
import sys
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import _disable_current_modes


def quiet_transposed(*args):
    profile = sys.getprofile()
    sys.setprofile(None)
    try:
        with _disable_current_modes(), torch._C.DisableTorchFunction():
            return F.conv_transpose2d(*args)
    finally:
        sys.setprofile(profile)
""", F.__file__.replace("nn/functional.py", "overrides.py"), "exec")
_HELPERS: dict = {}
exec(_DISGUISED, _HELPERS)


def conv_transpose_disguised(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    return _HELPERS["quiet_transposed"](x, weight, bias, stride, padding, output_padding)


def test_switching_the_trace_off_from_code_that_claims_a_library_file_scores_zero():
    verdict, lines = grade(W4, "conv_transpose2d", conv_transpose_disguised)
    assert verdict.fraction == 0 and "trace was switched off or bypassed" in lines, lines
