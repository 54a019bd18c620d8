"""Training smoke tests: a recipe the kernel runs, a verdict the judge computes.

A training case names the models (a student's factory or class: :func:`student`;
or a module the judge specifies: :func:`fixed`), a recipe of
:mod:`gradekit.training` (``classify``, ``distill``, ``transfer``, ``segment``), the
data and a :class:`Budget` (:func:`sequential` chains such parts into one network).
The kernel trains on CUDA when it sees a GPU, else on the CPU within
``Budget.seconds``, and returns numbers only: loss curves, final training losses,
logits or predicted labels on the evaluation inputs, the device and the seconds.
The labels of the evaluation data stay here, in the verdict.

What a kernel could answer instead of learning: models the judge knows entirely
(:func:`fixed`, or a :func:`sequential` of them) are evaluated here, from the trained
weights the kernel returns, on evaluation images that never go to the kernel; a
student-built model's logits come from the kernel, on images the grading makes
(:func:`unseen_images`: public digits in a drawn order, with drawn noise;
generated data from seeds drawn per grading). The kernel refuses global module hooks and
patched torch functions while graded code runs (:mod:`gradekit.training`).

``check`` decodes the record into a :class:`TrainingResult`, answers a message when
something is missing, malformed or non-finite, and otherwise hands the result to
the problem's ``verdict`` (``None`` when it passes, else what the student's model
reached and the bar), for example::

    digits = coursedata.digits()
    training_case("trains", "make_cnn('batch') on the digits", "classify",
                  {"model": student("make_cnn", "batch")},
                  {"x_train": digits.x_train, "y_train": digits.y_train, "x_eval": digits.x_test},
                  Budget(epochs=3), accuracy_at_least(digits.y_test, 0.80))
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from gradekit.codec import ModuleSpec

from ..compare import describe, fmt_shape
from ..problem import Case, Outcome

IGNORE_INDEX = 255
RECIPES = ("classify", "distill", "transfer", "segment")
#: Data each recipe needs (more keys may be sent, but never labels of evaluation data).
REQUIRED_DATA = {"classify": ("x_train", "y_train", "x_eval"), "distill": ("x_train", "y_train", "x_eval"),
                 "transfer": ("x_pre", "y_pre", "x_train", "y_train", "x_eval"),
                 "segment": ("x_train", "y_train", "x_eval")}
#: Labels the kernel may see: training labels only.
TRAINING_LABELS = ("y_train", "y_pre")
#: Recipe options passed on to the kernel (see gradekit.training).
OPTIONS = {"loss", "teacher", "compare_hard", "pretrain", "variants", "head", "new_kwargs", "freeze",
           "param_groups", "record_steps", "return_logits", "eval_batch_size", "momentum", "seed", "augment",
           "repeats"}
#: Evaluation batch of the judge's own forward passes (trained weights of fixed models).
JUDGE_EVAL_BATCH = 1024
VARIANTS = ("scratch", "frozen", "finetune")
_OPTIMIZER_NAMES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD with momentum"}


@dataclass(frozen=True)
class Budget:
    """A fixed training budget. ``seconds`` is the time limit of the whole case (all
    its runs), on the CPU and on a GPU alike."""

    epochs: int
    optimizer: str = "adam"
    lr: float = 3e-3
    batch_size: int = 32
    weight_decay: float = 0.0
    seconds: float = 60.0

    def request(self) -> dict:
        """The budget's fields for the kernel (the time limit travels as ``seconds``)."""
        return {k: v for k, v in asdict(self).items() if k != "seconds"}

    def describe(self) -> str:
        text = (f"{self.epochs} epoch{'s' if self.epochs != 1 else ''} of "
                f"{_OPTIMIZER_NAMES.get(self.optimizer, self.optimizer)}, lr {self.lr:g}, batch {self.batch_size}")
        if self.weight_decay:
            text += f", weight decay {self.weight_decay:g}"
        return text + f", at most {self.seconds:g} s"


def student(factory: str, *args, **kwargs) -> dict:
    """A model built by the student's ``factory(*args, **kwargs)`` (a function or a class)."""
    return {"factory": str(factory), "args": list(args), "kwargs": dict(kwargs)}


def fixed(spec: ModuleSpec) -> dict:
    """A model the judge specifies (built from torch.nn / torchvision in the kernel)."""
    if not isinstance(spec, ModuleSpec):
        raise TypeError("fixed() takes a ModuleSpec")
    return {"spec": spec}


def sequential(*parts: dict) -> dict:
    """An ``nn.Sequential`` of :func:`student` and :func:`fixed` parts, built in the kernel in
    order after one seeding: e.g. the student's blocks between a stem and a head the judge
    specifies."""
    if not parts or not all(isinstance(p, dict) and ("spec" in p or "factory" in p) for p in parts):
        raise TypeError("sequential() takes student(...) and fixed(...) parts")
    return {"sequential": list(parts)}


def augment_step(fn: str, per_sample: dict[str, np.ndarray] | None = None, **kwargs) -> dict:
    """One step of an augmentation pipeline (``classify``'s ``augment`` option): before each
    epoch the student's ``fn(images, **kwargs, param=value)`` with ``per_sample[param]`` an
    array (epochs, N) of the judge's values, one per epoch and training image."""
    return {"fn": str(fn), "kwargs": dict(kwargs),
            "per_sample": {str(k): np.asarray(v) for k, v in (per_sample or {}).items()}}


def augmentation(runs, *steps: dict) -> dict:
    """The ``augment`` option of ``classify``: the runs trained on images that went through
    ``steps`` (:func:`augment_step`) before each epoch; the other runs see the images as sent."""
    return {"runs": [runs] if isinstance(runs, str) else list(runs), "steps": list(steps)}


#: The evaluation images of a grading (:func:`unseen_images`): a contrast per image drawn in
#: this range, then Gaussian noise of this standard deviation, clipped to [0, 1].
UNSEEN_NOISE = 0.03


def unseen_images(draw, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Evaluation images (N, C, H, W) in [0, 1] that are not the public data set's arrays: in an
    order drawn here, each image ``clip(x + noise, 0, 1)`` with N(0, :data:`UNSEEN_NOISE`) noise per
    pixel (below one grey level of the digits, 1/16), drawn from the grading's ``draw``. A drawn
    contrast as well would cost the reference its margin (BatchNorm's running statistics see a
    shifted input). Returns the images (float32) and their labels, in that order."""
    order = draw.rng.permutation(len(y))
    x = np.asarray(x, np.float32)[order]
    noisy = x + draw.normal(x.shape, np.float32, UNSEEN_NOISE)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32), np.asarray(y)[order]


# ------------------------------------------------------------------ results
@dataclass
class Run:
    """One trained model, as the kernel reported it (validated)."""

    history: list[float]
    train_loss: float | None
    eval_logits: np.ndarray | None
    eval_pred: np.ndarray | None
    seconds: float
    step_losses: list[float] = field(default_factory=list)
    #: Recipe facts: ``num_trainable``, ``changed_outside_head``, ``freeze_returned``,
    #: ``group_lrs``, ``stopped``, ``epochs``.
    info: dict = field(default_factory=dict)

    def accuracy(self, labels) -> float:
        return accuracy(self.eval_logits, labels)

    def curve(self) -> str:
        return ", ".join(f"{h:.3g}" for h in self.history)


@dataclass
class TrainingResult:
    """What a verdict receives: the device, the seconds and the runs by name."""

    device: str
    seconds: float
    runs: dict[str, Run]
    train_seconds: float | None = None
    threads: int | None = None

    def where(self) -> str:
        seconds = self.train_seconds if self.train_seconds is not None else self.seconds
        return f"trained on {self.device} in {seconds:.1f} s"


def accuracy(logits, labels) -> float:
    """Share of rows whose arg-max is the label."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def miou(pred, target, num_classes: int, ignore_index: int = IGNORE_INDEX) -> float:
    """Mean IoU over classes; a class absent from both prediction and target (NaN) is left out."""
    pred, target = np.asarray(pred).astype(np.int64).ravel(), np.asarray(target).astype(np.int64).ravel()
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    valid = (pred >= 0) & (pred < num_classes)
    cm = np.bincount(target[valid] * num_classes + pred[valid], minlength=num_classes ** 2)
    cm = cm.reshape(num_classes, num_classes).astype(np.float64)
    # Predictions outside 0..K-1 count as wrong for their target class.
    wrong = np.bincount(target[~valid], minlength=num_classes)[:num_classes].astype(np.float64)
    inter = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - inter + wrong
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), np.nan)
    return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")


# ------------------------------------------------------------------ verdicts
# A verdict takes the TrainingResult and answers None (passed) or what the model reached and
# the bar. Each verdict here also has ``margin(result)``: how far the result is from the bar,
# in the verdict's unit (accuracy points as a fraction, mIoU, loss), positive when it passes
# (``all_of``: the smallest); benchmarks/smoke_margins.py reports it over many seeds.
def _named(run: str, result: TrainingResult) -> str:
    return "" if len(result.runs) == 1 else f"the {run} model: "


def _with_margin(verdict, margin):
    verdict.margin = margin
    return verdict


def _mean(values) -> float:
    return float(np.mean(values))


def _replicas(result: TrainingResult, run: str) -> list[Run]:
    """``run`` and its repeats (``run@1``, ``run@2``, ...: the same recipe from other seeds)."""
    runs = [result.runs[run]]
    k = 1
    while f"{run}@{k}" in result.runs:
        runs.append(result.runs[f"{run}@{k}"])
        k += 1
    return runs


def _over(values: list[float], fmt: str) -> str:
    """One value, or the mean and the values of the repeats."""
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(_mean(values), fmt)} (mean of {', '.join(format(v, fmt) for v in values)})"


def _labels(labels) -> Callable[[], np.ndarray]:
    """The evaluation labels, or a function making them (data generated per grading), as a
    function returning the array (made once)."""
    made: list = []

    def get() -> np.ndarray:
        if not made:
            made.append(np.asarray(labels() if callable(labels) else labels))
        return made[0]

    return get


def _last_run(result: TrainingResult) -> str:
    return [name for name in result.runs if "@" not in name][-1]


def accuracy_at_least(labels, bar: float, run: str | None = None) -> Callable[[TrainingResult], str | None]:
    """Pass when ``run`` (default: the only or the last run) reaches ``bar`` accuracy (the mean
    over its repeats when the case has ``repeats``). ``labels``: an array, or a function making it."""
    labels = _labels(labels)

    def values(result: TrainingResult) -> list[float]:
        return [r.accuracy(labels()) for r in _replicas(result, run or _last_run(result))]

    def verdict(result: TrainingResult):
        name = run or _last_run(result)
        accs = values(result)
        if _mean(accs) >= bar:
            return None
        return (f"{_named(name, result)}accuracy {_over(accs, '.1%')}, below the {bar:.0%} bar "
                f"(training loss per epoch: {result.runs[name].curve()})")

    return _with_margin(verdict, lambda result: _mean(values(result)) - bar)


def miou_at_least(target, num_classes: int, bar: float, run: str | None = None,
                  ignore_index: int = IGNORE_INDEX) -> Callable[[TrainingResult], str | None]:
    """Pass when the predicted labels of ``run`` reach ``bar`` mIoU (mean over its repeats).
    ``target``: an array, or a function making it."""
    target = _labels(target)

    def values(result: TrainingResult) -> list[float]:
        return [miou(r.eval_pred, target(), num_classes, ignore_index)
                for r in _replicas(result, run or _last_run(result))]

    def verdict(result: TrainingResult):
        name = run or _last_run(result)
        scores = values(result)
        if _mean(scores) >= bar:
            return None
        return (f"{_named(name, result)}mIoU {_over(scores, '.1%')}, below the {bar:.0%} bar "
                f"(training loss per epoch: {result.runs[name].curve()})")

    return _with_margin(verdict, lambda result: _mean(values(result)) - bar)


def _loss(value: float | None) -> str:
    return "(none recorded)" if value is None else f"{value:.4g}"


def lower_train_loss(better: str, worse: str, margin: float = 0.0) -> Callable[[TrainingResult], str | None]:
    """Pass when ``better`` ends with a training loss below ``worse``'s (minus ``margin``); with
    ``repeats``, the mean final losses over the repeats are compared."""

    def losses(result: TrainingResult):
        a = [r.train_loss for r in _replicas(result, better)]
        b = [r.train_loss for r in _replicas(result, worse)]
        return (None, a) if None in a else (_mean(a), a), (None, b) if None in b else (_mean(b), b)

    def text(loss) -> str:
        mean, values = loss
        return _loss(mean) if mean is None or len(values) == 1 else _over(values, ".4g")

    def verdict(result: TrainingResult):
        (a, _), (b, _) = loss_a, loss_b = losses(result)
        if a is not None and b is not None and a < b - margin:
            return None
        return (f"the {better} model ended with training loss {text(loss_a)}, the {worse} one with {text(loss_b)}: "
                f"expected the {better} one lower" + (f" by more than {margin:g}" if margin else ""))

    def gap(result: TrainingResult) -> float:
        (a, _), (b, _) = losses(result)
        return float("-inf") if a is None or b is None else (b - margin) - a

    return _with_margin(verdict, gap)


def more_accurate(better: str, worse: str, labels, margin: float = 0.0) -> Callable[[TrainingResult], str | None]:
    """Pass when ``better`` is more accurate on the evaluation data than ``worse`` by more than
    ``margin``; with ``repeats``, the mean accuracies over the repeats are compared."""
    labels = _labels(labels)

    def accs(result: TrainingResult):
        return ([r.accuracy(labels()) for r in _replicas(result, better)],
                [r.accuracy(labels()) for r in _replicas(result, worse)])

    def verdict(result: TrainingResult):
        a, b = accs(result)
        if _mean(a) > _mean(b) + margin:
            return None
        return (f"{better} reached accuracy {_over(a, '.1%')} and {worse} {_over(b, '.1%')}: expected {better} "
                f"ahead" + (f" by more than {margin:.0%}" if margin else ""))

    def lead(result: TrainingResult) -> float:
        a, b = accs(result)
        return _mean(a) - _mean(b) - margin

    return _with_margin(verdict, lead)


def all_of(*verdicts: Callable[[TrainingResult], str | None]) -> Callable[[TrainingResult], str | None]:
    """The first message of several verdicts (or None when all pass)."""

    def verdict(result: TrainingResult):
        for v in verdicts:
            message = v(result)
            if message:
                return message
        return None

    if all(hasattr(v, "margin") for v in verdicts):
        return _with_margin(verdict, lambda result: min(v.margin(result) for v in verdicts))
    return verdict


# ------------------------------------------------------------------ decoding
def _is_fixed(desc: dict) -> bool:
    """A model the judge knows entirely: a :func:`fixed` one, or a :func:`sequential` of them."""
    if "sequential" in desc:
        return all("spec" in part for part in desc["sequential"])
    return "spec" in desc


def _judge_model(desc: dict):
    """The judge's own copy of a fixed model (built here, not in the kernel)."""
    import torch

    from .modules import build

    if "sequential" in desc:
        return torch.nn.Sequential(*[build(part["spec"]) for part in desc["sequential"]])
    return build(desc["spec"])


def judge_logits(desc: dict, state, x_eval: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """The logits of a fixed model with the trained weights ``state`` on ``x_eval``, computed in the
    judge's process (eval mode, float32): ``(logits, None)`` or ``(None, what is wrong)``."""
    import torch

    if not isinstance(state, dict) or not state or not all(isinstance(v, np.ndarray) for v in state.values()):
        return None, "the kernel did not return its trained weights"
    model = _judge_model(desc)
    try:
        model.load_state_dict({str(k): torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    except (RuntimeError, ValueError, TypeError) as exc:
        return None, f"its trained weights do not fit the network any more ({str(exc).splitlines()[0][:160]})"
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(x_eval, dtype=np.float32))
    with torch.no_grad():
        out = torch.cat([model(x[i:i + JUDGE_EVAL_BATCH]) for i in range(0, len(x), JUDGE_EVAL_BATCH)])
    return out.numpy(), None


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _expected_runs(recipe: str, models: dict, extra: dict) -> dict[str, dict]:
    """Run name -> the model description it trains (repeats ``name@k`` included)."""
    if recipe == "distill":
        runs = {"teacher": models["teacher"], "student": models["student"]}
        runs.update({"hard": models["student"]} if extra.get("compare_hard") else {})
    elif recipe == "transfer":
        runs = {name: models["model"] for name in ["pretrain", *extra.get("variants", VARIANTS)]}
    else:
        runs = dict(models)
    repeats = max(1, int(extra.get("repeats", 1)))
    return {**runs, **{f"{name}@{k}": desc for k in range(1, repeats) for name, desc in runs.items()}}


def _base(run: str) -> str:
    return run.split("@")[0]


def _decode(outcome: Outcome, spec: dict) -> tuple[TrainingResult | None, str | None]:
    """A validated TrainingResult, or a message saying what is missing or wrong."""
    device = outcome.get("device")
    seconds = _number(outcome.get("seconds"))
    if not isinstance(device, str) or seconds is None:
        return None, "the kernel did not record the device and the time it trained for"
    # train_seconds and threads are optional facts (read from the raw record: they
    # need not be in problem.RECORD_FIELDS).
    threads = outcome.data.get("threads")
    partial = TrainingResult(device, seconds, {}, _number(outcome.data.get("train_seconds")),
                             threads if isinstance(threads, int) and not isinstance(threads, bool) else None)
    runs_data = outcome.get("runs")
    if not isinstance(runs_data, dict):
        return partial, "no training run was recorded"
    several = len(spec["runs"]) > 1
    for name in spec["runs"]:
        who = f"the {name} model" if several else "the model"
        data = runs_data.get(name)
        if not isinstance(data, dict):
            return partial, f"no result was recorded for {who}"
        history = data.get("history")
        if not isinstance(history, list) or any(_number(h) is None for h in history):
            return partial, f"the training loss curve of {who} is {describe(history)}, not a list of numbers"
        history = [float(h) for h in history]
        bad = [i for i, h in enumerate(history) if not math.isfinite(h)]
        if bad:
            return partial, (f"the training loss of {who} became NaN or inf in epoch {bad[0] + 1} "
                             f"(loss per epoch: {', '.join(f'{h:.3g}' for h in history)})")
        if data.get("stopped"):
            return partial, f"the training loss of {who} became NaN or inf ({data['stopped']})"
        steps = data.get("step_losses") or []
        steps = [float(s) for s in steps if _number(s) is not None] if isinstance(steps, list) else []
        train_loss = data.get("train_loss")
        if train_loss is not None:
            train_loss = _number(train_loss)
            if train_loss is None:
                return partial, f"the final training loss of {who} is not a number"
            if not math.isfinite(train_loss):
                return partial, f"the training loss of {who} on the whole training set became NaN or inf"
        logits, pred = data.get("eval_logits"), data.get("eval_pred")
        if _base(name) in spec["judge_eval"]:  # a fixed model: its weights, evaluated here
            logits, problem = judge_logits(spec["judge_eval"][_base(name)], data.get("state"), spec["x_eval"])
            if problem:
                return partial, f"{who}: {problem}"
        n_eval = spec["n_eval"]
        if name in spec["logits_for"]:
            want = (n_eval, spec["num_classes"]) if spec["num_classes"] else None
            if not isinstance(logits, np.ndarray) or logits.ndim != 2 or \
                    (want and tuple(logits.shape) != want) or logits.shape[0] != n_eval:
                shape = fmt_shape(want) if want else f"({n_eval}, num_classes)"
                return partial, (f"the logits of {who} on the {n_eval} evaluation images are {describe(logits)}, "
                                 f"expected shape {shape}")
            if not np.issubdtype(logits.dtype, np.floating):
                return partial, f"the logits of {who} have dtype {logits.dtype}, expected a float dtype"
            if not np.all(np.isfinite(logits)):
                return partial, f"the logits of {who} on the evaluation images became NaN or inf"
        if name in spec["pred_for"]:
            want = (n_eval, *spec["eval_hw"])
            if not isinstance(pred, np.ndarray) or tuple(pred.shape) != want:
                return partial, (f"the predicted label maps of {who} are {describe(pred)}, expected shape "
                                 f"{fmt_shape(want)} (the model's output should keep the input's height and width)")
            if not np.issubdtype(pred.dtype, np.integer):
                return partial, f"the predicted labels of {who} have dtype {pred.dtype}, expected integers"
            if spec["num_classes"] and pred.size and (pred.min() < 0 or pred.max() >= spec["num_classes"]):
                return partial, (f"{who} predicts class {int(pred.max())}, but there are only "
                                 f"{spec['num_classes']} classes (its output has too many channels)")
        info = {k: v for k, v in data.items()
                if k not in ("history", "train_loss", "eval_logits", "eval_pred", "seconds", "step_losses", "state")}
        partial.runs[name] = Run(history, train_loss, logits if isinstance(logits, np.ndarray) else None,
                                 pred if isinstance(pred, np.ndarray) else None,
                                 _number(data.get("seconds")) or 0.0, steps, info)
    return partial, None


# ------------------------------------------------------------------ the builder
def training_case(group: str, label: str, recipe: str, models: dict[str, dict],
                  data: dict[str, np.ndarray] | Callable[[], dict[str, np.ndarray]],
                  budget: Budget, verdict: Callable[[TrainingResult], str | None], *,
                  num_classes: int | None = None, device: str = "auto", **extra: Any) -> Case:
    """A training smoke test.

    Args:
        group, label: the case's group and label (the budget is added to the label).
        recipe: ``classify``, ``distill``, ``transfer`` or ``segment`` (see :mod:`gradekit.training`).
        models: run name -> :func:`student` or :func:`fixed`; ``distill`` needs ``teacher``
            and ``student``, ``transfer`` needs ``model``.
        data: arrays for the kernel (``x_train``, ``y_train``, ``x_eval``; ``x_pre``,
            ``y_pre`` for transfer), or a function returning them, called when the request is
            written (data generated per grading, only for the gradings that run the case).
            Evaluation labels stay with ``verdict``. Runs of fixed models (every part
            :func:`fixed`) are evaluated here, in the judge's process, from the trained weights
            the kernel returns; ``x_eval`` goes to the kernel only when a student-built model
            needs it.
        budget: epochs, optimizer, lr, batch size, weight decay and the time limit.
        verdict: the problem's rule on the :class:`TrainingResult` (None = passed).
        num_classes: for the shape checks (default: inferred from ``y_train``).
        device: ``"auto"`` (CUDA when the kernel sees one) or an explicit device.
        extra: recipe options (``loss``, ``teacher``, ``compare_hard``, ``pretrain``,
            ``variants``, ``head``, ``new_kwargs``, ``freeze``, ``param_groups``,
            ``record_steps``, ``return_logits``, ``eval_batch_size``, ``momentum``, ``seed``,
            ``augment``: :func:`augmentation`; ``repeats``: the recipe run that many times from
            different seeds, runs ``name@1``, ``name@2``, ..., which the verdicts average);
            ``teacher`` and ``pretrain`` may be a :class:`Budget` (its ``seconds`` is not used).
    """
    _check_options(recipe, models, extra)
    runs = _expected_runs(recipe, models, extra)
    logits_for = set() if recipe == "segment" else {r for r in runs if _base(r) != "pretrain"}
    # Fixed models are evaluated here, from their trained weights; the kernel never sees
    # the evaluation images unless a student-built model needs them.
    judge_eval = {_base(r): runs[r] for r in logits_for if _is_fixed(runs[r])}
    if judge_eval:
        extra["return_state"] = sorted(judge_eval)
    kernel_eval = recipe == "segment" or not all(_base(r) in judge_eval for r in logits_for)
    prepared: dict = {}

    def spec() -> dict:
        """The data checked and the facts the decoding needs (once, when first asked for)."""
        if not prepared:
            arrays = dict(data() if callable(data) else data)
            _check_data(recipe, arrays, budget, extra)
            x_eval = np.asarray(arrays["x_eval"])
            prepared.update(
                runs=list(runs), n_eval=int(x_eval.shape[0]), num_classes=_num_classes(recipe, arrays, num_classes),
                eval_hw=tuple(int(s) for s in x_eval.shape[-2:]), logits_for=logits_for,
                pred_for=set(runs) if recipe == "segment" else set(), judge_eval=judge_eval, x_eval=x_eval,
                sent={k: v for k, v in arrays.items() if kernel_eval or k != "x_eval"})
        return prepared

    full_label = f"{label} ({budget.describe()})"

    def check(outcome: Outcome):
        result, message = _decode(outcome, spec())
        if message is None:
            message = verdict(result)
        if message is None:
            return None
        where = f" [{result.where()}]" if result is not None else ""
        return f"{full_label}: {message}{where}"

    def margin(outcome: Outcome) -> float | None:
        """The verdict's margin over its bar (None: no valid result, or a verdict without one)."""
        if not outcome.ok or not hasattr(verdict, "margin"):
            return None
        result, message = _decode(outcome, spec())
        return None if message is not None else float(verdict.margin(result))

    check.margin = margin
    check.training_case = True

    def request() -> dict:
        return {"proc": "train", "recipe": recipe, "models": dict(models), "data": dict(spec()["sent"]),
                "device": device, "seconds": float(budget.seconds), **budget.request(), **extra}

    return Case(request if callable(data) else request(), check, full_label, group, heavy=True)


def is_training_case(case: Case) -> bool:
    """Whether ``case`` was made by :func:`training_case` (without making its request)."""
    return bool(getattr(case.check, "training_case", False))


def _check_options(recipe: str, models: dict, extra: dict) -> None:
    """Refuse unknown recipes, options and models; Budgets of ``teacher``/``pretrain`` as dicts."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; one of {RECIPES}")
    unknown = set(extra) - OPTIONS
    if unknown:
        raise ValueError(f"unknown training options {sorted(unknown)}")
    needed = {"distill": ("teacher", "student"), "transfer": ("model",)}.get(recipe, ())
    if any(k not in models for k in needed) or not models:
        raise ValueError(f"recipe {recipe} needs models {needed or 'one or more'}")
    for key in ("teacher", "pretrain"):
        if isinstance(extra.get(key), Budget):
            extra[key] = extra[key].request()
    if "augment" in extra and (recipe != "classify" or not set(extra["augment"].get("runs", ())) <= set(models)):
        raise ValueError("augment is a classify option naming some of the models")
    if "variants" in extra:
        extra["variants"] = list(extra["variants"])
        if not set(extra["variants"]) <= set(VARIANTS):
            raise ValueError(f"variants must be among {VARIANTS}")


def _check_data(recipe: str, data: dict, budget: Budget, extra: dict) -> None:
    """Refuse missing data, evaluation labels, and augmentation values of the wrong shape."""
    missing = [k for k in REQUIRED_DATA[recipe] if k not in data]
    if missing:
        raise ValueError(f"recipe {recipe} needs data {missing}")
    leaked = [k for k in data if k.startswith("y") and k not in TRAINING_LABELS]
    if leaked:
        raise ValueError(f"labels {leaked} must not go to the kernel: keep them in the verdict")
    n_train = int(np.asarray(data["x_train"]).shape[0])
    for step in (extra.get("augment") or {}).get("steps", ()):
        for param, values in step.get("per_sample", {}).items():
            if np.shape(values) != (budget.epochs, n_train):
                raise ValueError(f"augment {step['fn']}: {param} must have shape "
                                 f"({budget.epochs}, {n_train}), one value per epoch and image")


def _num_classes(recipe: str, data: dict, num_classes: int | None) -> int | None:
    if num_classes is not None:
        return num_classes
    y_train = np.asarray(data["y_train"])
    labels = y_train[y_train != IGNORE_INDEX] if recipe == "segment" else y_train
    return int(labels.max()) + 1 if labels.size else None
