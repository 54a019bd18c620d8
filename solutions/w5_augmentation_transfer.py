"""Week 5 references: data augmentation, CutMix and MixUp, label smoothing, transfer
learning (freezing, parameter groups) and knowledge distillation.

Each function is self-contained (the notebook's solution cells are copies of these
definitions) and uses only the imports below, which the notebook's set-up cell
also makes. Images are float tensors with values in [0, 1] of shape (C, H, W) or
(N, C, H, W) (any leading dimensions); the last two dimensions are height and width.
Random choices (the crop offsets, the angle, lam, the permutation, the box centre)
are arguments, so every function is deterministic: a training loop draws them.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def hflip(img):
    """Mirror img (..., H, W) left to right: out[..., i, j] = img[..., i, W - 1 - j].

    Matches torchvision.transforms.v2.functional.hflip.
    """
    ### BEGIN SOLUTION
    return img.flip(-1)
    ### END SOLUTION


def pad_and_crop(img, padding, top, left):
    """Zero-pad img (..., H, W) by `padding` pixels on each of the four sides, then crop
    the original size (H, W) whose top-left corner is (top, left) in the padded image.

    The result is img shifted by (top - padding, left - padding) pixels, with zeros
    where it leaves the image: top = left = padding gives img back. Matches
    torchvision.transforms.v2.functional.crop(pad(img, padding), top, left, H, W) (the
    crop step of RandomCrop(size, padding)). top and left must lie in [0, 2 * padding]
    and padding must be >= 0, else ValueError.
    """
    ### BEGIN SOLUTION
    if padding < 0:
        raise ValueError(f"padding must be non-negative, got {padding}")
    if not (0 <= top <= 2 * padding and 0 <= left <= 2 * padding):
        raise ValueError(f"top and left must lie in [0, {2 * padding}] for padding {padding}, got ({top}, {left})")
    h, w = img.shape[-2:]
    padded = img.new_zeros(*img.shape[:-2], h + 2 * padding, w + 2 * padding)
    padded[..., padding:padding + h, padding:padding + w] = img
    return padded[..., top:top + h, left:left + w]
    ### END SOLUTION


def adjust_brightness(img, factor):
    """Scale every value by factor and clamp to [0, 1]: clamp(factor * img, 0, 1).

    (A blend with a black image.) Matches torchvision.transforms.v2.functional.
    adjust_brightness on float images; factor must be >= 0, else ValueError.
    """
    ### BEGIN SOLUTION
    if factor < 0:
        raise ValueError(f"factor must be non-negative, got {factor}")
    return (img * factor).clamp(0, 1)
    ### END SOLUTION


def adjust_contrast(img, factor):
    """Blend img (..., C, H, W), C = 1 or 3, with its mean grey level:
    clamp(factor * img + (1 - factor) * m, 0, 1), where m is one number per image: the
    mean over (C, H, W) of the grayscale image (0.2989 R + 0.587 G + 0.114 B for RGB,
    the image itself for one channel). factor 0 gives a flat grey image, 1 the image.

    Matches torchvision.transforms.v2.functional.adjust_contrast on float images;
    factor must be >= 0, else ValueError.
    """
    ### BEGIN SOLUTION
    if factor < 0:
        raise ValueError(f"factor must be non-negative, got {factor}")
    if img.shape[-3] == 3:
        r, g, b = img.unbind(dim=-3)
        gray = (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)
    else:
        gray = img
    mean = gray.mean(dim=(-3, -2, -1), keepdim=True)
    return (factor * img + (1 - factor) * mean).clamp(0, 1)
    ### END SOLUTION


def rotate(img, angle):
    """Rotate img (..., H, W) by `angle` degrees counter-clockwise about its centre, with
    bilinear interpolation and zeros outside the image; the output keeps the size (H, W).

    Matches torchvision.transforms.v2.functional.rotate(img, angle,
    interpolation=InterpolationMode.BILINEAR). Centred coordinates put the centre at
    ((W - 1) / 2, (H - 1) / 2) (x right, y down). Output pixel (x, y) takes the value at
    the source position (inverse map, a = angle in radians)
        xs = cos(a) * (x - cx) - sin(a) * (y - cy) + cx
        ys = sin(a) * (x - cx) + cos(a) * (y - cy) + cy
    interpolated from its four neighbouring pixels (weights (1 - dx)(1 - dy), ...), a
    neighbour outside the image counting as 0. Written without grid_sample.
    """
    ### BEGIN SOLUTION
    h, w = img.shape[-2:]
    a = math.radians(angle)
    cos, sin = math.cos(a), math.sin(a)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    ys = torch.arange(h, dtype=img.dtype, device=img.device) - cy
    xs = torch.arange(w, dtype=img.dtype, device=img.device) - cx
    yc, xc = torch.meshgrid(ys, xs, indexing="ij")
    src_x = cos * xc - sin * yc + cx
    src_y = sin * xc + cos * yc + cy
    x0, y0 = src_x.floor(), src_y.floor()
    flat = img.reshape(*img.shape[:-2], h * w)
    out = torch.zeros_like(img)
    for yy, wy in ((y0, 1 - (src_y - y0)), (y0 + 1, src_y - y0)):
        for xx, wx in ((x0, 1 - (src_x - x0)), (x0 + 1, src_x - x0)):
            inside = (xx >= 0) & (xx <= w - 1) & (yy >= 0) & (yy <= h - 1)
            index = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).long()
            out = out + flat[..., index] * (wx * wy * inside)
    return out
    ### END SOLUTION


def cutmix_box(height, width, lam, cx, cy):
    """The CutMix box (y1, y2, x1, x2), Python ints, as torchvision.transforms.v2.CutMix
    computes it: half sizes rh = int(0.5 * sqrt(1 - lam) * height) and
    rw = int(0.5 * sqrt(1 - lam) * width) around the centre (cy, cx), clipped to the image:
        y1 = max(cy - rh, 0), y2 = min(cy + rh, height),
        x1 = max(cx - rw, 0), x2 = min(cx + rw, width).
    The box covers rows y1:y2 and columns x1:x2.
    """
    ### BEGIN SOLUTION
    r = 0.5 * math.sqrt(1.0 - lam)
    rh, rw = int(r * height), int(r * width)
    return max(cy - rh, 0), min(cy + rh, height), max(cx - rw, 0), min(cx + rw, width)
    ### END SOLUTION


def cutmix(x, y, num_classes, lam, perm, cx, cy):
    """CutMix a batch x (N, C, H, W) with integer labels y (N,) against its permutation perm
    (N,): returns (mixed, soft).

    mixed is a copy of x whose box cutmix_box(H, W, lam, cx, cy) is replaced by the same
    box of x[perm]. soft (N, num_classes), of x's dtype, mixes the one-hot labels with lam
    corrected to the share of the image left outside the clipped box:
        lam' = 1 - (y2 - y1) * (x2 - x1) / (H * W),
        soft = lam' * onehot(y) + (1 - lam') * onehot(y[perm]).
    torchvision.transforms.v2.CutMix is this with perm = the batch rolled by one
    (perm[i] = i - 1). x and y are not modified.
    """
    ### BEGIN SOLUTION
    h, w = x.shape[-2:]
    r = 0.5 * math.sqrt(1.0 - lam)  # the box of cutmix_box(h, w, lam, cx, cy)
    rh, rw = int(r * h), int(r * w)
    y1, y2, x1, x2 = max(cy - rh, 0), min(cy + rh, h), max(cx - rw, 0), min(cx + rw, w)
    mixed = x.clone()
    mixed[..., y1:y2, x1:x2] = x[perm][..., y1:y2, x1:x2]
    lam = 1.0 - (y2 - y1) * (x2 - x1) / (h * w)
    onehot = F.one_hot(y, num_classes).to(x.dtype)
    return mixed, lam * onehot + (1 - lam) * onehot[perm]
    ### END SOLUTION


def mixup(x, y, num_classes, lam, perm):
    """MixUp a batch x (N, ...) with integer labels y (N,) against its permutation perm (N,):
    returns (lam * x + (1 - lam) * x[perm], lam * onehot(y) + (1 - lam) * onehot(y[perm])),
    the soft labels (N, num_classes) of x's dtype. torchvision.transforms.v2.MixUp is this
    with perm = the batch rolled by one (perm[i] = i - 1).
    """
    ### BEGIN SOLUTION
    onehot = F.one_hot(y, num_classes).to(x.dtype)
    return lam * x + (1 - lam) * x[perm], lam * onehot + (1 - lam) * onehot[perm]
    ### END SOLUTION


def label_smoothing_loss(logits, target, epsilon):
    """Cross-entropy of logits (N, K) against smoothed labels (N,), averaged over the batch:
    the target distribution puts 1 - epsilon + epsilon / K on the true class and
    epsilon / K on every other one, so
        loss_i = (1 - epsilon) * (-log p_i[target_i]) + epsilon * mean_k(-log p_i[k]),
    with log p = log_softmax(logits). Equal to F.cross_entropy(logits, target,
    label_smoothing=epsilon), written without it (or kl_div).
    """
    ### BEGIN SOLUTION
    logp = logits.log_softmax(dim=1)
    nll = -logp.gather(1, target.unsqueeze(1)).squeeze(1)
    smooth = -logp.mean(dim=1)
    return ((1 - epsilon) * nll + epsilon * smooth).mean()
    ### END SOLUTION


def freeze(model, trainable=("fc",)):
    """Prepare model for training its head only; returns the number of trainable
    parameter values (elements).

    A parameter stays trainable when its name (model.named_parameters()) is one of the
    prefixes in `trainable` or lies under one ("fc" covers "fc.weight", not "fc2.weight");
    every other parameter gets requires_grad False. Every BatchNorm layer outside the
    trainable prefixes is put in eval mode and kept there, even after model.train()
    (a forward pre-hook sets its training flag back to False): it normalises with its
    running statistics and never updates them, so a training step changes nothing
    outside the head.
    """
    ### BEGIN SOLUTION
    if isinstance(trainable, str):
        trainable = (trainable,)

    def under(name):
        return any(name == p or name.startswith(p + ".") for p in trainable)

    def keep_eval(module, inputs):
        module.training = False

    count = 0
    for name, param in model.named_parameters():
        param.requires_grad_(under(name))
        if under(name):
            count += param.numel()
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not under(name):
            module.eval()
            module.register_forward_pre_hook(keep_eval)
    return count
    ### END SOLUTION


def param_groups(model, head_prefix="fc", base_lr=1e-3, head_lr=1e-2):
    """Optimizer parameter groups for fine-tuning: [{"params": [backbone parameters],
    "lr": base_lr}, {"params": [head parameters], "lr": head_lr}], the head being the
    parameters named head_prefix or under it ("fc.weight", not "fc2.weight"). Every
    parameter of model.named_parameters() appears exactly once, in a list. A model with
    no parameter under head_prefix raises ValueError.
    """
    ### BEGIN SOLUTION
    head, base = [], []
    for name, param in model.named_parameters():
        is_head = name == head_prefix or name.startswith(head_prefix + ".")
        (head if is_head else base).append(param)
    if not head:
        raise ValueError(f"the model has no parameter under {head_prefix!r}")
    return [{"params": base, "lr": base_lr}, {"params": head, "lr": head_lr}]
    ### END SOLUTION


def distillation_loss(student_logits, teacher_logits, target, T=4.0, alpha=0.9):
    """Knowledge distillation (Hinton et al.): alpha * soft + (1 - alpha) * hard with
        soft = T * T * KL(softmax(teacher_logits / T) || softmax(student_logits / T)),
    the KL summed over classes and averaged over the batch (F.kl_div's 'batchmean'), and
        hard = cross_entropy(student_logits, target) (mean over the batch, T = 1).
    The teacher is a fixed target: no gradient flows into teacher_logits. The T * T
    keeps the soft term's gradients on the scale of the hard term's. Written without
    kl_div.
    """
    ### BEGIN SOLUTION
    teacher_logits = teacher_logits.detach()
    log_p_student = F.log_softmax(student_logits / T, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / T, dim=1)
    soft = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum() / student_logits.shape[0]
    hard = F.cross_entropy(student_logits, target)
    return alpha * T * T * soft + (1 - alpha) * hard
    ### END SOLUTION
