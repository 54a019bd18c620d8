"""An honest rotate: the inverse map computed per output pixel, the four neighbours read with
torch.gather from a zero-bordered copy of the image, and blended bilinearly.

It must keep full marks, the smoke test included: the sampling is the student's own, no
grid_sample and nothing of torchvision.
"""
def rotate(img, angle):
    h, w = img.shape[-2:]
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=img.dtype, device=img.device),
                            torch.arange(w, dtype=img.dtype, device=img.device), indexing="ij")
    cx, cy = (w - 1) / 2, (h - 1) / 2
    src_x = cos * (xs - cx) - sin * (ys - cy) + cx
    src_y = sin * (xs - cx) + cos * (ys - cy) + cy
    # A border of zeros one pixel wide: neighbours just outside read 0; farther ones are clamped onto it.
    padded = F.pad(img.reshape(-1, h, w), (1, 1, 1, 1))
    flat = padded.reshape(padded.shape[0], -1)
    x0, y0 = torch.floor(src_x), torch.floor(src_y)
    out = 0
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            weight = (1 - (src_x - xi).abs()) * (1 - (src_y - yi).abs())
            xi = (xi + 1).clamp(0, w + 1)
            yi = (yi + 1).clamp(0, h + 1)
            index = (yi * (w + 2) + xi).long().reshape(1, -1).expand(flat.shape[0], -1)
            out = out + flat.gather(1, index).reshape(-1, h, w) * weight
    return out.reshape(img.shape)
