"""The demo's partly wrong students: the mistakes ``carol`` and ``dave`` make, per assignment.

A mistake is an edit of the reference definition in the format of
:mod:`autograder.mutations` (first line: the mistake; ``- ``/``+ `` lines: the
change), applied to ``solutions/<assignment>.py``; a mistake that is not an edit
(a different program) is a :class:`Whole` definition. ``carol`` answers every
other graded name with the reference, ``dave`` every fourth one and leaves the
rest blank (:func:`autograder.demo.class_answers`).
"""
from __future__ import annotations

import importlib

from . import mutations


class Whole(str):
    """A whole (wrong) definition, for a mistake that is not an edit of the reference."""


#: assignment -> student -> graded name -> mistake
MISTAKES: dict[str, dict[str, dict[str, str]]] = {
    "w1_conv_arithmetic": {
        "carol": {
            "conv_output_size": """The dilation term is forgotten: the kernel is treated as undilated.
- out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
+ out = (size + 2 * padding - kernel_size) // stride + 1
""",
            "same_padding": """Raises for every even kernel_size, even when the dilated span is odd.
- if span % 2 == 0:
+ if kernel_size % 2 == 0:
""",
            "conv_macs": """Counts the bias addition as one more MAC per output value.
- return out_channels * oh * ow * (in_channels // groups) * kh * kw
+ return out_channels * oh * ow * ((in_channels // groups) * kh * kw + 1)
""",
            "conv2d": """Never adds the bias.
- if bias is not None:
- out = out + bias.reshape(1, f, 1, 1)
""",
            "compose_convs": Whole('''def compose_convs(w1, w2):
    """Tap-by-tap accumulation with a spurious flip of w2 (the taps are already a convolution)."""
    c1, c0, k1, _ = w1.shape
    c2, _, k2, _ = w2.shape
    w = torch.zeros(c2, c0, k1 + k2 - 1, k1 + k2 - 1, dtype=w1.dtype, device=w1.device)
    for a in range(k2):
        for b in range(k2):
            tap = w2[:, :, k2 - 1 - a, k2 - 1 - b]
            w[:, :, a:a + k1, b:b + k1] += torch.einsum("oc,cikl->oikl", tap, w1)
    return w
'''),
        },
        "dave": {
            "conv_transpose_output_size": """Multiplies the whole input size by the stride (size * stride instead of (size - 1) * stride).
- out = (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1
- if out < 1:
+ out = size * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding
+ if out < 1:
""",
            "conv_params": """Assumes an int kernel_size (kernel_size ** 2), so (h, w) tuples fail.
- return out_channels * (in_channels // groups) * kh * kw + (out_channels if bias else 0)
+ return out_channels * (in_channels // groups) * kernel_size ** 2 + (out_channels if bias else 0)
""",
            "receptive_field": """Sums the kernel sizes (k each layer instead of k - 1, no jump, no dilation).
- field, jump = 1, 1
+ field, jump = 0, 1
- field += dilation * (kernel_size - 1) * jump
+ field += kernel_size
""",
            "max_pool2d": """Pads with zeros instead of -inf, so padding wins over negative inputs.
- x = F.pad(x, (pw, pw, ph, ph), value=float("-inf"))
+ x = F.pad(x, (pw, pw, ph, ph))
""",
            "profile_model": """output_shape keeps the batch dimension.
- "output_shape": tuple(output.shape[1:]),
+ "output_shape": tuple(output.shape),
""",
        },
    },
    "w2_normalization": {
        "carol": {
            "batch_norm": Whole('''def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Takes the statistics over the batch axis only, so (N, C, *) inputs get one statistic per position."""
    shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
    if training:
        n = x.shape[0]
        if n < 2:
            raise ValueError("need more than one sample")
        mean = x.mean(dim=0, keepdim=True)
        var = x.var(dim=0, unbiased=False, keepdim=True)
        with torch.no_grad():
            channel_mean = mean.reshape(x.shape[1], -1).mean(dim=1)
            channel_var = var.reshape(x.shape[1], -1).mean(dim=1)
            running_mean.mul_(1 - momentum).add_(momentum * channel_mean)
            running_var.mul_(1 - momentum).add_(momentum * channel_var * n / (n - 1))
    else:
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
    out = (x - mean) / torch.sqrt(var + eps)
    scale = 1.0 if weight is None else weight.reshape(shape)
    return out * scale + (0.0 if bias is None else bias.reshape(shape))
'''),
            "instance_norm": """Calls the built-in functional instance norm instead of implementing it.
- mean = x.mean(dim=dims, keepdim=True)
- var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
- out = (x - mean) / torch.sqrt(var + eps)
+ out = F.instance_norm(x, eps=eps)
""",
            "fuse_conv_bn": """Gives the fused conv a bias only when the original conv had one, so the BatchNorm's shift is lost otherwise.
- padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=True,
+ padding=conv.padding, dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None,
- fused.bias.copy_(shift)
+ if fused.bias is not None:
+     fused.bias.copy_(shift)
""",
        },
        "dave": {
            "layer_norm": """Applies the bias but forgets to multiply by the weight (and never checks normalized_shape).
- if k == 0 or x.dim() < k or tuple(x.shape[x.dim() - k:]) != normalized_shape:
- raise ValueError(f"normalized_shape {normalized_shape} must equal the trailing "
- f"dimensions of the input, of shape {tuple(x.shape)}")
- dims = tuple(range(x.dim() - k, x.dim()))
+ dims = tuple(range(x.dim() - k, x.dim()))
- if weight is not None:
- out = out * weight
""",
            "group_norm": """Normalises with the unbiased variance instead of the biased one.
- var = ((groups - mean) ** 2).mean(dim=-1, keepdim=True)
+ var = groups.var(dim=-1, keepdim=True)
""",
            "make_cnn": """Builds a network without normalization for any unrecognised norm instead of raising ValueError.
- if norm not in choices:
- raise ValueError(f"norm must be one of {choices}, got {norm!r}")
""",
        },
    },
    "w3_architectures": {
        "carol": {
            "BasicBlock": """Projects only when the channels change, not when the stride halves the size.
- if stride != 1 or in_channels != out_channels:
+ if in_channels != out_channels:
""",
            "SEBlock": """Rescales with the raw FC output: no sigmoid.
- s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
+ s = self.fc2(self.activation(self.fc1(self.avgpool(x))))
""",
            "googlenet_loss": """Averages the auxiliary losses over the classifiers instead of summing them.
- loss = loss + aux_weight * F.cross_entropy(logits, target)
+ loss = loss + aux_weight * F.cross_entropy(logits, target) / len(aux_logits)
""",
            "round_filters": """Forgets to add a divisor when rounding lost more than 10% of the channels.
- if new < 0.9 * scaled:
- new += divisor
+ pass
""",
        },
        "dave": {
            "DenseBlock": """Returns the features concatenated newest first.
- return torch.cat(features, dim=1)
+ return torch.cat(features[::-1], dim=1)
""",
            "InceptionModule": """The 5x5 branch uses a 3x3 conv (as torchvision's GoogLeNet does) instead of a real 5x5.
- nn.Conv2d(ch5x5red, ch5x5, 5, padding=2), nn.ReLU(inplace=True))
+ nn.Conv2d(ch5x5red, ch5x5, 3, padding=1), nn.ReLU(inplace=True))
""",
            "Bottleneck": """Puts the stride on the first 1x1 conv (the original ResNet paper) instead of the 3x3.
- self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, bias=False)
+ self.conv1 = nn.Conv2d(in_channels, mid_channels, 1, stride=stride, bias=False)
- self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, stride=stride, padding=1, bias=False)
+ self.conv2 = nn.Conv2d(mid_channels, mid_channels, 3, padding=1, bias=False)
""",
        },
    },
    "w4_segmentation": {
        "carol": {
            "confusion_matrix": """Rows are predictions and columns targets.
- counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
+ counts = torch.bincount(pred * num_classes + target, minlength=num_classes * num_classes)
""",
            "center_crop": """The offsets rounded up.
- top = int(round((h - ch) / 2.0))
- left = int(round((w - cw) / 2.0))
+ top = (h - ch + 1) // 2
+ left = (w - cw + 1) // 2
""",
            "mean_iou": """A class absent from both maps gets IoU 0 and counts in the mean.
- iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
+ iou = tp / union.clamp(min=1)
""",
        },
        "dave": {
            "UNet": """No skip connections: the decoder blocks see the upsampled maps only.
- self.decoder = nn.ModuleList([block(2 * widths[i], widths[i]) for i in reversed(range(depth))])
+ self.decoder = nn.ModuleList([block(widths[i], widths[i]) for i in reversed(range(depth))])
- skip = center_crop(skips.pop(), x.shape[-2:])
- x = block(torch.cat([skip, x], dim=1))
+ x = block(x)
""",
            "conv_transpose2d": """output_padding is ignored in the output size.
- out_h = (h - 1) * sh - 2 * ph + kh + oph
- out_w = (w - 1) * sw - 2 * pw + kw + opw
+ out_h = (h - 1) * sh - 2 * ph + kh
+ out_w = (w - 1) * sw - 2 * pw + kw
""",
            "ASPP": """No image-pooling branch.
- convs.append(branch(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False)))
+ convs.append(branch(nn.Conv2d(in_channels, out_channels, 1, bias=False)))
""",
        },
    },
    "w5_augmentation_transfer": {
        "carol": {
            "cutmix": """Mixes the labels with lam as drawn, not corrected after clipping the box.
- lam = 1.0 - (y2 - y1) * (x2 - x1) / (h * w)
""",
            "distillation_loss": """Leaves out the T^2 factor.
- return alpha * T * T * soft + (1 - alpha) * hard
+ return alpha * soft + (1 - alpha) * hard
""",
            "rotate": """Rotates clockwise (the forward map used as the inverse).
- a = math.radians(angle)
+ a = math.radians(-angle)
""",
        },
        "dave": {
            "mixup": """Mixes the labels with 1 - lam on y.
- return lam * x + (1 - lam) * x[perm], lam * onehot + (1 - lam) * onehot[perm]
+ return lam * x + (1 - lam) * x[perm], (1 - lam) * onehot + lam * onehot[perm]
""",
            "label_smoothing_loss": """Spreads epsilon over the K - 1 wrong classes only.
- smooth = -logp.mean(dim=1)
+ smooth = (-logp.sum(dim=1) - nll) / (logits.shape[1] - 1)
""",
            "freeze": """Puts the frozen BatchNorm layers in eval mode once; model.train() switches them back.
- module.register_forward_pre_hook(keep_eval)
""",
        },
    },

}


def mistakes(assignment: str, student: str) -> dict[str, str]:
    """Graded name -> source of ``student``'s wrong definition (none for an assignment not listed)."""
    table = MISTAKES.get(assignment, {}).get(student, {})
    if not table:
        return {}
    reference = importlib.import_module(f"solutions.{assignment}")
    return {name: str(text) if isinstance(text, Whole) else mutations.wrong_source(reference, text, name)[0]
            for name, text in table.items()}
