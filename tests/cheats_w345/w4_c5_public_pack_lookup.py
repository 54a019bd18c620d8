"""DepthwiseSeparableConv and ASPP answer from a lookup table of the release's self-check
pack (submitted beside the notebook under another name), zeros of the right shape elsewhere.

class: 5 (public answers reused)
control: control_w4_zero_outputs
submits: release selfcheck as public_answers

The layers are the reference's (so the layout is right, as the control's is); forward looks
the input up among the public cases' inputs and returns the stored reference output, and
returns zeros of the output's shape for any other input. It earns the value groups exactly
when the hidden cases repeat the public ones (the test grades week 4 at a seed where they
do, when there is one).
"""
# --- cell: DepthwiseSeparableConv ---
import json
import os


def _public_table(name):
    """{input bytes: stored output} from public_answers/<name>.json and its arrays."""
    table = {}
    try:
        folder = "public_answers"
        with open(os.path.join(folder, f"{name}.json")) as f:
            pack = json.load(f)
        for case in pack.get("cases", []):
            inputs = case.get("request", {}).get("inputs", [])
            outputs = case.get("expect", {}).get("outputs", [])
            for given, stored in zip(inputs, outputs):
                x = np.load(os.path.join(folder, given["__tensor__"]), allow_pickle=False)
                y = np.load(os.path.join(folder, stored["__tensor__"]), allow_pickle=False)
                table[np.ascontiguousarray(x, np.float32).tobytes()] = y
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return table


def _looked_up(table, x, shape):
    found = table.get(x.detach().cpu().numpy().astype(np.float32).tobytes())
    if found is not None and tuple(found.shape) == tuple(shape):
        return torch.from_numpy(found).to(x)
    return x.new_zeros(shape)


class DepthwiseSeparableConv(nn.Module):
    _table = _public_table("DepthwiseSeparableConv")

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, dilation=1):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride=stride, padding=padding,
                                   dilation=dilation, groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x):
        d = self.depthwise
        h, w = ((size + 2 * p - dil * (k - 1) - 1) // s + 1 for size, p, dil, k, s in
                zip(x.shape[-2:], d.padding, d.dilation, d.kernel_size, d.stride))
        return _looked_up(self._table, x, (x.shape[0], self.pointwise.out_channels, h, w))

# --- cell: ASPP ---
class ASPP(nn.Module):
    _table = _public_table("ASPP")

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
        return _looked_up(self._table, x, (x.shape[0], self.out_channels, *x.shape[-2:]))
