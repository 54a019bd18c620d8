"""The module contract: one table row per ``nn.Module`` problem.

``contract(problem, target, args, x, draw)`` gives the cases that pin a student's
``problem.name(*args)`` down against a :class:`Target`: its torchvision twin
(:func:`twin_target`, a ``ModuleSpec`` of the torchvision module with the same
structure) or the week's reference whose layout the course spec fixes
(:func:`reference_target`). Each aspect is its own group:

- ``output shape`` on an input of odd sizes; ``parameters`` (the count);
  ``state_dict`` (keys and shapes, the published layout, never values);
  ``submodules`` (a twin's named submodules, same types); ``torchvision layout``
  (count and keys in one case, for full-size models);
- ``torchvision weights`` (twin) or ``outputs`` (reference): random weights in the
  target's layout loaded with ``strict=True``, then the same outputs in eval mode, on the
  input and on a batch of one (and on the ``edge`` inputs: large non-square ones);
- ``training mode``: :data:`TRAIN_PASSES` passes in training mode, torch's random generator
  seeded alike before each (so dropout draws the same masks here and in the kernel): the same
  outputs, then the same buffers (BatchNorm's running statistics after the passes:
  ``momentum``, ``eps``, ``num_batches_tracked``; the rate and the place of dropout);
- ``backward``: in float64 and training mode, the module leaves its input as it was and a
  backward pass gives the target's gradients for the input and every parameter; where the
  output has the input's shape, through two copies in a row (an in-place change of the input
  that breaks backward inside a network shows there).

Full-size models (``with_training``) run their training passes in their weights case
(one state sent, one build), and return only the buffers. Their training passes need enough
values per channel in the deepest BatchNorm layers (a batch of two 1x1 maps normalises two
values, where float32 round-off decides the outputs): a large image, whose last map is 2x3 or
more, keeps them comparable.

A target's facts (count, layout, submodule types, output shapes) are found once on the
meta device and cached, and weights are drawn when a request is written, so drawing
cases costs nothing even for ResNet-50 or DenseNet-121.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from gradekit.codec import ModuleSpec

from ..compare import check_tensor, describe, fmt_shape, rel_error
from ..problem import Case, Outcome, Problem, Public
from .builders import module
from .modules import build, spec_text
from .sample import Draw

#: Module cases compare float32 outputs in the kernel with float64 ones here.
MODULE_TOL = 1e-4
#: Training-mode passes of a ``training mode`` case.
TRAIN_PASSES = 2
#: What the students' self-check compares for each group: the reference's record holds the
#: target's count, layout and outputs (float32 against float32: twice the tolerance); the
#: backward case runs in float64 (the float64 tolerance).
PUBLIC = {"output shape": Public(("outputs.0:shape",)), "parameters": Public(("facts.num_params",)),
          "state_dict": Public(("facts.state_shapes:keys",)),
          "torchvision layout": Public(("facts.num_params", "facts.state_shapes:keys")),
          "outputs": Public(("outputs",), tol=2 * MODULE_TOL),
          "torchvision weights": Public(("outputs",), tol=2 * MODULE_TOL),
          "training mode": Public(("outputs", "state_after"), tol=2 * MODULE_TOL),
          "backward": Public(("outputs", "grads", "args_after"))}
#: Hints every week can use for the two behavioural groups (a week may say more).
TRAINING_HINT = (
    "in training mode (several passes, torch's random generator seeded alike before each) the outputs, and the "
    "state_dict after the passes, must be the target's: BatchNorm normalises with the batch's statistics and "
    "updates its running mean and variance with its default momentum (0.1) and eps (1e-5), counting the passes in "
    "num_batches_tracked; a dropout layer zeroes with its rate at its place. Use nn.BatchNorm2d and nn.Dropout (or "
    "F.dropout with training=self.training) with the spec's settings, and never switch them to eval inside the "
    "module.")
BACKWARD_HINT = (
    "a module must leave its input as it was and be differentiable: a backward pass (float64, training mode) "
    "through it, and through two of them in a row where the shapes allow, must give the target's gradients for the "
    "input and every parameter. Never change the input in place (x += ..., x.relu_(), an inplace ReLU on x): "
    "in-place operations on tensors the module made itself are fine.")


def call_text(name: str, args=(), kwargs=None) -> str:
    return f"{name}({', '.join([repr(a) for a in args] + [f'{k}={v!r}' for k, v in (kwargs or {}).items()])})"


@dataclass
class Run:
    """What the target did on a sequence of passes (float64)."""

    module: torch.nn.Module
    outputs: list = field(default_factory=list)
    state: dict = field(default_factory=dict)
    grads: list = field(default_factory=list)


class Target:
    """A module built here, by text: this week's reference or a torchvision twin. Its facts
    (parameter count, ``state_dict`` layout, submodule types, output shapes) are found once on
    the meta device and cached, so that drawing cases costs nothing."""

    _cache: dict = {}

    def __new__(cls, text: str, make, twin: bool):
        if text not in cls._cache:
            self = super().__new__(cls)
            self.text, self.make, self.twin = text, make, twin
            self._shapes = {}
            self._facts = None
            cls._cache[text] = self
        return cls._cache[text]

    @property
    def facts(self) -> tuple[int, dict, dict, dict]:
        """(parameter count, key -> shape, key -> kind, submodule name -> type name)."""
        if self._facts is None:
            with torch.device("meta"):
                m = self.make()
            norms = {n for n, sub in m.named_modules() if isinstance(sub, torch.nn.modules.batchnorm._BatchNorm)}
            kinds = {}
            for key in m.state_dict():
                owner, _, leaf = key.rpartition(".")
                kinds[key] = f"norm {leaf}" if owner in norms else leaf
            self._facts = (sum(p.numel() for p in m.parameters()),
                           {k: tuple(v.shape) for k, v in m.state_dict().items()}, kinds,
                           {n: type(sub).__name__ for n, sub in m.named_modules() if n})
        return self._facts

    def shape(self, input_shape: tuple) -> tuple:
        if input_shape not in self._shapes:
            with torch.device("meta"), torch.no_grad():
                self._shapes[input_shape] = tuple(self.make().eval()(torch.empty(input_shape)).shape)
        return self._shapes[input_shape]

    def random_state(self, draw_seed: int) -> dict:
        """Random weights in this layout (numpy, float32): conv and linear weights uniform with
        variance 1/fan_in, biases N(0, 0.1), BatchNorm scales U(0.5, 1.5), shifts N(0, 0.3), running means N(0, 0.5)
        and variances U(0.5, 2), so that loading or mode mistakes show."""
        rng = np.random.default_rng(draw_seed)
        _, shapes, kinds, _ = self.facts
        state = {}
        for key, shape in shapes.items():
            kind = kinds[key]
            if kind.endswith("num_batches_tracked"):
                state[key] = np.array(int(rng.integers(1, 500)), dtype=np.int64)
            elif kind == "norm weight":
                state[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
            elif kind in ("norm bias", "norm running_mean"):
                state[key] = (rng.standard_normal(shape) * (0.3 if kind == "norm bias" else 0.5)).astype(np.float32)
            elif kind == "norm running_var":
                state[key] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
            elif kind == "weight" and len(shape) > 1:
                bound = np.float32(np.sqrt(3.0 / int(np.prod(shape[1:]))))  # variance 1 / fan_in
                state[key] = rng.random(shape, dtype=np.float32) * (2 * bound) - bound
            else:
                state[key] = (rng.standard_normal(shape) * 0.1).astype(np.float32)
        return state

    def load(self, state: dict, copies: int = 1, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
        """``make()`` with ``state`` loaded (``strict=True``), in ``dtype``; ``copies`` of it in a row."""
        made = []
        for _ in range(copies):
            m = self.make()
            m.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
            made.append(m.to(dtype))
        return made[0] if copies == 1 else torch.nn.Sequential(*made)

    def outputs(self, state: dict, x: np.ndarray, train: bool) -> tuple[torch.nn.Module, torch.Tensor]:
        """``make()`` in float64 with ``state`` loaded, in training or eval mode, on ``x``."""
        m = self.load(state).train(train)
        with torch.no_grad():
            return m, m(torch.from_numpy(x).double())

    def run(self, state: dict, inputs=(), train: bool = False, train_inputs=(), reseed: int | None = None,
            copies: int = 1, grad_outputs=None, dtype: torch.dtype = torch.float64) -> Run:
        """The passes the kernel's ``module`` request makes (in ``dtype``): ``inputs`` in the given mode, then
        ``train_inputs`` in training mode, torch's generator seeded with ``reseed + i`` before pass i;
        with ``grad_outputs`` (one per pass) each output is backpropagated, and the gradients for the
        input and every parameter kept."""
        m = self.load(state, copies, dtype).train(train)
        found = Run(m)
        passes = [(x, train) for x in inputs] + [(x, True) for x in train_inputs]
        with torch.random.fork_rng(devices=[]):
            for i, (x, mode) in enumerate(passes):
                m.train(mode)
                if reseed is not None:
                    torch.manual_seed(reseed + i)
                xt = torch.from_numpy(np.array(x)).to(dtype).requires_grad_(grad_outputs is not None)
                with torch.set_grad_enabled(grad_outputs is not None):
                    out = m(xt)
                if grad_outputs is not None:
                    out.backward(torch.from_numpy(grad_outputs[i]).to(dtype))
                    found.grads.append({"input": xt.grad, "params": {n: p.grad for n, p in m.named_parameters()}})
                    m.zero_grad(set_to_none=True)
                found.outputs.append(out.detach())
        found.state = {k: v.detach() for k, v in m.state_dict().items()}
        return found


def reference_target(cls, *args, **kwargs) -> Target:
    return Target(f"reference {call_text(cls.__name__, args, kwargs)}", lambda: cls(*args, **kwargs), False)


def twin_target(twin: ModuleSpec) -> Target:
    return Target(spec_text(twin), lambda: build(twin), True)


def _facts(outcome: Outcome) -> dict:
    return outcome.facts if isinstance(outcome.facts, dict) else {}


def output_of(outcome: Outcome, index: int = 0):
    outs = outcome.outputs if isinstance(outcome.outputs, list) else []
    return outs[index] if len(outs) > index else None


def _lazy(case: Case, extra) -> Case:
    """``case`` whose request gets ``extra()`` (e.g. a large state) only when it is written."""
    request = case.request
    case.request = lambda: {**request, **extra()}
    return case


def _load_message(outcome: Outcome, label: str, whose: str) -> str | None:
    if not outcome.load_error:
        return None
    err = outcome.load_error if isinstance(outcome.load_error, dict) else {}
    where = whose if whose.startswith("the layout") else f"{whose} layout"
    return f"{label}: load_state_dict(strict=True) of weights in {where} failed: " \
           f"{' '.join(str(err.get('message', '')).split())[:200]}"


def _error_text(error) -> str:
    err = error if isinstance(error, dict) else {}
    return f"{err.get('type')}: {' '.join(str(err.get('message', '')).split())[:160]}"


def unflatten(got) -> dict:
    """A ``"flat buffers"`` record (``{"keys", "shapes", "values"}``) as key -> array (float64)."""
    if not isinstance(got, dict) or not isinstance(got.get("values"), np.ndarray):
        return {}
    keys, shapes, values = got.get("keys"), got.get("shapes"), got["values"].reshape(-1)
    if not isinstance(keys, list) or not isinstance(shapes, list) or len(keys) != len(shapes):
        return {}
    state, at = {}, 0
    for key, shape in zip(keys, shapes):
        size = int(np.prod(shape)) if isinstance(shape, list) else -1
        if size < 0 or at + size > values.size:
            return state
        state[str(key)] = values[at:at + size].reshape(shape)
        at += size
    return state


def compare_state(got, expected: dict, what: str, tol: float = MODULE_TOL) -> str | None:
    """The first entry of the ``state_dict`` ``expected`` (float64 tensors) that ``got`` (the
    kernel's, float32 numpy) lacks or holds other values for, as 'what: key ...'."""
    got = got if isinstance(got, dict) else {}
    for key, value in expected.items():
        mine = got.get(key)
        want = value.numpy()
        if isinstance(mine, np.ndarray) and mine.dtype.kind == "f":  # (flat buffers: every entry float64)
            want = want.astype(mine.dtype)
        elif want.dtype.kind == "f":
            want = want.astype(np.float32)
        msg = check_tensor(mine, want, key, tol=tol) if mine is not None else f"{key} is missing"
        if msg:
            return f"{what}: {msg}"
    return None


MODULE_GROUPS = ("output shape", "parameters", "state_dict", "outputs", "training mode", "backward")
TWIN_GROUPS = ("output shape", "parameters", "state_dict", "torchvision weights", "submodules", "training mode",
               "backward")


def contract(problem: Problem, target: Target, args: tuple, x: np.ndarray, draw: Draw, groups=None,
             kwargs=None, alternatives=None, heavy: bool = False, train_x: np.ndarray | None = None,
             edge: tuple = (), one: bool = True, with_training: int = 0, backward: bool = True,
             param_grads: bool = True, judge_dtype: torch.dtype = torch.float64, train_tol: float = MODULE_TOL
             ) -> list[Case]:
    """The module contract of ``problem.name(*args, **kwargs)`` against ``target`` (its torchvision twin,
    or the reference whose layout the spec fixes), each aspect in its group:

    - ``output shape`` on ``x`` (odd sizes); ``parameters`` (count); ``state_dict`` (keys and shapes);
      ``submodules`` (a twin's named submodules, same types);
    - ``torchvision weights`` (twin) or ``outputs`` (reference): random weights in the target's layout
      loaded with ``strict=True``, the same outputs in eval mode on ``x``, on its first sample alone
      (a batch of one, unless ``one`` is False) and on the ``edge`` inputs; then (full-size models) ``with_training``
      training-mode passes on ``train_x`` and the buffers after them;
    - ``training mode``: :data:`TRAIN_PASSES` training-mode passes (``train_x``, then another input of
      its shape), torch's generator reseeded before each: the outputs, then the buffers of the
      ``state_dict`` after them (forward passes change no parameter);
    - ``backward`` (unless ``backward`` is False: a problem asks it of a few of its configurations):
      float64, training mode: the input left as it was, the outputs and the gradients for the input
      and (``param_grads``) every parameter; through two copies in a row where the output has the
      input's shape (which covers one copy too), else through one;
    - ``torchvision layout`` (full-size models): the count and the ``state_dict`` in one build.

    ``judge_dtype``: the target's dtype for the outputs cases (float64; full-size models use float32,
    which is as exact on their well-conditioned inputs and runs PyTorch's fast float32 convolutions);
    ``train_tol``: the tolerance of a full-size model's training passes and buffers.

    Everything about the target is computed when a case is checked (or cached), and the weights
    when the request is written, so drawing cases is cheap. alternatives(module, x, train): named
    classic mistakes computed from the loaded target.
    """
    kwargs = kwargs or {}
    groups = groups or (TWIN_GROUPS if target.twin else MODULE_GROUPS)
    label = call_text(problem.name, args, kwargs)
    whose = f"torchvision's {target.text.split('(')[0].rsplit('.', 1)[-1]}" if target.twin else \
        "the layout the spec fixes"
    train_x = x if train_x is None else train_x
    cases = []

    def add(group, text, check, state=None, **request):
        if group in groups:
            case = module(problem, group, text, check, *args, fields=request, **kwargs)
            case.heavy, case.public = heavy, PUBLIC.get(group)
            if state is not None:
                _lazy(case, lambda: {"state": state()})
            cases.append(case)

    def shape(outcome):
        expected, out = target.shape(tuple(x.shape)), output_of(outcome)
        if not isinstance(out, np.ndarray) or tuple(out.shape) != expected:
            return f"{label} maps x of shape {fmt_shape(x.shape)} to {describe(out)}, expected shape " \
                   f"{fmt_shape(expected)}"
        return None
    add("output shape", f"{label} on x of shape {fmt_shape(x.shape)}", shape, inputs=[x])

    def parameters(outcome):
        got, count = _facts(outcome).get("num_params"), target.facts[0]
        return None if got == count else f"{label} has {got} parameters; {whose} has {count:,}"

    def keys(outcome):
        layout = target.facts[1]
        got = {k: tuple(v) for k, v in (_facts(outcome).get("state_shapes") or {}).items()}
        missing, extra = sorted(set(layout) - set(got)), sorted(set(got) - set(layout))
        if missing or extra:
            return f"{label}: state_dict keys differ from {whose}: missing {missing[:4]}, unexpected {extra[:4]}"
        wrong = [k for k in layout if got[k] != layout[k]]
        return f"{label}: {wrong[0]} has shape {fmt_shape(got[wrong[0]])}, {whose} has " \
               f"{fmt_shape(layout[wrong[0]])}" if wrong else None
    add("parameters", f"parameters of {label}", parameters)
    add("state_dict", f"state_dict of {label}", keys)
    add("torchvision layout", f"parameters and state_dict of {label}", lambda o: parameters(o) or keys(o))

    def submodules(outcome):
        got = {str(n): str(t) for n, t in (_facts(outcome).get("modules") or [])}
        for name, kind in target.facts[3].items():
            if got.get(name) != kind:
                return f"{label}: submodule {name!r} should be a {kind}, found {got.get(name, 'nothing')}"
        return None
    add("submodules", f"submodules of {label}", submodules)

    def seeded_state():
        seed = draw.int(0, 2**31 - 1)
        return functools.cache(lambda: target.random_state(seed))

    context = {"label": label, "whose": whose, "alternatives": alternatives, "dtype": judge_dtype,
               "train_tol": train_tol}
    group = "torchvision weights" if target.twin else "outputs"
    if group in groups:
        inputs = [x] + ([x[:1]] if one and len(x) > 1 else []) + list(edge)
        trains = [train_x] * with_training
        reseed = draw.int(0, 2**20)
        add(group, *_eval_case(target, context, inputs, trains, seeded_state(), reseed),
            inputs=inputs, train_inputs=trains, reseed=reseed, **({"return_state": "flat buffers"} if trains else {}))
    if "training mode" in groups:
        second = draw.normal(train_x.shape, train_x.dtype)
        inputs = [train_x, second, train_x][:TRAIN_PASSES]
        reseed = draw.int(0, 2**20)
        add("training mode", *_training_case(target, context, inputs, seeded_state(), reseed),
            inputs=inputs, train=True, reseed=reseed, return_state="buffers")
    if "backward" in groups and backward:
        copies = 2 if target.shape(tuple(x.shape)) == tuple(x.shape) else 1
        grad_output = draw.normal(target.shape(tuple(x.shape)), np.float64)
        text, check, state, request = _backward_case(target, context, x.astype(np.float64), grad_output, copies,
                                                     param_grads, seeded_state(), draw.int(0, 2**20))
        add("backward", text, check, state, **request)
    return cases


def _hint(context: dict, m, x: np.ndarray, got, train: bool) -> str:
    """'; it matches <classic mistake>' when ``got`` is one of the named alternatives on ``x``."""
    if not context["alternatives"]:
        return ""
    xt = torch.from_numpy(x).to(context.get("dtype", torch.float64))
    for what, alt in context["alternatives"](m, xt, train):
        try:
            with torch.no_grad():
                value = alt().numpy()
        except Exception:  # noqa: BLE001  (a variant that does not apply)
            continue
        if isinstance(got, np.ndarray) and value.shape == got.shape and rel_error(got, value) <= MODULE_TOL:
            return f"; it matches {what}"
    return ""


def _eval_case(target: Target, context: dict, inputs: list, trains: list, state, reseed: int):
    """(label, check, state) of the eval-mode case: every input, then the training passes of a full model."""
    label = context["label"]
    shapes = " and ".join(fmt_shape(x.shape) for x in inputs)
    text = f"{label} with {'torchvision' if target.twin else 'given'} weights, in eval mode, on x of shape {shapes}" \
        + (f", then {len(trains)} passes in training mode" if trains else "")

    def check(outcome: Outcome):
        msg = _load_message(outcome, label, context["whose"])
        if msg:
            return msg
        run = target.run(state(), inputs, False, trains, reseed, dtype=context["dtype"])
        for i, (x, expected) in enumerate(zip(inputs + trains, run.outputs)):
            got = output_of(outcome, i)
            train = i >= len(inputs)
            msg = check_tensor(got, expected.numpy().astype(x.dtype), "the output",
                               tol=context["train_tol"] if train else MODULE_TOL)
            if msg:
                where = (f"training-mode pass {i - len(inputs) + 1}" if train else "eval mode") + \
                    f" on x of shape {fmt_shape(x.shape)}"
                m = run.module if i == 0 else target.load(state(), dtype=context["dtype"]).train(train)
                hint = _hint(context, m, x, got, train) if i == 0 else ""
                return f"{label} with given weights, {where}: {msg}{hint}"
        if trains:
            params = dict(run.module.named_parameters())
            buffers = {k: v for k, v in run.state.items() if k not in params}
            return compare_state(unflatten(outcome.state_after), buffers,
                                 f"{label}: after {len(trains)} passes in training mode, the state_dict's buffers "
                                 "differ", tol=context["train_tol"])
        return None
    return text, check, state


def _training_case(target: Target, context: dict, inputs: list, state, reseed: int):
    """(label, check, state) of the training-mode passes: outputs, then the state_dict after them."""
    label = context["label"]
    text = f"{label} with given weights, {len(inputs)} passes in training mode (torch's generator seeded alike " \
           f"before each) on x of shape {fmt_shape(inputs[0].shape)}"

    def check(outcome: Outcome):
        msg = _load_message(outcome, label, context["whose"])
        if msg:
            return msg
        run = target.run(state(), inputs, True, reseed=reseed)
        for i, (x, expected) in enumerate(zip(inputs, run.outputs)):
            got = output_of(outcome, i)
            msg = check_tensor(got, expected.numpy().astype(x.dtype), "the output", tol=MODULE_TOL)
            if msg:
                hint = _hint(context, target.load(state()).train(True), x, got, True) if i == 0 else ""
                return f"{label} with given weights, training-mode pass {i + 1}: {msg}{hint}"
        params = dict(run.module.named_parameters())
        return compare_state(outcome.state_after, {k: v for k, v in run.state.items() if k not in params},
                             f"{label}: after {len(inputs)} passes in training mode, the state_dict differs")
    return text, check, state


def _backward_case(target: Target, context: dict, x: np.ndarray, grad_output: np.ndarray, copies: int,
                   param_grads: bool, state, reseed: int):
    """(label, check, state, request fields) of a float64 backward pass through ``copies`` of the module."""
    label = context["label"]
    through = f"two {label} in a row" if copies == 2 else label
    text = f"backward through {through} (float64, training mode, given weights) on x of shape {fmt_shape(x.shape)}"

    def check(outcome: Outcome):
        msg = _load_message(outcome, label, context["whose"])
        if msg:
            return msg
        after = outcome.args_after if isinstance(outcome.args_after, dict) else {}
        inputs = after.get("inputs") if isinstance(after.get("inputs"), list) else []
        now = inputs[0] if inputs else None
        if not isinstance(now, np.ndarray) or now.shape != x.shape or not np.array_equal(now, x):
            return f"{text}: the module changed its input x (an in-place operation on it): leave the input as it " \
                   "was and work on new tensors"
        run = target.run(state(), [x], True, reseed=reseed, copies=copies, grad_outputs=[grad_output])
        msg = check_tensor(output_of(outcome), run.outputs[0].numpy(), "the output")
        if msg:
            return f"{text}: {msg}"
        if outcome.grad_error:
            return f"{text}: backward raised {_error_text(outcome.grad_error)}"
        grads = outcome.grads[0] if isinstance(outcome.grads, list) and outcome.grads else {}
        grads = grads if isinstance(grads, dict) else {}
        expected = run.grads[0]
        msg = check_tensor(grads.get("input"), expected["input"].numpy(), "the gradient for x")
        if msg:
            return f"{text}: {msg}" + (" (is the output still connected to x?)" if grads.get("input") is None else "")
        if param_grads:
            got = grads.get("params") if isinstance(grads.get("params"), dict) else {}
            for name, value in expected["params"].items():
                mine = got.get(name)
                if value is None:
                    continue
                msg = check_tensor(mine, value.numpy(), f"the gradient for {name}") if mine is not None else \
                    f"no gradient reached {name}"
                if msg:
                    return f"{text}: {msg}"
        return None

    request = {"inputs": [x], "train": True, "double": True, "reseed": reseed, "return_inputs": True,
               "backward": {"grad_outputs": [grad_output], "params": param_grads},
               **({"stack": True} if copies == 2 else {})}
    return text, check, state, request
