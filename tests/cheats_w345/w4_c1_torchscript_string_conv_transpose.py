"""conv_transpose2d runs torch.conv_transpose2d inside a TorchScript function compiled from a
string (torch.jit.CompilationUnit): no Python function of torch or torchvision runs, and the
call is not in the cell's code but in a string constant.

class: 1 (the library's own implementation)
control: blank

The argument checks are written in Python before the scripted call, so the validation group
is answered too.
"""
_UNIT = torch.jit.CompilationUnit("""
def transposed(x: Tensor, w: Tensor, b: Optional[Tensor], s: List[int], p: List[int], op: List[int]) -> Tensor:
    return torch.conv_transpose2d(x, w, b, s, p, op)
""")


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    def pair(v):
        return [int(v), int(v)] if isinstance(v, int) else [int(v[0]), int(v[1])]

    s, p, op = pair(stride), pair(padding), pair(output_padding)
    if x.shape[1] != weight.shape[0]:
        raise ValueError(f"the input has {x.shape[1]} channels, the weight expects {weight.shape[0]}")
    if min(s) < 1 or min(p) < 0 or not all(0 <= o < t for o, t in zip(op, s)):
        raise ValueError("need stride >= 1, padding >= 0 and 0 <= output_padding < stride")
    return _UNIT.transposed(x, weight, bias, s, p, op)
