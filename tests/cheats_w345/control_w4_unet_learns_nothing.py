"""A UNet that computes the right values but learns nothing: its output carries no gradient
(``out.detach() + 0 * out``), so training leaves its weights where they started.

The control of w4_c4_forward_hook_shapes and w4_c4_own_forward_answers_shapes: the same
network without their tricks. It keeps the module cases and fails the training smoke test.
"""
# --- cell: UNet ---
# --- reference: UNet ---

_UNetReference = UNet


class UNet(_UNetReference):
    def forward(self, x):
        out = super().forward(x)
        return out.detach() + 0.0 * out
