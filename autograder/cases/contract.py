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
  target's layout loaded with ``strict=True``, then the same outputs in eval mode;
  ``training mode``: the same in training mode (BatchNorm with the batch's statistics).

A target's facts (count, layout, submodule types, output shapes) are found once on the
meta device and cached, and weights are drawn when a request is written, so drawing
cases costs nothing even for ResNet-50 or DenseNet-121.
"""
from __future__ import annotations

import functools

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
#: What the students' self-check compares for each group: the reference's record holds the
#: target's count, layout and outputs (float32 against float32: twice the tolerance).
PUBLIC = {"output shape": Public(("outputs.0:shape",)), "parameters": Public(("facts.num_params",)),
          "state_dict": Public(("facts.state_shapes:keys",)),
          "torchvision layout": Public(("facts.num_params", "facts.state_shapes:keys")),
          "outputs": Public(("outputs",), tol=2 * MODULE_TOL),
          "torchvision weights": Public(("outputs",), tol=2 * MODULE_TOL),
          "training mode": Public(("outputs",), tol=2 * MODULE_TOL)}


def call_text(name: str, args=(), kwargs=None) -> str:
    return f"{name}({', '.join([repr(a) for a in args] + [f'{k}={v!r}' for k, v in (kwargs or {}).items()])})"


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

    def outputs(self, state: dict, x: np.ndarray, train: bool) -> torch.nn.Module:
        """``make()`` in float64 with ``state`` loaded, in training or eval mode, on ``x``."""
        m = self.make()
        m.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
        m = m.double().train(train)
        with torch.no_grad():
            return m, m(torch.from_numpy(x).double())


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


MODULE_GROUPS = ("output shape", "parameters", "state_dict", "outputs", "training mode")
TWIN_GROUPS = ("output shape", "parameters", "state_dict", "torchvision weights", "submodules", "training mode")


def contract(problem: Problem, target: Target, args: tuple, x: np.ndarray, draw: Draw, groups=None,
             kwargs=None, alternatives=None, heavy: bool = False, train_x: np.ndarray | None = None
             ) -> list[Case]:
    """The module contract of ``problem.name(*args, **kwargs)`` against ``target`` (its torchvision twin,
    or the reference whose layout the spec fixes), each aspect in its group:

    - ``output shape`` on ``x`` (odd sizes); ``parameters`` (count); ``state_dict`` (keys and shapes);
      ``submodules`` (a twin's named submodules, same types);
    - ``torchvision weights`` (twin) or ``outputs`` (reference): random weights in the target's layout
      loaded with ``strict=True``, the same outputs in eval mode; ``training mode``: the same in
      training mode on ``train_x`` (BatchNorm with the batch's statistics);
    - ``torchvision layout`` (full-size models): the count and the ``state_dict`` in one build.

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
            case = module(problem, group, text, check, *args, **request, **kwargs)
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

    for group, train, inputs in (("torchvision weights" if target.twin else "outputs", False, x),
                                 ("training mode", True, train_x)):
        if group not in groups:
            continue
        mode = "training mode" if train else "eval mode"
        seed = draw.int(0, 2**31 - 1)
        state = functools.cache(lambda seed=seed: target.random_state(seed))
        text = f"{label} with {'torchvision' if target.twin else 'given'} weights, in {mode}"

        def values(outcome, train=train, inputs=inputs, state=state, text=text):
            if outcome.load_error:
                err = outcome.load_error if isinstance(outcome.load_error, dict) else {}
                return f"{label}: load_state_dict(strict=True) of weights in {whose} layout failed: " \
                       f"{' '.join(str(err.get('message', '')).split())[:200]}"
            m, expected = target.outputs(state(), inputs, train)
            got = output_of(outcome)
            msg = check_tensor(got, expected.numpy().astype(inputs.dtype), "the output", tol=MODULE_TOL)
            if msg is None:
                return None
            hint = ""
            xt = torch.from_numpy(inputs).double()
            for what, alt in (alternatives(m, xt, train) if alternatives else ()):
                try:
                    with torch.no_grad():
                        value = alt().numpy()
                except Exception:  # noqa: BLE001  (a variant that does not apply)
                    continue
                if isinstance(got, np.ndarray) and value.shape == got.shape and rel_error(got, value) <= MODULE_TOL:
                    hint = f"; it matches {what}"
                    break
            return f"{text}: {msg}{hint}"
        add(group, text, values, state=state, inputs=[inputs], train=train)
    return cases


