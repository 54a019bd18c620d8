"""Every sentence of ``docs/course-spec.md`` for weeks 3-5, tied to the check groups that hold
students to it (``tests/test_spec_trace.py`` lists the sentences and fails on one without an entry).

``sentences(assignment)`` splits a week's section into sentences: its bullets (continuation
lines joined), each cut after a full stop that is followed by a capital, a backtick or a
parenthesis (outside inline code; "e.g." and "et al." do not end one). ``TRACE`` maps the start
of each sentence (a text it contains, found in exactly one sentence) to

- the groups that check it, ``"<graded name>/<group>"``, or
- one of :data:`NOT_BEHAVIOURAL` when it promises nothing about a student's code: the course's
  data and helpers, a heading, the grader's own procedure, or the reference's measured margins.
"""
from __future__ import annotations

import re
from pathlib import Path

SPEC = Path(__file__).resolve().parent.parent / "docs" / "course-spec.md"
WEEKS = ("w3_architectures", "w4_segmentation", "w5_augmentation_transfer")

#: Why a sentence is tied to no group.
DATA = "data: the course's data and helpers, which students do not write"
HEADING = "heading: introduces the lines that follow"
PROCEDURE = "procedure: how the grader draws or runs its cases"
MEASURED = "measured: the reference's margins, timings and what broken answers scored"
NOT_BEHAVIOURAL = (DATA, HEADING, PROCEDURE, MEASURED)


def _section(text: str, assignment: str) -> str:
    match = re.search(rf"^## Assignment `{assignment}`.*?$(.*?)(?=^## )", text, re.S | re.M)
    return match.group(1) if match else ""


def _bullets(body: str) -> list[str]:
    items: list[str] = []
    for line in body.splitlines():
        if line.startswith("- "):
            items.append(line[2:].strip())
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
        elif line.strip():
            items.append(line.strip())
    return items


def _split(item: str) -> list[str]:
    parts, start, code = [], 0, False
    for i, ch in enumerate(item):
        if ch == "`":
            code = not code
        elif ch == "." and not code and item[i + 1:i + 2] == " " and (item[i + 2:i + 3].isupper()
                                                                     or item[i + 2:i + 3] in ("`", "(")):
            if not re.search(r"(e\.g|i\.e|et al|vs)$", item[start:i]):
                parts.append(item[start:i + 1].strip())
                start = i + 1
    rest = item[start:].strip()
    return parts + ([rest] if rest else [])


def sentences(assignment: str, text: str | None = None) -> list[str]:
    """The sentences of ``assignment``'s section of the course spec, in order."""
    body = _section(SPEC.read_text() if text is None else text, assignment)
    return [s for item in _bullets(body) for s in _split(item)]


def _contract(names, groups) -> tuple[str, ...]:
    return tuple(f"{n}/{g}" for n in names for g in groups)


W3_BLOCKS = ("BasicBlock", "Bottleneck", "PreActBlock", "ResNeXtBlock", "DenseLayer", "DenseBlock", "Transition",
             "SEBlock", "SEBasicBlock", "InceptionModule", "AuxClassifier")
W3_TWINS = ("BasicBlock", "Bottleneck", "ResNeXtBlock", "DenseLayer", "DenseBlock", "Transition")
W3_FULL = ("resnet", "resnext50_32x4d", "densenet121")

TRACE: dict[str, dict[str, tuple[str, ...] | str]] = {
    "w3_architectures": {
        "`InceptionModule(in_channels, ch1x1": _contract(["InceptionModule"],
                                                        ["output shape", "parameters", "outputs"]),
        "`AuxClassifier(in_channels, num_classes)` and `googlenet_loss(": (
            "AuxClassifier/output shape", "AuxClassifier/outputs", "googlenet_loss/main only",
            "googlenet_loss/auxiliary losses", "googlenet_loss/aux_weight"),
        "`BasicBlock(in_channels, out_channels, stride=1)`; `Bottleneck(": _contract(
            ["BasicBlock", "Bottleneck", "PreActBlock"], ["output shape", "parameters"]) + (
            "BasicBlock/torchvision weights", "Bottleneck/torchvision weights", "PreActBlock/outputs"),
        "`resnet(depth, num_classes=1000) -> nn.Module`": ("resnet/torchvision layout",),
        "Module and parameter names of the residual blocks": _contract(W3_TWINS, ["state_dict", "torchvision weights"])
        + _contract(W3_FULL, ["torchvision layout", "torchvision weights"]),
        "`ResNeXtBlock(in_channels, out_channels, cardinality=32": (
            "ResNeXtBlock/parameters", "ResNeXtBlock/torchvision weights", "resnext50_32x4d/torchvision layout"),
        "`DenseLayer(in_channels, growth_rate, bn_size=4)`": _contract(
            ["DenseLayer", "DenseBlock", "Transition"], ["output shape", "parameters"]) + (
            "densenet121/torchvision layout",),
        "`SEBlock(channels, reduction=16)`": ("SEBlock/outputs", "SEBlock/parameters", "SEBasicBlock/parameters"),
        "`efficientnet_scaling(phi, alpha=1.2": (
            "efficientnet_scaling/default coefficients", "efficientnet_scaling/other coefficients",
            "round_filters/B0 to B7 widths", "round_repeats/B0 to B7 depths"),
        "`deform_conv2d(x, offset, weight, bias=None": (
            "deform_conv2d/random offsets", "deform_conv2d/zero offsets", "deform_conv2d/outside the image"),
        "smoke tests: a small residual net": ("BasicBlock/trains on digits", "BasicBlock/degradation"),
        "Choices where the lines above are silent (week 3)": (
            "InceptionModule/state_dict", "AuxClassifier/state_dict", "PreActBlock/state_dict", "SEBlock/state_dict",
            "SEBasicBlock/state_dict", "PreActBlock/outputs", "SEBasicBlock/outputs", "AuxClassifier/outputs"),
        "The residual blocks keep one `nn.ReLU` module named `relu`": (
            "BasicBlock/submodules", "Bottleneck/submodules", "ResNeXtBlock/submodules", "BasicBlock/state_dict"),
        "`DenseLayer` returns only its `growth_rate` new channels": (
            "DenseLayer/output shape", "DenseBlock/torchvision weights"),
        "`resnet` raises `ValueError` for any other depth": ("resnet/invalid depth",),
        "The reference models are built from the week's graded blocks": PROCEDURE,
        "Modules are compared in float32 with float64 references": _contract(
            W3_TWINS, ["torchvision weights", "training mode"]) + _contract(W3_FULL, ["torchvision layout",
                                                                                    "torchvision weights"]),
        "Random weights: conv and linear weights of variance": PROCEDURE,
        "`AuxClassifier`'s dropout is checked by two passes": ("AuxClassifier/dropout",),
        "What a module does (the module contract": _contract(
            ["InceptionModule", "AuxClassifier", "PreActBlock", "SEBlock", "SEBasicBlock"], ["outputs"]) + _contract(
            W3_TWINS, ["torchvision weights"]),
        "In training mode a module runs two passes": _contract(W3_BLOCKS, ["training mode"]),
        "A module leaves its input unchanged, and a backward pass": _contract(W3_BLOCKS, ["backward"]),
        "Constructor arguments are drawn, defaults included": (
            "ResNeXtBlock/parameters", "ResNeXtBlock/torchvision weights", "SEBlock/parameters",
            "SEBasicBlock/parameters", "SEBasicBlock/outputs", "DenseLayer/parameters", "DenseBlock/parameters",
            "BasicBlock/output shape", "Bottleneck/output shape", "PreActBlock/output shape"),
        "`googlenet_loss` must stay finite on logits": ("googlenet_loss/large logits",),
        "`efficientnet_scaling` returns three floats, compared to 1e-9": (
            "efficientnet_scaling/default coefficients", "round_filters/halves", "round_filters/90% rule",
            "round_filters/minimum", "round_filters/divisor", "round_repeats/exact products"),
        "`round_filters` is also checked with width multipliers far from 1": ("round_filters/far from 1",),
        "`deform_conv2d` may not use the deformable family": ("deform_conv2d/zero offsets",),
        "Weight groups are not asked for": ("deform_conv2d/random offsets",),
        "Values are compared to 1e-9 (float64) and 2e-4 (float32), gradients for `x`, `offset`": (
            "deform_conv2d/backward", "deform_conv2d/float32", "deform_conv2d/zero offsets",
            "deform_conv2d/stride, padding, dilation", "deform_conv2d/bias"),
        "Smoke tests (on `BasicBlock`; CUDA when": PROCEDURE,
        "(a) A conv stem (3x3, 16, BN, ReLU)": ("BasicBlock/trains on digits",),
        "(b) Degradation: a stem, 8 blocks of width 8": ("BasicBlock/degradation",),
        "Broken blocks on (b), measured with the earlier": MEASURED,
        "On (a), a two-block net trains about as well": MEASURED,
    },
    "w4_segmentation": {
        "`convolutionalize(classifier, in_shape) -> nn.Module`": (
            "convolutionalize/same logits", "convolutionalize/later layers", "convolutionalize/score map"),
        "`conv_transpose2d(x, weight, bias=None, stride=1": (
            "conv_transpose2d/basic", "conv_transpose2d/stride", "conv_transpose2d/padding",
            "conv_transpose2d/output_padding", "conv_transpose2d/bias"),
        "`overlap_counts(length, kernel_size, stride) -> list[int]`": (
            "overlap_counts/stride 1", "overlap_counts/even overlap", "overlap_counts/checkerboard",
            "overlap_counts/gaps"),
        "`bilinear_kernel(in_channels, out_channels, kernel_size) -> Tensor`": (
            "bilinear_kernel/odd sizes", "bilinear_kernel/even sizes", "bilinear_kernel/channels"),
        "`FCN(num_classes, variant=\"8s\")` over the provided backbone": (
            "FCN/output size", "FCN/32s", "FCN/16s", "FCN/8s"),
        "`center_crop(x, size)` cropping the last two dimensions": (
            "center_crop/even margins", "center_crop/odd margins", "center_crop/leading dimensions",
            "UNet/valid convs", "UNet/same padding", "UNet/invalid size"),
        "`DepthwiseSeparableConv(in_channels, out_channels, kernel_size=3": (
            "DepthwiseSeparableConv/parameters", "DepthwiseSeparableConv/stride and dilation"),
        "`ASPP(in_channels, out_channels=256, rates=(6, 12, 18))`": (
            "ASPP/output shape", "ASPP/parameters", "ASPP/torchvision weights"),
        "`DeepLabV3Plus(num_classes, ...)`: atrous encoder": (
            "DeepLabV3Plus/ASPP", "DeepLabV3Plus/separable convs", "DeepLabV3Plus/output size"),
        "`confusion_matrix(pred, target, num_classes, ignore_index=255)` (rows": (
            "confusion_matrix/basic", "confusion_matrix/ignore_index", "pixel_accuracy/basic",
            "pixel_accuracy/ignore_index", "mean_iou/basic", "mean_iou/absent class"),
        "`hypercolumn(features, size) -> Tensor`": ("hypercolumn/upsample", "hypercolumn/order"),
        "smoke test: the student's U-Net trains": ("UNet/trains",),
        "Choices where the lines above are silent (week 4)": HEADING,
        "Data: `coursedata.shapes(n, size=32": DATA,
        "`coursedata.show_segmentation(images": DATA,
        "`convolutionalize` returns an `nn.Sequential` without Flatten": (
            "convolutionalize/convolutions only", "convolutionalize/invalid", "convolutionalize/later layers"),
        "Checked in eval mode at (H, W) and on larger inputs": (
            "convolutionalize/same logits", "convolutionalize/score map", "convolutionalize/convolutions only"),
        "The new convs take the dtype and the device of the Linear": (
            "convolutionalize/float64 and device", "convolutionalize/training mode"),
        "`conv_transpose2d` has no groups or dilation": ("conv_transpose2d/invalid",),
        "It may not use the convolution or the transposed-convolution family": (
            "conv_transpose2d/basic", "conv_transpose2d/backward", "conv_transpose2d/float32"),
        "`overlap_counts` is for no padding": ("overlap_counts/stride 1", "overlap_counts/invalid"),
        "`bilinear_kernel` is FCN's `get_upsampling_weight`": (
            "bilinear_kernel/float32", "bilinear_kernel/channels", "bilinear_kernel/invalid"),
        "`FCN(num_classes, variant=\"8s\", in_channels=1, widths=": (
            "FCN/32s", "FCN/16s", "FCN/8s", "FCN/bilinear start", "FCN/invalid"),
        "`center_crop` pads a size larger than the input": ("center_crop/larger size", "center_crop/odd margins"),
        "`UNet`: each block is two (conv 3x3": ("UNet/crop and concat", "UNet/padding 1"),
        "Only `padding` 0 or 1": ("UNet/padding 1",),
        "An input size it cannot take raises `ValueError` in `forward`": ("UNet/invalid size",),
        "Sizes are checked on real inputs with small widths": (
            "UNet/valid convs", "UNet/same padding", "UNet/crop and concat"),
        "`DepthwiseSeparableConv` is `depthwise` then `pointwise`": (
            "DepthwiseSeparableConv/depthwise then pointwise", "DepthwiseSeparableConv/parameters"),
        "`ASPP` has torchvision's DeepLab v3 layout": (
            "ASPP/state_dict", "ASPP/parameters", "ASPP/torchvision weights"),
        "`UNet`, `ASPP`, `DepthwiseSeparableConv` and `FCN` are held to week 3's module contract": _contract(
            ["UNet", "ASPP", "DepthwiseSeparableConv"], ["training mode", "backward"]) + ("FCN/backward", "FCN/8s"),
        "`DeepLabV3Plus(num_classes, in_channels=1, width=16": (
            "DeepLabV3Plus/output size", "DeepLabV3Plus/ASPP", "DeepLabV3Plus/separable convs",
            "DeepLabV3Plus/eval mode"),
        "Metrics: `confusion_matrix` is an int64 tensor": (
            "confusion_matrix/basic", "confusion_matrix/ignore_index", "confusion_matrix/absent classes"),
        "`pixel_accuracy` is a Python float, NaN when": ("pixel_accuracy/basic", "pixel_accuracy/all ignored"),
        "`mean_iou` returns (a float tensor (K,), a float)": (
            "mean_iou/basic", "mean_iou/absent class", "mean_iou/predicted only"),
        "Label maps may be uint8, int16, int32 or int64 tensors": (
            "confusion_matrix/label dtypes", "mean_iou/label dtypes", "confusion_matrix/any shape"),
        "`hypercolumn` takes an int or (h, w) size": ("hypercolumn/int size", "hypercolumn/downsample"),
        "Module problems draw one of 6 configurations": PROCEDURE,
        "Smoke test (CUDA when the kernel sees one, else the CPU; at most 120 s": ("UNet/trains",),
        "The reference passes on 20 of 20 training seeds (mIoU": MEASURED,
        "It checks that the network learns, not its wiring": MEASURED,
    },
    "w5_augmentation_transfer": {
        "`hflip(img)`, `pad_and_crop(img, padding, top, left)`": (
            "hflip/(C, H, W)", "pad_and_crop/shift", "pad_and_crop/no shift", "adjust_brightness/darker",
            "adjust_brightness/brighter and clamped", "adjust_contrast/RGB", "adjust_contrast/one channel",
            "rotate/small angles", "rotate/any angle", "rotate/non-square"),
        "`cutmix_box(height, width, lam, cx, cy) -> (y1, y2, x1, x2)`": (
            "cutmix_box/inside", "cutmix_box/clipped", "cutmix_box/lam at the ends", "cutmix/box pasted",
            "cutmix/lam corrected", "mixup/images", "mixup/labels"),
        "`label_smoothing_loss(logits, target, epsilon)` equal to": (
            "label_smoothing_loss/no smoothing", "label_smoothing_loss/smoothing"),
        "`freeze(model, trainable=(\"fc\",)) -> int`": ("freeze/count", "freeze/prefixes"),
        "After it, a training step (`model.train()`, forward, backward": (
            "freeze/frozen training step", "freeze/BatchNorm on both sides"),
        "`param_groups(model, head_prefix=\"fc\", base_lr=1e-3, head_lr=1e-2) -> list[dict]`": (
            "param_groups/two groups", "param_groups/defaults"),
        "`distillation_loss(student_logits, teacher_logits, target, T=4.0, alpha=0.9)`": (
            "distillation_loss/soft term", "distillation_loss/hard term", "distillation_loss/mixed",
            "distillation_loss/defaults"),
        "smoke tests: fine-tuning a network pretrained on digits 0-4": (
            "param_groups/fine-tuning (smoke test)", "freeze/transfer (smoke test)",
            "distillation_loss/distils (smoke test)", "pad_and_crop/shifts help (smoke test)",
            "rotate/rotations help (smoke test)"),
        "Choices where the lines above are silent (week 5): images are float tensors": (
            "hflip/batches", "pad_and_crop/batches", "adjust_brightness/batches", "adjust_contrast/per image",
            "rotate/batches"),
        "`hflip`, `pad_and_crop`, `adjust_brightness`, `adjust_contrast`, `rotate`, `cutmix_box`, `cutmix` and "
        "`mixup` may not name": ("rotate/small angles", "hflip/(C, H, W)"),
        "`pad_and_crop` raises `ValueError` for a negative padding": (
            "pad_and_crop/invalid", "adjust_brightness/invalid", "adjust_contrast/invalid"),
        "`cutmix_box` returns Python ints `(y1, y2, x1, x2)`": (
            "cutmix_box/order", "cutmix/any permutation", "mixup/any permutation", "cutmix/float32", "mixup/float32",
            "cutmix/inputs unchanged", "mixup/inputs unchanged"),
        "`label_smoothing_loss` may not use the cross-entropy family": (
            "label_smoothing_loss/smoothing", "distillation_loss/soft term", "distillation_loss/teacher detached"),
        "Losses are compared in value and, in float64, in their gradient": (
            "label_smoothing_loss/gradients", "distillation_loss/gradients", "label_smoothing_loss/large logits",
            "distillation_loss/large logits", "label_smoothing_loss/float32", "distillation_loss/float32"),
        "`distillation_loss` is also checked with its defaults": (
            "distillation_loss/defaults", "param_groups/defaults"),
        "`freeze` counts parameter values (`numel`)": ("freeze/count", "freeze/prefixes"),
        "It is checked by a training step in the kernel (a tiny torchvision ShuffleNetV2": (
            "freeze/frozen training step",),
        "Only the frozen part's BatchNorm layers stay in eval mode": ("freeze/BatchNorm on both sides",),
        "`param_groups` returns the backbone group first": (
            "param_groups/two groups", "param_groups/every parameter once", "param_groups/frozen parameters",
            "param_groups/head prefix", "param_groups/no head"),
        "Smoke tests (CUDA when the kernel sees one, else the CPU; at most 60 s per case, the reference": PROCEDURE,
        "Transfer: a small CNN (conv-BN-ReLU 16, 32 | 32": (
            "freeze/transfer (smoke test)", "param_groups/fine-tuning (smoke test)"),
        "Over the 20 first grading seeds the reference wins": MEASURED,
        "Distillation: an MLP student (64-32-10)": ("distillation_loss/distils (smoke test)",),
        "Augmentation smoke tests (the `classify` recipe's `augment` option": (
            "pad_and_crop/shifts help (smoke test)", "rotate/rotations help (smoke test)"),
        "The held-out data are the 450 test digits of a shifted world": (
            "pad_and_crop/shifts help (smoke test)", "rotate/rotations help (smoke test)"),
        "A CNN (16, 32, 32) trained 30 epochs (Adam, lr 0.003, batch 32) on 300 centred": (
            "pad_and_crop/shifts help (smoke test)", "rotate/rotations help (smoke test)"),
        "The world is one-sided on purpose": MEASURED,
        "Over 20 seeds (one core of a busy 2-core machine": MEASURED,
        "Offsets the wrong way (`2 * padding - top`)": MEASURED,
    },
}
