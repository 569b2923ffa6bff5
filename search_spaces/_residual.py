"""The residual space: ResNet-style stacks of basic or bottleneck blocks. ResNet-18/34/50 are points in it."""

from __future__ import annotations

from typing import Any

from nas.blocks import Basic, Block, Bottleneck, Conv
from nas.spec import ArchSpec, Head
from search_spaces._baselines import baseline
from search_spaces._space import Space, choices_option, range_option, stages_of, widths_option

DEFAULTS: dict[str, Any] = {
    "input_shape": (32, 32, 3), "num_classes": 10,
    "stem": "auto", "stem_widths": (16, 32, 64),
    "stages": (1, 4), "depth": (1, 6), "widths": (16, 32, 64, 128, 256, 512), "strides": (1, 2),
    "blocks": ("basic", "bottleneck"), "expansions": (2, 4), "stride_on": ("1x1", "3x3"),
    "biases": (False, True), "activations": ("relu",), "dropouts": (0.0,), "max_downsampling": "auto",
}


def stem_kind(space: str, stem: str, shape: tuple[int, int, int]) -> str:
    if stem not in ("auto", "imagenet", "small"):
        raise ValueError(f"{space} space: `stem` must be one of 'auto', 'imagenet', 'small', but got stem={stem!r}")
    if stem == "auto":
        return "imagenet" if min(shape[:2]) >= 112 else "small"
    return stem


class ResidualSpace(Space):
    """Labels: ``stem_width``, ``n_stages``, ``block`` (basic/bottleneck), ``expansion`` and ``stride_on``
    (bottleneck only), ``bias``, ``activation``, ``dropout``; per stage i (1-based): ``s{i}_depth``,
    ``s{i}_width`` (output width of basic blocks, bottleneck width of bottlenecks), ``s{i}_stride``.

    ``stem``: ``imagenet`` (7x7/2 conv + 3x3/2 max-pool, as ResNet), ``small`` (one 3x3 conv, stride 1, as
    CIFAR ResNets) or ``auto`` (imagenet when the input is at least 112 pixels).
    """

    name = "residual"
    classics = ("resnet18", "resnet34", "resnet50")

    def __init__(self, **options: Any) -> None:
        o = self._fit_to_data(options, self._configure(options, DEFAULTS))
        n = self.name
        self.stem = stem_kind(n, o["stem"], self.input_shape)
        self.stem_widths = widths_option(n, "stem_widths", o["stem_widths"])
        self.stages = range_option(n, "stages", o["stages"], low=1, high=8)
        self.depth = range_option(n, "depth", o["depth"], low=1, high=64)
        self.widths = widths_option(n, "widths", o["widths"])
        self.strides = choices_option(n, "strides", o["strides"], kind=int, allowed=(1, 2))
        self.blocks = choices_option(n, "blocks", o["blocks"], kind=str, allowed=("basic", "bottleneck"))
        self.expansions = choices_option(n, "expansions", o["expansions"], kind=int, allowed=range(1, 9))
        self.stride_on = choices_option(n, "stride_on", o["stride_on"], kind=str, allowed=("1x1", "3x3"))
        self.biases = choices_option(n, "biases", o["biases"], kind=bool)
        self.activations = choices_option(n, "activations", o["activations"], kind=str)
        self.dropouts = self._dropouts(o)
        # options must make valid blocks: fail now, not at the first sample
        for a in self.activations:
            Basic(filters=8, activation=a)

    def sample(self, trial: Any) -> ArchSpec:
        stem_width = self.choose(trial, "stem_width", self.stem_widths)
        n_stages = self.integer(trial, "n_stages", self.stages)
        block = self.choose(trial, "block", self.blocks)
        expansion, stride_on = Bottleneck.expansion, Bottleneck.stride_on  # asked for bottleneck stages only
        if block == "bottleneck":
            expansion = self.choose(trial, "expansion", self.expansions)
            stride_on = self.choose(trial, "stride_on", self.stride_on)
        bias = self.choose(trial, "bias", self.biases)
        activation = self.choose(trial, "activation", self.activations)
        dropout = self.choose(trial, "dropout", self.dropouts)
        if self.stem == "imagenet":
            stem = Conv(filters=stem_width, kernel=7, stride=2, bias=bias, activation=activation, pool="max",
                        pool_size=3, pool_stride=2, pool_padding="same")
        else:
            stem = Conv(filters=stem_width, kernel=3, bias=bias, activation=activation)
        stages: list[Block] = []
        used = 2 if self.stem == "imagenet" else 0
        for i in range(1, n_stages + 1):
            depth = self.integer(trial, f"s{i}_depth", self.depth)
            width = self.choose(trial, f"s{i}_width", self.widths)
            stride = self._stride(trial, f"s{i}_stride", self.strides, used)
            used += stride == 2
            if block == "basic":
                stages.append(Basic(filters=width, repeats=depth, stride=stride, bias=bias, activation=activation))
            else:
                stages.append(Bottleneck(filters=width, repeats=depth, stride=stride, expansion=expansion,
                                         stride_on=stride_on, bias=bias, activation=activation))
        return ArchSpec(input_shape=self.input_shape, num_classes=self.num_classes, stem=(stem,),
                        stages=tuple(stages), head=Head(pool="avg", dropout=dropout))

    def _params_of(self, name: str) -> dict[str, Any]:
        spec = baseline(name)
        stages: list[Basic | Bottleneck] = stages_of(spec, (Basic, Bottleneck))
        first = stages[0]
        params: dict[str, Any] = {"stem_width": spec.stem[0].filters, "n_stages": len(spec.stages),
                                  "block": first.kind, "bias": first.bias, "activation": first.activation,
                                  "dropout": spec.head.dropout}
        if isinstance(first, Bottleneck):
            params.update(expansion=first.expansion, stride_on=first.stride_on)
        for i, s in enumerate(stages, 1):
            params.update({f"s{i}_depth": s.repeats, f"s{i}_width": s.filters, f"s{i}_stride": s.stride})
        return params
