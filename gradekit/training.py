"""Training smoke tests, run in the student's kernel: recipes, no answers.

A ``train`` request (see :mod:`gradekit.capture`) names a *recipe* and the models
to train; this module builds the models (a student's factory or class from the
notebook's namespace, or a module the judge specifies), trains them with a fixed
loop on the data the judge sent, and returns numbers: loss curves, final training
losses and the models' outputs on evaluation inputs. The labels of the evaluation
data never come here; the judge computes accuracies and mIoU itself.

Request
-------
::

    {"proc": "train", "recipe": "classify",
     "models": {"plain": {"factory": "make_net", "args": [...], "kwargs": {...}},
                "fixed": {"spec": <ModuleSpec>}},
     "data": {"x_train": X, "y_train": Y, "x_eval": XE},
     "epochs": 3, "optimizer": "adam", "lr": 3e-3, "batch_size": 32, "weight_decay": 0.0,
     "device": "auto", "seconds": 60, "seed": 7, ...recipe options}

``device: "auto"`` trains on CUDA when the kernel sees a GPU, else on the CPU (with
the kernel's thread setting left as it is). ``seconds`` is the time limit of the
whole request, applied by :func:`gradekit.capture.run_request`.

Every run of a request is seeded the same way (``torch.manual_seed(seed)`` before
the model is built, a ``torch.Generator().manual_seed(seed)`` for the batch order),
so two models compared in one request start from the same seed and see the
batches in the same order. ``repeats: k`` runs the whole recipe k times, repeat j
from ``seed + j * REPEAT_SEED_STRIDE``, its runs named ``name@j`` (j >= 1).

``x_eval`` may be left out: the runs then return no evaluation outputs. ``return_state:
[run, ...]`` adds ``state`` (the trained ``state_dict``, read with ``nn.Module``'s own
method) to those runs: the judge evaluates models it knows entirely itself, from their
weights, on images the kernel never sees.

Graded code may not change torch while it runs: before and after each build, epoch,
evaluation and run, the global hooks of ``torch.nn`` and ``torch.optim`` must be empty
and the functions of the modules and classes the recipes rely on must be torch's own
(:func:`library_problems`); otherwise the request ends with a ``LibraryPatched`` error
at stage ``library check``. Hooks a model registers on its own modules are its business.

Recipes and what they return (``runs[name]``: ``history`` (mean training loss per
epoch), ``train_loss`` (the final loss on the whole training set, eval mode),
``seconds``, and per recipe ``eval_logits`` / ``eval_pred``):

- ``classify``: each model of ``models`` with cross-entropy (or the student's
  ``loss: {"fn": name, "kwargs": {...}}``, called ``fn(logits, target, **kwargs)``);
  ``eval_logits`` on ``x_eval``. ``augment: {"runs": [name, ...], "steps": [step, ...]}``
  trains the runs named there on augmented images: before each epoch the training
  images go through the student's functions, one step after another, each step
  ``{"fn": name, "kwargs": {...}, "per_sample": {param: array (epochs, N)}}`` calling
  ``fn(images, **kwargs, param=value)`` with the judge's value for each image and epoch
  (images sharing the values in one call, as a batch); the other runs train on the
  images as sent. The final ``train_loss`` is on the images as sent.
- ``distill``: ``models["teacher"]`` trained (``teacher`` overrides the budget;
  ``{"epochs": 0}`` uses it as given), then ``models["student"]`` trained with the
  student's ``loss: {"fn": "distillation_loss", "kwargs": {"T": 4, "alpha": 0.9}}``
  (``fn(student_logits, teacher_logits, target, **kwargs)``) or hard-label
  cross-entropy; ``compare_hard: true`` adds run ``hard``, the same student trained
  on hard labels. Runs ``teacher``, ``student`` (, ``hard``), each with ``eval_logits``.
- ``transfer``: ``models["model"]`` pretrained on ``x_pre``/``y_pre`` (``pretrain``
  overrides the budget), then variants (``variants``, default scratch, frozen,
  finetune), each a fresh model (``new_kwargs`` merged into the factory's kwargs)
  trained on ``x_train``/``y_train`` and evaluated on ``x_eval``. The head is the
  parameters under the prefix ``head`` (default ``"fc"``): ``scratch`` keeps the
  fresh init; ``frozen`` and ``finetune`` load the pretrained weights outside the
  head. ``frozen`` calls the student's ``freeze`` (``"freeze": "freeze"``) as
  ``freeze(model, trainable=(head,))`` or, without one, turns requires_grad off outside
  the head and keeps the BatchNorm layers there in eval mode; it also records
  ``num_trainable`` and ``changed_outside_head`` (state entries outside the head
  whose values changed while training). ``finetune`` trains everything, with the
  student's ``param_groups: {"fn": "param_groups", "kwargs": {...}}``
  (``fn(model, head_prefix=head, **kwargs)``) when named. Runs ``pretrain`` and
  one per variant.
- ``segment``: each model with per-pixel cross-entropy (``ignore_index=255``);
  ``eval_pred`` is the argmax over classes on ``x_eval`` (uint8 when fewer than 256
  classes, else int64).

Top-level result: ``device``, ``train_seconds`` (all runs), ``threads`` and
``runs``. A run stops at the first step whose loss is NaN or inf (recorded as NaN
in ``history``, ``stopped: "non-finite loss"``); nothing is raised for it. Student
exceptions become error records with the stage they happened in (``build``,
``train``, ``loss``, ``backward``, ``eval``, ``freeze``, ``param_groups``,
``transfer``, ``augment: name``, ``library check``), followed by `` (run)`` when a request trains several models.

A request without ``recipe`` is the original ``train`` request (one ``factory``,
data at the top level, SGD lr 0.05 batch 64 five epochs by default) and returns
``history``, ``eval_logits`` and ``device`` at the top level as it always did.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext

from .student_code import StudentError, _lookup, _stage

IGNORE_INDEX = 255
EVAL_BATCH = 1024
MAX_STEP_LOSSES = 20000
#: ``repeats: k`` runs the recipe k times, repeat j from ``seed + j * REPEAT_SEED_STRIDE``.
REPEAT_SEED_STRIDE = 7919
#: The error's message (then what was found): hooks on the student's own modules stay allowed.
LIBRARY_MESSAGE = "global module hooks / patched library functions are not allowed while graded code runs"


# ------------------------------------------------------------------ library integrity
class LibraryPatched(RuntimeError):
    """Torch's global hooks are set, or a function the recipe relies on is not torch's own."""


#: Modules whose functions the recipes rely on (directly or inside torch): every Python
#: function found in them must be torch's own (or the standard library's wrapping torch's).
_WATCHED_MODULES = ("torch", "torch.nn.functional", "torch.nn.modules.module", "torch.nn.init",
                    "torch.optim.optimizer", "torch.optim.adam", "torch.optim.adamw", "torch.optim.sgd",
                    "torch.autograd", "torch.autograd.graph")
#: Module-level dicts of hooks that apply to every module or optimizer: they must be empty.
_GLOBAL_HOOKS = (("torch.nn.modules.module", "_global_"), ("torch.optim.optimizer", "_global_optimizer_"))


def _library_dirs() -> tuple[str, tuple[str, ...]]:
    """(torch's package folder, the folders of code that may wrap torch's: the standard library
    and typing_extensions beside torch)."""
    import os
    import sysconfig

    import torch

    torch_dir = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
    site = os.path.dirname(torch_dir.rstrip(os.sep))
    return torch_dir, (sysconfig.get_paths()["stdlib"] + os.sep, os.path.join(site, "typing_extensions.py"))


def _foreign_code(fn, dirs, seen: set, depth: int = 0) -> str | None:
    """Where ``fn`` (a function, or a method, property or wrapper holding one) comes from when that
    is not torch: its code's file outside torch's folder (and outside the standard library's, whose
    wrappers torch uses), code that claims such a file but is not that file's own
    (:func:`gradekit.trace.genuine`), torch's code with another module's globals, or a wrapper
    around such a function. None when it is torch's."""
    import functools
    import types

    from .trace import genuine

    if isinstance(fn, (classmethod, staticmethod, types.MethodType)):
        fn = fn.__func__
    if isinstance(fn, property):
        return next((w for f in (fn.fget, fn.fset, fn.fdel) if (w := _foreign_code(f, dirs, seen, depth))), None)
    if isinstance(fn, functools.partial):
        fn = fn.func
    if not isinstance(fn, types.FunctionType) or id(fn) in seen or depth > 4:
        return None
    seen.add(id(fn))
    torch_dir, wrappers = dirs
    where = fn.__code__.co_filename
    if not where.startswith((torch_dir, "<frozen ") + wrappers):
        return where
    if not genuine(fn.__code__):
        return f"code that only claims the file {where}"
    if where.startswith(torch_dir) and not str(fn.__globals__.get("__name__", "")).startswith("torch"):
        return f"{where} (with the globals of {fn.__globals__.get('__name__')!r})"
    inner = [cell.cell_contents for cell in (fn.__closure__ or ()) if _has_contents(cell)]
    inner.append(fn.__dict__.get("__wrapped__"))
    return next((w for f in inner if (w := _foreign_code(f, dirs, seen, depth + 1))), None)


def _foreign_object(value, dirs, seen: set) -> str | None:
    """For a callable object or a descriptor (something that can stand in for a function or a
    method): where a method of its class, or the function it wraps (``__wrapped__``), comes from
    when that is not torch (:func:`_foreign_code`). None for functions and classes."""
    cls = type(value)
    if cls is type or not (callable(value) or hasattr(cls, "__get__")):
        return None
    wrapped = vars(value).get("__wrapped__") if hasattr(value, "__dict__") else None
    where = _foreign_code(wrapped, dirs, seen) if wrapped is not None else None
    if where:
        return f"an object of class {cls.__qualname__} wrapping code from {where}"
    if id(cls) in seen:
        return None
    for klass in cls.__mro__[:-1]:
        for attr, member in vars(klass).items():
            where = _foreign_code(member, dirs, seen)
            if where:
                return f"an object of class {cls.__qualname__} whose {attr} comes from {where}"
    seen.add(id(cls))
    return None


def _has_contents(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018
        return True
    except ValueError:  # an empty cell
        return False


def _hook_problems() -> list[str]:
    """The global hook dicts of torch.nn and torch.optim that are not empty (or not dicts any more)."""
    import sys
    from collections import OrderedDict

    found = []
    for module_name, prefix in _GLOBAL_HOOKS:
        module = sys.modules.get(module_name)
        for name, value in (vars(module).items() if module is not None else ()):
            if not name.startswith(prefix) or name == "_global_is_full_backward_hook":
                continue
            if type(value) not in (dict, OrderedDict):
                found.append(f"{module_name}.{name} was replaced by a {type(value).__name__}")
            elif dict.__len__(value):
                found.append(f"{module_name}.{name} holds {dict.__len__(value)} hook(s)")
    return found


def _watched_classes() -> list:
    """Module, Tensor, the optimizers and every torch.nn layer class (as bound now), with their
    torch base classes."""
    import torch

    classes = [torch.nn.Module, torch.Tensor, torch.optim.Optimizer, torch.optim.Adam, torch.optim.AdamW,
               torch.optim.SGD]
    classes += [v for v in vars(torch.nn).values() if isinstance(v, type) and issubclass(v, torch.nn.Module)]
    bases = [b for c in classes for b in c.__mro__ if b not in (object,) and b.__module__.startswith("torch")]
    return list(dict.fromkeys(classes + bases))


def library_problems(functions: bool = True) -> list[str]:
    """What is wrong with torch's state now: non-empty global hook dicts; with ``functions``, the
    functions and methods of :data:`_WATCHED_MODULES` and :func:`_watched_classes` whose code is
    not torch's (a few milliseconds)."""
    import sys

    import torch

    found = _hook_problems()
    getter = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)
    if callable(getter) and getter(False) is not None:
        found.append("default saved-tensor hooks are set (torch.autograd.graph.saved_tensors_hooks)")
    if not functions:
        return found
    dirs, seen = _library_dirs(), set()
    namespaces = [sys.modules[m] for m in _WATCHED_MODULES if m in sys.modules] + _watched_classes()
    for namespace in namespaces:
        for name, value in list(vars(namespace).items()):
            where = _foreign_code(value, dirs, seen) or _foreign_object(value, dirs, seen)
            if where:
                found.append(f"{getattr(namespace, '__name__', namespace)}.{name} is not torch's own ({where})")
    return found


def check_library(stage: str, functions: bool = True) -> None:
    """Raise a StudentError at ``stage`` when :func:`library_problems` finds anything."""
    found = library_problems(functions)
    if found:
        more = f"; and {len(found) - 1} more" if len(found) > 1 else ""
        raise StudentError(stage, LibraryPatched(f"{LIBRARY_MESSAGE} ({found[0]}{more})"))


# ---------------------------------------------------------------- configuration
class _Config:
    """The training budget of one run: the request's values, optionally overridden."""

    def __init__(self, request: dict, override: dict | None = None, legacy: bool = False):
        values = {**request, **(override or {})}
        defaults = ({"epochs": 5, "optimizer": "sgd", "lr": 0.05, "batch_size": 64} if legacy else
                    {"epochs": 1, "optimizer": "adam", "lr": 3e-3, "batch_size": 32})
        self.epochs = int(values.get("epochs", defaults["epochs"]))
        self.optimizer = str(values.get("optimizer", defaults["optimizer"])).lower()
        self.lr = float(values.get("lr", defaults["lr"]))
        self.batch_size = max(1, int(values.get("batch_size", defaults["batch_size"])))
        self.weight_decay = float(values.get("weight_decay", 0.0))
        self.momentum = float(values.get("momentum", 0.9))
        self.seed = int(values.get("seed", 0))
        self.record_steps = bool(values.get("record_steps", False))
        self.eval_batch = max(1, int(values.get("eval_batch_size", EVAL_BATCH)))

    def make_optimizer(self, params):
        import torch

        if self.optimizer == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        raise ValueError(f"unknown optimizer {self.optimizer!r}")


class _Context:
    """What every recipe needs: the request, the namespace, the codec, the device."""

    def __init__(self, request, namespace, reader, writer):
        self.request = request
        self.namespace = namespace
        self.reader = reader
        self.writer = writer
        self.device = reader.device
        self.several = False  # several runs: stage names say which one
        raw = request.get("data")
        self._raw_data = raw if isinstance(raw, dict) else request
        self._data: dict = {}
        self.seen: set = set()  # what the student's functions ran (their calls and backward passes)
        self.trace = None  # the operator and call trace's factory (``run``'s ``trace``)

    def traced(self):
        """The operator and Python-call trace (:func:`gradekit.capture._op_trace`) around a call of the
        student's own function (a loss, an augmentation) or the backward pass through it: the
        judge applies the problem's bans to what ran there too (``ops`` of the result)."""
        return self.trace(self.seen) if self.trace is not None else nullcontext()

    def has(self, key: str) -> bool:
        return key in self._raw_data

    def data(self, key: str, labels: bool = False):
        if key not in self._data:
            if key not in self._raw_data:
                raise ValueError(f"the request has no {key!r}")
            value = self.reader.decode(self._raw_data[key]).to(self.device)
            self._data[key] = value.long() if labels else value
        return self._data[key]

    def stage(self, name: str, run: str) -> str:
        return f"{name} ({run})" if self.several else name

    def sync(self):
        if str(self.device).startswith("cuda"):
            import torch

            torch.cuda.synchronize()

    def student_fn(self, spec, what: str):
        """``spec`` is a name or ``{"fn": name, "kwargs": {...}}``: (function, kwargs) or None."""
        if not spec:
            return None
        if isinstance(spec, str):
            name, kwargs = spec, {}
        else:
            name, kwargs = spec["fn"], self.reader.decode(spec.get("kwargs", {}))
        fn = _lookup(self.namespace, name)
        if not callable(fn):
            raise StudentError("lookup", TypeError(f"{name} is not callable ({what})"))
        return name, fn, kwargs


# ----------------------------------------------------------------------- models
def _build(ctx: _Context, desc: dict, run: str, seed: int, extra_kwargs: dict | None = None):
    """A model from a student factory (``{"factory": name, ...}``), a judge's ``{"spec": ...}``,
    or ``{"sequential": [desc, ...]}``: an ``nn.Sequential`` of such parts, built in order
    after one seeding (a network of the student's blocks between the judge's stem and head)."""
    import torch

    torch.manual_seed(seed)
    if "sequential" in desc:
        parts = [_part(ctx, part, run) for part in desc["sequential"]]
        model = _stage(ctx.stage("build", run), torch.nn.Sequential(*parts).to, ctx.device)
    else:
        model = _stage(ctx.stage("build", run), _part(ctx, desc, run, extra_kwargs).to, ctx.device)
    check_library(ctx.stage("library check", run))
    return model


def _part(ctx: _Context, desc: dict, run: str, extra_kwargs: dict | None = None):
    """One module of a ``_build`` description, built without seeding (on the CPU)."""
    import torch

    if "spec" in desc:
        model = ctx.reader.decode(desc["spec"])
        name = "the grader's model"
    else:
        factory = _lookup(ctx.namespace, desc["factory"])
        args = ctx.reader.decode(desc.get("args", []))
        kwargs = {**ctx.reader.decode(desc.get("kwargs", {})), **(extra_kwargs or {})}
        model = _stage(ctx.stage("build", run), factory, *args, **kwargs)
        name = f"{desc['factory']}(...)"
    if not isinstance(model, torch.nn.Module):
        raise StudentError(ctx.stage("build", run),
                           TypeError(f"{name} returned {type(model).__name__}, not an nn.Module"))
    return model


def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith(prefix + ".")


# ------------------------------------------------------------------ the loop
def _fit(ctx: _Context, run: str, model, x, y, cfg: _Config, loss=None, params=None, on_train=None,
         epoch_x=None) -> dict:
    """Train ``model`` on (x, y): the loop of the original ``train`` proc.

    ``loss(out, idx)`` defaults to cross-entropy on ``y[idx]``; ``params`` (tensors or
    param-group dicts) to all parameters; ``on_train(model)`` runs after each
    ``model.train()`` (e.g. frozen BatchNorm layers back to eval mode); ``epoch_x(epoch)``,
    when given, returns the training images of that epoch (e.g. augmented) in place of ``x``.
    """
    import torch
    import torch.nn.functional as F

    if loss is None:
        def loss(out, idx):
            return F.cross_entropy(out, y[idx])
    opt = cfg.make_optimizer(model.parameters() if params is None else params)
    generator = torch.Generator().manual_seed(cfg.seed)
    history, steps, stopped = [], [], None
    ctx.sync()
    start = time.perf_counter()
    n = len(x)
    for _epoch in range(cfg.epochs):
        model.train()
        if on_train is not None:
            on_train(model)
        order = torch.randperm(n, generator=generator).to(ctx.device)
        xe = x if epoch_x is None else epoch_x(_epoch)
        total, count = 0.0, 0
        for i in range(0, n, cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            value = _stage(ctx.stage("train", run), lambda: loss(model(xe[idx]), idx))
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                raise StudentError(ctx.stage("loss", run), TypeError(
                    f"the loss is {type(value).__name__}"
                    + (f" of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else "")
                    + ", not a scalar tensor"))
            opt.zero_grad()
            with ctx.traced() if getattr(loss, "traced", False) else nullcontext():
                _stage(ctx.stage("backward", run), value.backward)
            opt.step()
            v = float(value.detach())
            if cfg.record_steps and len(steps) < MAX_STEP_LOSSES:
                steps.append(v)
            total, count = total + v * len(idx), count + len(idx)
            if not math.isfinite(v):
                stopped = "non-finite loss"
                break
        history.append(total / max(count, 1) if math.isfinite(total) else float("nan"))
        check_library(ctx.stage("library check", run), functions=False)
        if stopped:
            break
    ctx.sync()
    check_library(ctx.stage("library check", run))
    out = {"history": history, "seconds": time.perf_counter() - start, "epochs": len(history)}
    if cfg.record_steps:
        out["step_losses"] = steps
    if stopped:
        out["stopped"] = stopped
    return out


def _outputs(ctx: _Context, run: str, model, x, cfg: _Config):
    """The model's outputs on ``x`` in eval mode, in chunks, concatenated."""
    import torch

    model.eval()
    chunks = []
    with torch.no_grad():
        for i in range(0, len(x), cfg.eval_batch):
            check_library(ctx.stage("library check", run), functions=False)
            out = _stage(ctx.stage("eval", run), model, x[i:i + cfg.eval_batch])
            if not isinstance(out, torch.Tensor):
                raise StudentError(ctx.stage("eval", run),
                                   TypeError(f"the model returned {type(out).__name__}, not a tensor"))
            chunks.append(out)
    check_library(ctx.stage("library check", run))
    return chunks[0] if len(chunks) == 1 else _stage(ctx.stage("eval", run), torch.cat, chunks)


def _state(ctx: _Context, run: str, model) -> dict:
    """``run``'s ``state`` entry when the request asks for it (``return_state``: the runs whose
    trained weights the judge evaluates itself): the state_dict, read with Module's own method."""
    import torch

    wanted = ctx.request.get("return_state") or ()
    if run not in wanted:
        return {}
    state = torch.nn.Module.state_dict(model)
    return {"state": ctx.writer.encode({k: v.detach().cpu() for k, v in state.items()})}


def _train_loss(ctx: _Context, run: str, model, x, y, cfg: _Config, ignore_index: int | None = None):
    """Mean cross-entropy on the whole training set, eval mode (None if it cannot be computed)."""
    import torch
    import torch.nn.functional as F

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), cfg.eval_batch):
            check_library(ctx.stage("library check", run), functions=False)
            out = _stage(ctx.stage("eval", run), model, x[i:i + cfg.eval_batch])
            target = y[i:i + cfg.eval_batch]
            try:  # outputs that cannot be scored (a wrong shape) are the judge's to report
                value = F.cross_entropy(out.float(), target, reduction="sum",
                                        ignore_index=-100 if ignore_index is None else ignore_index)
            except Exception:  # noqa: BLE001
                return None
            k = target.numel() if ignore_index is None else int((target != ignore_index).sum())
            total, count = total + float(value), count + k
    return total / count if count else None


def _classify_run(ctx: _Context, run: str, model, cfg: _Config, loss=None, params=None, on_train=None,
                  eval_logits: bool = True, epoch_x=None) -> dict:
    x, y = ctx.data("x_train"), ctx.data("y_train", labels=True)
    result = _fit(ctx, run, model, x, y, cfg, loss=loss, params=params, on_train=on_train, epoch_x=epoch_x)
    if eval_logits and ctx.has("x_eval"):
        result["eval_logits"] = ctx.writer.encode(_outputs(ctx, run, model, ctx.data("x_eval"), cfg))
    result["train_loss"] = _train_loss(ctx, run, model, x, y, cfg)
    result.update(_state(ctx, run, model))
    return result


def _student_loss(ctx: _Context, run: str, spec, *fixed):
    """A loss closure calling the student's function ``fn(out, *fixed[idx], **kwargs)``."""
    name, fn, kwargs = ctx.student_fn(spec, "loss")

    def loss(out, idx):
        with ctx.traced():
            return _stage(ctx.stage("loss", run), fn, out, *(t[idx] for t in fixed), **kwargs)

    loss.traced = True  # the backward pass through it is traced too (:func:`_fit`)
    return loss


def _augmenter(ctx: _Context, run: str, steps: list, x, epochs: int):
    """``epoch_x(epoch)``: ``x`` passed through the student's functions, one step after another.

    Each step is ``{"fn": name, "kwargs": {...}, "per_sample": {param: array (epochs, N)}}``:
    in epoch ``e`` image ``i`` goes through ``fn(img, **kwargs, param=per_sample[param][e, i])``.
    The images sharing one combination of values go through one call, as a batch
    (``(n, C, H, W)``): the functions are graded on batches too. Nothing is random here.
    """
    import numpy as np
    import torch

    n = len(x)
    prepared = []
    for step in steps:
        name, fn, kwargs = ctx.student_fn({"fn": step["fn"], "kwargs": step.get("kwargs", {})}, "augment")
        per_sample = {}
        for param, values in (step.get("per_sample") or {}).items():
            values = ctx.reader.decode(values)
            values = values.cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
            if values.shape != (epochs, n):
                raise ValueError(f"augment {name}: {param} has shape {values.shape}, not ({epochs}, {n})")
            per_sample[str(param)] = values
        prepared.append((name, fn, kwargs, per_sample))

    def scalar(value):
        return int(value) if np.issubdtype(type(value), np.integer) else float(value)

    def epoch_x(epoch: int):
        out = x
        with torch.no_grad():
            for name, fn, kwargs, per_sample in prepared:
                stage = ctx.stage(f"augment: {name}", run)
                if not per_sample:
                    combos, inverse = [()], np.zeros(n, dtype=np.int64)
                    names = []
                else:
                    names = list(per_sample)
                    keys = np.stack([per_sample[k][epoch] for k in names], 1)
                    combos, inverse = np.unique(keys, axis=0, return_inverse=True)
                    inverse = np.asarray(inverse).reshape(-1)
                new = out.clone()
                for j, combo in enumerate(combos):
                    rows = torch.from_numpy(np.flatnonzero(inverse == j)).to(out.device)
                    values = {k: scalar(v) for k, v in zip(names, combo)}
                    with ctx.traced():
                        got = _stage(stage, fn, out[rows], **kwargs, **values)
                    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(out[rows].shape):
                        raise StudentError(stage, TypeError(
                            f"{name}(...) returned {type(got).__name__}"
                            + (f" of shape {tuple(got.shape)}" if isinstance(got, torch.Tensor) else "")
                            + f" for images of shape {tuple(out[rows].shape)}: expected the same shape"))
                    new[rows] = got.to(new.dtype)
                out = new
        return out

    return epoch_x


# ---------------------------------------------------------------------- recipes
def _runs(ctx: _Context):
    """The request, its training settings and the models to train (one run each)."""
    models = ctx.request["models"]
    ctx.several = len(models) > 1
    return ctx.request, _Config(ctx.request), models


def recipe_classify(ctx: _Context) -> dict:
    request, cfg, models = _runs(ctx)
    augment = request.get("augment") or {}
    runs = {}
    for run, desc in models.items():
        model = _build(ctx, desc, run, cfg.seed)
        loss = (_student_loss(ctx, run, request["loss"], ctx.data("y_train", labels=True))
                if request.get("loss") else None)
        epoch_x = (_augmenter(ctx, run, augment["steps"], ctx.data("x_train"), cfg.epochs)
                   if run in augment.get("runs", ()) else None)
        runs[run] = _classify_run(ctx, run, model, cfg, loss=loss, epoch_x=epoch_x)
        del model
    return runs


def recipe_distill(ctx: _Context) -> dict:
    request = ctx.request
    models = request["models"]
    ctx.several = True
    cfg = _Config(request)
    teacher_cfg = _Config(request, request.get("teacher"))
    x, y = ctx.data("x_train"), ctx.data("y_train", labels=True)
    runs = {}
    teacher = _build(ctx, models["teacher"], "teacher", teacher_cfg.seed)
    if teacher_cfg.epochs > 0:
        runs["teacher"] = _classify_run(ctx, "teacher", teacher, teacher_cfg)
    else:
        runs["teacher"] = {"history": [], "seconds": 0.0, "epochs": 0,
                           "train_loss": _train_loss(ctx, "teacher", teacher, x, y, cfg), **_state(ctx, "teacher", teacher)}
        if ctx.has("x_eval"):
            runs["teacher"]["eval_logits"] = ctx.writer.encode(_outputs(ctx, "teacher", teacher, ctx.data("x_eval"),
                                                                        cfg))
    teacher_logits = _outputs(ctx, "teacher", teacher, x, teacher_cfg).detach().float()
    del teacher  # its logits on the training set are fixed targets from here on
    student_desc = models["student"]
    model = _build(ctx, student_desc, "student", cfg.seed)
    if request.get("loss"):
        loss = _student_loss(ctx, "student", request["loss"], teacher_logits, y)
    else:
        loss = None
    runs["student"] = _classify_run(ctx, "student", model, cfg, loss=loss)
    del model
    if request.get("compare_hard"):
        model = _build(ctx, student_desc, "hard", cfg.seed)
        runs["hard"] = _classify_run(ctx, "hard", model, cfg)
    return runs


def _freeze_default(model, head: str):
    """requires_grad off outside ``head``; an ``on_train`` hook keeping BatchNorm there in eval mode."""
    import torch

    for name, param in model.named_parameters():
        param.requires_grad_(_under(name, head))
    frozen_norms = [m for name, m in model.named_modules()
                    if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not _under(name, head)]

    def on_train(_model):
        for m in frozen_norms:
            m.eval()

    return on_train


def _load_backbone(ctx: _Context, run: str, model, pretrained_state: dict, head: str):
    import torch

    state = model.state_dict()
    if not any(_under(k, head) for k in state):
        raise StudentError(ctx.stage("transfer", run), ValueError(
            f"the model has no parameters under '{head}', the classification head to replace"))
    new_state = {}
    for key, value in state.items():
        if _under(key, head):
            new_state[key] = value
            continue
        if key not in pretrained_state or tuple(pretrained_state[key].shape) != tuple(value.shape):
            raise StudentError(ctx.stage("transfer", run), ValueError(
                f"'{key}' of the new model does not match the pretrained model's"))
        new_state[key] = pretrained_state[key]
    with torch.no_grad():
        _stage(ctx.stage("transfer", run), model.load_state_dict, new_state, strict=True)


def recipe_transfer(ctx: _Context) -> dict:
    import torch

    request = ctx.request
    ctx.several = True
    head = str(request.get("head", "fc"))
    desc = request["models"]["model"]
    new_kwargs = ctx.reader.decode(request.get("new_kwargs", {})) or {}
    variants = list(request.get("variants", ["scratch", "frozen", "finetune"]))
    cfg = _Config(request)
    pre_cfg = _Config(request, request.get("pretrain"))
    runs = {}

    x_pre, y_pre = ctx.data("x_pre"), ctx.data("y_pre", labels=True)
    model = _build(ctx, desc, "pretrain", pre_cfg.seed)
    run = _fit(ctx, "pretrain", model, x_pre, y_pre, pre_cfg)
    run["train_loss"] = _train_loss(ctx, "pretrain", model, x_pre, y_pre, pre_cfg)
    runs["pretrain"] = run
    pretrained = {k: v.detach().clone() for k, v in model.state_dict().items()}
    del model

    for variant in variants:
        if variant not in ("scratch", "frozen", "finetune"):
            raise ValueError(f"unknown transfer variant {variant!r}")
        model = _build(ctx, desc, variant, cfg.seed, new_kwargs)
        params, on_train, extra = None, None, {}
        if variant != "scratch":
            _load_backbone(ctx, variant, model, pretrained, head)
        if variant == "frozen":
            if request.get("freeze"):
                _, freeze, kwargs = ctx.student_fn(request["freeze"], "freeze")
                returned = _stage(ctx.stage("freeze", variant), freeze, model, trainable=(head,), **kwargs)
                extra["freeze_returned"] = returned if isinstance(returned, (int, float)) and \
                    not isinstance(returned, bool) else None
            else:
                on_train = _freeze_default(model, head)
            params = [p for p in model.parameters() if p.requires_grad]
            extra["num_trainable"] = int(sum(p.numel() for p in params))
            if not params:
                raise StudentError(ctx.stage("freeze", variant), ValueError("no parameter is trainable after freezing"))
            before = {k: v.detach().clone() for k, v in model.state_dict().items() if not _under(k, head)}
        elif variant == "finetune" and request.get("param_groups"):
            _, groups_fn, kwargs = ctx.student_fn(request["param_groups"], "param_groups")
            params = _stage(ctx.stage("param_groups", variant), groups_fn, model, head_prefix=head, **kwargs)
            if not isinstance(params, (list, tuple)) or not all(isinstance(g, dict) and "params" in g for g in params):
                raise StudentError(ctx.stage("param_groups", variant), TypeError(
                    "param_groups(...) must return a list of dicts with a 'params' key"))
            params = [dict(g) for g in params]
            extra["group_lrs"] = [float(g["lr"]) if isinstance(g.get("lr"), (int, float)) else None for g in params]
            try:
                cfg.make_optimizer(params)
            except (ValueError, TypeError) as exc:
                raise StudentError(ctx.stage("param_groups", variant), exc) from None
        result = _classify_run(ctx, variant, model, cfg, params=params, on_train=on_train)
        if variant == "frozen":
            after = model.state_dict()
            extra["changed_outside_head"] = int(sum(
                1 for k, v in before.items()
                if k in after and (after[k].shape != v.shape or not torch.equal(after[k], v))))
        runs[variant] = {**result, **extra}
        del model
    return runs


def recipe_segment(ctx: _Context) -> dict:
    import torch
    import torch.nn.functional as F

    request, cfg, models = _runs(ctx)
    x, y = ctx.data("x_train"), ctx.data("y_train", labels=True)
    runs = {}

    def loss(out, idx):
        return F.cross_entropy(out, y[idx], ignore_index=IGNORE_INDEX)

    for run, desc in models.items():
        model = _build(ctx, desc, run, cfg.seed)
        result = _fit(ctx, run, model, x, y, cfg, loss=loss)
        out = _outputs(ctx, run, model, ctx.data("x_eval"), cfg)
        if out.dim() != 4:
            raise StudentError(ctx.stage("eval", run), ValueError(
                f"the model's output has shape {tuple(out.shape)}, not (N, num_classes, H, W)"))
        pred = out.argmax(dim=1)
        pred = pred.to(torch.uint8) if out.shape[1] <= 256 else pred.long()
        result["eval_pred"] = ctx.writer.encode(pred)
        if request.get("return_logits"):
            result["eval_logits"] = ctx.writer.encode(out)
        result["train_loss"] = _train_loss(ctx, run, model, x, y, cfg, ignore_index=IGNORE_INDEX)
        runs[run] = result
        del model
    return runs


RECIPES = {"classify": recipe_classify, "distill": recipe_distill, "transfer": recipe_transfer,
           "segment": recipe_segment}


# ------------------------------------------------------------------------ entry
def _legacy(request, namespace, reader, writer) -> dict:
    """The original ``train`` request: one factory, data and budget at the top level."""
    ctx = _Context(request, namespace, reader, writer)
    check_library("library check")
    cfg = _Config(request, legacy=True)
    model = _build(ctx, {"factory": request["factory"], "args": request.get("args", []),
                         "kwargs": request.get("kwargs", {})}, "model", cfg.seed)
    x, y = ctx.data("x_train"), ctx.data("y_train", labels=True)
    run = _fit(ctx, "model", model, x, y, cfg)
    logits = _outputs(ctx, "model", model, ctx.data("x_eval"), cfg)
    return {"eval_logits": writer.encode(logits), "history": run["history"], "device": reader.device,
            "train_seconds": run["seconds"]}


def run(request: dict, namespace: dict, reader, writer, trace=None, seen: set | None = None) -> dict:
    """Run a ``train`` request (the ``train`` proc of :mod:`gradekit.capture`).

    ``trace(seen)``: the context manager recording what runs into ``seen``
    (:func:`gradekit.capture._op_trace`), put around the student's own functions a recipe calls;
    their operators are recorded into ``seen`` (the caller's, so that it keeps them when the
    request stops early) and returned as ``ops``."""
    import torch

    if "recipe" not in request:
        return _legacy(request, namespace, reader, writer)
    recipe = RECIPES.get(request["recipe"])
    if recipe is None:
        raise ValueError(f"unknown training recipe {request['recipe']!r}")
    ctx = _Context(request, namespace, reader, writer)
    ctx.trace = trace
    ctx.seen = seen if seen is not None else ctx.seen
    check_library("library check")
    ctx.sync()
    start = time.perf_counter()
    runs = {}
    seed = int(request.get("seed", 0))
    for k in range(max(1, int(request.get("repeats", 1)))):
        ctx.request = request if k == 0 else {**request, "seed": seed + k * REPEAT_SEED_STRIDE}
        runs.update({name if k == 0 else f"{name}@{k}": value for name, value in recipe(ctx).items()})
    ctx.sync()
    check_library("library check")
    result = {"device": str(reader.device), "train_seconds": time.perf_counter() - start,
              "threads": int(torch.get_num_threads()), "runs": runs, "ops": sorted(ctx.seen)}
    if str(reader.device).startswith("cuda"):
        result["gpu"] = str(torch.cuda.get_device_name(torch.device(reader.device)))
    return result
