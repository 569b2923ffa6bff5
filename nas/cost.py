"""Analytic cost of an ``ArchSpec``: MACs, FLOPs and params per layer, from shape arithmetic alone.

The counting convention is stated once, in ``nas/_ops.py``: ``macs`` are the multiply-accumulates of
convolution, depthwise-convolution and dense layers (the papers' convention); bias additions, batch norm,
activations, pooling, residual additions, squeeze-excite gating and softmax are excluded; ``flops`` is
``2 * macs``; ``params`` counts every stored weight (batch norm's moving statistics included), which is what
``keras.Model.count_params()`` reports. No TensorFlow is imported.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TextIO

from nas._ops import LayerCost
from nas.spec import ArchSpec

__all__ = ["Cost", "LayerCost", "cost", "summary"]


@dataclass(frozen=True)
class Cost:
    macs: int
    params: int
    layers: tuple[LayerCost, ...]
    output_shape: tuple[int, ...]

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def as_dict(self) -> dict[str, int]:
        return {"macs": self.macs, "flops": self.flops, "params": self.params}


def cost(spec: ArchSpec) -> Cost:
    """MACs, FLOPs, params and the per-layer table of ``spec`` (see the module docstring for the convention)."""
    if not isinstance(spec, ArchSpec):
        raise TypeError(f"cost() needs an ArchSpec, but got {type(spec).__name__}")
    rows: tuple[LayerCost, ...] = vars(spec)["_rows"]  # walked once by ArchSpec.__post_init__
    macs = params = 0
    for row in rows:
        macs += row.macs
        params += row.params
    return Cost(macs=macs, params=params, layers=rows, output_shape=rows[-1].output_shape)


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def summary(spec: ArchSpec, *, all_layers: bool = False, file: TextIO | None = None) -> str:
    """Print (and return) the per-layer cost table with totals.

    Layers without MACs, params or a shape change (activations, dropout) are left out unless ``all_layers``.
    """
    c = cost(spec)
    lines = [f"{spec}", f"{'layer':<28} {'op':<16} {'output':>16} {'MACs':>16} {'params':>12}"]
    previous: tuple[int, ...] = spec.input_shape
    for row in c.layers:
        if all_layers or row.macs or row.params or row.output_shape != previous:
            shape = "x".join(map(str, row.output_shape))
            lines.append(f"{row.name:<28} {row.op:<16} {shape:>16} {row.macs:>16,} {row.params:>12,}")
        previous = row.output_shape
    lines.append(f"{'total':<28} {'':<16} {'':>16} {c.macs:>16,} {c.params:>12,}")
    lines.append(f"MACs {_human(c.macs)}  FLOPs {_human(c.flops)}  params {_human(c.params)}  key {spec.key()}")
    text = "\n".join(lines)
    print(text, file=file or sys.stdout)
    return text
