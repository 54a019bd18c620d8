"""The module contract: one table row per ``nn.Module`` problem.

``contract(problem, reference, twin, *args, input_shape=..., **kwargs)`` gives the cases
that pin a student's module down against the reference class (``solutions/``) and
its torchvision twin (a ``ModuleSpec`` of the torchvision module with the same
structure), each in its own group:

- ``output shape``: ``problem.name(*args, **kwargs)`` maps an input of odd spatial
  size ``input_shape`` to the reference's output shape (found on the meta device);
- ``parameters``: its parameter count equals the twin's;
- ``state_dict``: its ``state_dict`` keys and shapes equal the twin's (names and
  shapes are the published torchvision layout, never values);
- ``torchvision weights``: it loads the twin's (random) ``state_dict`` with
  ``strict=True`` and then computes the twin's outputs in eval mode;
- ``submodules``: every submodule the twin has is there, under the same name, of the
  same type.
"""
from __future__ import annotations

import numpy as np
import torch

from ..compare import check_tensor, fmt_shape
from ..problem import Case, Outcome, Problem
from .builders import module
from .modules import build, spec_text

GROUPS = ("output shape", "parameters", "state_dict", "torchvision weights", "submodules")


def _facts(outcome: Outcome) -> dict:
    return outcome.facts if isinstance(outcome.facts, dict) else {}


def contract(problem: Problem, reference, twin, *args, input_shape: tuple, draw, groups=GROUPS,
             tol: float = 1e-4, **kwargs) -> list[Case]:
    """The contract's cases for ``problem.name(*args, **kwargs)`` (see the module's docstring)."""
    call = f"{problem.name}({', '.join([repr(a) for a in args] + [f'{k}={v!r}' for k, v in kwargs.items()])})"
    with torch.device("meta"):
        expected_shape = tuple(reference(*args, **kwargs).eval()(torch.empty(input_shape)).shape)
        meta_twin = build(twin).eval()
    twin_state = {k: tuple(v.shape) for k, v in meta_twin.state_dict().items()}
    twin_count = sum(p.numel() for p in meta_twin.parameters())
    twin_types = {n: type(m).__name__ for n, m in meta_twin.named_modules() if n}
    x = draw.normal(input_shape, np.float32)
    cases = []

    def add(group, label, check, **request):
        if group in groups:
            cases.append(module(problem, group, label, check, *args, **request, **kwargs))

    def shape(outcome):
        out = (outcome.outputs or [None])[0]
        if not isinstance(out, np.ndarray):
            return f"{call} on x of shape {fmt_shape(input_shape)} returned no tensor"
        if tuple(out.shape) != expected_shape:
            return f"{call} maps x of shape {fmt_shape(input_shape)} to {fmt_shape(out.shape)}, expected " \
                   f"{fmt_shape(expected_shape)}"
        return None
    add("output shape", f"{call} on x of shape {fmt_shape(input_shape)}", shape, inputs=[x])

    def count(outcome):
        got = _facts(outcome).get("num_params")
        return None if got == twin_count else f"{call} has {got} parameters; {spec_text(twin)} has {twin_count:,}"
    add("parameters", f"parameters of {call}", count)

    def keys(outcome):
        got = {k: tuple(v) for k, v in (_facts(outcome).get("state_shapes") or {}).items()}
        missing, extra = sorted(set(twin_state) - set(got)), sorted(set(got) - set(twin_state))
        if missing or extra:
            return f"{call}: state_dict keys differ from torchvision's: missing {missing[:4]}, unexpected {extra[:4]}"
        wrong = [k for k in twin_state if got[k] != twin_state[k]]
        return f"{call}: {wrong[0]} has shape {fmt_shape(got[wrong[0]])}, torchvision's has " \
               f"{fmt_shape(twin_state[wrong[0]])}" if wrong else None
    add("state_dict", f"state_dict of {call}", keys)

    def submodules(outcome):
        got = {str(n): str(t) for n, t in (_facts(outcome).get("modules") or [])}
        for name, kind in twin_types.items():
            if got.get(name) != kind:
                return f"{call}: submodule {name!r} should be a {kind}, found {got.get(name, 'nothing')}"
        return None
    add("submodules", f"submodules of {call}", submodules)

    if "torchvision weights" in groups:
        torch.manual_seed(draw.int(0, 2**31))
        weighted = build(twin).eval()
        with torch.no_grad():  # non-trivial running statistics, so that eval mode matters
            for name, buffer in weighted.named_buffers():
                if name.endswith("running_var"):
                    buffer.uniform_(0.5, 2.0)
                elif name.endswith("running_mean"):
                    buffer.normal_(0, 0.5)
            expected = weighted(torch.from_numpy(x)).numpy()
        state = {k: v.numpy().copy() for k, v in weighted.state_dict().items()}

        def weights(outcome):
            if outcome.load_error:
                err = outcome.load_error if isinstance(outcome.load_error, dict) else {}
                return f"{call}: load_state_dict(strict=True) of {spec_text(twin)}'s weights failed: " \
                       f"{str(err.get('message', ''))[:200]}"
            out = (outcome.outputs or [None])[0]
            msg = check_tensor(out, expected, "the output", tol=tol)
            return None if msg is None else f"{call} with torchvision's weights, in eval mode: {msg}"
        add("torchvision weights", f"{call} with {spec_text(twin)}'s weights", weights, inputs=[x], state=state)
    return cases
