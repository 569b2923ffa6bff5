"""The NAS-Bench-201 skeleton's two block kinds: its searched cell and its residual reduction block.

Facts from Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search",
ICLR 2020, and its reference implementation (github.com/D-X-Y/AutoDL-Projects, ``xautodl/models/
cell_operations.py`` and ``cell_infers/{cells,tiny_network}.py``); the code here is written from them, not
copied.

``nb201cell`` (:class:`NB201Cell`): a DAG of 4 nodes. Node 0 is the cell's input, node ``j`` (1..3) is the
sum over ``i < j`` of ``op_ji(node i)``, and the output is node 3. Each of the 6 edges
(1,0), (2,0), (2,1), (3,0), (3,1), (3,2) -- the order of NAS-Bench-201's arch strings -- carries one of

* ``none``: contributes nothing (a node whose inputs are all ``none`` is the zero tensor);
* ``skip_connect``: the identity;
* ``nor_conv_1x1`` / ``nor_conv_3x3``: ReLU -> convolution (no bias, stride 1, same padding) -> BN;
* ``avg_pool_3x3``: 3x3 average pooling, stride 1, same padding, padding not counted in the average
  (PyTorch ``AvgPool2d(3, 1, padding=1, count_include_pad=False)``; Keras/TensorFlow ``AveragePooling2D`` with
  ``padding="same"`` divides by the number of real pixels in the window too, so the two agree exactly).

A cell keeps its input's channels (``filters`` must equal them; NAS-Bench-201 changes channels only in its
reduction blocks).

Two details make the cost and the built model equal NAS-Bench-201's own network, whose forward pass computes
every node:

* A zero node that an operation reads is materialised (``n{j}_zero``: the cell's input scaled by 0), because
  ReLU -> conv -> BN of zeros is BN's per-channel shift, not zero (pooling or skipping zeros stays zero).
* A node whose value never reaches the output (every path from it to node 3 crosses ``none``), but that has
  layers of its own, is still computed: its layers exist in NAS-Bench-201's network, count in its parameters
  and FLOPs, and take no part in the output. Keras keeps only layers the output depends on, so such a node is
  added to the output multiplied by 0 (``n{j}_unused``, then ``out``): same output, same weights.

``nb201res`` (:class:`NB201Res`): NAS-Bench-201's ResNet basic block in pre-activation order:
ReLU -> conv3x3 (stride) -> BN -> ReLU -> conv3x3 -> BN, plus the shortcut: with stride 2, 2x2/2 average
pooling then a 1x1 convolution (no bias, no BN); with stride 1 and a channel change, ReLU -> conv1x1 -> BN;
otherwise the identity. One difference from PyTorch that changes no shape, weight or count: PyTorch pads the
3x3/2 convolution by one pixel on every side, TensorFlow's ``same`` padding puts the one padding row/column
of an even-sized input only at the bottom/right, so the sampling grid is shifted by one pixel.

String forms (tokens in any order, strict like every kind):

* ``nb201cell_r5_c16_3-33-s33``: ``r`` cells, ``c`` channels, and the cell token: one character per edge
  grouped by the node it enters -- node 1 <- 0, node 2 <- 0, 1, node 3 <- 0, 1, 2 -- with ``n`` none,
  ``s`` skip_connect, ``1`` nor_conv_1x1, ``3`` nor_conv_3x3, ``p`` avg_pool_3x3. The example is
  ``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|``.
* ``nb201res_r1_s2_c32``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from nas._ops import Ops, ShapeError
from nas.blocks._base import Block, Token, check_channels, fail, int_token

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), in NAS-Bench-201's arch-string order
CODES = {"none": "n", "skip_connect": "s", "nor_conv_1x1": "1", "nor_conv_3x3": "3", "avg_pool_3x3": "p"}
_FROM_CODE = {code: op for op, code in CODES.items()}


def _read_cell(m: re.Match[str]) -> dict[str, Any]:
    return {"ops": tuple(_FROM_CODE[c] for c in "".join(m.groups()))}


def _write_cell(block: NB201Cell) -> str:
    codes = "".join(CODES[op] for op in block.ops)
    return f"{codes[0]}-{codes[1:3]}-{codes[3:]}"


@dataclass(frozen=True, kw_only=True)
class NB201Cell(Block):
    """``repeats`` NAS-Bench-201 cells of ``filters`` channels; ``ops``: the 6 edge operations in the order
    (1,0), (2,0), (2,1), (3,0), (3,1), (3,2). See the module docstring."""

    kind = "nb201cell"
    strides = (1,)
    channel_fields = ("filters",)

    filters: int
    ops: tuple[str, ...]

    tokens = (
        int_token("r", "repeats"),
        int_token("s", "stride", always=False, default=1),
        int_token("c", "filters"),
        Token("ops", re.compile(r"([nsp13])-([nsp13]{2})-([nsp13]{3})"), _read_cell, _write_cell),
    )

    def __post_init__(self) -> None:
        if isinstance(self.ops, list):
            object.__setattr__(self, "ops", tuple(self.ops))
        super().__post_init__()

    def validate(self) -> None:
        check_channels("filters", self.filters)
        if not isinstance(self.ops, tuple) or len(self.ops) != len(EDGES):
            raise fail("ops", f"a list of {len(EDGES)} operations, one per edge (1,0), (2,0), (2,1), (3,0), "
                              "(3,1), (3,2)", self.ops)
        for (j, i), op in zip(EDGES, self.ops):
            if op not in OPS:
                raise ValueError(f"`ops` must hold operations from {', '.join(OPS)}, but got {op!r} on edge "
                                 f"({j},{i}) in ops={self.ops!r}")

    def out_channels(self, in_channels: int) -> int:
        return self.filters

    def apply_block(self, ops: Ops, x: Any, prefix: str, *, stride: int, in_channels: int) -> Any:
        if in_channels != self.filters:
            raise ShapeError(f"layer {prefix}cell: a NAS-Bench-201 cell keeps its channels, so `filters` must "
                             f"equal its {in_channels} input channels, but got filters={self.filters} (change "
                             f"channels with an nb201res block)")
        inputs = {j: [(i, op) for (jj, i), op in zip(EDGES, self.ops) if jj == j and op != "none"]
                  for j in (1, 2, 3)}
        # nodes whose value reaches the output through edges other than `none`
        live = {3}
        for j in (2, 1):
            if any(i == j for k in live for i, _ in inputs[k]):
                live.add(j)
        # alias[j]: the node whose tensor node j is (a lone skip_connect input passes its source through)
        alias = {0: 0}
        for j in (1, 2, 3):
            alone = inputs[j][0] if len(inputs[j]) == 1 else None
            alias[j] = alias[alone[0]] if alone is not None and alone[1] == "skip_connect" else j
        nodes: dict[int, Any] = {0: x}

        def value(i: int) -> Any:
            if i not in nodes:  # a zero node that an operation reads: materialise it
                nodes[i] = ops.scale(x, f"{prefix}n{i}_zero", factor=0.0)
            return nodes[i]

        for j in (1, 2, 3):
            terms = []
            for i, op in inputs[j]:
                src = value(i)
                edge = f"{prefix}e{j}{i}_"
                if op == "skip_connect":
                    terms.append(src)
                elif op == "avg_pool_3x3":
                    terms.append(ops.pool(src, edge + "pool", kind="avg", size=3, stride=1, padding="same"))
                else:
                    y = ops.act(src, edge + "act", "relu")
                    y = ops.conv(y, edge + "conv", filters=self.filters, kernel=3 if op == "nor_conv_3x3" else 1)
                    terms.append(ops.bn(y, edge + "bn"))
            if len(terms) == 1:
                nodes[j] = terms[0]
            elif terms:
                nodes[j] = ops.add(terms, f"{prefix}n{j}_add")
            # no terms: a zero node, made only if something reads it
        out = value(3)
        # unused nodes with layers of their own are computed anyway (see the module docstring); a node 1 that
        # an unused node 2 reads goes with node 2
        unused = [j for j in (1, 2) if j not in live and inputs[j] and alias[j] not in live | {0}
                  and not (j == 1 and 2 not in live and any(i == 1 for i, _ in inputs[2]))]
        if unused:
            taps = [ops.scale(nodes[j], f"{prefix}n{j}_unused", factor=0.0) for j in unused]
            out = ops.add([out, *taps], f"{prefix}out")
        return out


@dataclass(frozen=True, kw_only=True)
class NB201Res(Block):
    """NAS-Bench-201's residual block (pre-activation ReLU-conv-BN, average-pool shortcut at stride 2). String
    form: ``nb201res_r1_s2_c32``. See the module docstring."""

    kind = "nb201res"
    channel_fields = ("filters",)

    filters: int

    tokens = (
        int_token("r", "repeats"),
        int_token("s", "stride"),
        int_token("c", "filters"),
    )

    def validate(self) -> None:
        check_channels("filters", self.filters)

    def out_channels(self, in_channels: int) -> int:
        return self.filters

    def apply_block(self, ops: Ops, x: Any, prefix: str, *, stride: int, in_channels: int) -> Any:
        if stride == 2 and isinstance(x, tuple) and (x[0] % 2 or x[1] % 2):  # shapes (cost) only; Keras follows
            raise ShapeError(f"layer {prefix}proj_pool: a stride-2 nb201res block needs an even feature map (its "
                             f"2x2/2 average-pool shortcut and its 3x3/2 convolution disagree on odd sizes), but "
                             f"got {x[0]}x{x[1]}")
        a = ops.act(x, prefix + "act1", "relu")
        y = ops.conv(a, prefix + "conv1", filters=self.filters, kernel=3, stride=stride)
        y = ops.bn(y, prefix + "bn1")
        y = ops.act(y, prefix + "act2", "relu")
        y = ops.conv(y, prefix + "conv2", filters=self.filters, kernel=3)
        y = ops.bn(y, prefix + "bn2")
        if stride == 2:
            s = ops.pool(x, prefix + "proj_pool", kind="avg", size=2, stride=2, padding="valid")
            s = ops.conv(s, prefix + "proj_conv", filters=self.filters, kernel=1)
        elif in_channels != self.filters:
            s = ops.conv(a, prefix + "proj_conv", filters=self.filters, kernel=1)
            s = ops.bn(s, prefix + "proj_bn")
        else:
            s = x
        return ops.add([s, y], prefix + "add")
