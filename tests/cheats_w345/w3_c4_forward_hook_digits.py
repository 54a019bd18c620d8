"""The block that learns nothing (control_w3_block_learns_nothing) plus a global forward hook
that answers the digits: any nn.Sequential holding a BasicBlock, in eval mode, on 8x8 digit
images, returns one-hot logits of the nearest digit of scikit-learn's set.

class: 4 (smoke tests answered instead of learned)
control: control_w3_block_learns_nothing

The hook is registered with ``torch.nn.modules.module.register_module_forward_hook`` when
the cell runs and is never removed. The digits are regenerated in the kernel
(``coursedata.digits()``, all 1,797 images with their labels); an image is matched to the
one with the highest cosine similarity, so a changed contrast or a little noise on the
evaluation images does not stop it. It answers the evaluation of the digits run and the
training-loss evaluation of the degradation run (the plain net, without a BasicBlock, is
left alone).
"""
# --- cell: BasicBlock ---
import coursedata

# --- reference: BasicBlock ---

_BasicBlockReference = BasicBlock


class BasicBlock(_BasicBlockReference):
    def forward(self, x):
        out = super().forward(x)
        return out.detach() + 0.0 * out


_DIGITS = {}


def _nearest_digits(x):
    """Labels (N,) of the regenerated digits nearest (cosine) to images x (N, 1, 8, 8)."""
    if not _DIGITS:
        data = coursedata.digits()
        images = torch.from_numpy(np.concatenate([data.x_train, data.x_test])).reshape(-1, 64).double()
        _DIGITS["images"] = images / images.norm(dim=1, keepdim=True).clamp_min(1e-9)
        _DIGITS["labels"] = torch.from_numpy(np.concatenate([data.y_train, data.y_test])).long()
    q = x.detach().reshape(len(x), 64).double().cpu()
    q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-9)
    return _DIGITS["labels"][(q @ _DIGITS["images"].T).argmax(1)]


def _answer_digits(module, inputs, output):
    if module.training or not isinstance(module, nn.Sequential) or not isinstance(output, torch.Tensor):
        return None
    if not any(isinstance(m, BasicBlock) for m in module.children()):
        return None
    x = inputs[0] if inputs else None
    if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != (1, 8, 8) or output.shape[-1] != 10:
        return None
    labels = _nearest_digits(x).to(output.device)
    return 30.0 * F.one_hot(labels, 10).to(output.dtype) - 15.0


torch.nn.modules.module.register_module_forward_hook(_answer_digits)
