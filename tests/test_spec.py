"""The spec as data: JSON and string round-trips, key stability, validation errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import search_spaces
from nas import ArchSpec, Basic, Bottleneck, Conv, Head, Inception, MBConv, SepConv, parse_block

from random_specs import random_spec


def mnist_cnn() -> ArchSpec:
    plain = dict(padding="valid", bn=False, bias=True)
    return ArchSpec(input_shape=(28, 28, 1), num_classes=10,
                    stages=(Conv(filters=32, pool="max", **plain), Conv(filters=64, pool="max", **plain),
                            Conv(filters=128, **plain)),
                    head=Head(pool="flatten"))


@pytest.mark.parametrize("name", search_spaces.baselines())
def test_baseline_json_round_trip(name: str) -> None:
    spec = search_spaces.baseline(name)
    again = ArchSpec.from_json(spec.to_json())
    assert again == spec
    assert again.to_json() == spec.to_json()
    assert again.key() == spec.key()


def test_random_specs_round_trip_json_and_strings() -> None:
    blocks = 0
    for seed in range(300):
        spec = random_spec(seed)
        assert ArchSpec.from_json(spec.to_json()) == spec
        assert ArchSpec.from_json(spec.to_json(indent=2)) == spec
        for block in spec.stem + spec.stages:
            assert parse_block(str(block)) == block, str(block)
            blocks += 1
    assert blocks > 600


def test_block_strings_are_the_documented_form() -> None:
    mbconv = MBConv(filters=24, repeats=2, kernel=3, stride=2, expansion=6, se=0.25)
    assert str(mbconv) == "mbconv_r2_k3_s2_e6_c24_se0.25"
    assert str(Bottleneck(filters=64, repeats=3)) == "bottleneck_r3_s1_c64_e4"
    assert str(Conv(filters=96, kernel=11, stride=4, padding="valid", bn=False, bias=True, pool="max",
                    pool_size=3, pool_stride=2)) == "conv_r1_k11_s4_c96_valid_nobn_bias_mp3/2"
    assert str(Inception(b1=64, b3_reduce=96, b3=128, b5_reduce=16, b5=32, pool_proj=32)) == \
        "inception_r1_s1_1x64_3x96-128_5x16-32_pp32"
    assert parse_block("inception_r1_s2_3x128_fact") == Inception(b3=128, stride=2, factorize=True)
    # tokens may come in any order
    assert parse_block("mbconv_c24_e6_r2_s2_k3_se0.25") == MBConv(filters=24, repeats=2, stride=2, se=0.25)
    assert parse_block("conv_r2_k3_s1_c64_nobn_bias_mp2") == Conv(filters=64, repeats=2, bn=False, bias=True,
                                                                  pool="max")


@pytest.mark.parametrize("text, message", [
    ("mbconv_r2_k3_s2_e6_c24_zz1", "unknown token 'zz1'"),
    ("mbconv_r2_k3_s2_e6_c24_se", "unknown token 'se'"),
    ("mbconv_r2_k3_k5_c24", "token 'k5' repeats 'k3'"),
    ("mbconv_r2_k3_s2_e6", "filters"),
    ("resblock_r2_c24",
     "`kind` must be one of conv, sepconv, basic, bottleneck, inception, mbconv, nb201cell, nb201res, "
     "but got kind='resblock'"),
    ("mbconv_r2_k4_c24", "`kernel` must be one of 3, 5, 7, but got kernel=4"),
    ("mbconv_r2_k3_c24_se0.2.5", "malformed token 'se0.2.5'"),
    ("conv_r1_c8_mp", "unknown token 'mp'"),
    ("", "non-empty string"),
])
def test_bad_block_strings_raise(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_block(text)
    assert message in str(err.value)


def test_key_is_stable_and_canonical() -> None:
    spec = mnist_cnn()
    # pinned: keys name stored artefacts, so the canonical JSON must not drift between versions
    assert spec.key() == "ef8e68ad25a15cd0"
    # the same in a fresh interpreter (no dependence on hash randomisation)
    out = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, 'tests');"
                          "from test_spec import mnist_cnn; print(mnist_cnn().key())"],
                         capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert out.stdout.strip() == "ef8e68ad25a15cd0"
    # ints given for floats are stored as floats: same architecture, same key
    a = MBConv(filters=16, se=0, drop=0)
    b = MBConv(filters=16, se=0.0, drop=0.0)
    assert a == b and json.dumps(a.to_dict()) == json.dumps(b.to_dict())
    assert spec.replace(bn_momentum=0.9).key() != spec.key()
    keys = {random_spec(seed).key() for seed in range(200)}
    specs = {random_spec(seed).to_json() for seed in range(200)}
    assert len(keys) == len(specs)


def test_spec_is_frozen_and_keyword_only() -> None:
    spec = mnist_cnn()
    with pytest.raises(AttributeError):
        spec.num_classes = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        ArchSpec((28, 28, 1), 10, ())  # type: ignore[misc]


def test_string_form_of_a_whole_spec() -> None:
    assert str(mnist_cnn()) == ("28x28x1 conv_r1_k3_s1_c32_valid_nobn_bias_mp2 conv_r1_k3_s1_c64_valid_nobn_bias_mp2 "
                                "conv_r1_k3_s1_c128_valid_nobn_bias head_flatten classes10")


@pytest.mark.parametrize("make, message", [
    (lambda: MBConv(filters=24, stride=3), "`stride` must be one of 1, 2, but got stride=3"),
    (lambda: Conv(filters=8, kernel=4), "`kernel` must be one of 1, 3, 5, 7, 9, 11, but got kernel=4"),
    (lambda: SepConv(filters=-8), "`filters` must be >= 1, but got filters=-8"),
    (lambda: Basic(filters=0), "`filters` must be >= 1, but got filters=0"),
    (lambda: Bottleneck(filters=8, stride_on="5x5"),
     "`stride_on` must be one of '1x1', '3x3', but got stride_on='5x5'"),
    (lambda: MBConv(filters=8, se=1.5), "`se` must be in [0.0, 1.0], but got se=1.5"),
    (lambda: MBConv(filters=8, drop=1.0), "`drop` must be in [0.0, 1.0), but got drop=1.0"),
    (lambda: MBConv(filters=8, activation="mish"), "`activation` must be one of relu, relu6, swish"),
    (lambda: MBConv(filters=8.5), "`filters` must be an integer, but got filters=8.5"),
    (lambda: MBConv(filters=True), "`filters` must be an integer, but got filters=True"),
    (lambda: MBConv(filters=8, repeats=0), "`repeats` must be >= 1, but got repeats=0"),
    (lambda: Inception(), "at least one branch"),
    (lambda: Inception(b3_reduce=8), "`b3` must be > 0 when b3_reduce=8, but got b3=0"),
    (lambda: Conv(filters=8, pool="min"), "`pool` must be None, 'max' or 'avg', but got pool='min'"),
    (lambda: Head(pool="sum"), "`head.pool` must be one of 'avg', 'max', 'flatten', but got head.pool='sum'"),
    (lambda: Head(dropout=1.2), "`head.dropout` must be in [0.0, 1.0), but got head.dropout=1.2"),
    (lambda: ArchSpec(input_shape=(28, 28), num_classes=10, stages=()),
     "`input_shape` must be (height, width, channels) of positive integers, but got input_shape=(28, 28)"),
    (lambda: ArchSpec(input_shape=(28, 28, 1), num_classes=1, stages=()),
     "`num_classes` must be >= 2, but got num_classes=1"),
    (lambda: ArchSpec(input_shape=(28, 28, 1), num_classes=10, stages=(Head(),)), "stages must be blocks"),
    (lambda: ArchSpec(input_shape=(28, 28, 1), num_classes=10, stages=(), stem=(MBConv(filters=8),)),
     "stem layers must be plain `conv` blocks"),
])
def test_validation_errors_name_the_rule_and_value(make, message: str) -> None:
    with pytest.raises(ValueError) as err:
        make()
    assert message in str(err.value)


def test_too_many_stride_two_steps_names_the_stage_and_block() -> None:
    with pytest.raises(ValueError) as err:
        ArchSpec(input_shape=(8, 8, 1), num_classes=10,
                 stages=(MBConv(filters=8, stride=2), MBConv(filters=8, stride=2), MBConv(filters=8, stride=2),
                         Conv(filters=8, kernel=3, padding="valid")))
    text = str(err.value)
    assert "layer 's4b1_conv' shrinks the feature map below 1 pixel: input 1x1, kernel 3" in text
    assert "(stage 4: conv_r1_k3_s1_c8_valid)" in text
    # "same" padding keeps halving but never below 1: 8 -> 4 -> 2 -> 1 -> 1 is fine
    ArchSpec(input_shape=(8, 8, 1), num_classes=10, stages=tuple(MBConv(filters=8, stride=2) for _ in range(5)))
    with pytest.raises(ValueError, match=r"s1_pool.*input 1x1, kernel 2"):
        ArchSpec(input_shape=(1, 1, 1), num_classes=10, stages=(Conv(filters=8, pool="max"),))


def test_from_json_errors_name_the_stage() -> None:
    base = json.loads(mnist_cnn().to_json())
    bad = json.loads(json.dumps(base))
    bad["stages"][1]["stride"] = 3
    with pytest.raises(ValueError, match=r"`stride` must be one of 1, 2, 4, but got stride=3 \(stage 2\)"):
        ArchSpec.from_json(json.dumps(bad))
    bad = json.loads(json.dumps(base))
    bad["stages"][0]["kind"] = "dense"
    with pytest.raises(ValueError, match=r"`kind` must be one of .* but got kind='dense' \(stage 1\)"):
        ArchSpec.from_json(json.dumps(bad))
    bad = json.loads(json.dumps(base))
    bad["stages"][2]["widht"] = 3
    with pytest.raises(ValueError, match=r"unknown option 'widht' for block kind 'conv'.*\(stage 3\)"):
        ArchSpec.from_json(json.dumps(bad))
    bad = json.loads(json.dumps(base))
    bad["colour"] = "red"
    with pytest.raises(ValueError, match="unknown ArchSpec field 'colour'"):
        ArchSpec.from_json(json.dumps(bad))
    with pytest.raises(ValueError, match="not valid JSON"):
        ArchSpec.from_json("{")
    bad = json.loads(json.dumps(base))
    bad["format"] = "nas.ArchSpec/9"
    with pytest.raises(ValueError, match="`format` must be 'nas.ArchSpec/1'"):
        ArchSpec.from_json(json.dumps(bad))
    # stages may also be given in string form
    short = dict(base, stages=[str(b) for b in mnist_cnn().stages])
    assert ArchSpec.from_dict(short) == mnist_cnn()


def test_importing_nas_and_counting_does_not_import_tensorflow() -> None:
    code = ("import sys, nas, search_spaces; nas.cost(search_spaces.baseline('efficientnet_b7'));"
            "nas.summary(search_spaces.baseline('lenet5'), file=open('/dev/null', 'w'));"
            "print(sorted(m for m in ('tensorflow', 'keras', 'optuna', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_options_without_effect_are_canonical() -> None:
    assert Conv(filters=8, pool_size=3, pool_stride=1, pool_padding="same") == Conv(filters=8)
    assert Inception(b1=8, factorize=True) == Inception(b1=8)
    assert MBConv(filters=8, skip=False, drop=0.3) == MBConv(filters=8, skip=False)
    assert Bottleneck(filters=8, stride_on="3x3") == Bottleneck(filters=8)
    assert Bottleneck(filters=8, stride=2, stride_on="3x3") != Bottleneck(filters=8, stride=2)
