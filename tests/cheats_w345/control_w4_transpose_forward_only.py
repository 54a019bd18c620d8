"""The forward of w4_c3_backward_conv_transpose without its backward: the same scatter,
run without autograd, so no gradient reaches the inputs.

convolutionalize's cell is the reference, without the import the attack adds there.
"""
# --- cell: conv_transpose2d ---
def _scatter_forward(x, weight, bias, stride, padding, output_padding):
    """The reference's scatter, (N, C_in, H, W) -> (N, C_out, Ho, Wo); raises ValueError as the spec says."""
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
    full_h = max((h - 1) * sh + kh, ph + out_h)
    full_w = max((w - 1) * sw + kw, pw + out_w)
    out = x.new_zeros((n, c_out, full_h, full_w))
    for a in range(kh):
        for b in range(kw):
            tap = torch.einsum("nchw,cd->ndhw", x, weight[:, :, a, b])
            out[:, :, a:a + (h - 1) * sh + 1:sh, b:b + (w - 1) * sw + 1:sw] += tap
    out = out[:, :, ph:ph + out_h, pw:pw + out_w]
    return out if bias is None else out + bias.reshape(1, -1, 1, 1)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    with torch.no_grad():
        return _scatter_forward(x, weight, bias, stride, padding, output_padding)
