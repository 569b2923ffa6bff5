"""Compound scaling (EfficientNet, Tan & Le 2019): one rounding rule for widths and one for depths, used by
every block family.
"""

from __future__ import annotations

import math

from nas.blocks._base import check_float, check_int
from nas.spec import ArchSpec

__all__ = ["round_filters", "round_repeats", "scale"]


def round_filters(filters: float, width: float = 1.0, divisor: int = 8) -> int:
    """``filters * width`` rounded to the nearest multiple of ``divisor``, never below ``divisor`` and never
    more than 10% below the target (the rule of the MobileNet and EfficientNet reference code)."""
    target = filters * width
    rounded = max(divisor, int(target + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * target:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth: float = 1.0) -> int:
    """``repeats * depth`` rounded up."""
    return int(math.ceil(depth * repeats))


def scale(spec: ArchSpec, *, depth: float = 1.0, width: float = 1.0, resolution: float = 1.0,
          image_size: int | tuple[int, int] | None = None, divisor: int = 8) -> ArchSpec:
    """Scale ``spec`` by EfficientNet's compound rule.

    ``width`` multiplies every channel count of the stem, the stages and the head's 1x1 convolution (through
    :func:`round_filters`); ``depth`` multiplies every stage's repeats (through :func:`round_repeats`; stem
    and head are not repeated); ``resolution`` multiplies the input height and width (rounded to the nearest
    integer), or ``image_size`` sets them outright (EfficientNet-B1..B7 use hand-picked sizes: 240, 260...).
    Hidden dense layers of the head and the number of classes are unchanged.
    """
    check_float("depth", depth, low=0.01, high=100.0)
    check_float("width", width, low=0.01, high=100.0)
    check_float("resolution", resolution, low=0.01, high=100.0)
    check_int("divisor", divisor, low=1)
    h, w, c = spec.input_shape
    if image_size is not None:
        if isinstance(image_size, int):
            check_int("image_size", image_size, low=1)
            h = w = image_size
        else:
            check_int("image_size", image_size[0], low=1)
            check_int("image_size", image_size[1], low=1)
            h, w = image_size
    else:
        h, w = max(1, round(h * resolution)), max(1, round(w * resolution))

    def widen(n: int) -> int:
        return round_filters(n, width, divisor)

    def deepen(n: int) -> int:
        return round_repeats(n, depth)

    stem = tuple(b.scaled(widen, lambda n: n) for b in spec.stem)
    stages = tuple(b.scaled(widen, deepen) for b in spec.stages)
    head = spec.head
    if head.conv:
        head = type(head)(**{**head.to_dict(), "conv": widen(head.conv)})
    return spec.replace(input_shape=(h, w, c), stem=stem, stages=stages, head=head)
