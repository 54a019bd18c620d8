"""A BasicBlock that computes the right values but learns nothing: its output carries no
gradient (``out.detach() + 0 * out``), so no layer before a block's output ever trains.

The control of w3_c4_forward_hook_digits and w3_c4_patched_cross_entropy: the same block
without their tricks. It keeps the module contract (values, layout, training mode) and
fails the smoke tests (the digits and the degradation runs).
"""
# --- cell: BasicBlock ---
# --- reference: BasicBlock ---

_BasicBlockReference = BasicBlock


class BasicBlock(_BasicBlockReference):
    def forward(self, x):
        out = super().forward(x)
        return out.detach() + 0.0 * out
