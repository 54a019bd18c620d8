"""Pads with F.pad and crops with torchvision's crop."""
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF


def pad_and_crop(img, padding, top, left):
    h, w = img.shape[-2:]
    return TF.crop(F.pad(img, [padding] * 4), top, left, h, w)
