"""Modules in requests: ``ModuleSpec`` builders, their text, and building them in the judge."""
from __future__ import annotations

import importlib
import inspect

import numpy as np
import torch

from gradekit.codec import ALLOWED_MODULE_PREFIXES, ModuleSpec, ReturnedModule


def spec(path: str, *args, **kwargs) -> ModuleSpec:
    """``path(*args, **kwargs)`` for the kernel to build (``torch.nn.*`` or ``torchvision.models.*``)."""
    return ModuleSpec(path, args=tuple(args), kwargs=kwargs)


def nn(name: str, *args, **kwargs) -> ModuleSpec:
    """``torch.nn.<name>(*args, **kwargs)``."""
    return spec(f"torch.nn.{name}", *args, **kwargs)


def spec_text(value) -> str:
    """A constructor-like description of a ``ModuleSpec`` for messages (inputs only)."""
    if isinstance(value, ModuleSpec):
        parts = [spec_text(v) for v in value.args] + [f"{k}={spec_text(v)}" for k, v in value.kwargs.items()]
        return f"{value.path.removeprefix('torch.nn.')}({', '.join(parts)})"
    return repr(value)


def _factory(path: str):
    if not path.startswith(ALLOWED_MODULE_PREFIXES):
        raise ValueError(f"module {path} is not allowed")
    module_name, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def _state_tensor(value, dtype):
    array = np.asarray(value)
    if dtype is not None and array.dtype.kind == "f":
        array = array.astype(np.dtype(str(dtype).removeprefix("torch.")))
    return torch.from_numpy(np.array(array, copy=True))


def build(value, dtype: torch.dtype | None = None):
    """Build a ``ModuleSpec`` (nested ones too) in the judge, with its state loaded.

    ``dtype`` converts the module and its state (float64 for exact references); build
    under ``torch.device("meta")`` when only shapes and counts matter.
    """
    if isinstance(value, ModuleSpec):
        module = _factory(value.path)(*[build(v, dtype) for v in value.args],
                                      **{k: build(v, dtype) for k, v in value.kwargs.items()})
        if dtype is not None:
            module = module.to(dtype)
        if value.state is not None:
            module.load_state_dict({k: _state_tensor(v, dtype) for k, v in value.state.items()})
        return module.train(value.train)
    if isinstance(value, (list, tuple)):
        return type(value)(build(v, dtype) for v in value)
    return value


def random_state(value: ModuleSpec, draw) -> ModuleSpec:
    """``value`` with a random float32 state: weights and biases N(0, 1/2), normalisation
    scales +-U(0.5, 2) and running variances U(0.2, 3), so that folding or loading
    mistakes show."""
    module = build(value)
    norm = isinstance(module, (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm))
    state = {}
    for key, tensor in module.state_dict().items():
        shape = tuple(tensor.shape)
        if key.endswith("num_batches_tracked"):
            state[key] = np.array(draw.int(1, 500), dtype=np.int64)
        elif key.endswith("running_var"):
            state[key] = draw.uniform(0.2, 3.0, shape, np.float32)
        elif norm and key.endswith("weight"):
            state[key] = (draw.uniform(0.5, 2.0, shape) * np.where(draw.uniform(0, 1, shape) < 0.5, -1, 1)
                          ).astype(np.float32)
        else:
            state[key] = draw.normal(shape, np.float32, 0.5 if key.endswith("weight") else 1.0)
    return ModuleSpec(value.path, value.args, value.kwargs, state, value.train)


def rebuild(returned: ReturnedModule, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
    """A module the student returned, rebuilt in the judge from its type, settings and
    weights (``torch.nn`` types only). Raises when they do not fit together."""
    cls = getattr(torch.nn, returned.type_name)
    hyper = returned.hyper
    params = inspect.signature(cls).parameters
    state = {k: v for k, v in returned.state.items() if isinstance(v, np.ndarray)}
    kwargs = {}
    for name in params:
        if name in hyper:
            value = hyper[name]
            kwargs[name] = tuple(value) if isinstance(value, list) else value
    if "bias" in params:
        kwargs["bias"] = "bias" in state
    module = cls(**kwargs, dtype=dtype)
    module.load_state_dict({k: _state_tensor(v, dtype) for k, v in state.items()}, strict=True)
    return module.eval()
