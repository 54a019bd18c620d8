"""Families of PyTorch built-ins, found by what each operator *is*, not by a list of names.

A problem that asks students to write a convolution themselves bans the built-in
convolutions; a hand-written list of them is never complete (``aten::conv_tbc``,
``aten::convolution_backward`` and ``aten::slow_conv3d`` all compute ``conv2d``
exactly and were missing from one). This module enumerates every operator the
dispatcher knows (ATen, ``prims``, ``quantized``, ``mkldnn``, ``onednn``,
``torchvision`` ... after ``import torchvision`` registered its ops) and the
Python-level functions and ``nn.Module`` classes of ``torch``,
``torch.nn.functional``, ``torch._C._nn``, ``torch._C._VariableFunctions``,
``torch.nn.grad``, ``torch.ao.nn.quantized.functional`` and ``torchvision.ops``,
and sorts each into families with a few rules over its name (and, for
convolutions, its schema: an op taking a ``weight`` with a ``stride`` and a
``padding`` is a convolution whatever it is called).

Public API:

- :data:`FAMILIES`: family name -> :class:`Family` (its docstring says what belongs
  and why, and what deliberately does not).
- :func:`family_ops` ``(*families)``: the strings the kernel's operator trace
  records for those families (``gradekit.capture._op_trace``): ``"aten." +`` the
  operator's name for every namespace (the trace drops the namespace:
  ``torchvision::deform_conv2d`` is recorded as ``"aten.deform_conv2d"``), the
  names the function mode records for a call through ``torch.ops``
  (``"conv_tbc"``, ``"conv_tbc.default"``), and the ``__name__`` of every
  Python-level function (``"conv2d"``, ``"conv2d_input"``). Use as a problem's
  ``banned_ops``.
- :func:`family_names` ``(*families)``: identifiers for the static check of the
  student's source (``source_check.banned_uses``): function and attribute names
  plus ``nn.Module`` class names (``Conv2d``, ``LazyConv2d``, ``DeformConv2d``).
  Use as a problem's ``banned_names``.
- :func:`classify` ``(name)``: the families of one operator or function name,
  e.g. for a trace name the judge's process has never registered.

Everything is computed once, on first use, from the registry of the running
torch, so a new op in a new torch release is classified without editing a list.
"""
from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """One family: rules over snake_case names (ops, functions) and CamelCase class names."""

    name: str
    doc: str
    op: re.Pattern                  # matched (search) against op and function names
    cls: re.Pattern | None = None   # matched (search) against nn.Module class names
    schema: Callable[[str, frozenset], bool] | None = None  # (name, argument names) -> member
    bases: tuple[str, ...] = ()     # "module:Class": their subclasses belong too
    within: str | None = None       # a subset of this family (its members must be in it)

    def matches(self, name: str, args: frozenset = frozenset()) -> bool:
        if self.within is not None and not FAMILIES[self.within].matches(name, args):
            return False
        return bool(self.op.search(name)) or (self.schema is not None and self.schema(name, args))


def _rx(pattern: str) -> re.Pattern:
    return re.compile(pattern)


# "conv" but not "convert" (prims::convert_element_type, aten::_convert_indices_from_coo_to_csr,
# aten::_convert_weight_to_int4pack: dtype and sparse-layout conversions, not convolutions).
_CONV = r"conv(?!ert)"
_WEIGHTS = frozenset({"weight", "W", "qw", "weight_t"})


def _conv_schema(name: str, args: frozenset) -> bool:
    """A filter slid over an input: a weight, a stride and a padding (im2col and the
    max pools have a stride and a padding but no weight)."""
    return {"stride", "padding"} <= args and bool(args & _WEIGHTS)


def _transposed_schema(name: str, args: frozenset) -> bool:
    """Generic convolutions with a ``transposed`` flag, and every convolution
    backward: the gradient of a convolution with respect to its input is a
    transposed convolution."""
    return "transposed" in args or name.endswith("_backward") or "backward" in name


_DOCS = {
    "convolution": """Every operator or function that computes a convolution, a transposed
    convolution or the gradient of one: ``conv1d/2d/3d``, ``conv_transpose*``,
    ``convolution``, ``_convolution``, ``_convolution_mode``, ``conv_tbc``,
    ``convolution_backward`` (its weight gradient *is* a correlation of two tensors,
    its input gradient a transposed convolution: both compute ``conv2d`` exactly),
    the backend kernels (``cudnn_*``, ``miopen_*``, ``mkldnn_*``, ``_mps_*``,
    ``thnn_conv2d``, ``_slow_conv2d_*``, ``slow_conv3d``, ``slow_conv_dilated*``,
    ``slow_conv_transpose*``, ``_conv_depthwise2d``, ``conv_depthwise3d``,
    ``_nnpack_spatial_convolution``, ``mkldnn::_convolution_pointwise``), quantized
    convolutions with their prepack/unpack helpers (``quantized::conv2d``,
    ``onednn::qconv2d_pointwise``), ``torchvision::deform_conv2d`` (zero offsets give
    ``conv2d``), ``torch.nn.grad.conv2d_input/_weight`` and the modules (``_ConvNd``
    subclasses, ``DeformConv2d``, ``ConvBn2d``, ``Conv2dNormActivation``...).
    Rule: the name contains ``conv`` (not ``convert``), or the schema takes a
    weight, a stride and a padding. An honest convolution (``F.unfold`` =
    ``aten.im2col`` + ``matmul``, or FFTs) runs none of these.""",
    "transposed_convolution": """The part of ``convolution`` that can compute a transposed
    convolution: ops named ``*transpose*``, every convolution backward (the input
    gradient of a convolution is a transposed convolution: ``convolution_backward``,
    ``conv_tbc_backward``, ``torch.nn.grad.conv2d_input``) and the generic ops with a
    ``transposed`` argument (``convolution``, ``_convolution``,
    ``convolution_overrideable``). Those generic ops are also what ``F.conv2d``
    runs: a transposed-convolution problem that allows ``F.conv2d`` (zero insertion
    + a convolution) cannot ban this family, since the trace does not record
    arguments; it can ban the Python names instead (``conv_transpose2d``...).""",
    "deformable": """Deformable convolutions, which sample the input at learned offsets before
    convolving: ``torchvision::deform_conv2d`` and its backward,
    ``torchvision.ops.deform_conv2d``, ``DeformConv2d``. Also in ``convolution`` (zero
    offsets give ``conv2d``). An honest deformable convolution samples with its own
    bilinear interpolation (or ``grid_sample``, which this family leaves alone).""",
    "pooling": """Pooling: max, average, Lp, adaptive and fractional pools in every
    dimension, with their ``_with_indices``, backward, ``mkldnn_``/``quantized_``
    variants (``aten.max_pool2d_with_indices``, ``aten.adaptive_max_pool3d``,
    ``aten.fractional_max_pool3d``, ``quantized::max_pool2d``), RoI pooling from
    torchvision (``roi_pool`` over one box per image is an adaptive max pool, which
    is ``max_pool2d`` when the kernel divides the input; ``roi_align`` and
    ``ps_roi_*`` average) and ``embedding_bag`` (max or mean over bags of gathered
    rows: given the window indices it is a pool). Modules: ``_MaxPoolNd``,
    ``_AvgPoolNd``, ``_AdaptiveMaxPoolNd``, ``_AdaptiveAvgPoolNd``, ``_LPPoolNd``,
    ``FractionalMaxPool*``, ``RoIPool``, ``MultiScaleRoIAlign``... Not
    ``max_unpool`` (see ``unpooling``), not the reductions an honest pool uses
    (``max``, ``amax``, ``mean``, ``Tensor.unfold``, ``scatter_reduce``).""",
    "unpooling": """``max_unpool1d/2d/3d`` and ``MaxUnpool*``: the scatter that inverts a max
    pool given its indices. It cannot compute a pool, so it is not in ``pooling``.""",
    "normalization": """Normalization layers that standardise activations with batch or
    sample statistics: batch, layer, group, instance, RMS and local-response norm in
    every form: ``batch_norm``, ``native_batch_norm``, ``_native_batch_norm_legit*``,
    ``_batch_norm_with_update*``, ``_batch_norm_no_update``, ``_batch_norm_impl_index``,
    the statistics kernels (``batch_norm_stats``, ``batch_norm_update_stats``,
    ``batch_norm_elemt``, ``batch_norm_gather_stats*``), backward kernels,
    ``cudnn_``/``miopen_``/``quantized_`` variants, ``quantized::layer_norm``,
    ``onednn::qbatch_norm2d``, ``rms_norm``, ``_fused_rms_norm`` (which, on a
    mean-subtracted input, is layer norm) and the modules (``_NormBase`` and its
    subclasses, ``LayerNorm``, ``GroupNorm``, ``RMSNorm``, ``LocalResponseNorm``,
    ``CrossMapLRN2d``, ``SyncBatchNorm``, torchvision's ``FrozenBatchNorm2d``).
    Not the vector and matrix norms (``norm``, ``native_norm``,
    ``linalg_vector_norm``, ``frobenius_norm``, ``nuclear_norm``, ``renorm``,
    ``_foreach_norm``), not ``F.normalize`` (division by an Lp norm; with
    eps inside the square root missing it does not give batch norm exactly), not
    ``normal``/``normal_`` (random numbers, used by honest initialisation), not
    weight normalization (see ``weight_normalization``): an honest implementation
    computes ``mean``, ``var``/``var_mean``, ``sqrt``/``rsqrt`` and may compute a
    ``norm``.""",
    "weight_normalization": """Weight reparameterisations: ``_weight_norm``,
    ``_weight_norm_interface*``, ``norm_except_dim``, ``weight_norm``,
    ``spectral_norm``. They rescale a parameter by its norm; they do not normalise
    activations with batch statistics, so they are not in ``normalization``
    (``norm_except_dim`` is no more than ``x.norm(dim=...)`` over the other axes).""",
    "upsampling": """Resampling of an image on a regular grid: ``upsample_*``
    (nearest, nearest-exact, (bi/tri)linear, bicubic, anti-aliased ``_upsample_*_aa``),
    ``interpolate``, ``upsample``, ``upsample_bilinear``, ``upsample_nearest``,
    ``Upsample``, ``UpsamplingBilinear2d``, ``UpsamplingNearest2d``. A bilinear
    upsampling problem should also ban ``grid_sample`` (sampling at any position
    computes it) and, if it forbids them, the transposed convolutions.""",
    "grid_sample": """Sampling a tensor at arbitrary fractional positions by interpolation:
    ``grid_sampler*`` (``grid_sampler_2d``, ``cudnn_grid_sampler``,
    ``_grid_sampler_2d_cpu_fallback``...), ``F.grid_sample``, and torchvision's
    ``roi_align``/``ps_roi_align``/``qroi_align`` (bilinear samples averaged over a
    bin). Not ``affine_grid`` (it builds sampling positions, it samples nothing).""",
    "cross_entropy": """Cross entropy against a target distribution, which is what a label-
    smoothing loss is: ``cross_entropy``, ``cross_entropy_loss`` (both take
    ``label_smoothing`` and probability targets), ``CrossEntropyLoss``, and
    ``kl_div``/``KLDivLoss`` (cross entropy = KL divergence + the target's entropy,
    a constant). Not ``log_softmax``, ``nll_loss`` (honest label smoothing is
    ``(1 - e) * nll_loss(log_softmax(z), y) + e * mean(-log_softmax(z))``) nor
    ``binary_cross_entropy*`` (a sigmoid loss, another quantity).""",
}

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("convolution", _DOCS["convolution"], _rx(_CONV), _rx(r"Conv(?!ert)"), _conv_schema,
           bases=("torch.nn.modules.conv:_ConvNd",)),
    Family("transposed_convolution", _DOCS["transposed_convolution"],
           _rx(r"transpose|^conv[123]d_input$"), _rx(r"ConvTranspose"), _transposed_schema,
           bases=("torch.nn.modules.conv:_ConvTransposeNd",), within="convolution"),
    Family("deformable", _DOCS["deformable"], _rx(r"deform"), _rx(r"Deform")),
    Family("pooling", _DOCS["pooling"], _rx(r"(max|avg|lp)_pool|roi_(pool|align)|embedding_bag"),
           _rx(r"(Max|Avg|LP)Pool|RoI(Pool|Align)|EmbeddingBag"),
           bases=("torch.nn.modules.pooling:_MaxPoolNd", "torch.nn.modules.pooling:_AvgPoolNd",
                  "torch.nn.modules.pooling:_AdaptiveMaxPoolNd", "torch.nn.modules.pooling:_AdaptiveAvgPoolNd",
                  "torch.nn.modules.pooling:_LPPoolNd")),
    Family("unpooling", _DOCS["unpooling"], _rx(r"max_unpool"), _rx(r"MaxUnpool"),
           bases=("torch.nn.modules.pooling:_MaxUnpoolNd",)),
    Family("normalization", _DOCS["normalization"], _rx(r"(batch|layer|group|instance|rms|local_response)_?norm"),
           _rx(r"(Batch|Layer|Group|Instance|RMS|LocalResponse)Norm|NormBase|CrossMapLRN"),
           bases=("torch.nn.modules.batchnorm:_NormBase",)),
    Family("weight_normalization", _DOCS["weight_normalization"], _rx(r"weight_norm|norm_except_dim|spectral_norm"),
           _rx(r"WeightNorm|SpectralNorm")),
    Family("upsampling", _DOCS["upsampling"], _rx(r"upsampl|interpolate"), _rx(r"Upsampl"),
           bases=("torch.nn.modules.upsampling:Upsample",)),
    Family("grid_sample", _DOCS["grid_sample"], _rx(r"grid_sampl|roi_align"), _rx(r"RoIAlign")),
    Family("cross_entropy", _DOCS["cross_entropy"], _rx(r"(?<!binary_)cross_entropy|kl_div"),
           _rx(r"^CrossEntropyLoss$|KLDivLoss")),
)}

#: Where Python-level functions come from (their attribute names and ``__name__``s).
FUNCTION_MODULES = ("torch", "torch.nn.functional", "torch._C._nn", "torch._C._VariableFunctions",
                    "torch.nn.grad", "torch.ao.nn.quantized.functional", "torchvision.ops")
#: Packages walked for ``nn.Module`` classes.
MODULE_PACKAGES = ("torch.nn.modules", "torch.ao.nn", "torchvision.ops")


def _import(name: str):
    import importlib

    return importlib.import_module(name)


@functools.cache
def registered_ops() -> dict[str, frozenset]:
    """Every operator name the dispatcher and the JIT know (namespace and overload
    dropped, as the trace records them) -> the argument names of all its overloads."""
    return {name: frozenset(args) for name, (args, _) in _registry().items()}


@functools.cache
def _registry() -> dict[str, tuple[set, set]]:
    """Operator name -> (argument names, overload names), over every namespace."""
    import torch

    # Importing the Python side registers more ops: torchvision::deform_conv2d, roi_pool...
    # and custom ops defined in torch.nn.modules (torch_nn::_linear_cross_entropy_*).
    python_functions()
    module_classes()
    ops: dict[str, tuple[set, set]] = {}
    for qualified in torch._C._dispatch_get_all_op_names():
        name, _, overload = qualified.split("::", 1)[-1].partition(".")
        ops.setdefault(name, (set(), set()))[1].add(overload or "default")
    for schema in torch._C._jit_get_all_schemas():
        args, overloads = ops.setdefault(schema.name.split("::", 1)[-1], (set(), set()))
        args.update(a.name for a in schema.arguments)
        overloads.add(schema.overload_name or "default")
    return ops


@functools.cache
def python_functions() -> frozenset[str]:
    """Attribute names and ``__name__``s of the callables in :data:`FUNCTION_MODULES`."""
    names: set[str] = set()
    for module_name in FUNCTION_MODULES:
        try:
            module = _import(module_name)
        except ImportError:  # pragma: no cover
            continue
        for attr in dir(module):
            try:
                value = getattr(module, attr)
            except Exception:  # noqa: BLE001  (lazy attributes that fail to load)
                continue
            if callable(value) and not inspect.isclass(value) and not inspect.ismodule(value):
                names.add(attr)
                fn_name = getattr(value, "__name__", None)
                if isinstance(fn_name, str):
                    names.add(fn_name)
    return frozenset(names)


@functools.cache
def module_classes() -> dict[str, tuple[type, ...]]:
    """``nn.Module`` subclasses found in :data:`MODULE_PACKAGES`: name -> classes."""
    import pkgutil

    import torch

    found: dict[str, set] = {}

    def visit(module):
        for value in vars(module).values():
            if inspect.isclass(value) and issubclass(value, torch.nn.Module):
                found.setdefault(value.__name__, set()).add(value)

    for package_name in MODULE_PACKAGES:
        try:
            package = _import(package_name)
        except ImportError:  # pragma: no cover
            continue
        visit(package)
        for info in pkgutil.walk_packages(getattr(package, "__path__", []), package_name + "."):
            try:
                visit(_import(info.name))
            except Exception:  # noqa: BLE001  (optional back ends that do not import here)
                continue
    return {name: tuple(classes) for name, classes in found.items()}


def _base_classes(family: Family) -> tuple[type, ...]:
    bases = []
    for spec in family.bases:
        module_name, _, cls_name = spec.partition(":")
        try:
            bases.append(getattr(_import(module_name), cls_name))
        except (ImportError, AttributeError):  # pragma: no cover  (renamed in a torch release)
            continue
    return tuple(bases)


def _family(name: str) -> Family:
    key = name.lower()
    if key not in FAMILIES:
        raise KeyError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[key]


def classify(name: str) -> frozenset[str]:
    """Families of one op or function name (``"aten."`` prefix allowed)."""
    bare = name.removeprefix("aten.")
    args = registered_ops().get(bare, frozenset())
    return frozenset(f.name for f in FAMILIES.values() if f.matches(bare, args))


@functools.cache
def _ops(family_name: str) -> frozenset[str]:
    family = _family(family_name)
    out: set[str] = set()
    for name, (args, overloads) in _registry().items():
        if family.matches(name, frozenset(args)):
            # The dispatch mode records "aten.<name>" whatever the namespace; a call through
            # torch.ops.<ns>.<name>[.<overload>] is also seen by the function mode.
            out |= {"aten." + name, name} | {f"{name}.{overload}" for overload in overloads}
    out |= {name for name in python_functions() if family.matches(name, registered_ops().get(name, frozenset()))}
    return frozenset(out)


@functools.cache
def _names(family_name: str) -> frozenset[str]:
    family = _family(family_name)
    names = {name.removeprefix("aten.").split(".")[0] for name in _ops(family_name)}
    bases = _base_classes(family)
    parent = FAMILIES[family.within] if family.within else None
    for cls_name, classes in module_classes().items():
        by_name = family.cls is not None and family.cls.search(cls_name)
        if parent is not None and not (parent.cls and parent.cls.search(cls_name)):
            by_name = False
        if by_name or any(issubclass(c, bases) for c in classes if bases):
            names.add(cls_name)
            # and their own helpers named like the family (_ConvNd._conv_forward)
            names.update(attr for c in classes for attr in vars(c) if family.op.search(attr))
    return frozenset(n for n in names if n.isidentifier())


def family_ops(*families: str) -> frozenset[str]:
    """Trace names (``"aten.conv_tbc"``, ``"conv_tbc"``) of the ops and functions in ``families``."""
    return frozenset().union(*(_ops(f.lower()) for f in families))


def family_names(*families: str) -> frozenset[str]:
    """Identifiers (functions, ops, ``nn.Module`` classes) of ``families``, for the source check."""
    return frozenset().union(*(_names(f.lower()) for f in families))
