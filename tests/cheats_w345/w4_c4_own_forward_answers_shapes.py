"""A UNet that learns nothing and answers the shapes itself: in eval mode, on images found in
the shapes sets regenerated from the public seeds, its own forward returns one-hot logits of
their label maps. No hook and no patch: the graded module is the student's own.

class: 4 (smoke tests answered instead of learned)
control: control_w4_unet_learns_nothing

The candidate sets are ``coursedata.shapes(n, 32, seed)`` for the sizes and seeds of the
notebook's demonstrations and of the smoke test, matched by cosine similarity; any other
input (the module cases' random tensors) gets the network's own output, so the module cases
pass as the control's do.
"""
# --- cell: UNet ---
import coursedata

# --- reference: UNet ---

_UNetReference = UNet


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


class UNet(_UNetReference):
    def forward(self, x):
        out = super().forward(x)
        out = out.detach() + 0.0 * out
        if self.training or x.dim() != 4 or x.shape[1] != 1:
            return out
        labels = _shape_answers(x)
        if labels is None or int(labels.max()) >= out.shape[1]:
            return out
        return 20.0 * F.one_hot(labels.to(out.device), out.shape[1]).permute(0, 3, 1, 2).to(out.dtype)
