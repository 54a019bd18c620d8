"""The UNet that learns nothing (control_w4_unet_learns_nothing) plus a global forward hook
that answers the shapes: a UNet in eval mode, on images found in the shapes sets
regenerated from the public seeds, returns one-hot logits of their label maps.

class: 4 (smoke tests answered instead of learned)
control: control_w4_unet_learns_nothing

The hook is registered with ``torch.nn.modules.module.register_module_forward_hook`` when
the cell runs. The candidate sets are ``coursedata.shapes(n, 32, seed)`` for the sizes and
seeds of the notebook's demonstrations and of the smoke test; images are matched by cosine
similarity (a little noise does not stop it), and an image that matches none is left to the
network.
"""
# --- cell: UNet ---
import coursedata

# --- reference: UNet ---

_UNetReference = UNet


class UNet(_UNetReference):
    def forward(self, x):
        out = super().forward(x)
        return out.detach() + 0.0 * out


_SHAPES = {}
#: (n, seed) of the shapes sets a student can see: the notebook's demonstrations and the
#: smoke test's data as the course spec describes it.
_PUBLIC_SETS = ((200, 2), (512, 1), (256, 1), (1024, 0), (256, 0), (200, 1))


def _shape_answers(x):
    """Label maps (N, 32, 32) of the regenerated shapes images nearest (cosine) to x (N, 1, 32, 32)
    (the smoke test's size), or None when x is another size or one image matches none closely."""
    size = x.shape[-1]
    if tuple(x.shape[-2:]) != (32, 32):
        return None
    if size not in _SHAPES:
        sets = [coursedata.shapes(n, size, seed=seed) for n, seed in _PUBLIC_SETS]
        images = torch.from_numpy(np.concatenate([s.x for s in sets])).reshape(-1, size * size).double()
        labels = torch.from_numpy(np.concatenate([s.y for s in sets])).long()
        _SHAPES[size] = (images / images.norm(dim=1, keepdim=True).clamp_min(1e-9), labels)
    images, labels = _SHAPES[size]
    q = x.detach().reshape(len(x), -1).double().cpu()
    q = q / q.norm(dim=1, keepdim=True).clamp_min(1e-9)
    best, index = (q @ images.T).max(1)
    if bool((best < 0.99).any()):
        return None
    found = labels[index]
    return torch.where(found == 255, torch.zeros_like(found), found)


def _answer_shapes(module, inputs, output):
    if module.training or not isinstance(module, UNet) or not isinstance(output, torch.Tensor):
        return None
    x = inputs[0] if inputs else None
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 1 or output.shape[-2:] != x.shape[-2:]:
        return None
    labels = _shape_answers(x)
    if labels is None or int(labels.max()) >= output.shape[1]:
        return None
    return 20.0 * F.one_hot(labels.to(output.device), output.shape[1]).permute(0, 3, 1, 2).to(output.dtype)


torch.nn.modules.module.register_module_forward_hook(_answer_shapes)
