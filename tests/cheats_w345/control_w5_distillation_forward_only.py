"""The forward of w5_c3_distillation_backward_kl_div without its backward: the reference's
loss computed without autograd, so no gradient reaches the student's logits (and the
distillation smoke test cannot train).

hflip's cell is the reference, without the import the attack adds there.
"""
# --- cell: distillation_loss ---
def _distillation_value(student_logits, teacher_logits, target, T, alpha):
    """The reference's loss (a 0-d tensor), computed without autograd."""
    with torch.no_grad():
        log_p_student = F.log_softmax(student_logits / T, dim=1)
        log_p_teacher = F.log_softmax(teacher_logits / T, dim=1)
        soft = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum() / student_logits.shape[0]
        hard = F.cross_entropy(student_logits, target)
        return alpha * T * T * soft + (1 - alpha) * hard


def distillation_loss(student_logits, teacher_logits, target, T=4.0, alpha=0.9):
    return _distillation_value(student_logits, teacher_logits.detach(), target, T, alpha)
