"""Plain convolution (LeNet, AlexNet, VGG, stems): conv -> [BN] -> activation, repeated, then optional pooling."""

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
    fail,
    flag_token,
    int_token,
    word_token,
)

POOL_KINDS = {"mp": "max", "ap": "avg"}


def _read_pool(m: re.Match[str]) -> dict[str, Any]:
    size = int(m.group(2))
    return {"pool": POOL_KINDS[m.group(1)], "pool_size": size,
            "pool_stride": int(m.group(3)) if m.group(3) else size,
            "pool_padding": "same" if m.group(4) else "valid"}


def _write_pool(block: Conv) -> str | None:
    if block.pool is None:
        return None
    text = ("mp" if block.pool == "max" else "ap") + str(block.pool_size)
    if block.pool_stride != block.pool_size:
        text += f"/{block.pool_stride}"
    return text + ("-same" if block.pool_padding == "same" else "")


@dataclass(frozen=True, kw_only=True)
class Conv(Block):
    """``repeats`` x (conv k x k -> [batch norm] -> activation), then an optional pooling layer.

    String form: ``conv_r2_k3_s1_c64`` plus, when not at their defaults, ``valid``, ``nobn``, ``bias``,
    ``a<activation>`` and a pooling token ``mp2`` / ``ap2`` / ``mp3/2`` / ``mp3/2-same``
    (max/avg, size[/stride], padding valid unless ``-same``).
    """

    kind = "conv"
    strides = (1, 2, 4)
    channel_fields = ("filters",)

    filters: int
    kernel: int = 3
    padding: str = "same"
    bn: bool = True
    bias: bool = False
    activation: str = "relu"
    pool: str | None = None
    pool_size: int = 2
    pool_stride: int = 2
    pool_padding: str = "valid"

    tokens = (
        int_token("r", "repeats"),
        int_token("k", "kernel"),
        int_token("s", "stride"),
        int_token("c", "filters"),
        word_token("padding", ("same", "valid"), default="same"),
        flag_token("bn", "bn", default=True),
        flag_token("bias", "bias", default=False),
        activation_token(),
        Token("pool", re.compile(r"(mp|ap)(\d+)(?:/(\d+))?(-same)?"), _read_pool, _write_pool),
    )

    def validate(self) -> None:
        check_channels("filters", self.filters)
        check_int("kernel", self.kernel, choices=(1, 3, 5, 7, 9, 11))
        check_choice("padding", self.padding, ("same", "valid"))
        check_bool("bn", self.bn)
        check_bool("bias", self.bias)
        check_activation("activation", self.activation)
        if self.pool is not None and self.pool not in ("max", "avg"):
            raise fail("pool", "None, 'max' or 'avg'", self.pool)
        check_int("pool_size", self.pool_size, low=1, high=8)
        check_int("pool_stride", self.pool_stride, low=1, high=8)
        check_choice("pool_padding", self.pool_padding, ("same", "valid"))

    def canonical(self) -> dict[str, Any]:
        if self.pool is None:
            return {"pool_size": 2, "pool_stride": 2, "pool_padding": "valid"}
        return {}

    def out_channels(self, in_channels: int) -> int:
        return self.filters

    def apply_block(self, ops: Ops, x: Any, prefix: str, *, stride: int, in_channels: int) -> Any:
        x = ops.conv(x, prefix + "conv", filters=self.filters, kernel=self.kernel, stride=stride,
                     padding=self.padding, bias=self.bias)
        if self.bn:
            x = ops.bn(x, prefix + "bn")
        return ops.act(x, prefix + "act", self.activation)

    def apply(self, ops: Ops, x: Any, prefix: str, in_channels: int) -> tuple[Any, int]:
        x, channels = super().apply(ops, x, prefix, in_channels)
        if self.pool is not None:
            x = ops.pool(x, prefix + "_pool", kind=self.pool, size=self.pool_size, stride=self.pool_stride,
                         padding=self.pool_padding)
        return x, channels
