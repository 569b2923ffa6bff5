"""Inception module (GoogLeNet): parallel 1x1, 1x1->3x3, 1x1->5x5 and 3x3 max-pool->1x1 branches, concatenated.

A branch with width 0 is absent; a reduce width of 0 means the 3x3 / 5x5 convolution reads the input
directly. ``factorize`` replaces the 5x5 by two 3x3 convolutions (Inception-v2/v3). ``stride=2`` puts a
3x3/2 max-pool (padding same) before the first module of the stage, as GoogLeNet does between its stages.
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
    flag_token,
    int_token,
)


def _branch_token(size: str, reduce: str | None, field: str) -> Token:
    if reduce is None:
        return Token(field, re.compile(rf"{size}x(\d+)"), lambda m: {field: int(m.group(1))},
                     lambda b: f"{size}x{getattr(b, field)}" if getattr(b, field) else None)

    def write(b: Any) -> str | None:
        width, red = getattr(b, field), getattr(b, reduce)
        if not width and not red:
            return None
        return f"{size}x{red}-{width}" if red else f"{size}x{width}"

    def read(m: re.Match[str]) -> dict[str, Any]:
        if m.group(2) is None:
            return {field: int(m.group(1)), reduce: 0}
        return {reduce: int(m.group(1)), field: int(m.group(2))}

    return Token(field, re.compile(rf"{size}x(\d+)(?:-(\d+))?"), read, write)


@dataclass(frozen=True, kw_only=True)
class Inception(Block):
    """String form: ``inception_r1_s1_1x64_3x96-128_5x16-32_pp32`` (``3x96-128``: 1x1 reduce to 96, then 3x3
    to 128; ``pp32``: pool projection), plus ``fact``, ``bn``, ``nobias``, ``a<activation>`` when not
    default. Defaults follow GoogLeNet: bias, no batch norm, relu."""

    kind = "inception"
    channel_fields = ("b1", "b3_reduce", "b3", "b5_reduce", "b5", "pool_proj")

    b1: int = 0
    b3_reduce: int = 0
    b3: int = 0
    b5_reduce: int = 0
    b5: int = 0
    pool_proj: int = 0
    factorize: bool = False
    bn: bool = False
    bias: bool = True
    activation: str = "relu"

    tokens = (
        int_token("r", "repeats"),
        int_token("s", "stride"),
        _branch_token("1", None, "b1"),
        _branch_token("3", "b3_reduce", "b3"),
        _branch_token("5", "b5_reduce", "b5"),
        int_token("pp", "pool_proj", always=False, default=0),
        flag_token("fact", "factorize", default=False),
        flag_token("bn", "bn", default=False),
        flag_token("bias", "bias", default=True),
        activation_token(),
    )

    def validate(self) -> None:
        for name in self.channel_fields:
            check_channels(name, getattr(self, name), low=0)
        for reduce, width in (("b3_reduce", "b3"), ("b5_reduce", "b5")):
            if getattr(self, reduce) and not getattr(self, width):
                raise ValueError(f"`{reduce}` needs its branch: `{width}` must be > 0 when {reduce}="
                                 f"{getattr(self, reduce)}, but got {width}=0")
        if not (self.b1 or self.b3 or self.b5 or self.pool_proj):
            raise ValueError("an inception module needs at least one branch: one of b1, b3, b5, pool_proj "
                             "must be > 0, but got all 0")
        check_bool("factorize", self.factorize)
        check_bool("bn", self.bn)
        check_bool("bias", self.bias)
        check_activation("activation", self.activation)

    def canonical(self) -> dict[str, Any]:
        return {} if self.b5 else {"factorize": False}

    def out_channels(self, in_channels: int) -> int:
        return self.b1 + self.b3 + self.b5 + self.pool_proj

    def _unit(self, ops: Ops, x: Any, name: str, filters: int, kernel: int) -> Any:
        x = ops.conv(x, name + "_conv", filters=filters, kernel=kernel, bias=self.bias)
        if self.bn:
            x = ops.bn(x, name + "_bn")
        return ops.act(x, name + "_act", self.activation)

    def apply_block(self, ops: Ops, x: Any, prefix: str, *, stride: int, in_channels: int) -> Any:
        if stride == 2:
            x = ops.pool(x, prefix + "pool_in", kind="max", size=3, stride=2, padding="same")
        branches = []
        if self.b1:
            branches.append(self._unit(ops, x, prefix + "b1", self.b1, 1))
        if self.b3:
            y = self._unit(ops, x, prefix + "b3_reduce", self.b3_reduce, 1) if self.b3_reduce else x
            branches.append(self._unit(ops, y, prefix + "b3", self.b3, 3))
        if self.b5:
            y = self._unit(ops, x, prefix + "b5_reduce", self.b5_reduce, 1) if self.b5_reduce else x
            if self.factorize:
                y = self._unit(ops, y, prefix + "b5a", self.b5, 3)
                branches.append(self._unit(ops, y, prefix + "b5b", self.b5, 3))
            else:
                branches.append(self._unit(ops, y, prefix + "b5", self.b5, 5))
        if self.pool_proj:
            y = ops.pool(x, prefix + "pool", kind="max", size=3, stride=1, padding="same")
            branches.append(self._unit(ops, y, prefix + "pool_proj", self.pool_proj, 1))
        return branches[0] if len(branches) == 1 else ops.concat(branches, prefix + "concat")
