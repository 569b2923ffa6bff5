"""Keras 3 builder: the same block descriptions as ``nas.cost``, interpreted as built-in Keras layers.

Only built-in layers are used, so a saved ``.keras`` file loads with plain ``keras.saving.load_model`` and no
custom objects. Layer names are deterministic and equal the row names of ``nas.cost(spec).layers``.
"""

from __future__ import annotations

from typing import Any

import keras

from nas._ops import ACTIVATIONS
from nas.spec import ArchSpec, trace

__all__ = ["build_model"]


class KerasOps:
    def __init__(self, spec: ArchSpec, bn_momentum: float | None = None) -> None:
        self.momentum = spec.bn_momentum if bn_momentum is None else bn_momentum
        self.epsilon = spec.bn_epsilon

    def input(self, shape: tuple[int, int, int]) -> Any:
        self.inputs = keras.Input(shape=shape, name="input")
        return self.inputs

    def conv(self, x: Any, name: str, *, filters: int, kernel: int = 1, stride: int = 1,
             padding: str = "same", bias: bool = False) -> Any:
        return keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=bias,
                                   kernel_initializer="he_normal", name=name)(x)

    def depthwise(self, x: Any, name: str, *, kernel: int, stride: int = 1, padding: str = "same",
                  bias: bool = False) -> Any:
        return keras.layers.DepthwiseConv2D(kernel, strides=stride, padding=padding, use_bias=bias,
                                            depthwise_initializer="he_normal", name=name)(x)

    def bn(self, x: Any, name: str) -> Any:
        return keras.layers.BatchNormalization(momentum=self.momentum, epsilon=self.epsilon, name=name)(x)

    def act(self, x: Any, name: str, activation: str) -> Any:
        return keras.layers.Activation(ACTIVATIONS[activation], name=name)(x)

    def pool(self, x: Any, name: str, *, kind: str, size: int, stride: int, padding: str) -> Any:
        layer = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
        return layer(size, strides=stride, padding=padding, name=name)(x)

    def global_pool(self, x: Any, name: str, *, kind: str, keepdims: bool = False) -> Any:
        layer = keras.layers.GlobalMaxPooling2D if kind == "max" else keras.layers.GlobalAveragePooling2D
        return layer(keepdims=keepdims, name=name)(x)

    def flatten(self, x: Any, name: str) -> Any:
        return keras.layers.Flatten(name=name)(x)

    def dense(self, x: Any, name: str, *, units: int, activation: str | None = None) -> Any:
        act = None if activation is None else ACTIVATIONS.get(activation, activation)
        # under a mixed-precision policy the classifier's softmax stays float32 (numerically stable)
        dtype = "float32" if name == "predictions" and keras.mixed_precision.global_policy().name != "float32" else None
        return keras.layers.Dense(units, activation=act, name=name, dtype=dtype)(x)

    def dropout(self, x: Any, name: str, *, rate: float, per_sample: bool = False) -> Any:
        noise_shape = (None, 1, 1, 1) if per_sample else None
        return keras.layers.Dropout(rate, noise_shape=noise_shape, name=name)(x)

    def add(self, xs: list[Any], name: str) -> Any:
        return keras.layers.Add(name=name)(xs)

    def multiply(self, xs: list[Any], name: str) -> Any:
        return keras.layers.Multiply(name=name)(xs)

    def concat(self, xs: list[Any], name: str) -> Any:
        return keras.layers.Concatenate(name=name)(xs)

    def scale(self, x: Any, name: str, *, factor: float) -> Any:
        return keras.layers.Rescaling(factor, name=name)(x)


def build_model(spec: ArchSpec, *, name: str | None = None, bn_momentum: float | None = None) -> keras.Model:
    """A Keras functional model of ``spec`` (softmax outputs, deterministic layer names).

    ``bn_momentum`` overrides the spec's batch-norm momentum (searches train with 0.9: short trials).
    """
    if not isinstance(spec, ArchSpec):
        raise TypeError(f"build_model() needs an ArchSpec, but got {type(spec).__name__}")
    ops = KerasOps(spec, bn_momentum)
    outputs = trace(spec, ops)
    return keras.Model(ops.inputs, outputs, name=name or f"nas_{spec.key()}")
