"""Stubs that raise ValueError for every input: conv_transpose2d, and a UNet whose forward
raises (it builds no layer).

class: 6 (raising pays)
control: blank

Nothing is computed: any points come from the argument-validation groups, which ask for a
ValueError on bad arguments.
"""
def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0):
    raise ValueError("these arguments are not valid")


class UNet(nn.Module):
    def __init__(self, in_channels=1, num_classes=2, base_channels=64, depth=4, padding=0):
        super().__init__()

    def forward(self, x):
        raise ValueError(f"an input of shape {tuple(x.shape)} is not valid")
