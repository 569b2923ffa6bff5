"""MBConv, the inverted residual of MobileNetV2 and EfficientNet.

1x1 expansion to ``in * expansion`` channels (absent when ``expansion == 1``) -> depthwise k x k ->
squeeze-and-excite (squeeze width ``max(1, int(in * se))``, on the block's *input* channels as in
EfficientNet) -> 1x1 projection (linear) -> identity skip when stride 1 and channels match, with stochastic
depth (``drop``: per-sample dropout of the residual branch) on that skip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas._ops import Ops
from nas.blocks._base import (
    Block,
    activation_token,
    check_activation,
    check_bool,
    check_channels,
    check_float,
    check_int,
    flag_token,
    float_token,
    int_token,
)


@dataclass(frozen=True, kw_only=True)
class MBConv(Block):
    """String form: ``mbconv_r2_k3_s2_e6_c24_se0.25`` plus ``d0.2`` (stochastic depth), ``noskip``,
    ``a<activation>`` when not default."""

    kind = "mbconv"
    channel_fields = ("filters",)

    filters: int
    kernel: int = 3
    expansion: int = 6
    se: float = 0.0
    drop: float = 0.0
    skip: bool = True
    activation: str = "relu"

    tokens = (
        int_token("r", "repeats"),
        int_token("k", "kernel"),
        int_token("s", "stride"),
        int_token("e", "expansion"),
        int_token("c", "filters"),
        float_token("se", "se"),
        float_token("d", "drop"),
        flag_token("skip", "skip", default=True),
        activation_token(),
    )

    def validate(self) -> None:
        check_channels("filters", self.filters)
        check_int("kernel", self.kernel, choices=(3, 5, 7))
        check_int("expansion", self.expansion, low=1, high=8)
        check_float("se", self.se, low=0.0, high=1.0, high_open=False)
        check_float("drop", self.drop, low=0.0, high=1.0)
        check_bool("skip", self.skip)
        check_activation("activation", self.activation)

    def canonical(self) -> dict[str, Any]:
        return {} if self.skip else {"drop": 0.0}

    def out_channels(self, in_channels: int) -> int:
        return self.filters

    def apply_block(self, ops: Ops, x: Any, prefix: str, *, stride: int, in_channels: int) -> Any:
        inputs = x
        expanded = in_channels * self.expansion
        if self.expansion != 1:
            x = ops.conv(x, prefix + "expand_conv", filters=expanded, kernel=1)
            x = ops.bn(x, prefix + "expand_bn")
            x = ops.act(x, prefix + "expand_act", self.activation)
        x = ops.depthwise(x, prefix + "dwconv", kernel=self.kernel, stride=stride)
        x = ops.bn(x, prefix + "dwbn")
        x = ops.act(x, prefix + "dwact", self.activation)
        if self.se > 0:
            squeeze = max(1, int(in_channels * self.se))
            s = ops.global_pool(x, prefix + "se_squeeze", kind="avg", keepdims=True)
            s = ops.conv(s, prefix + "se_reduce", filters=squeeze, kernel=1, bias=True)
            s = ops.act(s, prefix + "se_reduce_act", self.activation)
            s = ops.conv(s, prefix + "se_expand", filters=expanded, kernel=1, bias=True)
            s = ops.act(s, prefix + "se_gate", "sigmoid")
            x = ops.multiply([x, s], prefix + "se_excite")
        x = ops.conv(x, prefix + "project_conv", filters=self.filters, kernel=1)
        x = ops.bn(x, prefix + "project_bn")
        if self.skip and stride == 1 and in_channels == self.filters:
            if self.drop > 0:
                x = ops.dropout(x, prefix + "drop", rate=self.drop, per_sample=True)
            x = ops.add([x, inputs], prefix + "add")
        return x
