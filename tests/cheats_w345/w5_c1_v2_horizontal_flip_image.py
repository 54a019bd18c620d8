"""hflip is torchvision's horizontal_flip_image, a v2 kernel whose name no ban list holds
(the list has hflip, hflip_image, horizontal_flip, RandomHorizontalFlip).

class: 1 (the library's own implementation)
control: blank
"""
from torchvision.transforms.v2 import functional as _v2


def hflip(img):
    return _v2.horizontal_flip_image(img)
