"""The toolkit every week's hidden checks are built from.

- :class:`Draw` (``sample``): one random sampler;
- ``builders``: one builder per shape of case (``integer``, ``raises``, ``tensor``
  with optional gradients and named classic mistakes, ``steps`` for in-place updates
  over several calls, ``module`` facts, ``layer_kinds``, ``module_output``,
  ``batch_independence``, ``timing``, ``question`` for conceptual questions);
- ``modules``: ``ModuleSpec`` builders (``nn``, ``spec``, ``random_state``) and
  building or rebuilding modules in the judge;
- ``contract``: the module contract, one table row per ``nn.Module`` problem against its
  torchvision twin or the week's reference (output shape, parameter count, ``state_dict``
  layout, loaded weights in eval and training mode, submodules);
- ``training``: training smoke tests (a recipe run in the kernel, a verdict here).
"""
from .builders import batch_independence, call, compare, diagnose, integer, label_for, layer_kinds, module, \
    module_output, question, raises, returned_module, rows, show, steps, tensor, timing, torch_args, unchanged
from .modules import build, nn, random_state, rebuild, spec, spec_text
from .sample import Draw

__all__ = ["Draw", "batch_independence", "build", "call", "compare", "diagnose", "integer", "label_for",
           "layer_kinds", "module", "module_output", "nn", "question", "raises", "random_state", "rebuild",
           "returned_module", "rows", "show", "spec", "spec_text", "steps", "tensor", "timing", "torch_args", "unchanged"]
