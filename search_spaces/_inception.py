"""The inception space: stages of Inception modules with searched branch widths. GoogLeNet is a point in it."""

from __future__ import annotations

from typing import Any, TypedDict

from nas.blocks import Block, Conv, Inception
from nas.spec import ArchSpec, Head
from search_spaces._baselines import GOOGLENET_MODULES, Unit, baseline
from search_spaces._residual import stem_kind
from search_spaces._space import Space, choices_option, range_option, stages_of, widths_option


class _Pool(TypedDict):
    """GoogLeNet's stem pooling."""

    pool: str
    pool_size: int
    pool_stride: int
    pool_padding: str


DEFAULTS: dict[str, Any] = {
    "input_shape": (32, 32, 3), "num_classes": 10,
    "stem": "auto", "stem_widths": (32, 64, 96, 128),
    "stages": (1, 3), "modules": (1, 5), "strides": (1, 2),
    "b1": (0, 16, 32, 64, 96, 112, 128, 160, 192, 256, 384),
    "b3_reduce": (16, 32, 48, 64, 96, 112, 128, 144, 160, 192),
    "b3": (32, 64, 96, 128, 160, 192, 208, 224, 256, 288, 320, 384),
    "b5_reduce": (8, 16, 24, 32, 48, 64),
    "b5": (0, 16, 32, 48, 64, 96, 128),
    "pool_proj": (0, 16, 32, 64, 128),
    "factorize": (False, True), "bns": (False, True), "dropouts": (0.0, 0.2, 0.4),
}
BRANCHES = ("b1", "b3_reduce", "b3", "b5_reduce", "b5", "pool_proj")
LABELS = {"b1": "b1", "b3_reduce": "b3r", "b3": "b3", "b5_reduce": "b5r", "b5": "b5", "pool_proj": "pp"}


class InceptionSpace(Space):
    """Labels: ``stem_width`` (small stem only), ``n_stages``, ``bn`` (batch norm; convolutions have a bias
    exactly when there is no batch norm), ``dropout``; per stage i: ``s{i}_modules``, ``s{i}_stride`` (2: a
    3x3/2 max-pool before the stage, as GoogLeNet); per module j of stage i: ``s{i}_m{j}_b1``, ``_b3r``,
    ``_b3``, ``_b5``, ``_pp`` (branch widths; 0 = branch absent; the 3x3 branch is always present), and, when
    the 5x5 branch is present, ``_b5r`` and ``_fact`` (5x5 as two 3x3).

    ``stem``: ``imagenet`` (GoogLeNet's 7x7/2, 1x1, 3x3 with two 3x3/2 max-pools), ``small`` (one 3x3 conv)
    or ``auto`` (imagenet when the input is at least 112 pixels).
    """

    name = "inception"
    classics = ("googlenet",)

    def __init__(self, **options: Any) -> None:
        o = self._configure(options, DEFAULTS)
        n = self.name
        self.stem = stem_kind(n, o["stem"], self.input_shape)
        self.stem_widths = widths_option(n, "stem_widths", o["stem_widths"])
        self.stages = range_option(n, "stages", o["stages"], low=1, high=6)
        self.modules = range_option(n, "modules", o["modules"], low=1, high=10)
        self.strides = choices_option(n, "strides", o["strides"], kind=int, allowed=(1, 2))
        self.branches = {b: widths_option(n, b, o[b], low=0 if b in ("b1", "b5", "pool_proj") else 1)
                         for b in BRANCHES}
        self.factorize = choices_option(n, "factorize", o["factorize"], kind=bool)
        self.bns = choices_option(n, "bns", o["bns"], kind=bool)
        self.dropouts = self._dropouts(o)

    def sample(self, trial: Any) -> ArchSpec:
        n_stages = self.integer(trial, "n_stages", self.stages)
        bn = self.choose(trial, "bn", self.bns)
        dropout = self.choose(trial, "dropout", self.dropouts)
        unit: Unit = {"bn": bn, "bias": not bn}
        stem: tuple[Conv, ...]
        if self.stem == "imagenet":
            pool: _Pool = {"pool": "max", "pool_size": 3, "pool_stride": 2, "pool_padding": "same"}
            stem = (Conv(filters=64, kernel=7, stride=2, **pool, **unit), Conv(filters=64, kernel=1, **unit),
                    Conv(filters=192, kernel=3, **pool, **unit))
        else:
            stem = (Conv(filters=self.choose(trial, "stem_width", self.stem_widths), **unit),)
        stages: list[Block] = []
        for i in range(1, n_stages + 1):
            modules = self.integer(trial, f"s{i}_modules", self.modules)
            stride = self.choose(trial, f"s{i}_stride", self.strides)
            for j in range(1, modules + 1):
                w = {b: self.choose(trial, f"s{i}_m{j}_{LABELS[b]}", self.branches[b])
                     for b in ("b1", "b3_reduce", "b3", "b5", "pool_proj")}
                # the 5x5 branch's reduce and factorisation exist only with the branch
                w["b5_reduce"] = self.choose(trial, f"s{i}_m{j}_b5r", self.branches["b5_reduce"]) if w["b5"] else 0
                fact = self.choose(trial, f"s{i}_m{j}_fact", self.factorize) if w["b5"] else False
                stages.append(Inception(stride=stride if j == 1 else 1, factorize=fact, **w, **unit))
        return ArchSpec(input_shape=self.input_shape, num_classes=self.num_classes, stem=stem,
                        stages=tuple(stages), head=Head(pool="avg", dropout=dropout))

    def _params_of(self, name: str) -> dict[str, Any]:
        spec = baseline(name)
        stages = stages_of(spec, Inception)
        groups: list[list[Inception]] = []
        for block in stages:
            if block.stride == 2 or not groups:
                groups.append([])
            groups[-1].append(block)
        params: dict[str, Any] = {"n_stages": len(groups), "bn": stages[0].bn, "dropout": spec.head.dropout}
        if self.stem == "small":
            params["stem_width"] = spec.stem[0].filters
        for i, group in enumerate(groups, 1):
            params[f"s{i}_modules"] = len(group)
            params[f"s{i}_stride"] = group[0].stride
            for j, m in enumerate(group, 1):
                params.update({f"s{i}_m{j}_{LABELS[b]}": getattr(m, b) for b in BRANCHES})
                params[f"s{i}_m{j}_fact"] = m.factorize
        return params


assert len(GOOGLENET_MODULES) == 9
