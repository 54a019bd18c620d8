"""Interactive explorers for the notebooks' ungraded cells (ipywidgets, in the kernel).

Each function returns an :class:`Explorer`, a widget: make it the last expression of a
cell and move its controls.

- :func:`conv_arithmetic` (week 1): input size, kernel, stride, padding, dilation,
  channels and groups; the output size, the window sliding over the padded input (a step
  slider), the receptive field, parameters and MACs;
- :func:`normalization_axes` (week 2): batch, layer, instance or group norm on a small
  N x C x H x W tensor, and which values share the statistics of a chosen one;
- :func:`block_costs` (week 3): a basic block, a bottleneck and a bottleneck with
  squeeze-and-excitation, their parameters and MACs layer by layer;
- :func:`transposed_conv` (week 4): a transposed convolution's output size and how many
  kernel taps land on each output pixel (the checkerboard);
- :func:`mixing` (week 5): MixUp and CutMix of two digits, with the mixing weight and the
  box as sliders.

The numbers come from PyTorch (a layer built with the chosen settings and run, or
differentiated, on a small input), never from the functions a student writes, so every
explorer works before any problem is solved. The drawing is a matplotlib figure rendered
to a PNG shown in an ``ipywidgets.Image``.

What an explorer shows is kept in plain attributes, so that its callbacks can be checked
without a browser: ``controls`` (name -> widget; set a control's ``value`` and the
explorer updates), ``state`` (the numbers and the drawn state, a dict), ``readout``
(the HTML widget with the numbers) and ``image`` (the PNG bytes of the drawing).
"""
from __future__ import annotations

import io
import math

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle

BLUE, ORANGE, GREY, RED = "#3b75c4", "#e8912d", "#d9d9d9", "#c0392b"


class Explorer(widgets.VBox):
    """A row of controls, a readout and a drawing, redrawn when a control moves.

    Subclasses implement ``compute(**values) -> state`` (from the controls' values),
    ``text(state) -> html`` and ``draw(figure, state)``, and may adjust controls that
    depend on others in ``adjust(name)``."""

    figsize = (9.0, 3.6)
    dpi = 80

    def __init__(self, title: str, controls: dict[str, widgets.Widget], rows: list[list[str]]):
        super().__init__()
        self.controls = controls
        self.readout = widgets.HTML()
        self.image = widgets.Image(format="png")
        self.state: dict = {}
        self.renders = 0
        self._busy = False
        boxes = [widgets.HBox([controls[name] for name in row]) for row in rows]
        self.children = [widgets.HTML(f"<b>{title}</b>"), *boxes, self.readout, self.image]
        for name, control in controls.items():
            control.observe(lambda change, name=name: self._changed(name), names="value")
        self._changed(None)  # every control in line, then the first drawing

    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    def _changed(self, name: str) -> None:
        if self._busy:  # a control set while adjusting the others: one update at the end
            return
        self._busy = True
        try:
            self.adjust(name)
        finally:
            self._busy = False
        self.update()

    def adjust(self, name: str | None) -> None:
        """Bring the controls that depend on ``name`` (None: on any) in line: their ranges, options."""

    def update(self) -> None:
        self.state = self.compute(**self.values())
        self.readout.value = self.text(self.state)
        figure = Figure(figsize=self.figsize, dpi=self.dpi)
        self.draw(figure, self.state)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        self.image.value = buffer.getvalue()
        self.renders += 1

    def compute(self, **values) -> dict:
        raise NotImplementedError

    def text(self, state: dict) -> str:
        raise NotImplementedError

    def draw(self, figure: Figure, state: dict) -> None:
        raise NotImplementedError


def _slider(description: str, value: int, low: int, high: int) -> widgets.IntSlider:
    return widgets.IntSlider(value=value, min=low, max=high, description=description, continuous_update=False,
                             style={"description_width": "initial"}, layout=widgets.Layout(width="230px"))


def _dropdown(description: str, options, value) -> widgets.Dropdown:
    return widgets.Dropdown(options=options, value=value, description=description,
                            style={"description_width": "initial"}, layout=widgets.Layout(width="200px"))


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


# ----------------------------------------------------------------------------- week 1
def receptive_fields(kernel: int, stride: int, dilation: int, layers: int = 3) -> list[int]:
    """The receptive field (in input pixels, along one axis) of one output pixel of 1, 2, ...
    ``layers`` stacked identical convolutions, found with autograd: the input pixels whose
    gradient is non-zero for one output pixel (all weights 1, so nothing cancels)."""
    fields = []
    weight = torch.ones(1, 1, kernel, kernel, dtype=torch.float64)
    for depth in range(1, layers + 1):
        size = 8
        while True:  # without padding, an output pixel exists once its whole field fits in the input
            x = torch.zeros(1, 1, size, size, dtype=torch.float64, requires_grad=True)
            y = x
            try:
                for _ in range(depth):
                    y = F.conv2d(y, weight, stride=stride, dilation=dilation)
                break
            except RuntimeError:
                size *= 2
        y[0, 0, 0, 0].backward()
        rows = torch.nonzero(x.grad[0, 0].abs().sum(dim=1)).flatten()
        fields.append(int(rows.max() - rows.min() + 1))
    return fields


class ConvArithmetic(Explorer):
    figsize = (10.5, 3.9)

    def __init__(self, size=7, kernel=3, stride=1, padding=0, dilation=1, in_channels=4, out_channels=8, groups=1):
        channels = [1, 2, 3, 4, 6, 8, 12, 16, 32, 64]
        controls = {
            "size": _slider("input size", size, 3, 16),
            "kernel": _slider("kernel", kernel, 1, 7),
            "stride": _slider("stride", stride, 1, 4),
            "padding": _slider("padding", padding, 0, 3),
            "dilation": _slider("dilation", dilation, 1, 3),
            "in_channels": _dropdown("in channels", channels, in_channels),
            "out_channels": _dropdown("out channels", channels, out_channels),
            "groups": _dropdown("groups", _divisors(math.gcd(in_channels, out_channels)), groups),
            "step": _slider("window step", 0, 0, 0),
        }
        super().__init__("Convolution arithmetic: move the sliders, then slide the window with 'window step'",
                         controls, [["size", "kernel", "stride", "padding"],
                                    ["dilation", "in_channels", "out_channels", "groups"], ["step"]])

    def adjust(self, name: str | None) -> None:
        c = self.controls
        if name in (None, "in_channels", "out_channels"):
            options = _divisors(math.gcd(c["in_channels"].value, c["out_channels"].value))
            keep = c["groups"].value if c["groups"].value in options else 1
            c["groups"].options = options
            c["groups"].value = keep
        if name != "step":  # as many steps as output pixels
            layer = torch.nn.Conv2d(1, 1, c["kernel"].value, stride=c["stride"].value, padding=c["padding"].value,
                                    dilation=c["dilation"].value)
            try:
                with torch.no_grad():
                    steps = layer(torch.zeros(1, 1, c["size"].value, c["size"].value)).shape[-2:].numel()
            except RuntimeError:
                steps = 0
            c["step"].max = max(steps - 1, 0)
            c["step"].value = min(c["step"].value, c["step"].max)
            c["step"].disabled = steps == 0

    def compute(self, size, kernel, stride, padding, dilation, in_channels, out_channels, groups, step) -> dict:
        layer = torch.nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding,
                                dilation=dilation, groups=groups)
        params = sum(p.numel() for p in layer.parameters())
        try:
            with torch.no_grad():
                out = layer(torch.zeros(1, in_channels, size, size))
            output_size = tuple(out.shape[-2:])
        except RuntimeError:  # the dilated kernel does not fit in the padded input
            output_size = None
        span = dilation * (kernel - 1) + 1
        steps = output_size[0] * output_size[1] if output_size else 0
        state = {"size": size, "kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation,
                 "in_channels": in_channels, "out_channels": out_channels, "groups": groups,
                 "output_size": output_size, "params": params, "span": span, "steps": steps,
                 "receptive_fields": receptive_fields(kernel, stride, dilation),
                 "macs": out_channels * steps * (in_channels // groups) * kernel * kernel if steps else 0}
        if steps:
            step = min(step, steps - 1)
            i, j = divmod(step, output_size[1])
            top, left = i * stride, j * stride  # in the padded input
            taps = [(top + u * dilation, left + v * dilation) for u in range(kernel) for v in range(kernel)]
            inside = [(r, c) for r, c in taps if padding <= r < padding + size and padding <= c < padding + size]
            state |= {"step": step, "position": (i, j), "window": (top, left), "taps": taps,
                      "taps_on_padding": len(taps) - len(inside)}
        else:
            state |= {"step": 0, "position": None, "window": None, "taps": [], "taps_on_padding": 0}
        return state

    def text(self, s: dict) -> str:
        cin_g = s["in_channels"] // s["groups"]
        weights = s["out_channels"] * cin_g * s["kernel"] ** 2
        fields = ", ".join(f"{r}x{r} ({n} layer{'s' if n > 1 else ''})" for n, r in enumerate(s["receptive_fields"], 1))
        if s["output_size"] is None:
            size = (f"<b>no output</b>: the dilated kernel spans {s['span']} pixels, more than the padded input's "
                    f"{s['size'] + 2 * s['padding']}")
        else:
            h, w = s["output_size"]
            size = (f"output: <b>{h} x {w}</b> ({s['steps']} position{'s' if s['steps'] > 1 else ''}); this step: "
                    f"output pixel {s['position']}, "
                    f"{s['taps_on_padding']} of its {s['kernel'] ** 2} taps on padding")
        return (f"{size}<br>parameters: <b>{s['params']:,}</b> = {s['out_channels']} filters x {cin_g} channels "
                f"x {s['kernel']}x{s['kernel']} ({weights:,}) + {s['out_channels']} biases; "
                f"MACs per image: <b>{s['macs']:,}</b><br>"
                f"receptive field of one output pixel: {fields} (stacked identical layers)")

    def draw(self, figure: Figure, s: dict) -> None:
        ax_in, ax_out, ax_ch = figure.subplots(1, 3, gridspec_kw={"width_ratios": [1.25, 1.0, 0.8]})
        n, p = s["size"], s["padding"]
        total = n + 2 * p
        for r in range(total):
            for c in range(total):
                real = p <= r < p + n and p <= c < p + n
                ax_in.add_patch(Rectangle((c, r), 1, 1, facecolor=GREY if real else "white", edgecolor="#999999",
                                          hatch=None if real else "//", linewidth=0.6))
        for r, c in s["taps"]:
            ax_in.add_patch(Rectangle((c + 0.15, r + 0.15), 0.7, 0.7, facecolor=BLUE, alpha=0.85))
        if s["window"] is not None:
            top, left = s["window"]
            ax_in.add_patch(Rectangle((left, top), s["span"], s["span"], fill=False, edgecolor=BLUE, linewidth=2))
        ax_in.set_title(f"input {n}x{n}, padding {p} (hatched)", fontsize=10)
        if s["output_size"] is not None:
            h, w = s["output_size"]
            for r in range(h):
                for c in range(w):
                    here = (r, c) == s["position"]
                    ax_out.add_patch(Rectangle((c, r), 1, 1, facecolor=BLUE if here else "white",
                                               edgecolor="#999999", linewidth=0.6))
            ax_out.set_title(f"output {h}x{w}", fontsize=10)
            lim = max(h, w, 1)
        else:
            ax_out.set_title("no output", fontsize=10)
            lim = 1
        for ax, extent in ((ax_in, max(total, s["window"][0] + s["span"] if s["window"] else total)), (ax_out, lim)):
            ax.set_xlim(0, extent)
            ax.set_ylim(extent, 0)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
        self._draw_groups(ax_ch, s["in_channels"], s["out_channels"], s["groups"])

    @staticmethod
    def _draw_groups(ax, cin: int, cout: int, groups: int) -> None:
        """Input channels (left) and output channels (right); a band joins the channels each group
        connects."""
        colors = [BLUE, ORANGE, "#4caf50", "#9c27b0", "#795548", "#e91e63", "#009688", "#607d8b"]
        for g in range(groups):
            a0, a1 = g * cin / groups / cin, (g + 1) * cin / groups / cin
            b0, b1 = g / groups, (g + 1) / groups
            color = colors[g % len(colors)]
            ax.add_patch(Polygon([(0.2, a0), (0.8, b0), (0.8, b1), (0.2, a1)], closed=True, facecolor=color,
                                 alpha=0.35, edgecolor=color))
            ax.add_patch(Rectangle((0.05, a0), 0.15, a1 - a0, facecolor=color, edgecolor="white"))
            ax.add_patch(Rectangle((0.8, b0), 0.15, b1 - b0, facecolor=color, edgecolor="white"))
        ax.text(0.125, 1.02, "in", ha="center", va="top", fontsize=9)
        ax.text(0.875, 1.02, "out", ha="center", va="top", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(1.08, 0)
        ax.set_axis_off()
        ax.set_title(f"{cin} -> {cout} channels, {groups} group{'s' if groups > 1 else ''}", fontsize=10)


def conv_arithmetic(**settings) -> ConvArithmetic:
    """Week 1: a conv layer's output size, sliding window, receptive field, parameters and MACs.

    Keyword arguments set the starting values: ``size``, ``kernel``, ``stride``, ``padding``,
    ``dilation``, ``in_channels``, ``out_channels``, ``groups``."""
    return ConvArithmetic(**settings)


# ----------------------------------------------------------------------------- week 2
NORMS = ("BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm")


def normalize(x: torch.Tensor, norm: str, groups: int) -> torch.Tensor:
    """PyTorch's own layer of the chosen kind, without scale and shift, in training mode."""
    if norm == "BatchNorm":
        return F.batch_norm(x, None, None, training=True)
    if norm == "LayerNorm":
        return F.layer_norm(x, x.shape[1:])
    if norm == "InstanceNorm":
        return F.instance_norm(x)
    return F.group_norm(x, groups)


def sharing(norm: str, n: int, c: int, groups: int, size: int = 3) -> np.ndarray:
    """Which (sample, channel) pairs share their statistics: an (n, c) array of set numbers,
    found by changing one value of each pair at a time and seeing which outputs move."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, size, size, generator=gen, dtype=torch.float64)
    base = normalize(x, norm, groups)
    sets = -np.ones((n, c), dtype=int)
    for i in range(n):
        for j in range(c):
            if sets[i, j] >= 0:
                continue
            moved = x.clone()
            moved[i, j, 0, 0] += 1.0
            changed = (normalize(moved, norm, groups) - base).abs().amax(dim=(2, 3)) > 1e-12
            sets[changed.numpy() & (sets < 0)] = sets.max() + 1
    return sets


class NormalizationAxes(Explorer):
    figsize = (9.0, 4.2)
    HW = 3

    def __init__(self, norm="BatchNorm", batch=4, channels=6, groups=3, sample=0, channel=0):
        controls = {
            "norm": widgets.ToggleButtons(options=list(NORMS), value=norm, description="layer",
                                          style={"button_width": "110px"}),
            "batch": _slider("N (samples)", batch, 1, 6),
            "channels": _slider("C (channels)", channels, 1, 8),
            "groups": _dropdown("groups (GroupNorm)", _divisors(channels), groups),
            "sample": _slider("chosen sample", sample, 0, batch - 1),
            "channel": _slider("chosen channel", channel, 0, channels - 1),
        }
        super().__init__(f"Which values share a mean and a variance? (N x C x {self.HW} x {self.HW}; "
                         "the chosen value is outlined in red)", controls,
                         [["norm"], ["batch", "channels", "groups"], ["sample", "channel"]])

    def adjust(self, name: str | None) -> None:
        c = self.controls
        if name == "channels":
            options = _divisors(c["channels"].value)
            keep = c["groups"].value if c["groups"].value in options else options[len(options) // 2]
            c["groups"].options = options
            c["groups"].value = keep
        c["sample"].max = c["batch"].value - 1
        c["channel"].max = c["channels"].value - 1
        c["groups"].disabled = c["norm"].value != "GroupNorm"

    def compute(self, norm, batch, channels, groups, sample, channel) -> dict:
        sets = sharing(norm, batch, channels, groups, self.HW)
        chosen = sets == sets[sample, channel]
        return {"norm": norm, "batch": batch, "channels": channels, "groups": groups, "chosen": (sample, channel),
                "sets": sets, "shared": chosen, "statistics": int(sets.max() + 1),
                "values_per_statistic": int(chosen.sum()) * self.HW * self.HW}

    def text(self, s: dict) -> str:
        axes = {"BatchNorm": "N, H, W (one channel, every sample)", "LayerNorm": "C, H, W (one sample, every channel)",
                "InstanceNorm": "H, W (one sample, one channel)",
                "GroupNorm": f"{s['channels'] // s['groups']} channels x H x W (one sample, one group)"}[s["norm"]]
        depends = "yes" if s["norm"] == "BatchNorm" and s["batch"] > 1 else "no"
        return (f"{s['norm']}: <b>{s['statistics']}</b> means and variances for this batch, each over "
                f"<b>{s['values_per_statistic']}</b> values ({axes}).<br>"
                f"Does a sample's output depend on the other samples? <b>{depends}</b>")

    def draw(self, figure: Figure, s: dict) -> None:
        ax = figure.subplots()
        n, c, hw = s["batch"], s["channels"], self.HW
        pale = ["#e8eef7", "#fbeee0", "#e6f2e6", "#f3e5f5", "#efebe9", "#fde4ec", "#e0f2f1", "#eceff1"]
        gap = 0.6
        for i in range(n):
            for j in range(c):
                x0, y0 = j * (hw + gap), i * (hw + gap)
                shared = bool(s["shared"][i, j])
                color = BLUE if shared else pale[s["sets"][i, j] % len(pale)]
                for u in range(hw):
                    for v in range(hw):
                        ax.add_patch(Rectangle((x0 + v, y0 + u), 1, 1, facecolor=color, edgecolor="white",
                                               linewidth=0.8))
                if (i, j) == s["chosen"]:
                    ax.add_patch(Rectangle((x0, y0), 1, 1, fill=False, edgecolor=RED, linewidth=2.5))
        for j in range(c):
            ax.text(j * (hw + gap) + hw / 2, -0.4, f"c={j}", ha="center", va="bottom", fontsize=9)
        for i in range(n):
            ax.text(-0.4, i * (hw + gap) + hw / 2, f"n={i}", ha="right", va="center", fontsize=9)
        ax.set_xlim(-1.6, c * (hw + gap))
        ax.set_ylim(n * (hw + gap), -1.2)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.set_title(f"{s['norm']}: blue = the values sharing the chosen value's statistics "
                     "(each small square is one channel's H x W map)", fontsize=10)


def normalization_axes(**settings) -> NormalizationAxes:
    """Week 2: which values of an N x C x H x W batch share a mean and a variance under batch,
    layer, instance and group norm (found by perturbing the input of PyTorch's own layers).

    Keyword arguments set the starting values: ``norm`` (one of :data:`NORMS`), ``batch``,
    ``channels``, ``groups``, ``sample``, ``channel``."""
    return NormalizationAxes(**settings)


# ----------------------------------------------------------------------------- week 3
def block_layers(kind: str, channels: int, reduction: int) -> tuple[torch.nn.Module, list[tuple[str, torch.nn.Module]]]:
    """torchvision's block of ``kind`` (``"basic"``: ``BasicBlock(channels, channels)``;
    ``"bottleneck"``: ``Bottleneck(4 * channels, channels)``; ``"bottleneck + SE"``: the same
    followed by ``SqueezeExcitation(4 * channels, 4 * channels // reduction)``), built on the
    meta device, and its weighted layers in forward order."""
    from torchvision.models.resnet import BasicBlock, Bottleneck
    from torchvision.ops import SqueezeExcitation

    with torch.device("meta"):
        if kind == "basic":
            block = BasicBlock(channels, channels)
        else:
            block = torch.nn.Sequential()
            block.add_module("block", Bottleneck(4 * channels, channels))
            if kind == "bottleneck + SE":
                block.add_module("se", SqueezeExcitation(4 * channels, max(1, 4 * channels // reduction)))
    layers = [(name, m) for name, m in block.named_modules()
              if isinstance(m, (torch.nn.Conv2d, torch.nn.BatchNorm2d)) and not name.endswith("downsample")]
    return block, layers


class BlockCosts(Explorer):
    figsize = (10.0, 3.8)
    KINDS = ("basic", "bottleneck", "bottleneck + SE")

    def __init__(self, channels=64, size=56, reduction=16):
        controls = {
            "channels": _dropdown("width C", [16, 32, 64, 128, 256, 512], channels),
            "size": _dropdown("map size", [7, 14, 28, 56, 112], size),
            "reduction": _dropdown("SE reduction r", [2, 4, 8, 16, 32], reduction),
        }
        super().__init__("Residual blocks: parameters and MACs per layer (basic block on C channels; bottleneck "
                         "and SE on 4C)", controls, [["channels", "size", "reduction"]])

    def compute(self, channels, size, reduction) -> dict:
        blocks = {}
        for kind in self.KINDS:
            block, layers = block_layers(kind, channels, reduction)
            rows = []
            for name, layer in layers:
                params = sum(p.numel() for p in layer.parameters())
                if isinstance(layer, torch.nn.Conv2d):
                    positions = 1 if ".fc" in f".{name}" else size * size  # SE's 1x1 convs act on pooled 1x1 maps
                    kh, kw = layer.kernel_size
                    macs = layer.out_channels * positions * layer.in_channels // layer.groups * kh * kw
                else:
                    macs = 0
                rows.append({"name": name, "type": type(layer).__name__, "params": params, "macs": macs})
            blocks[kind] = {"rows": rows, "params": sum(p.numel() for p in block.parameters()),
                            "macs": sum(r["macs"] for r in rows),
                            "channels_out": channels if kind == "basic" else 4 * channels}
        return {"channels": channels, "size": size, "reduction": reduction, "blocks": blocks}

    def text(self, s: dict) -> str:
        lines = [f"<tr><td>{kind}</td><td>{b['channels_out']}</td><td>{b['params']:,}</td><td>{b['macs']:,}</td></tr>"
                 for kind, b in s["blocks"].items()]
        se = s["blocks"]["bottleneck + SE"]["params"] - s["blocks"]["bottleneck"]["params"]
        return ("<table><tr><th>block</th><th>channels out</th><th>parameters</th><th>MACs per image</th></tr>"
                + "".join(lines) + f"</table>SE adds {se:,} parameters and almost no MACs (its layers act on "
                "one pooled value per channel).")

    def draw(self, figure: Figure, s: dict) -> None:
        ax_p, ax_m = figure.subplots(1, 2)
        colors = {"basic": BLUE, "bottleneck": ORANGE, "bottleneck + SE": "#4caf50"}
        for ax, key, unit in ((ax_p, "params", "parameters (thousands)"), (ax_m, "macs", "MACs (millions)")):
            scale = 1e3 if key == "params" else 1e6
            offset = 0
            ticks, labels = [], []
            for kind, block in s["blocks"].items():
                convs = [r for r in block["rows"] if r["type"] == "Conv2d"]
                xs = np.arange(offset, offset + len(convs))
                ax.bar(xs, [r[key] / scale for r in convs], color=colors[kind], label=kind)
                ticks += list(xs)
                labels += [r["name"].split(".")[-1] for r in convs]
                offset += len(convs) + 1
            ax.set_xticks(ticks)
            ax.set_xticklabels(labels, rotation=60, fontsize=8)
            ax.set_ylabel(unit, fontsize=9)
            ax.grid(axis="y", alpha=0.3)
        ax_p.legend(fontsize=8)
        figure.suptitle(f"C = {s['channels']}, {s['size']}x{s['size']} maps, SE reduction {s['reduction']}",
                        fontsize=10)
        figure.tight_layout()


def block_costs(**settings) -> BlockCosts:
    """Week 3: parameters and MACs of torchvision's basic block, bottleneck and bottleneck with
    squeeze-and-excitation, layer by layer. Keyword arguments: ``channels``, ``size``,
    ``reduction``."""
    return BlockCosts(**settings)


# ----------------------------------------------------------------------------- week 4
def tap_counts(size: int, kernel: int, stride: int, padding: int, output_padding: int) -> np.ndarray:
    """How many (input pixel, kernel tap) pairs land on each output pixel of
    ``nn.ConvTranspose2d(1, 1, kernel, stride, padding, output_padding)`` on a size x size
    input: the layer itself, run on ones with a kernel of ones."""
    layer = torch.nn.ConvTranspose2d(1, 1, kernel, stride=stride, padding=padding, output_padding=output_padding,
                                     bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        counts = layer(torch.ones(1, 1, size, size))
    return counts[0, 0].round().to(torch.int64).numpy()


class TransposedConv(Explorer):
    figsize = (9.0, 3.8)

    def __init__(self, size=6, kernel=3, stride=2, padding=0, output_padding=0):
        controls = {
            "size": _slider("input size", size, 2, 10),
            "kernel": _slider("kernel", kernel, 1, 6),
            "stride": _slider("stride", stride, 1, 4),
            "padding": _slider("padding", padding, 0, 3),
            "output_padding": _slider("output padding", output_padding, 0, 3),
        }
        super().__init__("Transposed convolution: output size and kernel taps per output pixel", controls,
                         [["size", "kernel", "stride"], ["padding", "output_padding"]])

    def compute(self, size, kernel, stride, padding, output_padding) -> dict:
        try:
            counts = tap_counts(size, kernel, stride, padding, output_padding)
        except RuntimeError as exc:  # output_padding not below stride, or an empty output
            return {"size": size, "kernel": kernel, "stride": stride, "padding": padding,
                    "output_padding": output_padding, "output_size": None, "counts": None,
                    "error": str(exc).split("\n")[0][:200], "even": None}
        # away from the borders (a kernel's reach from each edge), are all counts the same?
        inner = counts[kernel:-kernel or None, kernel:-kernel or None]
        even = bool(inner.size == 0 or inner.min() == inner.max())
        return {"size": size, "kernel": kernel, "stride": stride, "padding": padding,
                "output_padding": output_padding, "output_size": tuple(counts.shape), "counts": counts,
                "error": None, "even": even, "min": int(counts.min()), "max": int(counts.max())}

    def text(self, s: dict) -> str:
        if s["output_size"] is None:
            return f"<b>PyTorch refuses these settings</b>: {s['error']}"
        h, w = s["output_size"]
        pattern = ("every interior pixel gets the same number of taps: no checkerboard" if s["even"] else
                   "interior pixels get different numbers of taps: a <b>checkerboard</b> "
                   "(the kernel size is not a multiple of the stride)")
        return (f"{s['size']}x{s['size']} -> output <b>{h} x {w}</b>; taps per output pixel from {s['min']} to "
                f"{s['max']}: {pattern}")

    def draw(self, figure: Figure, s: dict) -> None:
        ax_map, ax_row = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
        if s["counts"] is None:
            for ax in (ax_map, ax_row):
                ax.set_axis_off()
            ax_map.set_title("no output", fontsize=10)
            return
        counts = s["counts"]
        image = ax_map.imshow(counts, cmap="viridis", vmin=0, vmax=max(1, counts.max()))
        figure.colorbar(image, ax=ax_map, fraction=0.046)
        ax_map.set_title(f"taps per output pixel ({counts.shape[0]}x{counts.shape[1]})", fontsize=10)
        ax_map.set_xticks([])
        ax_map.set_yticks([])
        middle = counts[counts.shape[0] // 2]
        ax_row.bar(range(len(middle)), middle, color=BLUE)
        ax_row.set_title("the middle row", fontsize=10)
        ax_row.set_xlabel("output column")
        ax_row.set_ylabel("taps")
        figure.tight_layout()


def transposed_conv(**settings) -> TransposedConv:
    """Week 4: a transposed convolution's output size and the number of kernel taps landing on
    each output pixel. Keyword arguments: ``size``, ``kernel``, ``stride``, ``padding``,
    ``output_padding``."""
    return TransposedConv(**settings)


# ----------------------------------------------------------------------------- week 5
class Mixing(Explorer):
    figsize = (9.0, 3.3)

    def __init__(self, mode="CutMix", lam=0.6, top=2, left=2, height=4, width=4, pair=(0, 1)):
        from . import digits

        data = digits()
        self.pair = tuple(pair)
        self.images = [data.x_train[data.y_train == d][0, 0] for d in self.pair]  # 8x8, in [0, 1]
        controls = {
            "mode": widgets.ToggleButtons(options=["MixUp", "CutMix"], value=mode, description="mix"),
            "lam": widgets.FloatSlider(value=lam, min=0.0, max=1.0, step=0.05, description="lam (MixUp)",
                                       continuous_update=False, style={"description_width": "initial"}),
            "top": _slider("box top", top, 0, 7),
            "left": _slider("box left", left, 0, 7),
            "height": _slider("box height", height, 0, 8),
            "width": _slider("box width", width, 0, 8),
        }
        super().__init__(f"Mixing a {self.pair[0]} and a {self.pair[1]}: the image and its label", controls,
                         [["mode", "lam"], ["top", "left", "height", "width"]])

    def adjust(self, name: str | None) -> None:
        cutmix = self.controls["mode"].value == "CutMix"
        self.controls["lam"].disabled = cutmix
        for key in ("top", "left", "height", "width"):
            self.controls[key].disabled = not cutmix

    def compute(self, mode, lam, top, left, height, width) -> dict:
        a, b = (torch.from_numpy(np.asarray(im)) for im in self.images)
        if mode == "MixUp":
            mixed, weight_a = lam * a + (1 - lam) * b, float(lam)
            box = None
        else:
            bottom, right = min(top + height, 8), min(left + width, 8)  # the box clipped to the image
            mask = torch.zeros(8, 8, dtype=torch.bool)
            mask[top:bottom, left:right] = True
            mixed = torch.where(mask, b, a)
            box = (top, bottom, left, right)
            weight_a = 1.0 - mask.sum().item() / mask.numel()  # the share of the image still showing a
        return {"mode": mode, "lam": lam, "box": box, "image": mixed.numpy(),
                "label": {self.pair[0]: round(weight_a, 6), self.pair[1]: round(1 - weight_a, 6)}}

    def text(self, s: dict) -> str:
        (da, wa), (db, wb) = s["label"].items()
        how = ("MixUp blends every pixel: the label weights are lam and 1 - lam" if s["mode"] == "MixUp" else
               "CutMix pastes a box of the second image: each label is weighted by the share of the image it "
               "covers, which is the box's area after clipping to the image")
        return f"label: <b>{wa:.2f}</b> x digit {da} + <b>{wb:.2f}</b> x digit {db}<br>{how}"

    def draw(self, figure: Figure, s: dict) -> None:
        axes = figure.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.3]})
        for ax, image, title in ((axes[0], self.images[0], f"digit {self.pair[0]}"),
                                 (axes[1], self.images[1], f"digit {self.pair[1]}"),
                                 (axes[2], s["image"], s["mode"])):
            ax.imshow(image, cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(title, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        if s["box"] is not None:
            top, bottom, left, right = s["box"]
            axes[2].add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False,
                                        edgecolor=RED, linewidth=2))
        axes[3].bar([str(d) for d in s["label"]], list(s["label"].values()), color=[BLUE, ORANGE])
        axes[3].set_ylim(0, 1)
        axes[3].set_title("soft label", fontsize=10)
        figure.tight_layout()


def mixing(**settings) -> Mixing:
    """Week 5: MixUp (``lam``) and CutMix (a box: ``top``, ``left``, ``height``, ``width``) of two
    digits (``pair``), the mixed image and its soft label. ``mode``: ``"MixUp"`` or ``"CutMix"``."""
    return Mixing(**settings)
