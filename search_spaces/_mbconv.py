"""The mbconv space: MobileNetV2 / EfficientNet inverted residual stacks. MobileNetV2 and EfficientNet-B0 are
points in it."""

from __future__ import annotations

from typing import Any

from nas.blocks import Conv, MBConv
from nas.spec import ArchSpec, Head
from search_spaces._baselines import baseline
from search_spaces._space import Space, choices_option, range_option, stages_of, widths_option

DEFAULTS: dict[str, Any] = {
    "input_shape": (32, 32, 3), "num_classes": 10,
    "stem_stride": "auto", "stem_widths": (16, 24, 32, 40, 48),
    "stages": (3, 7), "depth": (1, 4), "kernels": (3, 5, 7), "expansions": (1, 3, 4, 6),
    "widths": (16, 24, 32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 256, 320), "strides": (1, 2),
    "se": (0.0, 0.25), "activations": ("relu6", "swish"), "head_widths": (0, 320, 640, 1280),
    "drop_connect": (0.0, 0.2), "dropouts": (0.0, 0.2), "max_downsampling": "auto",
}


def stochastic_depth(rate: float, depths: list[int]) -> list[float]:
    """EfficientNet's linearly growing stochastic depth, per stage: the rate of the stage's first block."""
    total, seen, out = sum(depths), 0, []
    for d in depths:
        out.append(round(rate * seen / total, 4))
        seen += d
    return out


class MBConvSpace(Space):
    """Labels: ``stem_width``, ``n_stages``, ``activation``, ``head_width`` (0: no 1x1 head conv),
    ``drop_connect`` (stochastic depth, growing linearly over the blocks as in EfficientNet), ``dropout``; per
    stage i: ``s{i}_kernel``, ``s{i}_expansion``, ``s{i}_depth``, ``s{i}_width``, ``s{i}_se`` (0 = off),
    ``s{i}_stride``.

    ``stem_stride``: 1, 2 or ``auto`` (2 when the input is at least 64 pixels).
    """

    name = "mbconv"
    classics = ("mobilenet_v2", "efficientnet_b0")

    def __init__(self, **options: Any) -> None:
        o = self._fit_to_data(options, self._configure(options, DEFAULTS))
        n = self.name
        self.stem_stride = self._stem_stride(o["stem_stride"])
        self.stem_widths = widths_option(n, "stem_widths", o["stem_widths"])
        self.stages = range_option(n, "stages", o["stages"], low=1, high=10)
        self.depth = range_option(n, "depth", o["depth"], low=1, high=16)
        self.kernels = choices_option(n, "kernels", o["kernels"], kind=int, allowed=(3, 5, 7))
        self.expansions = choices_option(n, "expansions", o["expansions"], kind=int, allowed=range(1, 9))
        self.widths = widths_option(n, "widths", o["widths"])
        self.strides = choices_option(n, "strides", o["strides"], kind=int, allowed=(1, 2))
        self.se = choices_option(n, "se", o["se"], kind=float, low=0.0)
        self.activations = choices_option(n, "activations", o["activations"], kind=str)
        self.head_widths = widths_option(n, "head_widths", o["head_widths"], low=0)
        self.drop_connect = choices_option(n, "drop_connect", o["drop_connect"], kind=float, low=0.0)
        self.dropouts = self._dropouts(o)
        for a in self.activations:
            MBConv(filters=8, activation=a)
        for s in self.se:
            MBConv(filters=8, se=s)
        for d in self.drop_connect:
            MBConv(filters=8, drop=d)

    def sample(self, trial: Any) -> ArchSpec:
        stem_width = self.choose(trial, "stem_width", self.stem_widths)
        n_stages = self.integer(trial, "n_stages", self.stages)
        activation = self.choose(trial, "activation", self.activations)
        head_width = self.choose(trial, "head_width", self.head_widths)
        drop_connect = self.choose(trial, "drop_connect", self.drop_connect)
        dropout = self.choose(trial, "dropout", self.dropouts)
        rows = []
        used = int(self.stem_stride == 2)
        for i in range(1, n_stages + 1):
            rows.append(dict(
                kernel=self.choose(trial, f"s{i}_kernel", self.kernels),
                expansion=self.choose(trial, f"s{i}_expansion", self.expansions),
                repeats=self.integer(trial, f"s{i}_depth", self.depth),
                filters=self.choose(trial, f"s{i}_width", self.widths),
                se=self.choose(trial, f"s{i}_se", self.se),
                stride=self._stride(trial, f"s{i}_stride", self.strides, used)))
            used += rows[-1]["stride"] == 2
        drops = stochastic_depth(drop_connect, [r["repeats"] for r in rows])
        stages = tuple(MBConv(activation=activation, drop=d, **r) for r, d in zip(rows, drops))
        return ArchSpec(input_shape=self.input_shape, num_classes=self.num_classes,
                        stem=(Conv(filters=stem_width, stride=self.stem_stride, activation=activation),),
                        stages=stages, head=Head(conv=head_width, pool="avg", dropout=dropout, activation=activation))

    def _params_of(self, name: str) -> dict[str, Any]:
        spec = baseline(name)
        stages = stages_of(spec, MBConv)
        last = stages[-1]
        total = sum(s.repeats for s in stages)
        # the rate at the last stage's first block, scaled back to the whole-network rate
        drop_connect = round(last.drop * total / (total - last.repeats), 4) if last.drop else 0.0
        params: dict[str, Any] = {"stem_width": spec.stem[0].filters, "n_stages": len(spec.stages),
                                  "activation": last.activation, "head_width": spec.head.conv,
                                  "drop_connect": drop_connect, "dropout": spec.head.dropout}
        for i, s in enumerate(stages, 1):
            params.update({f"s{i}_kernel": s.kernel, f"s{i}_expansion": s.expansion, f"s{i}_depth": s.repeats,
                           f"s{i}_width": s.filters, f"s{i}_se": s.se, f"s{i}_stride": s.stride})
        return params
