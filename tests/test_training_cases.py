"""Training smoke tests as a case kind: gradekit.training's recipes and the judge's builder.

Each test builds a Case with :func:`autograder.cases.training.training_case`, runs its
request in this process with :func:`gradekit.capture.run_request` on a namespace of
small functions (as ``autograder.local`` does), writes and reads the record as the
judge does, and runs the check. Tiny models, a few seconds each on one thread.
"""
from __future__ import annotations

import math
import re
import time
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import coursedata
from autograder.cases.training import (Budget, TrainingResult, accuracy, accuracy_at_least, all_of, augment_step,
                                       augmentation, fixed, lower_train_loss, miou, miou_at_least, more_accurate,
                                       student, training_case)
from autograder.problem import Outcome, error_message
from gradekit.capture import run_request
from gradekit.codec import ModuleSpec, Reader, Writer, dump_json, load_json

pytestmark = pytest.mark.usefixtures("one_thread")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


# --------------------------------------------------------------------- helpers
def run_case(case, namespace: dict, tmp_path, seed: int = 3) -> Outcome:
    """The kernel's and the judge's halves of one case, with the files in between."""
    cases, out = tmp_path / "cases", tmp_path / "out"
    request = Writer(cases, prefix="p_").encode({"seconds": 60.0, "seed": seed, **case.request})
    dump_json(cases / "p.json", [request])
    request = load_json(cases / "p.json")[0]
    out.mkdir(parents=True)
    record = run_request(request, namespace, cases, out, prefix="c0_")
    dump_json(out / "0.json", record)
    record = Reader(out, as_torch=False).decode(load_json(out / "0.json"))
    return Outcome(record["status"], record)


def digits_data(classes=None):
    d = coursedata.digits(classes=classes)
    return d, {"x_train": d.x_train, "y_train": d.y_train, "x_eval": d.x_test}


def mlp(hidden=32, num_classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


class Constant(nn.Module):
    """Learns class priors only: its output does not depend on the image."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x):
        return self.bias.expand(x.shape[0], -1) + 0 * x.flatten(1)[:, :1]


class Poisoned(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(x.flatten(1)) * float("nan")


def broken(*args, **kwargs):
    raise ValueError("unknown norm 'batch'")


SEEN: dict[str, list] = {}


class Recorder(nn.Module):
    """Remembers its initial weights and every training batch it sees."""

    def __init__(self, tag):
        super().__init__()
        self.tag = tag
        self.fc = nn.Linear(64, 10)
        SEEN[tag] = [("init", float(self.fc.weight.detach().sum()))]

    def forward(self, x):
        if self.training:
            SEEN[self.tag].append(("batch", float(x.sum()), int(x.shape[0])))
        return self.fc(x.flatten(1))


W2_BUDGET = Budget(epochs=3, optimizer="adam", lr=3e-3, batch_size=32, seconds=60.0)


# --------------------------------------------------------------------- classify
def test_w2_budget_make_cnn_reaches_the_bar_as_the_original_train_proc(tmp_path):
    from solutions.w2_normalization import make_cnn

    d, data = digits_data()
    case = training_case("trains (batch)", "make_cnn('batch') on the digits", "classify",
                         {"model": student("make_cnn", "batch")}, data, W2_BUDGET,
                         accuracy_at_least(d.y_test, 0.80))
    assert "3 epochs of Adam, lr 0.003, batch 32" in case.label
    outcome = run_case(case, {"make_cnn": make_cnn}, tmp_path / "new")
    assert outcome.ok and case.check(outcome) is None
    run = outcome.runs["model"]
    assert accuracy(run["eval_logits"], d.y_test) >= 0.80
    assert len(run["history"]) == 3 and run["history"][-1] < run["history"][0]
    assert 0 < run["train_loss"] < run["history"][0]

    # The request without a recipe (what make_cnn's check sends today) gives the same numbers.
    legacy = {"proc": "train", "factory": "make_cnn", "args": ["batch"], "device": "auto", **data,
              "epochs": 3, "optimizer": "adam", "lr": 3e-3, "batch_size": 32}
    old = run_case(types.SimpleNamespace(request=legacy), {"make_cnn": make_cnn}, tmp_path / "old")
    assert old.ok and old.history == run["history"]
    np.testing.assert_array_equal(old.eval_logits, run["eval_logits"])


def test_a_model_that_learns_nothing_fails_with_its_accuracy_and_the_bar(tmp_path):
    d, data = digits_data()
    case = training_case("trains", "net on the digits", "classify", {"model": student("Constant")}, data,
                         Budget(epochs=2, seconds=30), accuracy_at_least(d.y_test, 0.80))
    outcome = run_case(case, {"Constant": Constant}, tmp_path)
    assert outcome.ok
    message = case.check(outcome)
    assert message is not None
    assert re.search(r"accuracy \d+\.\d%, below the 80% bar", message), message
    assert float(re.search(r"accuracy (\d+\.\d)%", message).group(1)) < 30
    assert "training loss per epoch" in message and f"trained on {DEVICE} in" in message


def test_a_factory_that_raises_is_an_error_with_its_stage(tmp_path):
    _, data = digits_data()
    case = training_case("trains", "net", "classify", {"model": student("make_cnn", "batch")}, data,
                         Budget(epochs=1), lambda result: None)
    outcome = run_case(case, {"make_cnn": broken}, tmp_path / "one")
    assert outcome.status == "error" and outcome.stage == "build"
    assert outcome.error["type"] == "ValueError"
    text = error_message("make_cnn", outcome, case.label)
    assert "raised ValueError: unknown norm 'batch'" in text and "[during build]" in text

    two = training_case("degradation", "plain vs residual", "classify",
                        {"plain": student("mlp"), "residual": student("make_cnn", "batch")}, data,
                        Budget(epochs=1), lambda result: None)
    outcome = run_case(two, {"make_cnn": broken, "mlp": mlp}, tmp_path / "two")
    assert outcome.status == "error" and outcome.stage == "build (residual)"

    missing = run_case(case, {}, tmp_path / "missing")
    assert missing.status == "error" and missing.stage == "lookup"


def test_a_nan_loss_is_recorded_and_reported_not_raised(tmp_path):
    d, data = digits_data()
    case = training_case("trains", "net", "classify", {"model": student("Poisoned")}, data,
                         Budget(epochs=3), accuracy_at_least(d.y_test, 0.5))
    outcome = run_case(case, {"Poisoned": Poisoned}, tmp_path)
    assert outcome.ok
    run = outcome.runs["model"]
    assert len(run["history"]) == 1 and math.isnan(run["history"][0])  # stopped at the first NaN
    assert run["stopped"] == "non-finite loss"
    message = case.check(outcome)
    assert "became NaN or inf" in message and "epoch 1" in message


def test_logits_of_the_wrong_shape_are_reported(tmp_path):
    class Half(nn.Module):  # right while training, 5 classes at evaluation
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            out = self.fc(x.flatten(1))
            return out if self.training else out[:, :5]

    d, data = digits_data()
    case = training_case("trains", "net", "classify", {"model": student("Half")}, {**data, "x_eval": d.x_test},
                         Budget(epochs=1), accuracy_at_least(d.y_test, 0.5))
    outcome = run_case(case, {"Half": Half}, tmp_path)
    assert outcome.ok and outcome.runs["model"]["train_loss"] is None  # 5 logits cannot score 10 labels
    message = case.check(outcome)
    assert "a tensor of shape (450, 5), expected shape (450, 10)" in message, message


def test_two_models_are_compared_on_the_same_data_order_and_init_seed(tmp_path):
    SEEN.clear()
    d, data = digits_data()
    case = training_case("degradation", "plain vs residual", "classify",
                         {"plain": student("Recorder", "plain"), "residual": student("Recorder", "residual")},
                         data, Budget(epochs=2, batch_size=64), lower_train_loss("residual", "plain"))
    outcome = run_case(case, {"Recorder": Recorder}, tmp_path)
    assert outcome.ok
    assert SEEN["plain"] == SEEN["residual"] and len(SEEN["plain"]) == 1 + 2 * math.ceil(len(d.y_train) / 64)
    runs = outcome.runs
    assert runs["plain"]["history"] == runs["residual"]["history"]
    # identical twins: the residual one is not lower, and the message shows both losses
    message = case.check(outcome)
    assert "the residual model ended with training loss" in message and "expected the residual one lower" in message
    # another seed: another init and another order, still the same for both
    first = list(SEEN["plain"])
    SEEN.clear()
    run_case(case, {"Recorder": Recorder}, tmp_path / "other", seed=4)
    assert SEEN["plain"] == SEEN["residual"]
    assert SEEN["plain"][0] != first[0] and SEEN["plain"][1] != first[1]


def test_the_device_and_the_seconds_are_recorded(tmp_path):
    d, data = digits_data()
    seen = {}

    def verdict(result: TrainingResult):
        seen["result"] = result
        return None

    case = training_case("trains", "mlp", "classify", {"model": student("mlp", 16)}, data,
                         Budget(epochs=1), verdict, record_steps=True)
    outcome = run_case(case, {"mlp": mlp}, tmp_path)
    assert case.check(outcome) is None
    result = seen["result"]
    assert result.device == DEVICE and result.seconds > 0 and result.train_seconds > 0
    run = result.runs["model"]
    assert run.seconds > 0 and len(run.step_losses) == math.ceil(len(d.y_train) / 32)
    assert case.request["device"] == "auto" and case.request["seconds"] == 60.0


def test_the_time_limit_of_the_budget_applies(tmp_path):
    class Slow(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            time.sleep(0.05)
            return self.fc(x.flatten(1))

    _, data = digits_data()
    case = training_case("trains", "slow", "classify", {"model": student("Slow")}, data,
                         Budget(epochs=5, seconds=0.5), lambda result: None)
    assert "at most 0.5 s" in case.label
    start = time.perf_counter()
    outcome = run_case(case, {"Slow": Slow}, tmp_path)
    assert outcome.status == "timeout" and time.perf_counter() - start < 5


def test_evaluation_labels_never_go_to_the_kernel():
    d, data = digits_data()
    with pytest.raises(ValueError, match="must not go to the kernel"):
        training_case("t", "t", "classify", {"model": student("mlp")}, {**data, "y_eval": d.y_test},
                      Budget(epochs=1), lambda r: None)
    with pytest.raises(ValueError, match="unknown training options"):
        training_case("t", "t", "classify", {"model": student("mlp")}, data, Budget(epochs=1), lambda r: None,
                      epochz=3)
    case = training_case("t", "t", "classify", {"model": student("mlp")}, data, Budget(epochs=1), lambda r: None)
    sent = [v for v in case.request["data"].values()]
    assert not any(v is d.y_test for v in sent) and set(case.request["data"]) == {"x_train", "y_train", "x_eval"}


# --------------------------------------------------------------------- augment
class Batches(nn.Module):
    """Remembers every training batch it sees (under its tag)."""

    def __init__(self, tag):
        super().__init__()
        self.tag = tag
        self.fc = nn.Linear(64, 10)
        SEEN[tag] = []

    def forward(self, x):
        if self.training:
            SEEN[self.tag].append(x.detach().clone())
        return self.fc(x.flatten(1))


def test_augment_applies_the_students_functions_with_the_judges_values_per_epoch(tmp_path):
    d = coursedata.digits()
    n, epochs = 40, 2
    data = {"x_train": d.x_train[:n], "y_train": d.y_train[:n], "x_eval": d.x_test}
    shifts = np.random.default_rng(0).integers(0, 3, (epochs, n))
    calls = []

    def shift(img, padding, by):
        calls.append((img.shape[0], padding, by))
        return torch.roll(img, by, dims=-1)

    def darken(img):
        return img * 0.5

    SEEN.clear()
    case = training_case("helps", "plain vs augmented", "classify",
                         {"plain": student("Batches", "plain"), "augmented": student("Batches", "augmented")},
                         data, Budget(epochs=epochs, batch_size=n), lambda result: None,
                         augment=augmentation("augmented", augment_step("shift", {"by": shifts}, padding=1),
                                              augment_step("darken")))
    outcome = run_case(case, {"Batches": Batches, "shift": shift, "darken": darken}, tmp_path, seed=0)
    assert outcome.ok and case.check(outcome) is None
    # one call per epoch and distinct value, on the batch of images sharing it, kwargs passed through
    assert sorted(calls) == sorted((int(np.sum(shifts[e] == v)), 1, int(v))
                                   for e in range(epochs) for v in np.unique(shifts[e]))
    x, gen = torch.from_numpy(d.x_train[:n]), torch.Generator().manual_seed(0)
    for e in range(epochs):
        order = torch.randperm(n, generator=gen)
        want = torch.stack([torch.roll(x[i], int(shifts[e, i]), dims=-1) * 0.5 for i in range(n)])
        assert torch.equal(SEEN["augmented"][e], want[order])  # the steps in order, the judge's values
        assert torch.equal(SEEN["plain"][e], x[order])  # the other run sees the images as sent
    # without the option the same run trains as before
    alone = training_case("helps", "plain", "classify", {"plain": student("Batches", "plain")}, data,
                          Budget(epochs=epochs, batch_size=n), lambda result: None)
    again = run_case(alone, {"Batches": Batches}, tmp_path / "again", seed=0)
    assert again.runs["plain"]["history"] == outcome.runs["plain"]["history"]


def test_augment_errors_and_values_of_the_wrong_shape(tmp_path):
    d = coursedata.digits()
    n = 32
    data = {"x_train": d.x_train[:n], "y_train": d.y_train[:n], "x_eval": d.x_test}
    with pytest.raises(ValueError, match="one value per epoch and image"):
        training_case("t", "t", "classify", {"a": student("mlp")}, data, Budget(epochs=2), lambda r: None,
                      augment=augmentation("a", augment_step("f", {"v": np.zeros((1, n))})))
    with pytest.raises(ValueError, match="classify option"):
        training_case("t", "t", "classify", {"a": student("mlp")}, data, Budget(epochs=1), lambda r: None,
                      augment=augmentation("b", augment_step("f")))

    def crop(img, padding, top, left):
        return img[..., 1:, 1:]

    case = training_case("t", "t", "classify", {"plain": student("mlp"), "aug": student("mlp")}, data,
                         Budget(epochs=1), lambda r: None,
                         augment=augmentation("aug", augment_step("crop", {"top": np.zeros((1, n), np.int64),
                                                                          "left": np.ones((1, n), np.int64)},
                                                                  padding=1)))
    outcome = run_case(case, {"mlp": mlp, "crop": crop}, tmp_path)
    assert outcome.status == "error" and outcome.stage == "augment: crop (aug)"
    message = error_message("crop", outcome, case.label)
    assert "expected the same shape" in message, message


# --------------------------------------------------------------------- distill
def test_distill_trains_with_the_students_loss_function(tmp_path):
    import torch.nn.functional as F

    calls = []

    def distillation_loss(student_logits, teacher_logits, target, T=4.0, alpha=0.9):
        calls.append((tuple(student_logits.shape), tuple(teacher_logits.shape), T, alpha))
        soft = F.kl_div(F.log_softmax(student_logits / T, 1), F.softmax(teacher_logits / T, 1),
                        reduction="batchmean") * T * T
        return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, target)

    d, data = digits_data()
    teacher = ModuleSpec("torch.nn.Sequential", args=(
        ModuleSpec("torch.nn.Flatten"), ModuleSpec("torch.nn.Linear", (64, 64)), ModuleSpec("torch.nn.ReLU"),
        ModuleSpec("torch.nn.Linear", (64, 10))))
    case = training_case("distills", "a distilled mlp", "distill",
                         {"teacher": fixed(teacher), "student": student("mlp", 16)}, data, Budget(epochs=3),
                         all_of(accuracy_at_least(d.y_test, 0.85, run="teacher"),
                                accuracy_at_least(d.y_test, 0.80, run="student")),
                         loss={"fn": "distillation_loss", "kwargs": {"T": 2.0, "alpha": 0.7}},
                         teacher=Budget(epochs=4), compare_hard=True)
    outcome = run_case(case, {"mlp": mlp, "distillation_loss": distillation_loss}, tmp_path)
    assert outcome.ok, outcome.data
    assert case.check(outcome) is None
    assert set(outcome.runs) == {"teacher", "student", "hard"}
    assert len(outcome.runs["teacher"]["history"]) == 4 and len(outcome.runs["student"]["history"]) == 3
    steps = math.ceil(len(d.y_train) / 32)
    assert len(calls) == 3 * steps and calls[0] == ((32, 10), (32, 10), 2.0, 0.7)
    # the same student on hard labels (same seed, same order) ends elsewhere: the loss was used
    assert outcome.runs["hard"]["history"] != outcome.runs["student"]["history"]
    # the student's loss ran under the trace, its backward too: week 5's ban on kl_div holds in training
    assert "py:torch.nn.functional.kl_div" in outcome.get("ops"), outcome.get("ops")
    from autograder.checks import problems_for
    from autograder.judge import forbidden_at_run_time

    verdict = forbidden_at_run_time(problems_for("w5_augmentation_transfer")["distillation_loss"], [outcome])
    assert verdict is not None and verdict.fraction == 0 and "torch.nn.functional.kl_div" in verdict.lines[0]

    # a loss that raises is an error at the loss stage of the student's run
    def distillation_loss(*args, **kwargs):  # noqa: F811
        raise RuntimeError("shapes")

    outcome = run_case(case, {"mlp": mlp, "distillation_loss": distillation_loss}, tmp_path / "raises")
    assert outcome.status == "error" and outcome.stage == "loss (student)"


# --------------------------------------------------------------------- transfer
class TinyNet(nn.Module):
    def __init__(self, num_classes=5, width=16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
            nn.Flatten())
        self.fc = nn.Linear(2 * width * 4, num_classes)

    def forward(self, x):
        return self.fc(self.features(x))


def freeze(model, trainable=("fc",)):
    def keep(name):
        return any(name == p or name.startswith(p + ".") for p in trainable)

    for name, param in model.named_parameters():
        param.requires_grad_(keep(name))
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d) and not keep(name):
            module.eval()
            module.train = types.MethodType(lambda self, mode=True: self, module)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def param_groups(model, head_prefix="fc", base_lr=1e-3, head_lr=1e-2):
    head = [p for n, p in model.named_parameters() if n.startswith(head_prefix + ".")]
    base = [p for n, p in model.named_parameters() if not n.startswith(head_prefix + ".")]
    return [{"params": base, "lr": base_lr}, {"params": head, "lr": head_lr}]


def few_shot_data(per_class=2):
    pre = coursedata.digits(classes=range(5))
    new = coursedata.digits(classes=range(5, 10))
    rng = np.random.default_rng(0)
    pick = np.concatenate([rng.choice(np.flatnonzero(new.y_train == c), per_class, replace=False)
                           for c in range(5, 10)])
    data = {"x_pre": pre.x_train, "y_pre": pre.y_train, "x_train": new.x_train[pick],
            "y_train": new.y_train[pick] - 5, "x_eval": new.x_test}
    return data, new.y_test - 5


@pytest.mark.parametrize("student_functions", [False, True], ids=["default freeze", "student's freeze"])
def test_transfer_fine_tuning_beats_scratch_on_few_labels(tmp_path, student_functions):
    data, y_eval = few_shot_data()
    seen = {}

    def verdict(result):
        seen["result"] = result
        return more_accurate("finetune", "scratch", y_eval, margin=0.05)(result)

    options = {"freeze": "freeze", "param_groups": {"fn": "param_groups", "kwargs": {"base_lr": 1e-3,
                                                                                      "head_lr": 1e-2}}} \
        if student_functions else {}
    case = training_case("transfer", "TinyNet pretrained on digits 0-4, 10 labelled 5-9", "transfer",
                         {"model": student("TinyNet", num_classes=5)}, data,
                         Budget(epochs=20, lr=3e-3, batch_size=32, seconds=60), verdict,
                         pretrain=Budget(epochs=3), head="fc", **options)
    namespace = {"TinyNet": TinyNet, "freeze": freeze, "param_groups": param_groups}
    outcome = run_case(case, namespace, tmp_path)
    assert outcome.ok, outcome.data
    assert case.check(outcome) is None, case.check(outcome)
    result = seen["result"]
    assert list(result.runs) == ["pretrain", "scratch", "frozen", "finetune"]
    assert result.runs["pretrain"].eval_logits is None and len(result.runs["pretrain"].history) == 3
    frozen = result.runs["frozen"].info
    assert frozen["changed_outside_head"] == 0 and frozen["num_trainable"] == 128 * 5 + 5
    if student_functions:
        assert frozen["freeze_returned"] == 645 and result.runs["finetune"].info["group_lrs"] == [1e-3, 1e-2]
    accs = {k: result.runs[k].accuracy(y_eval) for k in ("scratch", "frozen", "finetune")}
    assert accs["frozen"] > accs["scratch"] and accs["finetune"] > accs["scratch"] + 0.05, accs


def test_transfer_says_when_the_head_is_missing(tmp_path):
    data, y_eval = few_shot_data()
    case = training_case("transfer", "t", "transfer", {"model": student("TinyNet")}, data, Budget(epochs=1),
                         lambda r: None, head="classifier", variants=["frozen"], pretrain=Budget(epochs=1))
    outcome = run_case(case, {"TinyNet": TinyNet}, tmp_path)
    assert outcome.status == "error" and outcome.stage == "transfer (frozen)"
    assert "no parameters under 'classifier'" in outcome.error["message"]


# --------------------------------------------------------------------- segment
def shapes(n, size=16, seed=0):
    """Noisy images with a bright square (class 1) and a dark one (class 2); a 255 border."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (n, 1, size, size)).astype(np.float32)
    y = np.zeros((n, size, size), dtype=np.int64)
    for i in range(n):
        for cls, value in ((1, 1.5), (2, -1.5)):
            h, w = rng.integers(4, 8, 2)
            top, left = rng.integers(1, size - h, 1)[0], rng.integers(1, size - w, 1)[0]
            x[i, 0, top:top + h, left:left + w] += value
            y[i, top:top + h, left:left + w] = cls
    y[:, 0, :] = 255
    return x, y


def tiny_fcn(num_classes=3, width=16):
    return nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1),
                         nn.ReLU(), nn.Conv2d(width, num_classes, 1))


def test_segment_reaches_the_miou_bar_and_a_shrinking_output_is_reported(tmp_path):
    x, y = shapes(96)
    x_eval, y_eval = shapes(32, seed=1)
    data = {"x_train": x, "y_train": y, "x_eval": x_eval}
    case = training_case("trains", "tiny FCN on shapes", "segment", {"model": student("tiny_fcn")}, data,
                         Budget(epochs=8, lr=1e-2, batch_size=16), miou_at_least(y_eval, 3, 0.6))
    outcome = run_case(case, {"tiny_fcn": tiny_fcn}, tmp_path / "ok")
    assert outcome.ok and case.check(outcome) is None, case.check(outcome)
    pred = outcome.runs["model"]["eval_pred"]
    assert pred.shape == (32, 16, 16) and pred.dtype == np.uint8

    def unpadded(num_classes=3):  # no padding: 12x12 out of 16x16 inputs
        return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, num_classes, 3))

    outcome = run_case(case, {"tiny_fcn": unpadded}, tmp_path / "shrinks")
    assert outcome.status == "error" and outcome.stage == "train"  # the loss cannot pair 12x12 with 16x16

    class LearnsNothing(nn.Module):  # one score per class, whatever the pixel
        def __init__(self, num_classes=3):
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(num_classes, 1, 1))

        def forward(self, x):
            return self.bias.expand(x.shape[0], -1, *x.shape[-2:]) + 0 * x

    outcome = run_case(case, {"tiny_fcn": LearnsNothing}, tmp_path / "fails")
    fail = case
    message = fail.check(outcome)
    assert "mIoU" in message and "below the 60% bar" in message


def test_accuracy_and_miou():
    assert accuracy(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 0])) == 0.5
    pred = np.array([[0, 1], [1, 1]])
    target = np.array([[0, 1], [255, 0]])
    # class 0: inter 1, union 2; class 1: inter 1, union 2; class 2 absent everywhere: left out
    assert miou(pred, target, 3) == pytest.approx(0.5)
    assert math.isnan(miou(np.zeros((2, 2)), np.full((2, 2), 255), 2))


# --------------------------------------------------------------------- answered smoke tests
def public_answers():
    """A lookup of the public test digits: image bytes -> label (what a kernel can rebuild)."""
    d = coursedata.digits()
    return {x.tobytes(): int(y) for x, y in zip(d.x_test, d.y_test)}


def answering_hook(table):
    """A global forward hook replacing any (N, 10) output by one-hot answers looked up from
    the module's input images (the attack: a model that learns nothing, answered by a hook)."""
    def hook(module, inputs, output):
        x = inputs[0] if inputs else None
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or output.dim() != 2:
            return output
        labels = [table.get(img.detach().cpu().numpy().tobytes(), 0) for img in x]
        return 50 * F.one_hot(torch.tensor(labels), output.shape[1]).float().to(output.device)
    return hook


def test_a_global_hook_answering_the_labels_is_refused(tmp_path):
    d, data = digits_data()
    case = training_case("trains", "net", "classify", {"model": student("Constant")}, data, Budget(epochs=1),
                         accuracy_at_least(d.y_test, 0.8))
    handle = torch.nn.modules.module.register_module_forward_hook(answering_hook(public_answers()))
    try:  # without the refusal this model would pass with 100%
        outcome = run_case(case, {"Constant": Constant}, tmp_path / "before")
    finally:
        handle.remove()
    assert outcome.status == "error" and outcome.stage == "library check"
    assert outcome.error["type"] == "LibraryPatched"
    text = error_message("Constant", outcome, case.label)
    assert "global module hooks / patched library functions are not allowed while graded code runs" in text
    assert "_global_forward_hooks holds 1 hook" in text

    handles = []

    def hooked(num_classes=10):  # registered by the student's factory, during the request
        handles.append(torch.nn.modules.module.register_module_forward_hook(answering_hook(public_answers())))
        return Constant(num_classes)

    class Sneaky(Constant):  # registered in the first training step, answering in eval mode only
        def forward(self, x):
            if self.training and not handles:
                answer = answering_hook(public_answers())
                handles.append(torch.nn.modules.module.register_module_forward_hook(
                    lambda m, i, o: o if m.training else answer(m, i, o)))
            return super().forward(x)

    for name, factory in (("build", hooked), ("training", Sneaky)):
        try:
            outcome = run_case(case, {"Constant": factory}, tmp_path / name)
        finally:
            handles.pop().remove()
        assert outcome.status == "error" and outcome.stage == "library check", (name, outcome.data)


class SelfHooked(nn.Module):
    """An honest model that adds and removes hooks on its own layers."""

    def __init__(self):
        super().__init__()
        self.body = mlp(32)
        self.handle = self.body[1].register_forward_hook(lambda m, i, o: torch.relu(o) - torch.relu(-o))

    def forward(self, x):
        return self.body(x)


def test_library_functions_patched_while_graded_code_runs_are_refused(tmp_path):
    d, data = digits_data()
    case = training_case("trains", "net", "classify", {"model": student("make")}, data, Budget(epochs=1),
                         accuracy_at_least(d.y_test, 0.5))
    ok = run_case(case, {"make": SelfHooked}, tmp_path / "own hooks")  # hooks on its own modules: fine
    assert ok.ok and case.check(ok) is None

    originals = {(F, "cross_entropy"): F.cross_entropy, (torch.optim.Adam, "step"): torch.optim.Adam.step,
                 (torch.Tensor, "backward"): torch.Tensor.backward, (nn.Module, "__call__"): nn.Module.__call__}
    for i, ((owner, name), original) in enumerate(originals.items()):
        def patched(*args, __original=original, **kwargs):
            return __original(*args, **kwargs)

        def make(patched=patched, owner=owner, name=name):  # the factory patches torch
            setattr(owner, name, patched)
            return mlp(16)

        try:
            outcome = run_case(case, {"make": make}, tmp_path / str(i))
        finally:
            setattr(owner, name, original)
        assert outcome.status == "error" and outcome.error["type"] == "LibraryPatched", (name, outcome.data)
        assert f"{name} is not torch's own ({__file__})" in outcome.error["message"]
    from gradekit.training import library_problems
    assert library_problems() == []


class Answering:
    """A descriptor standing in for a method: no function of its own in the class it patches."""

    def __init__(self, original):
        self.original = original

    def __get__(self, module, owner=None):
        return self if module is None else (lambda x: self.original(module, x))


def test_objects_wrappers_and_forged_code_standing_in_for_torch_are_found():
    import functools

    from gradekit.training import library_problems

    def ce(*args, **kwargs):
        return original(*args, **kwargs)

    original, forward = F.cross_entropy, nn.Sequential.forward
    forged = types.FunctionType(ce.__code__.replace(co_filename=F.__file__), vars(F), "cross_entropy",
                                None, ce.__closure__)
    for owner, name, value, what in ((nn.Sequential, "forward", Answering(forward), "class Answering whose"),
                                     (F, "cross_entropy", functools.lru_cache(ce), "class _lru_cache_wrapper wrapping"),
                                     (F, "cross_entropy", forged, "code that only claims the file")):
        previous = vars(owner)[name]
        setattr(owner, name, value)
        try:
            found = library_problems()
        finally:
            setattr(owner, name, previous)
        assert len(found) == 1 and found[0].startswith(f"{owner.__name__}.{name} is not torch's own"), found
        assert what in found[0], found
    assert library_problems() == []


def test_exact_and_positional_lookups_fail_on_the_gradings_evaluation_images():
    from autograder.cases import Draw
    from autograder.cases.training import unseen_images

    d = coursedata.digits()
    x, y = unseen_images(Draw(7), d.x_test, d.y_test)
    again, _ = unseen_images(Draw(7), d.x_test, d.y_test)
    other, _ = unseen_images(Draw(8), d.x_test, d.y_test)
    assert np.array_equal(x, again) and not np.array_equal(x, other)
    assert x.dtype == np.float32 and x.shape == d.x_test.shape and x.min() >= 0 and x.max() <= 1
    table = public_answers()
    assert not any(img.tobytes() in table for img in x)  # no image is a public one
    assert np.mean(y == d.y_test) < 0.3  # the labels in another order: answering y_test in turn fails
    # still the same digits: each one's nearest public image is its own, and has its label
    nearest = np.argmin(((x.reshape(len(x), 1, -1) - d.x_test.reshape(1, len(x), -1)) ** 2).sum(-1), 1)
    assert np.mean(d.y_test[nearest] == y) > 0.95


def fixed_mlp(hidden=32):
    return fixed(ModuleSpec("torch.nn.Sequential", args=(
        ModuleSpec("torch.nn.Flatten"), ModuleSpec("torch.nn.Linear", (64, hidden)), ModuleSpec("torch.nn.ReLU"),
        ModuleSpec("torch.nn.Linear", (hidden, 10)))))


def test_fixed_models_are_evaluated_by_the_judge_from_their_trained_weights(tmp_path):
    d, data = digits_data()
    case = training_case("trains", "mlp", "classify", {"model": fixed_mlp()}, data, Budget(epochs=2),
                         accuracy_at_least(d.y_test, 0.85))
    assert set(case.request["data"]) == {"x_train", "y_train"}  # the evaluation images stay here
    assert case.request["return_state"] == ["model"]
    outcome = run_case(case, {}, tmp_path)
    assert outcome.ok and "eval_logits" not in outcome.runs["model"] and case.check(outcome) is None
    state = outcome.runs["model"]["state"]
    assert set(state) == {"1.weight", "1.bias", "3.weight", "3.bias"}

    def tampered(**changes):
        return Outcome("ok", {**outcome.data, "runs": {"model": {**outcome.runs["model"], **changes}}})

    answers = np.eye(10, dtype=np.float32)[d.y_test] * 50  # logits from the kernel are not read
    zeros = {k: np.zeros_like(v) for k, v in state.items()}
    message = case.check(tampered(state=zeros, eval_logits=answers))
    assert re.search(r"accuracy \d+\.\d%, below the 85% bar", message), message
    missing = {k: v for k, v in state.items() if k != "3.bias"}
    assert "its trained weights do not fit the network any more" in case.check(tampered(state=missing))
    assert "did not return its trained weights" in case.check(tampered(state=None))


def test_a_distillation_loss_that_teaches_nothing_fails_even_with_a_hook(tmp_path):
    d, data = digits_data()
    teacher = fixed(ModuleSpec("torch.nn.Sequential", args=(
        ModuleSpec("torch.nn.Flatten"), ModuleSpec("torch.nn.Linear", (64, 64)), ModuleSpec("torch.nn.ReLU"),
        ModuleSpec("torch.nn.Linear", (64, 10)))))
    case = training_case("distils", "distilled mlp", "distill", {"teacher": teacher, "student": fixed_mlp(16)}, data,
                         Budget(epochs=2), accuracy_at_least(d.y_test, 0.8, run="student"),
                         loss={"fn": "distillation_loss", "kwargs": {}}, teacher=Budget(epochs=2))
    assert "x_eval" not in case.request["data"]

    def distillation_loss(student_logits, teacher_logits, target):
        return 0 * student_logits.sum()

    outcome = run_case(case, {"distillation_loss": distillation_loss}, tmp_path / "nothing")
    message = case.check(outcome)
    assert "the student model: accuracy" in message and "below the 80% bar" in message
    handle = torch.nn.modules.module.register_module_forward_hook(answering_hook(public_answers()))
    try:
        hooked = run_case(case, {"distillation_loss": distillation_loss}, tmp_path / "hooked")
    finally:
        handle.remove()
    assert hooked.status == "error" and hooked.error["type"] == "LibraryPatched"


def test_repeats_train_again_from_other_seeds_and_verdicts_average_them(tmp_path):
    d, data = digits_data()
    case = training_case("trains", "mlp", "classify", {"model": fixed_mlp(8)}, data, Budget(epochs=1),
                         accuracy_at_least(d.y_test, 0.999), repeats=3)
    outcome = run_case(case, {}, tmp_path)
    assert outcome.ok and set(outcome.runs) == {"model", "model@1", "model@2"}
    curves = [outcome.runs[k]["history"] for k in ("model", "model@1", "model@2")]
    assert curves[0] != curves[1] != curves[2]
    message = case.check(outcome)
    accs = re.search(r"accuracy (\d+\.\d)% \(mean of (\d+\.\d)%, (\d+\.\d)%, (\d+\.\d)%\)", message)
    assert accs, message
    assert float(accs.group(1)) == pytest.approx(np.mean([float(accs.group(i)) for i in (2, 3, 4)]), abs=0.1)
    assert case.check.margin(outcome) == pytest.approx(float(accs.group(1)) / 100 - 0.999, abs=1e-3)


def test_data_made_per_grading_is_made_only_when_the_case_is_written(tmp_path):
    made = []

    def data():
        made.append(1)
        x, y = shapes(48)
        return {"x_train": x, "y_train": y, "x_eval": shapes(16, seed=1)[0]}

    case = training_case("trains", "tiny FCN", "segment", {"model": student("tiny_fcn")}, data,
                         Budget(epochs=3, lr=1e-2, batch_size=16), miou_at_least(lambda: shapes(16, seed=1)[1], 3, 0.3))
    assert callable(case.request) and not made
    outcome = run_case(types.SimpleNamespace(request=case.request()), {"tiny_fcn": tiny_fcn}, tmp_path)
    assert outcome.ok and case.check(outcome) is None and case.check.margin(outcome) > 0 and made == [1]


def test_the_margin_benchmark_runs_a_smoke_test_through_the_real_case():
    from benchmarks.smoke_margins import reference_namespace, run_one, smoke_tests

    tests = smoke_tests(("w2_normalization",))
    assert ("w2_normalization", "make_cnn", "trains (none)") in tests
    row = run_one("w2_normalization", "make_cnn", "trains (none)", 5, reference_namespace("w2_normalization"))
    assert row["passed"] and 0 < row["margin"] < 0.4 and row["seconds"] > 0, row
