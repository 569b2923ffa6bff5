"""Compound scaling: one rounding rule for widths, one for depths, EfficientNet-B1..B7 from B0."""

from __future__ import annotations

import dataclasses
import random

import pytest

import nas
import search_spaces
from nas import round_filters, round_repeats, scale

from random_specs import random_spec


@pytest.mark.parametrize("filters, width, divisor, expected", [
    (32, 1.0, 8, 32),
    (32, 1.1, 8, 32),      # 35.2 -> 32, which is >= 90% of 35.2
    (1280, 1.1, 8, 1408),
    (16, 1.2, 8, 24),      # 19.2 -> 16 would be < 90% of 19.2 -> one divisor more
    (11, 1.0, 8, 16),      # 11 -> 8 would be < 9.9 -> 16
    (3, 1.0, 8, 8),        # never below the divisor
    (100, 0.5, 4, 52),     # 50 -> nearest multiple of 4, ties up
])
def test_round_filters(filters: int, width: float, divisor: int, expected: int) -> None:
    assert round_filters(filters, width, divisor) == expected


def test_round_filters_never_below_90_percent() -> None:
    rng = random.Random(0)
    for _ in range(5000):
        f, w = rng.randint(1, 2048), rng.uniform(0.1, 4.0)
        out = round_filters(f, w)
        assert out % 8 == 0 and out >= 8
        assert out >= 0.9 * f * w
        assert abs(out - f * w) <= 8 or out == 8


def test_round_repeats_is_ceil() -> None:
    assert [round_repeats(r, 1.1) for r in (1, 2, 3, 4)] == [2, 3, 4, 5]
    assert round_repeats(4, 1.0) == 4 and round_repeats(3, 3.1) == 10


@pytest.mark.parametrize("index", range(1, 8))
def test_efficientnet_b1_to_b7_are_b0_scaled(index: int) -> None:
    from search_spaces._baselines import EFFICIENTNET_COEFFICIENTS

    width, depth, size, dropout = EFFICIENTNET_COEFFICIENTS[index]
    b0 = search_spaces.baseline("efficientnet_b0")
    scaled = scale(b0, width=width, depth=depth, image_size=size)
    expected = search_spaces.baseline(f"efficientnet_b{index}")
    assert scaled.replace(head=expected.head) == expected
    assert expected.head.dropout == dropout


def test_scale_widths_depths_and_resolution() -> None:
    spec = search_spaces.baseline("resnet18", input_shape=(32, 32, 3), num_classes=10)
    big = scale(spec, depth=1.5, width=2.0, resolution=1.25)
    assert big.input_shape == (40, 40, 3)
    assert [s.repeats for s in big.stages] == [3, 3, 3, 3]
    assert [s.filters for s in big.stages] == [128, 256, 512, 1024]
    assert big.stem[0].filters == 128 and big.stem[0].repeats == 1
    assert big.num_classes == 10 and big.head == spec.head
    assert nas.cost(big).macs > nas.cost(spec).macs
    assert scale(spec) == spec
    assert scale(spec, image_size=(48, 40)).input_shape == (48, 40, 3)


def test_scale_is_pure_and_covers_every_family() -> None:
    for seed in range(60):
        spec = random_spec(seed)
        before = spec.to_json()
        try:
            out = scale(spec, width=1.3, depth=1.2)
        except ValueError as exc:
            assert "below 1 pixel" in str(exc)
            continue
        assert spec.to_json() == before
        for a, b in zip(spec.stages, out.stages):
            assert b.repeats == round_repeats(a.repeats, 1.2)
            for name in a.channel_fields:
                value = getattr(a, name)
                assert getattr(b, name) == (round_filters(value, 1.3) if value else 0)
            rest = {f.name for f in dataclasses.fields(a)} - set(a.channel_fields) - {"repeats"}
            assert all(getattr(a, f) == getattr(b, f) for f in rest)


def test_scale_rejects_bad_coefficients() -> None:
    spec = search_spaces.baseline("lenet5")
    with pytest.raises(ValueError, match="`width` must be in"):
        scale(spec, width=0)
    with pytest.raises(ValueError, match="`image_size` must be >= 1, but got image_size=0"):
        scale(spec, image_size=0)
    with pytest.raises(ValueError, match="below 1 pixel"):
        scale(spec, resolution=0.2)
