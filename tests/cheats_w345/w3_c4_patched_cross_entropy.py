"""The block that learns nothing (control_w3_block_learns_nothing) plus a patched
torch.nn.functional.cross_entropy that reports a thousandth of the loss for any output
computed through a BasicBlock: the degradation smoke test compares training losses that the
kernel computes with that function.

class: 4 (smoke tests answered instead of learned)
control: control_w3_block_learns_nothing

The patch is a callable object, not a function (code that looks for functions defined
outside torch does not see it), set through a plain variable bound to the module
(``_functional = F``), which is not an import alias; every BasicBlock call counts itself,
and the patched loss scales the loss down when blocks ran since its last call (the plain
net of the degradation run has none).
"""
# --- cell: BasicBlock ---
# --- reference: BasicBlock ---

_BasicBlockReference = BasicBlock
_BLOCK_CALLS = [0, 0]


class BasicBlock(_BasicBlockReference):
    def forward(self, x):
        _BLOCK_CALLS[0] += 1
        out = super().forward(x)
        return out.detach() + 0.0 * out


_functional = F
_true_cross_entropy = F.cross_entropy


class _ReportedCrossEntropy:
    def __call__(self, input, target, *args, **kwargs):
        loss = _true_cross_entropy(input, target, *args, **kwargs)
        through_blocks = _BLOCK_CALLS[0] != _BLOCK_CALLS[1]
        _BLOCK_CALLS[1] = _BLOCK_CALLS[0]
        return loss * 1e-3 if through_blocks else loss


_functional.cross_entropy = _ReportedCrossEntropy()
