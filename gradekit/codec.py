"""Plain-data encoding shared by the grader and the student's kernel.

Everything that crosses the boundary between the trusted judge and the student's
kernel is JSON plus ``.npy`` files, read back with ``allow_pickle=False``: no
pickles, no Python objects, nothing whose behaviour the student controls
(``__eq__`` overrides, tensor subclasses, fake exceptions) survives the trip.

JSON forms
----------
- ``None``, ``bool``, ``int``, ``float``, ``str``, lists and objects whose keys do
  not start with ``__``: as themselves (a dict's keys become strings).
- ``{"__tuple__": [...]}``: a tuple; ``{"__dict__": {...}}``: a dict with a key
  that starts with ``__``.
- ``{"__var__": "name"}``: a value kept in the kernel between steps (see ``Var``).
- ``{"__tensor__": "t3.npy", "dtype": "torch.float64", "requires_grad": false}``:
  a tensor (an array in the judge, a ``torch.Tensor`` in the kernel).
- ``{"__module__": "torch.nn.Conv2d", "args": [...], "kwargs": {...},
  "state": {...}, "train": false}``: a module the kernel builds (judge -> kernel).
- ``{"__nnmodule__": "Conv2d", "hyper": {...}, "state": {...}}``: a module the
  student returned, as its hyper-parameters and ``state_dict`` (kernel -> judge).
- ``{"__unsupported__": "TypeName"}``: anything else, by type name only.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Modules the judge may ask the kernel to build (dotted-path prefixes).
ALLOWED_MODULE_PREFIXES = ("torch.nn.", "torchvision.models.")
#: Attributes recorded for modules a student returns.
HYPER_ATTRS = (
    "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
    "groups", "padding_mode", "output_padding", "eps", "momentum", "num_features",
    "affine", "track_running_stats", "training", "in_features", "out_features",
)
_FILE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,80}\.npy$")
MAX_DEPTH = 12


@dataclass
class ModuleSpec:
    """A module for the kernel to build: ``path(*args, **kwargs)`` then
    ``load_state_dict(state)`` and ``.train(train)``."""

    path: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    state: dict | None = None
    train: bool = False


@dataclass(frozen=True)
class Var:
    """A named value that lives in the kernel across the steps of one case
    (running statistics updated in place, a model trained then evaluated)."""

    name: str


@dataclass
class ReturnedModule:
    """What the judge sees of an ``nn.Module`` the student returned."""

    type_name: str
    hyper: dict
    state: dict  # name -> np.ndarray


@dataclass
class Unsupported:
    """A value of a type the codec does not carry; only its type name crosses."""

    type_name: str


class CodecError(ValueError):
    """Malformed data on the wire."""


def _torch():
    import torch  # noqa: PLC0415  (torch is heavy: import on first use)

    return torch


class Writer:
    """Encodes values into JSON-able data, writing arrays to ``folder``."""

    def __init__(self, folder: Path, prefix: str = "t", byte_budget: int = 512 * 2**20):
        self.folder = Path(folder)
        self.prefix = prefix
        self.count = 0
        self.bytes_left = byte_budget

    def _array(self, array: np.ndarray, extra: dict) -> dict:
        array = np.ascontiguousarray(array)
        self.bytes_left -= array.nbytes
        if self.bytes_left < 0:
            raise CodecError("output too large to record")
        name = f"{self.prefix}{self.count}.npy"
        self.count += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        np.save(self.folder / name, array, allow_pickle=False)
        return {"__tensor__": name, **extra}

    def encode(self, value: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            return {"__unsupported__": "nesting too deep"}
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, (float, np.floating)):
            return float(value)
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                return {"__unsupported__": "object array"}
            return self._array(value, {"dtype": str(value.dtype), "requires_grad": False})
        if isinstance(value, Var):
            return {"__var__": value.name}
        if isinstance(value, ModuleSpec):
            if not value.path.startswith(ALLOWED_MODULE_PREFIXES):
                raise CodecError(f"module {value.path} is not allowed")
            return {
                "__module__": value.path,
                "args": self.encode(list(value.args), depth + 1),
                "kwargs": self.encode(dict(value.kwargs), depth + 1),
                "state": None if value.state is None else self.encode(dict(value.state), depth + 1),
                "train": bool(value.train),
            }
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, depth + 1) for v in value]}
        if isinstance(value, list):
            return [self.encode(v, depth + 1) for v in value]
        if isinstance(value, dict):
            items = {str(k): self.encode(v, depth + 1) for k, v in value.items()}
            return {"__dict__": items} if any(k.startswith("__") for k in items) else items
        torch = _torch()
        if isinstance(value, torch.Tensor):
            t = value.detach()
            dtype = str(t.dtype)
            if t.dtype in (torch.bfloat16, torch.float16):
                t = t.float()
            array = t.cpu().contiguous().numpy() if not t.is_sparse else t.to_dense().cpu().numpy()
            return self._array(array, {"dtype": dtype, "requires_grad": bool(value.requires_grad)})
        if isinstance(value, torch.Size):
            return {"__tuple__": [int(v) for v in value]}
        if isinstance(value, torch.dtype):
            return {"__unsupported__": str(value)}
        if isinstance(value, torch.nn.Module):
            hyper = {}
            for attr in HYPER_ATTRS:
                if hasattr(value, attr):
                    try:
                        hyper[attr] = self.encode(getattr(value, attr), depth + 1)
                    except CodecError:
                        raise
                    except Exception:  # noqa: BLE001  (a property that raises)
                        hyper[attr] = {"__unsupported__": "unreadable"}
            state = {k: self.encode(v, depth + 1) for k, v in value.state_dict().items()}
            return {"__nnmodule__": type(value).__name__, "hyper": {"__dict__": hyper},
                    "state": {"__dict__": state}}
        return {"__unsupported__": type(value).__name__}


class Reader:
    """Decodes JSON data from ``folder``.

    ``as_torch=True`` (in the kernel) gives tensors and builds modules;
    ``as_torch=False`` (in the judge) gives numpy arrays and never builds anything.
    """

    def __init__(self, folder: Path, as_torch: bool, device: str = "cpu", variables: dict | None = None):
        self.folder = Path(folder)
        self.as_torch = as_torch
        self.device = device
        self.variables = {} if variables is None else variables

    def _load(self, name: Any) -> np.ndarray:
        if not isinstance(name, str) or not _FILE_RE.match(name):
            raise CodecError(f"bad array file name {name!r}")
        return np.load(self.folder / name, allow_pickle=False)

    def decode(self, data: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH + 2:
            raise CodecError("nesting too deep")
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        if isinstance(data, list):
            return [self.decode(v, depth + 1) for v in data]
        if not isinstance(data, dict):
            raise CodecError(f"unexpected {type(data).__name__}")
        if not any(str(k).startswith("__") for k in data):
            return {str(k): self.decode(v, depth + 1) for k, v in data.items()}
        if "__tuple__" in data:
            return tuple(self.decode(v, depth + 1) for v in data["__tuple__"])
        if "__dict__" in data:
            return {str(k): self.decode(v, depth + 1) for k, v in data["__dict__"].items()}
        if "__tensor__" in data:
            array = self._load(data["__tensor__"])
            if not self.as_torch:
                return array
            torch = _torch()
            t = torch.from_numpy(array.copy()).to(self.device)
            if str(data.get("dtype")) in ("torch.bfloat16", "torch.float16"):
                t = t.to(getattr(torch, str(data["dtype"]).split(".")[1]))
            if data.get("requires_grad"):
                t.requires_grad_(True)
            return t
        if "__var__" in data:
            if data["__var__"] not in self.variables:
                raise CodecError(f"unknown variable {data['__var__']!r}")
            return self.variables[data["__var__"]]
        if "__unsupported__" in data:
            return Unsupported(str(data["__unsupported__"]))
        if "__nnmodule__" in data:
            return ReturnedModule(str(data["__nnmodule__"]), self.decode(data["hyper"], depth + 1),
                                  self.decode(data["state"], depth + 1))
        if "__module__" in data:
            if not self.as_torch:
                raise CodecError("the judge never builds modules")
            return self._build_module(data, depth)
        raise CodecError(f"unknown object keys {sorted(data)[:3]}")

    def _build_module(self, data: dict, depth: int):
        import importlib

        torch = _torch()
        path = str(data["__module__"])
        if not path.startswith(ALLOWED_MODULE_PREFIXES):
            raise CodecError(f"module {path} is not allowed")
        module_name, _, attr = path.rpartition(".")
        factory = getattr(importlib.import_module(module_name), attr)
        module = factory(*self.decode(data.get("args", []), depth + 1),
                         **self.decode(data.get("kwargs", {}), depth + 1))
        if data.get("state") is not None:
            state = self.decode(data["state"], depth + 1)
            with torch.no_grad():
                module.load_state_dict(state, strict=True)
        module.train(bool(data.get("train", False)))
        return module.to(self.device)


def dump_json(path: Path, data: Any) -> None:
    Path(path).write_text(json.dumps(data), encoding="utf-8")


def load_json(path: Path, max_bytes: int = 64 * 2**20) -> Any:
    path = Path(path)
    if path.stat().st_size > max_bytes:
        raise CodecError(f"{path.name} is larger than {max_bytes} bytes")
    return json.loads(path.read_text(encoding="utf-8"))
