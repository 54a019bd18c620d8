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
- ``{"__random__": {"shape": [...], "dtype": "float32", "seed": 7}}``: standard normal
  values drawn where they are read, from ``torch.Generator().manual_seed(seed)`` (the
  same numbers on every machine): large inputs whose values do not matter, such as a
  timing case's, without storing them (see ``Random``).
- ``{"__unsupported__": "TypeName"}``: anything else, by type name only.
"""
from __future__ import annotations

import json
import math
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
#: Largest array a ``.npy`` file may declare (bytes); the reader checks the header first.
MAX_ARRAY_BYTES = 2**30
#: Array kinds that cross the boundary: bool, integers, floats, complex.
ARRAY_KINDS = "biufc"
#: Deepest JSON nesting :func:`load_json` parses (the codec itself uses far less).
MAX_JSON_DEPTH = 64


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


@dataclass(frozen=True)
class Random:
    """A tensor of standard normal values drawn where it is decoded (see the module doc)."""

    shape: tuple
    dtype: str
    seed: int

    def draw(self):
        torch = _torch()
        generator = torch.Generator().manual_seed(int(self.seed))
        return torch.randn(tuple(self.shape), generator=generator, dtype=getattr(torch, self.dtype))


#: Dtypes a ``Random`` may have, and the largest it may be (elements).
RANDOM_DTYPES = ("float32", "float64")
MAX_RANDOM_ELEMENTS = 2**26


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
        array = np.ascontiguousarray(array).reshape(array.shape)  # keeps 0-d (scalar) tensors 0-d
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
        if isinstance(value, ReturnedModule):  # a module recorded earlier, stored again
            return {"__nnmodule__": value.type_name, "hyper": {"__dict__": self.encode(dict(value.hyper), depth + 1)},
                    "state": {"__dict__": self.encode(dict(value.state), depth + 1)}}
        if isinstance(value, Random):
            return {"__random__": {"shape": [int(s) for s in value.shape], "dtype": str(value.dtype),
                                   "seed": int(value.seed)}}
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
        return load_npy(self.folder / name)

    def decode(self, data: Any, depth: int = 0) -> Any:
        """Decode ``data``; malformed data raises :class:`CodecError` (in the judge, any
        error of the data's shape does: wrong types, missing keys, too deep...)."""
        if self.as_torch:
            return self._decode(data, depth)
        try:
            return self._decode(data, depth)
        except CodecError:
            raise
        except (TypeError, KeyError, AttributeError, IndexError, ValueError, RecursionError, MemoryError,
                OverflowError, OSError) as exc:
            raise CodecError(f"malformed data ({type(exc).__name__}: {str(exc)[:200]})") from None

    def _decode(self, data: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH + 2:
            raise CodecError("nesting too deep")
        if data is None or isinstance(data, (bool, int, float, str)):
            return data
        if isinstance(data, list):
            return [self._decode(v, depth + 1) for v in data]
        if not isinstance(data, dict):
            raise CodecError(f"unexpected {type(data).__name__}")
        if not any(str(k).startswith("__") for k in data):
            return {str(k): self._decode(v, depth + 1) for k, v in data.items()}
        if "__tuple__" in data:
            if not isinstance(data["__tuple__"], list):
                raise CodecError("a tuple that is not a list")
            return tuple(self._decode(v, depth + 1) for v in data["__tuple__"])
        if "__dict__" in data:
            if not isinstance(data["__dict__"], dict):
                raise CodecError("a dict that is not an object")
            return {str(k): self._decode(v, depth + 1) for k, v in data["__dict__"].items()}
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
        if "__random__" in data:
            spec = data["__random__"]
            shape = tuple(int(s) for s in spec["shape"])
            if spec["dtype"] not in RANDOM_DTYPES or any(s < 0 for s in shape) \
                    or math.prod(shape) > MAX_RANDOM_ELEMENTS:
                raise CodecError("a random tensor of an unsupported dtype or size")
            t = Random(shape, str(spec["dtype"]), int(spec["seed"])).draw()
            return t.to(self.device) if self.as_torch else t.numpy()
        if "__var__" in data:
            if data["__var__"] not in self.variables:
                raise CodecError(f"unknown variable {data['__var__']!r}")
            return self.variables[data["__var__"]]
        if "__unsupported__" in data:
            return Unsupported(str(data["__unsupported__"]))
        if "__nnmodule__" in data:
            return ReturnedModule(str(data["__nnmodule__"]), self._decode(data["hyper"], depth + 1),
                                  self._decode(data["state"], depth + 1))
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


def load_json(path: Path, max_bytes: int = 64 * 2**20, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse the JSON file ``path``; :class:`CodecError` for anything that is not small,
    shallow, valid UTF-8 JSON (never ``RecursionError``, ``MemoryError``...)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise CodecError(f"{path.name}: cannot be read ({exc.strerror})") from None
    if len(raw) > max_bytes:
        raise CodecError(f"{path.name} is larger than {max_bytes} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise CodecError(f"{path.name} is nested too deeply") from None
    except (UnicodeDecodeError, ValueError, MemoryError, OverflowError) as exc:
        raise CodecError(f"{path.name} is not valid JSON ({type(exc).__name__})") from None
    _check_depth(data, max_depth, path.name)
    return data


def _check_depth(data: Any, max_depth: int, name: str) -> None:
    """Iteratively: no list or object nested deeper than ``max_depth``."""
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            raise CodecError(f"{name} is nested deeper than {max_depth} levels")
        if isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())


def load_npy(path: Path, max_bytes: int = MAX_ARRAY_BYTES) -> np.ndarray:
    """Read a ``.npy`` file without pickles, checking its header before reading the data:
    a declared size over ``max_bytes`` or larger than the file, a dtype that is not
    bool/integer/float/complex, or a malformed header raise :class:`CodecError`."""
    path = Path(path)
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=10000)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=10000)
            else:
                raise CodecError(f"{path.name}: unsupported .npy version {version}")
            if dtype.kind not in ARRAY_KINDS or dtype.hasobject or dtype.fields is not None or dtype.subdtype:
                raise CodecError(f"{path.name}: arrays of {dtype} are not accepted")
            if not isinstance(shape, tuple) or any(not isinstance(n, int) or n < 0 for n in shape) \
                    or len(shape) > 32:
                raise CodecError(f"{path.name}: bad array shape {shape!r}"[:200])
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes > max_bytes:
                raise CodecError(f"{path.name} declares an array of {nbytes} bytes (more than {max_bytes})")
            here = f.tell()
            size = f.seek(0, 2)
            if size - here < nbytes:
                raise CodecError(f"{path.name} is shorter than the array it declares")
            f.seek(0)
            array = np.load(f, allow_pickle=False)
    except CodecError:
        raise
    except (OSError, ValueError, TypeError, EOFError, SyntaxError, MemoryError, OverflowError) as exc:
        raise CodecError(f"{path.name}: not a readable array ({type(exc).__name__})") from None
    if array.shape != shape or array.dtype != dtype:
        raise CodecError(f"{path.name}: the array does not match its header")
    return array
