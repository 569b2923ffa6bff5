"""The families space: every stage picks its block family (plain conv, depthwise-separable, residual basic or
bottleneck, inception, MBConv) and that family's options - a macro space over all the classic families."""

from __future__ import annotations

from typing import Any, TypedDict

from nas.blocks import Basic, Block, Bottleneck, Conv, Inception, MBConv, SepConv
from nas.spec import ArchSpec, Head
from search_spaces._space import Space, choices_option, opt_fail, range_option, widths_option

FAMILIES = ("conv", "sepconv", "basic", "bottleneck", "inception", "mbconv")
DEFAULTS: dict[str, Any] = {
    "input_shape": (32, 32, 3), "num_classes": 10,
    "stem_stride": "auto", "stem_widths": (16, 32, 64),
    "stages": (1, 5), "families": FAMILIES, "depth": (1, 3), "widths": (16, 32, 48, 64, 96, 128, 192, 256),
    "strides": (1, 2), "conv_kernels": (3, 5), "sepconv_kernels": (3, 5, 7), "bottleneck_expansions": (2, 4),
    "mbconv_kernels": (3, 5, 7), "mbconv_expansions": (1, 3, 6), "mbconv_se": (0.0, 0.25),
    "inception_factorize": (False, True), "activations": ("relu",), "head_widths": (0, 256),
    "dropouts": (0.0, 0.2), "max_downsampling": "auto",
}


class Branches(TypedDict):
    """The branch widths of an :class:`~nas.blocks.Inception` block."""

    b1: int
    b3_reduce: int
    b3: int
    b5_reduce: int
    b5: int
    pool_proj: int


class _Common(TypedDict):
    """What a stage's block takes whatever its family."""

    repeats: int
    stride: int
    activation: str


def inception_branches(width: int) -> Branches:
    """Branch widths for an inception stage of output ``width``, in GoogLeNet module 3a's proportions
    (1x1 : 3x3 : 5x5 : pool = 2 : 4 : 1 : 1 of the output, reduces 3/8 and 1/16)."""
    b1, b3, b5 = max(1, width // 4), max(1, width // 2), max(1, width // 8)
    return Branches(b1=b1, b3_reduce=max(1, 3 * width // 8), b3=b3, b5_reduce=max(1, width // 16), b5=b5,
                    pool_proj=max(1, width - b1 - b3 - b5))


class FamiliesSpace(Space):
    """Labels: ``stem_width``, ``n_stages``, ``activation``, ``head_width``, ``dropout``; per stage i:
    ``s{i}_family``, ``s{i}_depth``, ``s{i}_width`` (output channels), ``s{i}_stride``, and the family's own
    options: ``s{i}_conv_kernel``, ``s{i}_sepconv_kernel``, ``s{i}_bottleneck_expansion`` (the bottleneck
    width is ``width / expansion``), ``s{i}_inception_fact`` (branches in GoogLeNet-3a proportions of
    ``width``), ``s{i}_mbconv_kernel``, ``s{i}_mbconv_expansion``, ``s{i}_mbconv_se``.
    """

    name = "families"

    def __init__(self, **options: Any) -> None:
        o = self._fit_to_data(options, self._configure(options, DEFAULTS))
        n = self.name
        self.stem_stride = self._stem_stride(o["stem_stride"])
        self.stem_widths = widths_option(n, "stem_widths", o["stem_widths"])
        self.stages = range_option(n, "stages", o["stages"], low=1, high=10)
        self.families = choices_option(n, "families", o["families"], kind=str, allowed=FAMILIES)
        self.depth = range_option(n, "depth", o["depth"], low=1, high=16)
        self.widths = widths_option(n, "widths", o["widths"], low=4)
        self.strides = choices_option(n, "strides", o["strides"], kind=int, allowed=(1, 2))
        self.conv_kernels = choices_option(n, "conv_kernels", o["conv_kernels"], kind=int, allowed=(1, 3, 5, 7))
        self.sepconv_kernels = choices_option(n, "sepconv_kernels", o["sepconv_kernels"], kind=int, allowed=(3, 5, 7))
        self.bottleneck_expansions = choices_option(n, "bottleneck_expansions", o["bottleneck_expansions"],
                                                    kind=int, allowed=(1, 2, 4))
        self.mbconv_kernels = choices_option(n, "mbconv_kernels", o["mbconv_kernels"], kind=int, allowed=(3, 5, 7))
        self.mbconv_expansions = choices_option(n, "mbconv_expansions", o["mbconv_expansions"], kind=int,
                                                allowed=range(1, 9))
        self.mbconv_se = choices_option(n, "mbconv_se", o["mbconv_se"], kind=float, low=0.0)
        self.inception_factorize = choices_option(n, "inception_factorize", o["inception_factorize"], kind=bool)
        self.activations = choices_option(n, "activations", o["activations"], kind=str)
        self.head_widths = widths_option(n, "head_widths", o["head_widths"], low=0)
        self.dropouts = self._dropouts(o)
        for a in self.activations:
            Conv(filters=8, activation=a)
        for s in self.mbconv_se:
            MBConv(filters=8, se=s)
        for w in self.widths:
            for e in self.bottleneck_expansions:
                if w % e:
                    raise opt_fail(n, "widths",
                                   f"divisible by every bottleneck expansion {list(self.bottleneck_expansions)}",
                                   list(self.widths))

    def _stage(self, trial: Any, i: int, activation: str, used: int) -> Block:
        family = self.choose(trial, f"s{i}_family", self.families)
        depth = self.integer(trial, f"s{i}_depth", self.depth)
        width = self.choose(trial, f"s{i}_width", self.widths)
        stride = self._stride(trial, f"s{i}_stride", self.strides, used)
        common = _Common(repeats=depth, stride=stride, activation=activation)
        if family == "conv":
            return Conv(filters=width, kernel=self.choose(trial, f"s{i}_conv_kernel", self.conv_kernels), **common)
        if family == "sepconv":
            return SepConv(filters=width, kernel=self.choose(trial, f"s{i}_sepconv_kernel", self.sepconv_kernels),
                           **common)
        if family == "basic":
            return Basic(filters=width, **common)
        if family == "bottleneck":
            e = self.choose(trial, f"s{i}_bottleneck_expansion", self.bottleneck_expansions)
            return Bottleneck(filters=width // e, expansion=e, **common)
        if family == "inception":
            fact = self.choose(trial, f"s{i}_inception_fact", self.inception_factorize)
            return Inception(factorize=fact, bn=True, bias=False, **inception_branches(width), **common)
        return MBConv(filters=width, kernel=self.choose(trial, f"s{i}_mbconv_kernel", self.mbconv_kernels),
                      expansion=self.choose(trial, f"s{i}_mbconv_expansion", self.mbconv_expansions),
                      se=self.choose(trial, f"s{i}_mbconv_se", self.mbconv_se), **common)

    def sample(self, trial: Any) -> ArchSpec:
        stem_width = self.choose(trial, "stem_width", self.stem_widths)
        n_stages = self.integer(trial, "n_stages", self.stages)
        activation = self.choose(trial, "activation", self.activations)
        head_width = self.choose(trial, "head_width", self.head_widths)
        dropout = self.choose(trial, "dropout", self.dropouts)
        stages: list[Block] = []
        used = int(self.stem_stride == 2)
        for i in range(1, n_stages + 1):
            stages.append(self._stage(trial, i, activation, used))
            used += stages[-1].stride == 2
        return ArchSpec(input_shape=self.input_shape, num_classes=self.num_classes,
                        stem=(Conv(filters=stem_width, stride=self.stem_stride, activation=activation),),
                        stages=tuple(stages),
                        head=Head(conv=head_width, pool="avg", dropout=dropout, activation=activation))
