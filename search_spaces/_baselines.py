"""The classic networks as ``ArchSpec`` data (baselines, and named points of the search spaces).

Sources: LeNet-5 (LeCun et al. 1998), AlexNet (Krizhevsky et al. 2012, single-tower), VGG-16 (Simonyan &
Zisserman 2014), ResNet-18/34/50 (He et al. 2015), GoogLeNet (Szegedy et al. 2014, without LRN and auxiliary
heads), MobileNetV1 (Howard et al. 2017), MobileNetV2 (Sandler et al. 2018), EfficientNet-B0..B7 (Tan & Le
2019). Where a Keras application exists, the spec matches its layers (bias, batch norm, head) so that the
parameter counts agree exactly. Batch-norm momentum and epsilon are left at the defaults (they change no
count; Keras uses epsilon 1.001e-5 for ResNet and momentum 0.999 for MobileNetV2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict, cast

from nas.blocks import Basic, Block, Bottleneck, Conv, Inception, MBConv, SepConv
from nas.scaling import scale
from nas.spec import ArchSpec, Head

Shape = tuple[int, int, int]


class Unit(TypedDict):
    """Batch norm and bias of a convolution."""

    bn: bool
    bias: bool


PLAIN = Unit(bn=False, bias=True)  # the networks before batch norm: a bias on every convolution


def _lenet5(shape: Shape | None, classes: int) -> ArchSpec:
    return ArchSpec(
        input_shape=shape or (32, 32, 1), num_classes=classes,
        stages=(
            Conv(filters=6, kernel=5, padding="valid", bn=False, bias=True, activation="tanh", pool="avg"),
            Conv(filters=16, kernel=5, padding="valid", bn=False, bias=True, activation="tanh", pool="avg"),
        ),
        head=Head(pool="flatten", hidden=(120, 84), activation="tanh"),
    )


def _alexnet(shape: Shape | None, classes: int) -> ArchSpec:
    return ArchSpec(
        input_shape=shape or (227, 227, 3), num_classes=classes,
        stages=(
            Conv(filters=96, kernel=11, stride=4, padding="valid", pool="max", pool_size=3, pool_stride=2, **PLAIN),
            Conv(filters=256, kernel=5, pool="max", pool_size=3, pool_stride=2, **PLAIN),
            Conv(filters=384, **PLAIN),
            Conv(filters=384, **PLAIN),
            Conv(filters=256, pool="max", pool_size=3, pool_stride=2, **PLAIN),
        ),
        head=Head(pool="flatten", hidden=(4096, 4096), dropout=0.5),
    )


def _vgg16(shape: Shape | None, classes: int) -> ArchSpec:
    return ArchSpec(
        input_shape=shape or (224, 224, 3), num_classes=classes,
        stages=tuple(Conv(filters=f, repeats=r, bn=False, bias=True, pool="max")
                     for f, r in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))),
        head=Head(pool="flatten", hidden=(4096, 4096)),
    )


_RESNET_STEM = (Conv(filters=64, kernel=7, stride=2, pool="max", pool_size=3, pool_stride=2, pool_padding="same"),)


def _resnet(depths: tuple[int, ...], bottleneck: bool) -> Callable[[Shape | None, int], ArchSpec]:
    def make(shape: Shape | None, classes: int) -> ArchSpec:
        stages: tuple[Block, ...]
        if bottleneck:
            # Keras's ResNet50: convolutions with bias, stride on the first 1x1 (ResNet v1 as published)
            stem = (Conv(filters=64, kernel=7, stride=2, bias=True, pool="max", pool_size=3, pool_stride=2,
                         pool_padding="same"),)
            stages = tuple(Bottleneck(filters=f, repeats=r, stride=1 if i == 0 else 2, bias=True)
                           for i, (f, r) in enumerate(zip((64, 128, 256, 512), depths)))
        else:
            stem = _RESNET_STEM
            stages = tuple(Basic(filters=f, repeats=r, stride=1 if i == 0 else 2)
                           for i, (f, r) in enumerate(zip((64, 128, 256, 512), depths)))
        return ArchSpec(input_shape=shape or (224, 224, 3), num_classes=classes, stem=stem, stages=stages,
                        head=Head(pool="avg"))
    return make


# GoogLeNet's modules (Szegedy et al. 2014, table 1): 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj
GOOGLENET_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def _googlenet(shape: Shape | None, classes: int) -> ArchSpec:
    stem = (
        Conv(filters=64, kernel=7, stride=2, pool="max", pool_size=3, pool_stride=2, pool_padding="same", **PLAIN),
        Conv(filters=64, kernel=1, **PLAIN),
        Conv(filters=192, kernel=3, pool="max", pool_size=3, pool_stride=2, pool_padding="same", **PLAIN),
    )
    stages = tuple(
        Inception(b1=m[0], b3_reduce=m[1], b3=m[2], b5_reduce=m[3], b5=m[4], pool_proj=m[5],
                  stride=2 if name in ("4a", "5a") else 1)
        for name, m in GOOGLENET_MODULES.items())
    return ArchSpec(input_shape=shape or (224, 224, 3), num_classes=classes, stem=stem, stages=stages,
                    head=Head(pool="avg", dropout=0.4))


MOBILENET_V1 = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
                (512, 1), (512, 1), (1024, 2), (1024, 1))


def _mobilenet_v1(shape: Shape | None, classes: int) -> ArchSpec:
    # consecutive equal layers are one stage with repeats
    stages: list[SepConv] = []
    for filters, stride in MOBILENET_V1:
        last = stages[-1] if stages else None
        if last is not None and stride == 1 and last.filters == filters:
            stages[-1] = SepConv(filters=filters, stride=last.stride, repeats=last.repeats + 1, activation="relu6")
        else:
            stages.append(SepConv(filters=filters, stride=stride, activation="relu6"))
    return ArchSpec(input_shape=shape or (224, 224, 3), num_classes=classes,
                    stem=(Conv(filters=32, stride=2, activation="relu6"),), stages=tuple(stages),
                    head=Head(pool="avg", dropout=1e-3))


# MobileNetV2 (Sandler et al. 2018, table 2): expansion t, channels c, repeats n, stride s
MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))


def _mobilenet_v2(shape: Shape | None, classes: int) -> ArchSpec:
    return ArchSpec(
        input_shape=shape or (224, 224, 3), num_classes=classes,
        stem=(Conv(filters=32, stride=2, activation="relu6"),),
        stages=tuple(MBConv(filters=c, expansion=t, repeats=n, stride=s, kernel=3, activation="relu6")
                     for t, c, n, s in MOBILENET_V2),
        head=Head(conv=1280, pool="avg", activation="relu6"),
    )


# EfficientNet-B0 (Tan & Le 2019, table 1): kernel, repeats, output channels, expansion, stride (SE 0.25)
EFFICIENTNET_B0 = ((3, 1, 16, 1, 1), (3, 2, 24, 6, 2), (5, 2, 40, 6, 2), (3, 3, 80, 6, 2), (5, 3, 112, 6, 1),
                   (5, 4, 192, 6, 2), (3, 1, 320, 6, 1))
# width, depth, resolution, dropout
EFFICIENTNET_COEFFICIENTS = {
    0: (1.0, 1.0, 224, 0.2), 1: (1.0, 1.1, 240, 0.2), 2: (1.1, 1.2, 260, 0.3), 3: (1.2, 1.4, 300, 0.3),
    4: (1.4, 1.8, 380, 0.4), 5: (1.6, 2.2, 456, 0.4), 6: (1.8, 2.6, 528, 0.5), 7: (2.0, 3.1, 600, 0.5),
}
EFFICIENTNET_DROP_CONNECT = 0.2


def _efficientnet_b0(shape: Shape | None, classes: int) -> ArchSpec:
    # stochastic depth grows linearly with the block index up to 0.2 (per stage: its first block's rate)
    total = sum(r for _, r, _, _, _ in EFFICIENTNET_B0)
    stages, seen = [], 0
    for k, r, c, e, s in EFFICIENTNET_B0:
        drop = round(EFFICIENTNET_DROP_CONNECT * seen / total, 4)
        stages.append(MBConv(filters=c, kernel=k, repeats=r, expansion=e, stride=s, se=0.25, drop=drop,
                             activation="swish"))
        seen += r
    return ArchSpec(input_shape=shape or (224, 224, 3), num_classes=classes,
                    stem=(Conv(filters=32, stride=2, activation="swish"),), stages=tuple(stages),
                    head=Head(conv=1280, pool="avg", dropout=0.2, activation="swish"))


def _efficientnet(index: int) -> Callable[[Shape | None, int], ArchSpec]:
    def make(shape: Shape | None, classes: int) -> ArchSpec:
        width, depth, size, dropout = EFFICIENTNET_COEFFICIENTS[index]
        b0 = _efficientnet_b0(None, classes)
        scaled = scale(b0, width=width, depth=depth, image_size=size)
        head = Head(conv=scaled.head.conv, pool="avg", dropout=dropout, activation="swish")
        return scaled.replace(head=head, input_shape=shape or scaled.input_shape)
    return make


BASELINES: dict[str, Callable[[Shape | None, int], ArchSpec]] = {
    "lenet5": _lenet5,
    "alexnet": _alexnet,
    "vgg16": _vgg16,
    "resnet18": _resnet((2, 2, 2, 2), bottleneck=False),
    "resnet34": _resnet((3, 4, 6, 3), bottleneck=False),
    "resnet50": _resnet((3, 4, 6, 3), bottleneck=True),
    "googlenet": _googlenet,
    "mobilenet_v1": _mobilenet_v1,
    "mobilenet_v2": _mobilenet_v2,
    **{f"efficientnet_b{i}": _efficientnet(i) for i in range(8)},
}


def baselines() -> list[str]:
    """Names of the classic networks available as specs."""
    return list(BASELINES)


def baseline(name: str, *, input_shape: Shape | None = None, num_classes: int = 1000) -> ArchSpec:
    """The classic network ``name`` as an ``ArchSpec``, at its own default resolution unless ``input_shape``."""
    if name not in BASELINES:
        raise ValueError(f"`name` must be one of {', '.join(BASELINES)}, but got name={name!r}")
    if input_shape is not None:
        input_shape = cast(Shape, tuple(input_shape))  # a list from JSON too; ArchSpec checks it
    return BASELINES[name](input_shape, num_classes)
