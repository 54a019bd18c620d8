"""Week 2 references: normalization variants, folding BatchNorm into a conv, a CNN.

Each function is self-contained (the notebook's solution cells are copies of these
definitions) and uses only the imports below, which the notebook's set-up cell
also makes.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalization of x (N, C) or (N, C, *), one set of statistics per channel C.

    Training mode: mean and *biased* variance of each channel over the batch and all
    positions (every axis except 1), then y = (x - mean) / sqrt(var + eps) * weight + bias.
    The running statistics are updated in place (when given):
        running_mean <- (1 - momentum) * running_mean + momentum * mean
        running_var  <- (1 - momentum) * running_var  + momentum * var * n / (n - 1)
    with n the number of values per channel: momentum weights the new batch, and
    running_var stores the *unbiased* variance. Training with a single value per
    channel raises ValueError (no variance to estimate).

    Eval mode: the same formula with running_mean and running_var in place of the
    batch statistics; nothing is updated. weight and bias (C,) are optional.
    """
    ### BEGIN SOLUTION
    if x.dim() < 2:
        raise ValueError(f"expected an input of shape (N, C) or (N, C, *), got {tuple(x.shape)}")
    dims = [0] + list(range(2, x.dim()))
    shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
    if training:
        count = x.numel() // x.shape[1]
        if count < 2:
            raise ValueError("training needs more than one value per channel to estimate a "
                             f"variance, got an input of shape {tuple(x.shape)}")
        mean = x.mean(dim=dims)
        var = ((x - mean.reshape(shape)) ** 2).mean(dim=dims)  # biased: divide by count
        with torch.no_grad():
            if running_mean is not None:
                running_mean.mul_(1 - momentum).add_(momentum * mean)
            if running_var is not None:
                running_var.mul_(1 - momentum).add_(momentum * var * count / (count - 1))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("eval mode normalises with running_mean and running_var: pass both")
        mean, var = running_mean, running_var
    out = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out
    ### END SOLUTION


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalization over the last len(normalized_shape) dimensions of x.

    normalized_shape is an int or a tuple equal to the trailing dimensions of x, e.g.
    (C, H, W) for x of shape (N, C, H, W). Each sample gets its own mean and biased
    variance over those dimensions: y = (x - mean) / sqrt(var + eps) * weight + bias,
    with optional weight and bias of shape normalized_shape (one value per element).
    The same computation in training and eval mode: no running statistics. A
    normalized_shape that is not the trailing dimensions of x raises ValueError.
    """
    ### BEGIN SOLUTION
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(int(s) for s in normalized_shape)
    k = len(normalized_shape)
    if k == 0 or x.dim() < k or tuple(x.shape[x.dim() - k:]) != normalized_shape:
        raise ValueError(f"normalized_shape {normalized_shape} must equal the trailing "
                         f"dimensions of the input, of shape {tuple(x.shape)}")
    dims = tuple(range(x.dim() - k, x.dim()))
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    out = (x - mean) / torch.sqrt(var + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out
    ### END SOLUTION


def instance_norm(x, weight=None, bias=None, eps=1e-5):
    """Instance normalization of x (N, C, *): statistics per sample *and* per channel.

    For each (n, c), the mean and biased variance over the spatial positions only
    (axes 2, 3, ...); y = (x - mean) / sqrt(var + eps) * weight + bias with optional
    weight and bias of shape (C,). No running statistics. An input without at least
    two spatial positions (e.g. (N, C)) raises ValueError.
    """
    ### BEGIN SOLUTION
    if x.dim() < 3 or x[0, 0].numel() < 2:
        raise ValueError("instance normalization needs more than one spatial position per "
                         f"channel, got an input of shape {tuple(x.shape)}")
    dims = tuple(range(2, x.dim()))
    shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
    mean = x.mean(dim=dims, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
    out = (x - mean) / torch.sqrt(var + eps)
    scale = 1 if weight is None else weight.reshape(shape)  # one value per channel, broadcast
    shift = 0 if bias is None else bias.reshape(shape)
    return out * scale + shift
    ### END SOLUTION


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalization of x (N, C) or (N, C, *) with num_groups groups of channels.

    The C channels split into num_groups consecutive groups of C / num_groups channels
    (channels 0..C/G-1 form group 0, and so on). Each (sample, group) gets the mean and
    biased variance over its channels and all spatial positions; y = (x - mean) /
    sqrt(var + eps) * weight + bias with optional weight and bias of shape (C,), one
    per channel. num_groups = 1 is layer norm over (C, *); num_groups = C is instance
    norm. C not divisible by num_groups raises ValueError, and so does, as in
    F.group_norm, an input holding a single value per group over the whole batch
    (e.g. shape (1, C) with num_groups = C).
    """
    ### BEGIN SOLUTION
    if x.dim() < 2:
        raise ValueError(f"expected an input of shape (N, C) or (N, C, *), got {tuple(x.shape)}")
    n, c = x.shape[0], x.shape[1]
    if num_groups < 1 or c % num_groups:
        raise ValueError(f"{c} channels cannot be split into {num_groups} groups of equal size")
    if x.numel() // num_groups == 1:
        raise ValueError(f"expected more than one value per group, got an input of shape {tuple(x.shape)}")
    shape = [1, c] + [1] * (x.dim() - 2)
    groups = x.reshape(n, num_groups, -1)
    mean = groups.mean(dim=-1, keepdim=True)
    var = ((groups - mean) ** 2).mean(dim=-1, keepdim=True)
    out = ((groups - mean) / torch.sqrt(var + eps)).reshape(x.shape)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out
    ### END SOLUTION


def fuse_conv_bn(conv, bn):
    """One nn.Conv2d equal, in eval mode, to bn(conv(x)); neither input is modified.

    In eval mode BatchNorm is a per-channel affine map, y = (z - mean) * s + beta with
    s = gamma / sqrt(running_var + eps), so it folds into the conv before it:
        W' = W * s (one factor per output channel, i.e. per filter)
        b' = (b - mean) * s + beta   (b = 0 when the conv has no bias)
    The new conv keeps the conv's stride, padding, dilation, groups, dtype and
    device, and always has a bias. A BatchNorm without running statistics (it
    normalises with batch statistics even in eval mode) cannot be folded: ValueError.
    """
    ### BEGIN SOLUTION
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("this BatchNorm keeps no running statistics: it cannot be folded into a conv")
    weight = conv.weight
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                      padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True,
                      padding_mode=conv.padding_mode, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        scale = torch.rsqrt(bn.running_var.to(weight.dtype) + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight
        shift = -bn.running_mean.to(weight.dtype)
        if conv.bias is not None:
            shift = shift + conv.bias
        shift = shift * scale
        if bn.bias is not None:
            shift = shift + bn.bias
        fused.weight.copy_(weight * scale.reshape(-1, 1, 1, 1))
        fused.bias.copy_(shift)
    return fused
    ### END SOLUTION


def make_cnn(norm, num_classes=10, in_channels=1):
    """A small CNN for (N, in_channels, H, W) images (8x8 digits), with the chosen normalization.

    norm is one of "batch" (nn.BatchNorm2d), "layer" (layer norm over (C, H, W): for
    conv features nn.GroupNorm(1, C), as in the GroupNorm paper), "instance"
    (nn.InstanceNorm2d), "group" (nn.GroupNorm) or "none"; anything else raises
    ValueError. Two blocks conv 3x3 -> norm -> ReLU -> 2x2 max pool, then a 2x2
    adaptive average pool, flatten and a linear layer: output (N, num_classes).
    Use torch.nn's normalization layers here, so that model.train() / model.eval()
    switch them.
    """
    ### BEGIN SOLUTION
    choices = ("batch", "layer", "instance", "group", "none")
    if norm not in choices:
        raise ValueError(f"norm must be one of {choices}, got {norm!r}")

    def norm_layer(channels):
        if norm == "batch":
            return nn.BatchNorm2d(channels)
        if norm == "layer":
            return nn.GroupNorm(1, channels)
        if norm == "instance":
            return nn.InstanceNorm2d(channels, affine=True)
        if norm == "group":
            return nn.GroupNorm(4, channels)
        return nn.Identity()

    def block(cin, cout):
        # A conv bias right before a per-channel mean subtraction is cancelled by it.
        bias = norm not in ("batch", "instance")
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=bias), norm_layer(cout), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(in_channels, 16), *block(16, 32), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 2 * 2, num_classes))
    ### END SOLUTION


# Conceptual questions: each answer is a value the student reasons out (graded like a problem).
def q_group_norm_values():
    """Question: ``nn.GroupNorm(6, 48)`` normalises a batch ``x`` of shape (8, 48, 14, 14).
    Over how many values of ``x`` is each of its means taken? Return an int.
    """
    ### BEGIN SOLUTION
    channels_per_group = 48 // 6
    return channels_per_group * 14 * 14  # one sample, one group of channels, every position
    ### END SOLUTION


def q_contrast_invariance():
    """Question: every image of a batch gets its own change of contrast and brightness in
    each colour channel, ``x[n, c] -> a[n, c] * x[n, c] + b[n, c]`` with ``a[n, c] > 0``.
    Which layer's normalised output (before the scale and shift, gamma and beta) stays the
    same, whatever the other images of the batch are?

    - A: ``nn.BatchNorm2d`` in training mode
    - B: layer norm over (C, H, W)
    - C: ``nn.InstanceNorm2d``
    - D: ``nn.GroupNorm`` with 2 channels per group

    Return the letter as a string, e.g. ``"A"``.
    """
    ### BEGIN SOLUTION
    return "C"  # only its statistics are taken over values that share one a and one b
    ### END SOLUTION
