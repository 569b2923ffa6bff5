"""The primitive operations every block kind is written in.

A block kind describes its structure once, as calls on an ``Ops`` object
(``conv``, ``depthwise``, ``bn``, ``act``, ``pool``, ``add``...).  Two
interpreters run that description:

* ``ShapeOps`` (this module): tensors are ``(H, W, C)`` tuples; every call
  appends a :class:`LayerCost` row with the layer's output shape, MACs and
  params.  Pure Python, no TensorFlow; this is ``nas.cost``.
* ``KerasOps`` (``nas/build.py``): tensors are Keras tensors; every call adds
  the matching built-in Keras layer under the same name.  This is
  ``nas.build_model``.

Because both walk the same description, the layer names in the cost table are
the Keras layer names, and a test can compare them layer by layer.

Counting convention (stated once, used everywhere)
---------------------------------------------------
``macs`` counts the multiply-accumulates of convolutions, depthwise
convolutions and dense layers only: ``k*k*C_in*C_out*H_out*W_out`` for a
convolution, ``k*k*C*H_out*W_out`` for a depthwise convolution and
``N_in*N_out`` for a dense layer (the convention of the ResNet, MobileNet and
EfficientNet papers).  Bias additions, batch normalisation, activations,
pooling, residual additions, squeeze-excite multiplications, scaling by a
constant, concatenation and softmax are *excluded* from ``macs``; ``flops`` is
exactly ``2 * macs``.
``params`` counts every weight Keras stores, trainable or not (batch norm's
moving mean and variance included), so it equals ``Model.count_params()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

Shape = tuple[int, int, int]

# our name -> Keras activation identifier
ACTIVATIONS: dict[str, str] = {
    "relu": "relu",
    "relu6": "relu6",
    "swish": "swish",
    "hswish": "hard_swish",
    "gelu": "gelu",
    "elu": "elu",
    "selu": "selu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "linear": "linear",
}


@dataclass(frozen=True, slots=True)
class LayerCost:
    """One row of the cost table: a layer of the built model."""

    name: str
    op: str
    output_shape: tuple[int, ...]
    macs: int
    params: int


class ShapeError(ValueError):
    """A layer cannot take its input's shape, e.g. a feature map shrank below one pixel (raised with the layer
    that did it)."""


def conv_out(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1 if size >= kernel else 0


class Ops(Protocol):
    def conv(self, x: Any, name: str, *, filters: int, kernel: int = 1, stride: int = 1,
             padding: str = "same", bias: bool = False) -> Any: ...
    def depthwise(self, x: Any, name: str, *, kernel: int, stride: int = 1,
                  padding: str = "same", bias: bool = False) -> Any: ...
    def bn(self, x: Any, name: str) -> Any: ...
    def act(self, x: Any, name: str, activation: str) -> Any: ...
    def pool(self, x: Any, name: str, *, kind: str, size: int, stride: int, padding: str) -> Any: ...
    def global_pool(self, x: Any, name: str, *, kind: str, keepdims: bool = False) -> Any: ...
    def flatten(self, x: Any, name: str) -> Any: ...
    def dense(self, x: Any, name: str, *, units: int, activation: str | None = None) -> Any: ...
    def dropout(self, x: Any, name: str, *, rate: float, per_sample: bool = False) -> Any: ...
    def add(self, xs: list[Any], name: str) -> Any: ...
    def multiply(self, xs: list[Any], name: str) -> Any: ...
    def concat(self, xs: list[Any], name: str) -> Any: ...
    def scale(self, x: Any, name: str, *, factor: float) -> Any: ...


class ShapeOps:
    """Interprets a block description on shapes, recording a cost row per layer."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[LayerCost] = []

    def _row(self, name: str, op: str, shape: tuple[int, ...], macs: int = 0, params: int = 0) -> None:
        self.rows.append(LayerCost(name, op, shape, macs, params))

    def _spatial(self, x: Shape, name: str, kernel: int, stride: int, padding: str) -> tuple[int, int]:
        h = conv_out(x[0], kernel, stride, padding)
        w = conv_out(x[1], kernel, stride, padding)
        if h < 1 or w < 1:
            raise ShapeError(
                f"layer {name!r} shrinks the feature map below 1 pixel: input {x[0]}x{x[1]}, "
                f"kernel {kernel}, stride {stride}, padding {padding!r} -> {max(h, 0)}x{max(w, 0)}"
            )
        return h, w

    def conv(self, x: Shape, name: str, *, filters: int, kernel: int = 1, stride: int = 1,
             padding: str = "same", bias: bool = False) -> Shape:
        h, w = self._spatial(x, name, kernel, stride, padding)
        params = kernel * kernel * x[2] * filters + (filters if bias else 0)
        out = (h, w, filters)
        self._row(name, "conv", out, kernel * kernel * x[2] * filters * h * w, params)
        return out

    def depthwise(self, x: Shape, name: str, *, kernel: int, stride: int = 1,
                  padding: str = "same", bias: bool = False) -> Shape:
        h, w = self._spatial(x, name, kernel, stride, padding)
        c = x[2]
        out = (h, w, c)
        self._row(name, "depthwise", out, kernel * kernel * c * h * w, kernel * kernel * c + (c if bias else 0))
        return out

    def bn(self, x: Shape, name: str) -> Shape:
        self._row(name, "bn", x, 0, 4 * x[-1])
        return x

    def act(self, x: Shape, name: str, activation: str) -> Shape:
        self._row(name, "act", x)
        return x

    def pool(self, x: Shape, name: str, *, kind: str, size: int, stride: int, padding: str) -> Shape:
        h, w = self._spatial(x, name, size, stride, padding)
        out = (h, w, x[2])
        self._row(name, f"{kind}pool", out)
        return out

    def global_pool(self, x: Shape, name: str, *, kind: str, keepdims: bool = False) -> Any:
        out: tuple[int, ...] = (1, 1, x[2]) if keepdims else (x[2],)
        self._row(name, f"global_{kind}pool", out)
        return out

    def flatten(self, x: tuple[int, ...], name: str) -> tuple[int]:
        n = 1
        for d in x:
            n *= d
        self._row(name, "flatten", (n,))
        return (n,)

    def dense(self, x: tuple[int, ...], name: str, *, units: int, activation: str | None = None) -> tuple[int]:
        self._row(name, "dense", (units,), x[-1] * units, x[-1] * units + units)
        return (units,)

    def dropout(self, x: Any, name: str, *, rate: float, per_sample: bool = False) -> Any:
        self._row(name, "dropout", x)
        return x

    def add(self, xs: list[Any], name: str) -> Any:
        self._row(name, "add", xs[0])
        return xs[0]

    def multiply(self, xs: list[Any], name: str) -> Any:
        self._row(name, "multiply", xs[0])
        return xs[0]

    def concat(self, xs: list[Shape], name: str) -> Shape:
        out = (xs[0][0], xs[0][1], sum(x[2] for x in xs))
        self._row(name, "concat", out)
        return out

    def scale(self, x: Any, name: str, *, factor: float) -> Any:
        """``factor * x`` (no weights). ``factor=0.0`` makes the zero tensor of NAS-Bench-201's ``none`` op."""
        self._row(name, "scale", x)
        return x
