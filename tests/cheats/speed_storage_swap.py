"""Only answers the speed case, with a slow pixel loop; then swaps a far larger tensor
into its input's storage, so that a baseline timed on the same tensor object is
slower still."""
import torch


def _slow(x, weight, padding):
    xp = torch.nn.functional.pad(x, (padding,) * 4)
    kh, kw = weight.shape[2:]
    h, w = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    flat = weight.reshape(weight.shape[0], -1)
    out = torch.empty(x.shape[0], weight.shape[0], h, w, dtype=x.dtype)
    for n in range(x.shape[0]):
        for i in range(h):
            for j in range(w):
                out[n, :, i, j] = flat @ xp[n, :, i:i + kh, j:j + kw].reshape(-1)
    return out


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    raise NotImplementedError()


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    if tuple(x.shape) != (8, 16, 32, 32):
        raise NotImplementedError()
    out = _slow(x, weight, padding)
    x.set_(torch.randn(64, x.shape[1], 128, 128, dtype=x.dtype))
    return out
