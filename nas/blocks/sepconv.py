"""Depthwise-separable convolution (MobileNetV1): depthwise k x k -> BN -> act -> pointwise 1x1 -> BN -> act."""

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
    check_int,
    flag_token,
    int_token,
)


@dataclass(frozen=True, kw_only=True)
class SepConv(Block):
    """String form: ``sepconv_r1_k3_s2_c128`` plus ``nobn``, ``bias``, ``a<activation>`` when not default."""

    kind = "sepconv"
    channel_fields = ("filters",)

    filters: int
    kernel: int = 3
    bn: bool = True
    bias: bool = False
    activation: str = "relu"

    tokens = (
        int_token("r", "repeats"),
        int_token("k", "kernel"),
        int_token("s", "stride"),
        int_token("c", "filters"),
        flag_token("bn", "bn", default=True),
        flag_token("bias", "bias", default=False),
        activation_token(),
    )

    def validate(self) -> None:
        check_channels("filters", self.filters)
        check_int("kernel", self.kernel, choices=(3, 5, 7))
        check_bool("bn", self.bn)
        check_bool("bias", self.bias)
        check_activation("activation", self.activation)

    def out_channels(self, in_channels: int) -> int:
        return self.filters

    def apply_block(self, ops: Ops, x: Any, prefix: str, *, stride: int, in_channels: int) -> Any:
        x = ops.depthwise(x, prefix + "dwconv", kernel=self.kernel, stride=stride, bias=self.bias)
        if self.bn:
            x = ops.bn(x, prefix + "dwbn")
        x = ops.act(x, prefix + "dwact", self.activation)
        x = ops.conv(x, prefix + "pwconv", filters=self.filters, kernel=1, bias=self.bias)
        if self.bn:
            x = ops.bn(x, prefix + "pwbn")
        return ops.act(x, prefix + "pwact", self.activation)
