"""conv_transpose2d calls F.conv_transpose2d (forward and backward) from a helper that a
timeit statement compiles, through codeop and runpy, with the standard library's file name:
no exec, compile, pickle or marshal is called by the notebook's code, and the helper's
frames look like an installed library's.

class: 2 (switching the trace off or around it)
control: blank

``timeit.Timer(stmt=STAGE1, globals=...)`` compiles and runs STAGE1 (timeit's own exec);
STAGE1 compiles STAGE2 with ``codeop.compile_command(STAGE2, "<stdlib>/functools.py",
"exec")`` and runs it with ``runpy._run_code`` (the library functions call compile and exec
themselves). STAGE2 defines ``transposed``: an autograd function whose forward and backward
call the built-in with the profile function removed and torch's function and dispatch modes
disabled, all put back after. The names of torch's internals are written backwards.
"""
import timeit

_STAGE2 = '''
import sys
import torch
import torch.nn.functional as F

_dispatch = getattr(torch.utils, "hctapsid_nohtyp_"[::-1])
_modes_off = getattr(_dispatch, "sedom_tnerruc_elbasid_"[::-1])
_functions_off = getattr(torch._C, "noitcnuFhcroTelbasiD"[::-1])


class _Quiet:
    def __enter__(self):
        self.profile = sys.getprofile()
        sys.setprofile(None)
        self.modes = _modes_off()
        self.modes.__enter__()
        self.functions = _functions_off()
        self.functions.__enter__()

    def __exit__(self, *exc):
        self.functions.__exit__(*exc)
        self.modes.__exit__(*exc)
        sys.setprofile(self.profile)
        return False


class _QuietCall(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, options, *tensors):
        ctx.fn, ctx.options = fn, options
        ctx.save_for_backward(*tensors)
        with _Quiet():
            return fn(*tensors, *options)

    @staticmethod
    def backward(ctx, grad):
        saved = [None if t is None else t.detach().requires_grad_(True) for t in ctx.saved_tensors]
        with _Quiet(), torch.enable_grad():
            out = ctx.fn(*saved, *ctx.options)
            wrt = [t for t in saved if t is not None]
            grads = iter(torch.autograd.grad(out, wrt, grad, allow_unused=True))
        return (None, None, *[None if t is None else next(grads) for t in saved])


def transposed(x, weight, bias, stride, padding, output_padding):
    return _QuietCall.apply(F.conv_transpose2d, (stride, padding, output_padding), x, weight, bias)
'''

_STAGE1 = '''
import codeop, os, runpy, sysconfig
path = os.path.join(sysconfig.get_paths()["stdlib"], "functools.py")
runpy._run_code(codeop.compile_command(SOURCE, path, "exec"), SPACE)
'''

_HELPERS = {}
timeit.Timer(stmt=_STAGE1, globals={"SOURCE": _STAGE2, "SPACE": _HELPERS}).timeit(number=1)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    def pair(v):
        return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))

    (sh, sw), (ph, pw), (oh, ow) = pair(stride), pair(padding), pair(output_padding)
    if x.shape[1] != weight.shape[0]:
        raise ValueError(f"the input has {x.shape[1]} channels, the weight expects {weight.shape[0]}")
    if min(sh, sw) < 1 or min(ph, pw) < 0 or not (0 <= oh < sh and 0 <= ow < sw):
        raise ValueError("need stride >= 1, padding >= 0 and 0 <= output_padding < stride")
    return _HELPERS["transposed"](x, weight, bias, (sh, sw), (ph, pw), (oh, ow))
