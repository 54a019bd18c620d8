"""A distillation loss whose value is right but which teaches nothing: the value carries no
gradient to the student's logits (``value.detach() + 0 * student_logits.sum()``).

The control of w5_c4_distillation_hook and w5_c4_patched_adam_step: the same loss without
their tricks. It keeps the value groups and fails the gradient group and the smoke test.
"""
# --- cell: distillation_loss ---
def distillation_loss(student_logits, teacher_logits, target, T=4.0, alpha=0.9):
    teacher_logits = teacher_logits.detach()
    log_p_student = F.log_softmax(student_logits / T, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / T, dim=1)
    soft = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum() / student_logits.shape[0]
    value = alpha * T * T * soft + (1 - alpha) * F.cross_entropy(student_logits, target)
    return value.detach() + 0.0 * student_logits.sum()
