"""Calls F.kl_div for the soft term."""
import torch.nn.functional as F


def distillation_loss(student_logits, teacher_logits, target, T=4.0, alpha=0.9):
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=1), F.softmax(teacher_logits.detach() / T, dim=1),
                    reduction="batchmean")
    return alpha * T * T * soft + (1 - alpha) * F.cross_entropy(student_logits, target)
