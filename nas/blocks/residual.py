"""Residual blocks (ResNet): basic (3x3-3x3) and bottleneck (1x1-3x3-1x1).

The shortcut is the identity when the block keeps shape, and a 1x1 projection convolution (+ BN) with the
block's stride when channels or stride change (ResNet "option B").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nas._ops import Ops
from nas.blocks._base import (
    Block,
    Token,
    activation_token,
    check_activation,
    check_bool,
    check_channels,
    check_choice,
    check_int,
    flag_token,
    int_token,
)


def _shortcut(ops: Ops, x: Any, prefix: str, *, stride: int, in_channels: int, out_channels: int,
              bias: bool) -> Any:
    if stride == 1 and in_channels == out_channels:
        return x
    x = ops.conv(x, prefix + "proj_conv", filters=out_channels, kernel=1, stride=stride, bias=bias)
    return ops.bn(x, prefix + "proj_bn")


@dataclass(frozen=True, kw_only=True)
class Basic(Block):
    """Two 3x3 convolutions. String form: ``basic_r2_s1_c64`` (+ ``bias``, ``a<activation>``)."""

    kind = "basic"
    channel_fields = ("filters",)

    filters: int
    bias: bool = False
    activation: str = "relu"

    tokens = (
        int_token("r", "repeats"),
        int_token("s", "stride"),
        int_token("c", "filters"),
        flag_token("bias", "bias", default=False),
        activation_token(),
    )

    def validate(self) -> None:
        check_channels("filters", self.filters)
        check_bool("bias", self.bias)
        check_activation("activation", self.activation)

    def out_channels(self, in_channels: int) -> int:
        return self.filters

    def apply_block(self, ops: Ops, x: Any, prefix: str, *, stride: int, in_channels: int) -> Any:
        shortcut = _shortcut(ops, x, prefix, stride=stride, in_channels=in_channels,
                             out_channels=self.filters, bias=self.bias)
        y = ops.conv(x, prefix + "conv1", filters=self.filters, kernel=3, stride=stride, bias=self.bias)
        y = ops.bn(y, prefix + "bn1")
        y = ops.act(y, prefix + "act1", self.activation)
        y = ops.conv(y, prefix + "conv2", filters=self.filters, kernel=3, bias=self.bias)
        y = ops.bn(y, prefix + "bn2")
        y = ops.add([shortcut, y], prefix + "add")
        return ops.act(y, prefix + "out", self.activation)


@dataclass(frozen=True, kw_only=True)
class Bottleneck(Block):
    """1x1 (``filters``) -> 3x3 (``filters``) -> 1x1 (``filters * expansion``).

    ``stride_on`` puts the stride on the first 1x1 (ResNet v1 as in the paper and Keras, 3.86 GMACs for
    ResNet-50) or on the 3x3 (the "v1.5" of torchvision, 4.09 GMACs). String form:
    ``bottleneck_r3_s2_c128_e4`` (+ ``st3x3``, ``bias``, ``a<activation>``).
    """

    kind = "bottleneck"
    channel_fields = ("filters",)

    filters: int
    expansion: int = 4
    stride_on: str = "1x1"
    bias: bool = False
    activation: str = "relu"

    tokens = (
        int_token("r", "repeats"),
        int_token("s", "stride"),
        int_token("c", "filters"),
        int_token("e", "expansion"),
        Token("stride_on", re.compile(r"st(1x1|3x3)"), lambda m: {"stride_on": m.group(1)},
              lambda b: None if b.stride_on == "1x1" else f"st{b.stride_on}"),
        flag_token("bias", "bias", default=False),
        activation_token(),
    )

    def validate(self) -> None:
        check_channels("filters", self.filters)
        check_int("expansion", self.expansion, low=1, high=8)
        check_choice("stride_on", self.stride_on, ("1x1", "3x3"))
        check_bool("bias", self.bias)
        check_activation("activation", self.activation)

    def canonical(self) -> dict[str, Any]:
        return {} if self.stride == 2 else {"stride_on": "1x1"}

    def out_channels(self, in_channels: int) -> int:
        return self.filters * self.expansion

    def apply_block(self, ops: Ops, x: Any, prefix: str, *, stride: int, in_channels: int) -> Any:
        out = self.filters * self.expansion
        shortcut = _shortcut(ops, x, prefix, stride=stride, in_channels=in_channels, out_channels=out,
                             bias=self.bias)
        s1, s3 = (stride, 1) if self.stride_on == "1x1" else (1, stride)
        y = ops.conv(x, prefix + "conv1", filters=self.filters, kernel=1, stride=s1, bias=self.bias)
        y = ops.bn(y, prefix + "bn1")
        y = ops.act(y, prefix + "act1", self.activation)
        y = ops.conv(y, prefix + "conv2", filters=self.filters, kernel=3, stride=s3, bias=self.bias)
        y = ops.bn(y, prefix + "bn2")
        y = ops.act(y, prefix + "act2", self.activation)
        y = ops.conv(y, prefix + "conv3", filters=out, kernel=1, bias=self.bias)
        y = ops.bn(y, prefix + "bn3")
        y = ops.add([shortcut, y], prefix + "add")
        return ops.act(y, prefix + "out", self.activation)
