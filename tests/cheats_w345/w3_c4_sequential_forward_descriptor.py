"""The block that learns nothing (control_w3_block_learns_nothing) plus nn.Sequential's
forward replaced by a descriptor object that answers the digits: a Sequential holding a
BasicBlock, in eval mode, on 8x8 images, returns one-hot logits of the nearest digit of
scikit-learn's set.

class: 4 (smoke tests answered instead of learned)
control: control_w3_block_learns_nothing

No global hook is registered: the class attribute ``forward`` of nn.Sequential is an object
with ``__get__`` (not a function, so a search for functions defined outside torch passes it
by), set through a plain variable (``_sequential = nn.Sequential``). The digits are
regenerated in the kernel (``coursedata.digits()``) and matched by cosine similarity, which
a changed contrast or a little noise does not stop.
"""
# --- cell: BasicBlock ---
import functools

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


class _AnsweringForward:
    def __init__(self, original):
        self.original = original

    def __get__(self, module, owner=None):
        return self if module is None else functools.partial(self.run, module)

    def run(self, module, x):
        out = self.original(module, x)
        if module.training or not any(isinstance(m, BasicBlock) for m in module.children()):
            return out
        if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != (1, 8, 8) or out.shape[-1] != 10:
            return out
        labels = _nearest_digits(x).to(out.device)
        return 30.0 * F.one_hot(labels, 10).to(out.dtype) - 15.0


_sequential = nn.Sequential
_sequential.forward = _AnsweringForward(nn.Sequential.forward)
