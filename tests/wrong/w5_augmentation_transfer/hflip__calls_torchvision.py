"""Calls torchvision's hflip."""
import torchvision.transforms.v2.functional as TF


def hflip(img):
    return TF.hflip(img)
