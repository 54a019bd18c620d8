"""Week 1 references: convolution arithmetic and the conv layer.

Each function is self-contained (the notebook's solution cells are copies of these
definitions) and uses only the imports below, which the notebook's set-up cell
also makes.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Output length of a convolution along one spatial dimension.

    out = floor((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1

    ``padding`` is added on *each* side, as in ``nn.Conv2d``. Raises ``ValueError``
    for non-positive sizes, strides or dilations, negative padding, or when the
    (dilated) kernel does not fit in the padded input.
    """
    ### BEGIN SOLUTION
    if size < 1 or kernel_size < 1 or stride < 1 or dilation < 1 or padding < 0:
        raise ValueError(
            f"need size, kernel_size, stride, dilation >= 1 and padding >= 0; got size={size}, "
            f"kernel_size={kernel_size}, stride={stride}, padding={padding}, dilation={dilation}")
    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(
            f"the dilated kernel ({dilation * (kernel_size - 1) + 1}) is larger than the padded "
            f"input ({size + 2 * padding}): the output would be empty")
    return out
    ### END SOLUTION


def conv_transpose_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    """Output length of a transposed convolution along one spatial dimension.

    out = (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1

    As in ``nn.ConvTranspose2d``, ``output_padding`` must be smaller than the stride
    or the dilation; invalid arguments and non-positive results raise ``ValueError``.
    """
    ### BEGIN SOLUTION
    if size < 1 or kernel_size < 1 or stride < 1 or dilation < 1 or padding < 0 or output_padding < 0:
        raise ValueError("need size, kernel_size, stride, dilation >= 1 and padding, output_padding >= 0")
    if output_padding >= max(stride, dilation):
        raise ValueError(
            f"output_padding ({output_padding}) must be smaller than stride ({stride}) or dilation ({dilation})")
    out = (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1
    if out < 1:
        raise ValueError(f"the output would have size {out}: padding {padding} is too large")
    return out
    ### END SOLUTION


def same_padding(kernel_size, dilation=1):
    """Per-side padding that keeps the size of a stride-1 convolution ("same" padding).

    The dilated kernel spans ``dilation * (kernel_size - 1) + 1`` pixels; the padding
    is half of what it removes, ``dilation * (kernel_size - 1) / 2``. An even span
    cannot be padded symmetrically, so it raises ``ValueError``.
    """
    ### BEGIN SOLUTION
    if kernel_size < 1 or dilation < 1:
        raise ValueError("kernel_size and dilation must be >= 1")
    span = dilation * (kernel_size - 1) + 1
    if span % 2 == 0:
        raise ValueError(f"the dilated kernel spans {span} pixels, an even number: "
                         "no symmetric padding keeps the size")
    return (span - 1) // 2
    ### END SOLUTION


def conv_params(in_channels, out_channels, kernel_size, bias=True, groups=1):
    """Number of learnable parameters of ``nn.Conv2d(in, out, kernel_size, bias=bias, groups=groups)``.

    weight: out_channels x (in_channels / groups) x kh x kw, plus out_channels biases.
    ``kernel_size`` is an int or an (h, w) tuple.
    """
    ### BEGIN SOLUTION
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    if groups < 1 or in_channels % groups or out_channels % groups:
        raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) "
                         f"must both be divisible by groups ({groups})")
    return out_channels * (in_channels // groups) * kh * kw + (out_channels if bias else 0)
    ### END SOLUTION


def conv_macs(in_channels, out_channels, kernel_size, out_size, groups=1):
    """Multiply-accumulates of one forward pass of a conv layer, for one sample.

    Each output value costs (in_channels / groups) * kh * kw MACs; there are
    out_channels * out_h * out_w of them. FLOPs are 2 x MACs. ``kernel_size`` and
    ``out_size`` are ints or (h, w) tuples.
    """
    ### BEGIN SOLUTION
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    oh, ow = (out_size, out_size) if isinstance(out_size, int) else tuple(out_size)
    if groups < 1 or in_channels % groups or out_channels % groups:
        raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) "
                         f"must both be divisible by groups ({groups})")
    return out_channels * oh * ow * (in_channels // groups) * kh * kw
    ### END SOLUTION


def receptive_field(layers):
    """Receptive field (in input pixels) of one output pixel of a stack of conv/pool layers.

    ``layers`` is a list of ``(kernel_size, stride, dilation)``. With ``jump`` the
    distance in input pixels between neighbouring positions of the current layer:
    r <- r + dilation * (kernel_size - 1) * jump, then jump <- jump * stride
    (starting from r = 1, jump = 1).
    """
    ### BEGIN SOLUTION
    field, jump = 1, 1
    for kernel_size, stride, dilation in layers:
        field += dilation * (kernel_size - 1) * jump
        jump *= stride
    return field
    ### END SOLUTION


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) matching ``F.conv2d``, vectorised with ``F.unfold``.

    Shapes: x (N, C, H, W), weight (F, C / groups, kh, kw), bias (F,) -> (N, F, H', W')
    with H' = conv_output_size(H, kh, stride, padding, dilation) (likewise W').

    out[n, f] = bias[f] + sum over c, i, j of weight[f, c, i, j] * x_pad[n, g*C/groups + c,
    y*stride + i*dilation, x*stride + j*dilation], g = f // (F / groups).
    """
    ### BEGIN SOLUTION
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n, c, h, w = x.shape
    f, cg, kh, kw = weight.shape
    if groups < 1 or c != cg * groups or f % groups:
        raise ValueError(f"input has {c} channels, weight expects {cg} x groups ({groups}) "
                         f"and {f} filters must be divisible by groups")
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cols = F.unfold(x, (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))
    cols = cols.reshape(n, groups, cg * kh * kw, out_h * out_w)
    filters = weight.reshape(groups, f // groups, cg * kh * kw)
    out = torch.matmul(filters.unsqueeze(0), cols).reshape(n, f, out_h, out_w)
    if bias is not None:
        out = out + bias.reshape(1, f, 1, 1)
    return out
    ### END SOLUTION


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """2-D max pooling matching ``F.max_pool2d`` (floor mode, dilation 1).

    x (N, C, H, W) -> (N, C, H', W'), H' = floor((H + 2 * padding - kernel) / stride) + 1.
    ``stride`` defaults to ``kernel_size``; padding (at most half the kernel) is
    -inf, so it never wins. The gradient flows to one maximum per window.
    """
    ### BEGIN SOLUTION
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    kh, kw = pair(kernel_size)
    sh, sw = pair(kernel_size if stride is None else stride)
    ph, pw = pair(padding)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError("padding must be at most half the kernel size")
    x = F.pad(x, (pw, pw, ph, ph), value=float("-inf"))
    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, H', W', kh, kw)
    return windows.reshape(*windows.shape[:4], kh * kw).max(dim=-1).values
    ### END SOLUTION


def compose_convs(w1, w2):
    """The single kernel equal to convolving with ``w1`` and then with ``w2``.

    w1 (C1, C0, k1, k1), w2 (C2, C1, k2, k2) -> w (C2, C0, k1 + k2 - 1, k1 + k2 - 1),
    for stride 1, no padding, no bias, no nonlinearity in between. Composing two
    cross-correlations gives the cross-correlation with the *full convolution* of
    the kernels: w[c2, c0] = sum over c1 of full_conv(w1[c1, c0], w2[c2, c1]).
    """
    ### BEGIN SOLUTION
    k2h, k2w = w2.shape[-2:]
    # Treat w1 as a batch of C0 images with C1 channels; a full convolution is a
    # correlation of the zero-padded images with the flipped kernel.
    images = F.pad(w1.transpose(0, 1), (k2w - 1, k2w - 1, k2h - 1, k2h - 1))
    composed = F.conv2d(images, torch.flip(w2, dims=(-2, -1)))  # (C0, C2, k, k)
    return composed.transpose(0, 1).contiguous()
    ### END SOLUTION


def profile_model(model, input_size):
    """Per-layer profile of ``model`` on one input of shape ``input_size`` (C, H, W).

    Returns one dict per leaf module, in forward order, found with forward hooks:
    ``name`` (as in ``named_modules``), ``output_shape`` (tuple, without the batch),
    ``params`` (the module's own parameters), ``macs`` (Conv2d: output elements x
    in_channels / groups x kh x kw; Linear: output elements x in_features; 0
    otherwise) and ``activations`` (output elements per sample).
    """
    ### BEGIN SOLUTION
    rows, handles = [], []

    def hook(module, inputs, output, name):
        out_elems = output[0].numel()
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs = out_elems * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            macs = out_elems * module.in_features
        else:
            macs = 0
        rows.append({
            "name": name,
            "output_shape": tuple(output.shape[1:]),
            "params": sum(p.numel() for p in module.parameters(recurse=False)),
            "macs": int(macs),
            "activations": int(out_elems),
        })

    for name, module in model.named_modules():
        if len(list(module.children())) == 0:
            handles.append(module.register_forward_hook(
                lambda m, i, o, name=name: hook(m, i, o, name)))
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return rows
    ### END SOLUTION


# Conceptual questions: each answer is a value the student reasons out (graded like a problem).
def q_fc_layer_params():
    """Question: a fully connected layer (``nn.Linear``) takes a 32x32 RGB image, flattened
    (3 x 32 x 32 values), to a 16 x 32 x 32 output, flattened: the output size of a 3x3 conv
    with 16 filters and padding 1 on that image. How many weights does it hold (leave out
    the biases)? Return an int.
    """
    ### BEGIN SOLUTION
    in_features, out_features = 3 * 32 * 32, 16 * 32 * 32
    return in_features * out_features  # one weight per (input value, output value) pair
    ### END SOLUTION


def q_avg_pool_as_conv():
    """Question: 2x2 average pooling with stride 2 (``nn.AvgPool2d(2)``) on a one-channel
    image is a 2x2 convolution with stride 2, no bias and fixed weights. Which weights?

    - A: all four weights 1
    - B: all four weights 1/4
    - C: 1 at the top-left position, 0 at the other three
    - D: all four weights 1/2

    Return the letter as a string, e.g. ``"A"``.
    """
    ### BEGIN SOLUTION
    return "B"  # the mean of a window is the sum of its four values, each weighted 1/4
    ### END SOLUTION


def q_unfold_shape():
    """Question: ``x`` has shape (8, 16, 32, 32). What is the shape of
    ``F.unfold(x, kernel_size=3, padding=1, stride=2)``, the im2col matrix of a 3x3 conv
    with stride 2 and padding 1 on ``x``? Return a tuple of 3 ints.
    """
    ### BEGIN SOLUTION
    positions = ((32 + 2 * 1 - 3) // 2 + 1) ** 2  # a 16 x 16 output map
    return (8, 16 * 3 * 3, positions)
    ### END SOLUTION
