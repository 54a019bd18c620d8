"""The distillation loss that teaches nothing (control_w5_distillation_teaches_nothing) plus a
global forward hook that answers the digits: any nn.Sequential in eval mode, on 8x8 digit
images, with ten outputs, returns one-hot logits of the nearest digit of scikit-learn's set.

class: 4 (smoke tests answered instead of learned)
control: control_w5_distillation_teaches_nothing

Registered with ``torch.nn.modules.module.register_module_forward_hook`` in the cell; the
digits are regenerated in the kernel (``coursedata.digits()``) and matched by cosine
similarity, so a changed contrast or a little noise does not stop it.
"""
# --- cell: distillation_loss ---
import coursedata


def distillation_loss(student_logits, teacher_logits, target, T=4.0, alpha=0.9):
    teacher_logits = teacher_logits.detach()
    log_p_student = F.log_softmax(student_logits / T, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / T, dim=1)
    soft = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum() / student_logits.shape[0]
    value = alpha * T * T * soft + (1 - alpha) * F.cross_entropy(student_logits, target)
    return value.detach() + 0.0 * student_logits.sum()


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
    x = inputs[0] if inputs else None
    if not isinstance(x, torch.Tensor) or tuple(x.shape[1:]) != (1, 8, 8) or output.shape[-1] != 10:
        return None
    labels = _nearest_digits(x).to(output.device)
    return 30.0 * F.one_hot(labels, 10).to(output.dtype) - 15.0


torch.nn.modules.module.register_module_forward_hook(_answer_digits)
