"""A seeded generator of valid specs covering every block kind and option (for property tests)."""

from __future__ import annotations

import random

from nas import ArchSpec, Basic, Bottleneck, Conv, Head, Inception, MBConv, SepConv
from nas._ops import ACTIVATIONS

ACTS = sorted(ACTIVATIONS)


def random_block(rng: random.Random, kind: str) -> object:
    act = rng.choice(ACTS)
    r = rng.choice((1, 1, 2))
    s = rng.choice((1, 2))
    c = rng.choice((4, 8, 12, 16))
    if kind == "conv":
        pool = rng.choice((None, "max", "avg"))
        size = rng.choice((2, 3))
        return Conv(filters=c, repeats=r, stride=rng.choice((1, 2, 4)), kernel=rng.choice((1, 3, 5, 7)),
                    padding=rng.choice(("same", "valid")), bn=rng.random() < 0.5, bias=rng.random() < 0.5,
                    activation=act, pool=pool, pool_size=size, pool_stride=rng.choice((1, 2, size)),
                    pool_padding=rng.choice(("same", "valid")))
    if kind == "sepconv":
        return SepConv(filters=c, repeats=r, stride=s, kernel=rng.choice((3, 5, 7)), bn=rng.random() < 0.5,
                       bias=rng.random() < 0.5, activation=act)
    if kind == "basic":
        return Basic(filters=c, repeats=r, stride=s, bias=rng.random() < 0.5, activation=act)
    if kind == "bottleneck":
        return Bottleneck(filters=c, repeats=r, stride=s, expansion=rng.choice((1, 2, 4)),
                          stride_on=rng.choice(("1x1", "3x3")), bias=rng.random() < 0.5, activation=act)
    if kind == "inception":
        while True:
            w = {k: rng.choice((0, 4, 8)) for k in ("b1", "b3", "b5", "pool_proj")}
            if any(w.values()):
                break
        return Inception(repeats=r, stride=s, b3_reduce=rng.choice((0, 4)) if w["b3"] else 0,
                         b5_reduce=rng.choice((0, 4)) if w["b5"] else 0, factorize=rng.random() < 0.5,
                         bn=rng.random() < 0.5, bias=rng.random() < 0.5, activation=act, **w)
    if kind == "mbconv":
        return MBConv(filters=rng.choice((c, 8)), repeats=rng.choice((1, 2, 3)), stride=s,
                      kernel=rng.choice((3, 5, 7)), expansion=rng.choice((1, 3, 4, 6)),
                      se=rng.choice((0.0, 0.25, 0.5)), drop=rng.choice((0.0, 0.1)), skip=rng.random() < 0.8,
                      activation=act)
    raise ValueError(kind)


KINDS = ("conv", "sepconv", "basic", "bottleneck", "inception", "mbconv")


def random_spec(seed: int) -> ArchSpec:
    """A valid random spec; stage kinds cycle so every kind appears across consecutive seeds."""
    rng = random.Random(seed)
    while True:
        size = rng.choice((8, 12, 16, 28, 32, 40))
        shape = (size, rng.choice((size, size + 4)), rng.choice((1, 3)))
        n = rng.randint(1, 4)
        kinds = [KINDS[(seed + i) % len(KINDS)] if i == 0 else rng.choice(KINDS) for i in range(n)]
        stem = () if rng.random() < 0.5 else (Conv(filters=8, stride=rng.choice((1, 2)),
                                                   activation=rng.choice(ACTS)),)
        head = Head(conv=rng.choice((0, 0, 16)), pool=rng.choice(("avg", "max", "flatten")),
                    hidden=rng.choice(((), (12,), (16, 8))), dropout=rng.choice((0.0, 0.2)),
                    activation=rng.choice(ACTS))
        try:
            return ArchSpec(input_shape=shape, num_classes=rng.choice((2, 10)), stem=stem,
                            stages=tuple(random_block(rng, k) for k in kinds), head=head,
                            bn_momentum=rng.choice((0.9, 0.99)))
        except ValueError as exc:  # the feature map shrank below 1 pixel: draw again
            assert "below 1 pixel" in str(exc), exc
