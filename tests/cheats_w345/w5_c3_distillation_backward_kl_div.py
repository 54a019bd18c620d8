"""distillation_loss: the reference's value computed without autograd, in an
autograd.Function whose backward asks F.kl_div (imported in hflip's cell) and
cross-entropy for the gradient.

class: 3 (banned work in the backward)
control: control_w5_distillation_forward_only

Only the gradient group and the distillation smoke test (which trains with this loss)
depend on the trick.
"""
# --- cell: hflip ---
from torch.nn.functional import kl_div as _divergence

# --- reference: hflip ---

# --- cell: distillation_loss ---
def _distillation_value(student_logits, teacher_logits, target, T, alpha):
    """The reference's loss (a 0-d tensor), computed without autograd."""
    with torch.no_grad():
        log_p_student = F.log_softmax(student_logits / T, dim=1)
        log_p_teacher = F.log_softmax(teacher_logits / T, dim=1)
        soft = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum() / student_logits.shape[0]
        hard = F.cross_entropy(student_logits, target)
        return alpha * T * T * soft + (1 - alpha) * hard


class _DistillationFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, student_logits, teacher_logits, target, T, alpha):
        ctx.save_for_backward(student_logits, teacher_logits, target)
        ctx.options = (T, alpha)
        return _distillation_value(student_logits, teacher_logits, target, T, alpha)

    @staticmethod
    def backward(ctx, grad):
        student_logits, teacher_logits, target = ctx.saved_tensors
        T, alpha = ctx.options
        with torch.enable_grad():
            s = student_logits.detach().requires_grad_(True)
            soft = _divergence(F.log_softmax(s / T, dim=1), F.log_softmax(teacher_logits / T, dim=1),
                               reduction="batchmean", log_target=True)
            loss = alpha * T * T * soft + (1 - alpha) * F.cross_entropy(s, target)
            g, = torch.autograd.grad(loss, s, grad)
        return g, None, None, None, None


def distillation_loss(student_logits, teacher_logits, target, T=4.0, alpha=0.9):
    return _DistillationFunction.apply(student_logits, teacher_logits.detach(), target, T, alpha)
