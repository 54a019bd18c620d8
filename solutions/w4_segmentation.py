"""Week 4 references: FCN, upsampling, U-Net, DeepLab v3+, segmentation metrics.

Each definition is self-contained (the notebook's solution cells are copies of these
definitions) and uses only the imports below, which the notebook's set-up cell also
makes; a class may use another graded name of the week (FCN uses ``bilinear_kernel``,
DeepLabV3Plus uses ``ASPP`` and ``DepthwiseSeparableConv``, UNet uses ``center_crop``).
``Backbone`` is the course's small feature extractor (``coursedata.shapes.Backbone``):
five stages of conv 3x3 - ReLU - max pool 2, returning the five feature maps at
strides 2, 4, 8, 16, 32 (``channels`` gives their widths).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from coursedata import Backbone


def convolutionalize(classifier, in_shape):
    """The fully convolutional twin of a classifier head.

    ``classifier`` is an ``nn.Sequential`` of ``Flatten``, ``Linear``, ``ReLU`` and
    ``Dropout`` layers acting on features of shape ``in_shape = (C, H, W)``. Returns an
    ``nn.Sequential`` where the Flatten is dropped, the first Linear
    (``C*H*W -> F``) becomes a ``Conv2d(C, F, kernel_size=(H, W))`` holding the same
    weights reshaped to (F, C, H, W), every later Linear (``F -> G``) a 1x1
    ``Conv2d(F, G, 1)``, and ReLU / Dropout are kept (new layers of the same kind and
    settings). Biases are copied. On a (N, C, H, W) input the result gives the
    classifier's logits as (N, K, 1, 1); on a larger input, a (N, K, H', W') score map
    (the classifier slid with stride 1). Any other layer, or a first Linear whose
    ``in_features`` is not C*H*W, raises ValueError. The classifier is not modified.
    """
    ### BEGIN SOLUTION
    c, h, w = (int(v) for v in in_shape)
    layers, first = [], True
    for layer in classifier:
        if isinstance(layer, nn.Flatten):
            continue
        if isinstance(layer, nn.Linear):
            if first:
                if layer.in_features != c * h * w:
                    raise ValueError(f"the first Linear takes {layer.in_features} features, "
                                     f"but in_shape {tuple(in_shape)} has {c * h * w}")
                conv = nn.Conv2d(c, layer.out_features, (h, w), bias=layer.bias is not None)
                weight = layer.weight.detach().reshape(layer.out_features, c, h, w)
                first = False
            else:
                conv = nn.Conv2d(layer.in_features, layer.out_features, 1, bias=layer.bias is not None)
                weight = layer.weight.detach().reshape(layer.out_features, layer.in_features, 1, 1)
            conv = conv.to(device=layer.weight.device, dtype=layer.weight.dtype)
            with torch.no_grad():
                conv.weight.copy_(weight)
                if layer.bias is not None:
                    conv.bias.copy_(layer.bias.detach())
            layers.append(conv)
        elif isinstance(layer, nn.ReLU):
            layers.append(nn.ReLU())
        elif isinstance(layer, nn.Dropout):
            layers.append(nn.Dropout(layer.p))
        else:
            raise ValueError(f"cannot convolutionalize a {type(layer).__name__} layer")
    return nn.Sequential(*layers)
    ### END SOLUTION


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    """Transposed convolution matching ``F.conv_transpose2d`` (groups 1, dilation 1),
    without calling it or any convolution.

    x (N, C_in, H, W), weight (C_in, C_out, kH, kW), bias (C_out,) or None; stride,
    padding and output_padding an int or an (h, w) pair. Every input pixel (i, j)
    scatters ``x[n, :, i, j] @ weight[:, :, a, b]`` onto output position
    (i*stride + a - padding, j*stride + b - padding) for each tap (a, b): the kernel is
    *not* flipped (that is what makes it the gradient of a convolution with the same
    weight). Output size ``(H - 1)*stride - 2*padding + kH + output_padding`` (same for
    W); output_padding adds rows/columns at the bottom/right and must be smaller than
    the stride. Differentiable with autograd; works for float32 and float64.
    """
    ### BEGIN SOLUTION
    def pair(v):
        return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))

    (sh, sw), (ph, pw), (oph, opw) = pair(stride), pair(padding), pair(output_padding)
    n, c_in, h, w = x.shape
    c_in_w, c_out, kh, kw = weight.shape
    if c_in != c_in_w:
        raise ValueError(f"the input has {c_in} channels, the weight expects {c_in_w}")
    if min(sh, sw) < 1 or min(ph, pw) < 0 or not (0 <= oph < sh and 0 <= opw < sw):
        raise ValueError("need stride >= 1, padding >= 0 and 0 <= output_padding < stride")
    out_h = (h - 1) * sh - 2 * ph + kh + oph
    out_w = (w - 1) * sw - 2 * pw + kw + opw
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"the output would be {out_h}x{out_w}")
    # Scatter onto the full, uncropped canvas (plus room for output_padding), then crop.
    full_h = max((h - 1) * sh + kh, ph + out_h)
    full_w = max((w - 1) * sw + kw, pw + out_w)
    out = x.new_zeros((n, c_out, full_h, full_w))
    for a in range(kh):
        for b in range(kw):
            tap = torch.einsum("nchw,cd->ndhw", x, weight[:, :, a, b])
            out[:, :, a:a + (h - 1) * sh + 1:sh, b:b + (w - 1) * sw + 1:sw] += tap
    out = out[:, :, ph:ph + out_h, pw:pw + out_w]
    if bias is not None:
        out = out + bias.reshape(1, -1, 1, 1)
    return out
    ### END SOLUTION


def overlap_counts(length, kernel_size, stride):
    """How many kernel taps of a 1-D transposed convolution (no padding) land on each
    output position, for an input of ``length`` positions.

    Input position i spreads over outputs i*stride .. i*stride + kernel_size - 1, so the
    output has (length - 1)*stride + kernel_size positions; the list gives, for each,
    the number of (i, tap) pairs reaching it. Uneven counts (kernel_size not divisible
    by stride) are the checkerboard pattern of transposed convolutions. Non-positive
    arguments raise ValueError.
    """
    ### BEGIN SOLUTION
    if min(length, kernel_size, stride) < 1:
        raise ValueError("length, kernel_size and stride must be positive")
    counts = [0] * ((length - 1) * stride + kernel_size)
    for i in range(length):
        for k in range(kernel_size):
            counts[i * stride + k] += 1
    return counts
    ### END SOLUTION


def bilinear_kernel(in_channels, out_channels, kernel_size):
    """FCN's bilinear initialisation of a channel-wise transposed conv: a float32 tensor
    (in_channels, out_channels, k, k), zero except ``[c, c]`` for every channel c, which
    holds the 2-D tent filter ``f(a) * f(b)`` with
    ``f(t) = 1 - |t - center| / factor``, ``factor = (k + 1) // 2`` and
    ``center = factor - 1`` for odd k, ``factor - 0.5`` for even k.
    With k = 2*s and stride s (padding s // 2) this upsamples by s as bilinear
    interpolation does. in_channels must equal out_channels (else ValueError).
    """
    ### BEGIN SOLUTION
    if in_channels != out_channels:
        raise ValueError(f"a channel-wise kernel needs in_channels == out_channels, "
                         f"got {in_channels} and {out_channels}")
    if kernel_size < 1:
        raise ValueError("kernel_size must be positive")
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    t = torch.arange(kernel_size, dtype=torch.float64)
    f = 1 - (t - center).abs() / factor
    filt = (f[:, None] * f[None, :]).float()
    weight = torch.zeros(in_channels, out_channels, kernel_size, kernel_size)
    idx = torch.arange(in_channels)
    weight[idx, idx] = filt
    return weight
    ### END SOLUTION


class FCN(nn.Module):
    """FCN-32s / 16s / 8s over the course's ``Backbone(in_channels, widths)``.

    Submodules (names fixed, so that the reference's state_dict loads):
    - ``backbone``: ``Backbone(in_channels, widths)``; its outputs f3, f4, f5 are
      FCN's pool3 (stride 8), pool4 (stride 16) and pool5 (stride 32);
    - ``score_fr``: ``Conv2d(C5, K, 1)`` on pool5 (every variant);
    - ``score_pool4``: ``Conv2d(C4, K, 1)`` (16s and 8s);
    - ``score_pool3``: ``Conv2d(C3, K, 1)`` (8s only);
    - ``upscore2``: ``ConvTranspose2d(K, K, 4, stride=2, padding=1, bias=False)``, x2
      (16s and 8s); ``upscore_pool4``: the same (8s only);
    - ``upscore``: the final ``ConvTranspose2d(K, K, 2*f, stride=f, padding=f//2,
      bias=False)`` with f = 32, 16, 8 for 32s, 16s, 8s.
    Every transposed conv starts as ``bilinear_kernel(K, K, k)``.
    Forward: s = score_fr(pool5); 16s/8s: s = upscore2(s) + score_pool4(pool4);
    8s: s = upscore_pool4(s) + score_pool3(pool3); out = upscore(s): (N, K, H, W) for
    H and W divisible by 32. Another variant raises ValueError.
    """

    def __init__(self, num_classes, variant="8s", in_channels=1, widths=(8, 16, 32, 64, 64)):
        ### BEGIN SOLUTION
        super().__init__()
        if variant not in ("32s", "16s", "8s"):
            raise ValueError(f"variant must be '32s', '16s' or '8s', got {variant!r}")
        self.variant = variant
        k = num_classes
        self.backbone = Backbone(in_channels, widths)
        c3, c4, c5 = self.backbone.channels[2:]
        self.score_fr = nn.Conv2d(c5, k, 1)

        def up(kernel, stride, padding):
            layer = nn.ConvTranspose2d(k, k, kernel, stride=stride, padding=padding, bias=False)
            with torch.no_grad():
                layer.weight.copy_(bilinear_kernel(k, k, kernel))
            return layer

        if variant in ("16s", "8s"):
            self.score_pool4 = nn.Conv2d(c4, k, 1)
            self.upscore2 = up(4, 2, 1)
        if variant == "8s":
            self.score_pool3 = nn.Conv2d(c3, k, 1)
            self.upscore_pool4 = up(4, 2, 1)
        factor = {"32s": 32, "16s": 16, "8s": 8}[variant]
        self.upscore = up(2 * factor, factor, factor // 2)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        _, _, pool3, pool4, pool5 = self.backbone(x)
        s = self.score_fr(pool5)
        if self.variant in ("16s", "8s"):
            s = self.upscore2(s) + self.score_pool4(pool4)
        if self.variant == "8s":
            s = self.upscore_pool4(s) + self.score_pool3(pool3)
        return self.upscore(s)
        ### END SOLUTION


def center_crop(x, size):
    """Crop the last two dimensions of ``x`` to ``size`` (an int or (h, w)) around the
    centre, exactly as ``torchvision.transforms.v2.functional.center_crop``: the top
    offset is ``int(round((H - h) / 2))`` (Python's round: halves go to the even
    neighbour), the left one likewise; a size larger than the input first pads it with
    zeros, ``(h - H) // 2`` above and ``(h - H + 1) // 2`` below (left/right alike).
    Returns a view/slice of shape (..., h, w).
    """
    ### BEGIN SOLUTION
    if isinstance(size, int):
        ch, cw = size, size
    elif len(size) == 1:
        ch, cw = int(size[0]), int(size[0])
    else:
        ch, cw = int(size[0]), int(size[1])
    h, w = x.shape[-2:]
    if ch > h or cw > w:
        pad_h, pad_w = max(ch - h, 0), max(cw - w, 0)
        x = F.pad(x, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2))
        h, w = x.shape[-2:]
    top = int(round((h - ch) / 2.0))
    left = int(round((w - cw) / 2.0))
    return x[..., top:top + ch, left:left + cw]
    ### END SOLUTION


class UNet(nn.Module):
    """U-Net (Ronneberger et al., 2015) with ``depth`` poolings.

    Submodules (names fixed, so that the reference's state_dict loads):
    - ``encoder``: ModuleList of depth + 1 blocks ``Sequential(Conv2d(c_in, c, 3,
      padding=padding, bias=False), BatchNorm2d(c), ReLU(), Conv2d(c, c, 3,
      padding=padding, bias=False), BatchNorm2d(c), ReLU())`` with
      c = base_channels * 2**level (c_in = in_channels at level 0); the paper's block
      with BatchNorm added (it trains much faster);
    - ``pool``: ``MaxPool2d(2)``;
    - ``up``: ModuleList of depth ``ConvTranspose2d(2c, c, 2, stride=2)``, deepest first;
    - ``decoder``: ModuleList of depth blocks of the same kind from 2c to c channels,
      deepest first;
    - ``head``: ``Conv2d(base_channels, num_classes, 1)``.
    Forward: encoder block, pool, ... down to the deepest block; then for each level up:
    x = up(x), the skip feature map ``center_crop``-ed to x's size, x =
    decoder(cat([skip, x], dim=1)) (skip first); finally head(x).
    With padding=0 each 3x3 conv loses 2 pixels (572x572 -> 388x388 for depth 4); with
    padding=1 the output has the input's size. Every size before a pooling must be
    even and every size positive: forward raises ValueError otherwise, naming the
    nearest valid input sizes (``valid_sizes`` lists them). padding must be 0 or 1.
    """

    def __init__(self, in_channels=1, num_classes=2, base_channels=64, depth=4, padding=0):
        ### BEGIN SOLUTION
        super().__init__()
        if padding not in (0, 1):
            raise ValueError(f"padding must be 0 or 1, got {padding}")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.depth, self.padding = depth, padding

        def block(c_in, c):
            return nn.Sequential(nn.Conv2d(c_in, c, 3, padding=padding, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                 nn.Conv2d(c, c, 3, padding=padding, bias=False), nn.BatchNorm2d(c), nn.ReLU())

        widths = [base_channels * 2 ** level for level in range(depth + 1)]
        self.encoder = nn.ModuleList([block(in_channels, widths[0])] +
                                     [block(widths[i - 1], widths[i]) for i in range(1, depth + 1)])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                 for i in reversed(range(depth))])
        self.decoder = nn.ModuleList([block(2 * widths[i], widths[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        ### END SOLUTION

    def output_size(self, size):
        """The output size for an input ``size`` (one dimension), or None if invalid."""
        ### BEGIN SOLUTION
        shrink = 4 - 4 * self.padding  # pixels lost by a block of two 3x3 convs
        s = size
        for _ in range(self.depth):
            s -= shrink
            if s <= 0 or s % 2:
                return None
            s //= 2
        s -= shrink
        if s <= 0:
            return None
        for _ in range(self.depth):
            s = 2 * s - shrink
            if s <= 0:
                return None
        return s
        ### END SOLUTION

    def valid_sizes(self, size):
        """The nearest valid input sizes to ``size``: (largest below or None, smallest above)."""
        ### BEGIN SOLUTION
        step = 2 ** self.depth
        below = next((s for s in range(size - 1, max(size - 2 * step, 0), -1) if self.output_size(s)), None)
        above = next(s for s in range(size + 1, size + 2 * step + 200 * (1 - self.padding) * step)
                     if self.output_size(s))
        return below, above
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        for size in x.shape[-2:]:
            if self.output_size(int(size)) is None:
                below, above = self.valid_sizes(int(size))
                near = " or ".join(str(s) for s in (below, above) if s is not None)
                raise ValueError(f"UNet(depth={self.depth}, padding={self.padding}) cannot take an input "
                                 f"of size {tuple(x.shape[-2:])}: {size} is not a valid size; the nearest "
                                 f"valid sizes are {near}")
        skips = []
        for level, block in enumerate(self.encoder):
            x = block(x)
            if level < self.depth:
                skips.append(x)
                x = self.pool(x)
        for up, block in zip(self.up, self.decoder):
            x = up(x)
            skip = center_crop(skips.pop(), x.shape[-2:])
            x = block(torch.cat([skip, x], dim=1))
        return self.head(x)
        ### END SOLUTION


class DepthwiseSeparableConv(nn.Module):
    """A depthwise k x k conv (one filter per input channel: ``groups=in_channels``,
    stride, padding and dilation as given) followed by a pointwise 1x1 conv to
    ``out_channels``; no biases, no normalisation, no activation.

    Submodules ``depthwise`` (``Conv2d(C_in, C_in, k, stride, padding, dilation,
    groups=C_in, bias=False)``) and ``pointwise`` (``Conv2d(C_in, C_out, 1,
    bias=False)``): k*k*C_in + C_in*C_out parameters, against k*k*C_in*C_out for a
    standard conv.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, dilation=1):
        ### BEGIN SOLUTION
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride=stride, padding=padding,
                                   dilation=dilation, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        return self.pointwise(self.depthwise(x))
        ### END SOLUTION


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLab v3), laid out as torchvision's
    ``torchvision.models.segmentation.deeplabv3.ASPP`` so that its state_dict loads:

    - ``convs``: ModuleList of
      ``Sequential(Conv2d(C_in, C, 1, bias=False), BatchNorm2d(C), ReLU())``,
      one ``Sequential(Conv2d(C_in, C, 3, padding=r, dilation=r, bias=False),
      BatchNorm2d(C), ReLU())`` per rate r, and the image-pooling branch
      ``Sequential(AdaptiveAvgPool2d(1), Conv2d(C_in, C, 1, bias=False),
      BatchNorm2d(C), ReLU())`` whose (N, C, 1, 1) output is resized back to the input's
      size (bilinear, align_corners=False: every position gets the pooled value);
    - ``project``: ``Sequential(Conv2d((2 + len(rates)) * C, C, 1, bias=False),
      BatchNorm2d(C), ReLU(), Dropout(0.5))`` on the branches concatenated in that order.
    Output (N, out_channels, H, W).
    """

    def __init__(self, in_channels, out_channels=256, rates=(6, 12, 18)):
        ### BEGIN SOLUTION
        super().__init__()

        def branch(*layers):
            return nn.Sequential(*layers, nn.BatchNorm2d(out_channels), nn.ReLU())

        convs = [branch(nn.Conv2d(in_channels, out_channels, 1, bias=False))]
        for r in rates:
            convs.append(branch(nn.Conv2d(in_channels, out_channels, 3, padding=r, dilation=r, bias=False)))
        convs.append(branch(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False)))
        self.convs = nn.ModuleList(convs)
        self.project = nn.Sequential(nn.Conv2d(len(convs) * out_channels, out_channels, 1, bias=False),
                                     nn.BatchNorm2d(out_channels), nn.ReLU(), nn.Dropout(0.5))
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        outs = [conv(x) for conv in self.convs[:-1]]
        pooled = self.convs[-1](x)
        outs.append(F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False))
        return self.project(torch.cat(outs, dim=1))
        ### END SOLUTION


class DeepLabV3Plus(nn.Module):
    """A small DeepLab v3+ (Chen et al., 2018) for grey images.

    - ``low``: stride-4 stem, ``Conv2d(in, w, 3, stride 2, padding 1) - BN - ReLU -
      Conv2d(w, 2w, 3, stride 2, padding 1) - BN - ReLU`` (the low-level features);
    - ``high``: ``Conv2d(2w, 4w, 3, stride 2) - BN - ReLU - Conv2d(4w, 8w, 3, stride 2) -
      BN - ReLU - DepthwiseSeparableConv(8w, 8w, dilation=2, padding=2) - BN - ReLU``
      (output stride 16, the last conv atrous);
    - ``aspp``: ``ASPP(8w, aspp_channels, rates)``;
    - ``reduce``: ``Conv2d(2w, low_channels, 1) - BN - ReLU`` on the low-level features;
    - ``decoder``: the ASPP output resized (bilinear, align_corners=False) to the
      low-level size and concatenated with the reduced low-level features (ASPP first),
      then two ``DepthwiseSeparableConv - BN - ReLU`` of aspp_channels;
    - ``classifier``: ``Conv2d(aspp_channels, num_classes, 1)``, its output resized
      (bilinear, align_corners=False) to the input's size.
    Defaults: width w = 16, aspp_channels = 4w, low_channels = w. Output
    (N, num_classes, H, W) for any H, W >= 16.
    """

    def __init__(self, num_classes, in_channels=1, width=16, rates=(6, 12, 18), aspp_channels=None,
                 low_channels=None):
        ### BEGIN SOLUTION
        super().__init__()
        w = width
        a = aspp_channels or 4 * w
        low = low_channels or w

        def cbr(c_in, c_out, stride=1):
            return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.low = nn.Sequential(*cbr(in_channels, w, 2), *cbr(w, 2 * w, 2))
        self.high = nn.Sequential(*cbr(2 * w, 4 * w, 2), *cbr(4 * w, 8 * w, 2),
                                  DepthwiseSeparableConv(8 * w, 8 * w, dilation=2, padding=2),
                                  nn.BatchNorm2d(8 * w), nn.ReLU())
        self.aspp = ASPP(8 * w, a, rates)
        self.reduce = nn.Sequential(nn.Conv2d(2 * w, low, 1, bias=False), nn.BatchNorm2d(low), nn.ReLU())
        self.decoder = nn.Sequential(DepthwiseSeparableConv(a + low, a), nn.BatchNorm2d(a), nn.ReLU(),
                                     DepthwiseSeparableConv(a, a), nn.BatchNorm2d(a), nn.ReLU())
        self.classifier = nn.Conv2d(a, num_classes, 1)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        size = x.shape[-2:]
        low = self.low(x)
        high = self.aspp(self.high(low))
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        out = self.classifier(self.decoder(torch.cat([high, self.reduce(low)], dim=1)))
        return F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        ### END SOLUTION


def confusion_matrix(pred, target, num_classes, ignore_index=255):
    """The (num_classes, num_classes) int64 confusion matrix of integer label tensors
    ``pred`` and ``target`` of the same shape: entry [t, p] counts the pixels of target
    class t predicted as p (rows: target, columns: prediction, as
    ``sklearn.metrics.confusion_matrix(target, pred)``). Pixels whose target is
    ``ignore_index`` are left out. On the inputs' device.
    """
    ### BEGIN SOLUTION
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)
    ### END SOLUTION


def pixel_accuracy(pred, target, ignore_index=255):
    """Share of the pixels whose target is not ``ignore_index`` that are predicted
    right, as a Python float (NaN when every pixel is ignored)."""
    ### BEGIN SOLUTION
    keep = target != ignore_index
    total = int(keep.sum())
    if total == 0:
        return float("nan")
    return int(((pred == target) & keep).sum()) / total
    ### END SOLUTION


def mean_iou(pred, target, num_classes, ignore_index=255):
    """Per-class intersection over union and their mean, pixels with target
    ``ignore_index`` left out.

    IoU_c = TP_c / (TP_c + FP_c + FN_c) from the confusion matrix (TP: its diagonal, FP:
    column sums minus TP, FN: row sums minus TP). A class absent from both prediction
    and target (0 / 0) has IoU NaN and is left out of the mean. Returns
    ``(per_class_iou, miou)``: a float64 tensor (num_classes,) and a Python float
    (NaN when every class is absent).
    """
    ### BEGIN SOLUTION
    cm = confusion_matrix(pred, target, num_classes, ignore_index).double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    present = ~torch.isnan(iou)
    miou = float(iou[present].mean()) if bool(present.any()) else float("nan")
    return iou, miou
    ### END SOLUTION


def hypercolumn(features, size):
    """Hypercolumn features: every map of the list ``features`` ((N, C_i, H_i, W_i),
    same N) resized to ``size`` (an int or (h, w)) with bilinear interpolation
    (``align_corners=False``), then concatenated on channels in the given order:
    (N, sum C_i, h, w).
    """
    ### BEGIN SOLUTION
    size = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
    return torch.cat([F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in features], dim=1)
    ### END SOLUTION
