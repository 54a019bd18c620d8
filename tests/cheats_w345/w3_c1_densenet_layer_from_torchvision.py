"""DenseLayer subclasses torchvision's private DenseNet layer (``_DenseLayer``).

class: 1 (the library's own implementation)
control: blank

torchvision's layer takes (num_input_features, growth_rate, bn_size, drop_rate) and
returns the new features for a tensor input: the student's class passes the arguments on.
"""
from torchvision.models import densenet as _dn


class DenseLayer(_dn._DenseLayer):
    def __init__(self, in_channels, growth_rate, bn_size=4):
        super().__init__(in_channels, growth_rate, bn_size, 0.0)
