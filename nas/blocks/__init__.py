"""The block kinds, one module each. Adding a kind means adding a module and one line here."""

from __future__ import annotations

from typing import Any

from nas.blocks._base import MAX_CHANNELS, Block
from nas.blocks.conv import Conv
from nas.blocks.inception import Inception
from nas.blocks.mbconv import MBConv
from nas.blocks.nb201 import NB201Cell, NB201Res
from nas.blocks.residual import Basic, Bottleneck
from nas.blocks.sepconv import SepConv

KINDS: dict[str, type[Block]] = {cls.kind: cls for cls in (Conv, SepConv, Basic, Bottleneck, Inception, MBConv,
                                                           NB201Cell, NB201Res)}

__all__ = ["MAX_CHANNELS", "Block", "Conv", "SepConv", "Basic", "Bottleneck", "Inception", "MBConv", "NB201Cell",
           "NB201Res", "KINDS", "block_from_dict", "parse_block"]


def _kind(name: Any) -> type[Block]:
    if name not in KINDS:
        raise ValueError(f"`kind` must be one of {', '.join(KINDS)}, but got kind={name!r}")
    return KINDS[name]


def block_from_dict(data: dict[str, Any]) -> Block:
    if not isinstance(data, dict):
        raise ValueError(f"a block must be an object with a `kind`, but got {data!r}")
    return _kind(data.get("kind")).from_dict(data)


def parse_block(text: str) -> Block:
    """Parse a block's string form, e.g. ``mbconv_r2_k3_s2_e6_c24_se0.25``; strict: unknown tokens raise."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"a block string must be a non-empty string, but got {text!r}")
    kind, *tokens = text.split("_")
    return _kind(kind).parse_tokens(text, tokens)
