"""Conformance suite: every registered search space, at small and ImageNet resolutions."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import optuna
import pytest

import nas
import search_spaces
from nas import ArchSpec
from nas.trial import FixedTrial, RandomTrial

SHAPES = [(8, 8, 1), (28, 28, 1), (32, 32, 3), (224, 224, 3)]


def make_space(name: str, shape: tuple[int, int, int], **options: Any) -> search_spaces.Space:
    if name == "compound":
        # around a small base spec at that resolution, found by (here: sampled from) the mbconv space
        base = search_spaces.get("mbconv", input_shape=shape, widths=(16, 24, 32, 48),
                                 head_widths=(0, 320)).sample(RandomTrial(seed=1))
        return search_spaces.get("compound", base=base, **options)
    return search_spaces.get(name, input_shape=shape, **options)


CASES = [(name, shape) for name in search_spaces.names() for shape in SHAPES]


@pytest.mark.parametrize("name, shape", CASES)
def test_space_conformance(name: str, shape: tuple[int, int, int]) -> None:
    space = make_space(name, shape)
    distributions: dict[str, Any] = {}
    specs = []
    for seed in range(40):
        trial = RandomTrial(seed=seed)
        spec = space.sample(trial)
        assert isinstance(spec, ArchSpec)
        assert spec.input_shape[2] == shape[2]
        specs.append(spec)
        # JSON round trip
        assert ArchSpec.from_json(spec.to_json()) == spec
        # flat plain labels, one distribution per label across all samples
        for label, dist in trial.distributions.items():
            assert "/" not in label
            assert distributions.setdefault(label, dist) == dist, label
        for value in trial.params.values():
            assert isinstance(value, (int, float, str, bool, type(None)))
        # deterministic replay, with ours and with Optuna's FixedTrial
        assert space.sample(FixedTrial(trial.params)) == spec
        assert space.sample(optuna.trial.FixedTrial(trial.params)) == spec
        assert space.sample(RandomTrial(seed=seed)) == spec
    assert len({s.key() for s in specs}) > 20  # the space really varies


@pytest.mark.parametrize("name", search_spaces.names())
def test_space_samples_build_with_exact_params(name: str) -> None:
    keras = pytest.importorskip("keras")
    for shape in [(8, 8, 1), (28, 28, 1)]:
        space = make_space(name, shape)
        built = 0
        for seed in range(40):
            spec = space.sample(RandomTrial(seed=seed))
            if nas.cost(spec).params > 3_000_000:
                continue  # keep the suite fast; params of big specs are covered by tests/test_build.py
            model = nas.build_model(spec)
            assert model.count_params() == nas.cost(spec).params
            keras.backend.clear_session()
            built += 1
            if built == 6:
                break
        assert built == 6


@pytest.mark.parametrize("name", search_spaces.names())
def test_labels_of_switched_off_parts_are_not_asked(name: str) -> None:
    space = make_space(name, (32, 32, 3))
    for seed in range(40):
        trial = RandomTrial(seed=seed)
        spec = space.sample(trial)
        n = trial.params.get("n_stages")
        if n is None:
            continue
        asked_stages = {int(label[1:].split("_")[0]) for label in trial.params
                        if label.startswith("s") and label[1:].split("_")[0].isdigit()}
        assert asked_stages == set(range(1, n + 1))
        for label in trial.params:
            if label.endswith(("_expansion", "stride_on")) and name == "residual":
                assert spec.stages[0].kind == "bottleneck"


CLASSICS = [
    ("residual", "resnet18", {}), ("residual", "resnet34", {}), ("residual", "resnet50", {}),
    ("inception", "googlenet", {}),
    ("mbconv", "mobilenet_v2", {}), ("mbconv", "efficientnet_b0", {}),
    ("conv", "vgg16", {}),
    ("conv", "lenet5", dict(widths=(6, 16), kernels=(5,), padding="valid", activations=("tanh",), pools=("avg",),
                            hidden_units=(84, 120), stages=(1, 2), depth=1)),
] + [("compound", f"efficientnet_b{i}", {}) for i in range(8)]


@pytest.mark.parametrize("space_name, classic, options", CLASSICS)
def test_classics_are_points_of_their_space(space_name: str, classic: str, options: dict[str, Any]) -> None:
    expected = search_spaces.baseline(classic)
    if space_name == "compound":
        space = search_spaces.get("compound", **options)
    else:
        space = search_spaces.get(space_name, input_shape=expected.input_shape, num_classes=1000, **options)
    params = space.params_of(classic)
    assert space.sample(FixedTrial(params)) == expected
    assert space.sample(optuna.trial.FixedTrial(params)) == expected
    assert classic in space.classics


def test_params_of_explains_what_is_out_of_the_space() -> None:
    space = search_spaces.get("conv", input_shape=(32, 32, 1), num_classes=1000)
    with pytest.raises(ValueError, match=r"does not contain lenet5: label 'fc1_units' must be one of \[64, 128"):
        space.params_of("lenet5")
    with pytest.raises(ValueError, match=r"`name` must be a classic network of the 'residual' space"):
        search_spaces.get("residual").params_of("vgg16")
    narrow = search_spaces.get("residual", input_shape=(224, 224, 3), num_classes=1000, biases=(False,))
    with pytest.raises(ValueError, match="does not contain resnet50"):
        narrow.params_of("resnet50")
    assert narrow.params_of("resnet18")["s4_width"] == 512


def test_compound_space() -> None:
    space = search_spaces.get("compound")
    spec = space.sample(FixedTrial({"depth_mult": 1.4, "width_mult": 1.2, "image_size": 300, "dropout": 0.3}))
    assert spec == search_spaces.baseline("efficientnet_b3")
    # phi mode: depth 1.2**phi, width 1.1**phi, resolution 1.15**phi
    phi = search_spaces.get("compound", mode="phi")
    s1 = phi.sample(FixedTrial({"phi": 1.0, "dropout": 0.2}))
    assert s1.input_shape == (round(224 * 1.15), round(224 * 1.15), 3)
    assert [s.repeats for s in s1.stages] == [nas.round_repeats(s.repeats, 1.2)
                                              for s in search_spaces.baseline("efficientnet_b0").stages]
    # MACs grow about 2**phi (alpha * beta^2 * gamma^2 = 1.92)
    ratio = nas.cost(phi.sample(FixedTrial({"phi": 2.0, "dropout": 0.2}))).macs / nas.cost(
        search_spaces.baseline("efficientnet_b0")).macs
    assert 3.0 < ratio < 5.0
    budget = search_spaces.get("compound", max_macs=1e9)
    assert budget.constraints == {"max_macs": 1e9}
    with pytest.raises(ValueError, match="params_of needs mode='free'"):
        phi.params_of("efficientnet_b1")
    # any base spec: a found architecture, another number of classes
    base = search_spaces.get("residual", input_shape=(28, 28, 1)).sample(RandomTrial(seed=3))
    around = search_spaces.get("compound", base=base, num_classes=7, image_sizes=(28, 56))
    s = around.sample(FixedTrial({"depth_mult": 2.0, "width_mult": 1.5, "image_size": 40, "dropout": 0.5}))
    assert s.input_shape == (40, 40, 1) and s.num_classes == 7 and s.head.dropout == 0.5
    assert [b.repeats for b in s.stages] == [2 * b.repeats for b in base.stages]


@pytest.mark.parametrize("name", search_spaces.names())
def test_config_round_trip(name: str) -> None:
    space = make_space(name, (32, 32, 3), dropouts=(0.0, 0.5) if name != "compound" else (0.2, 0.3))
    config = json.loads(json.dumps(space.config()))
    again = search_spaces.from_config(config)
    for seed in range(10):
        assert again.sample(RandomTrial(seed)) == space.sample(RandomTrial(seed))


BAD_OPTIONS = [
    ("mbconv", dict(kernels=(3, 4)), "mbconv space: `kernels` must be a list of values from [3, 5, 7], but got kernels=(3, 4)"),
    ("mbconv", dict(depth=(0, 3)), "mbconv space: `depth` must be (low, high) integers with 1 <= low <= high <= 16, but got depth=(0, 3)"),
    ("mbconv", dict(widths=()), "mbconv space: `widths` must be a non-empty list, but got widths=()"),
    ("mbconv", dict(activations=("mish",)), "`activation` must be one of"),
    ("residual", dict(widht=(8,)), "residual space: unknown option 'widht'"),
    ("residual", dict(stem="huge"), "`stem` must be one of 'auto', 'imagenet', 'small', but got stem='huge'"),
    ("residual", dict(input_shape=(32, 32)), "`input_shape` must be (height, width, channels) of positive integers"),
    ("residual", dict(num_classes=1), "residual space: `num_classes` must be an integer >= 2, but got num_classes=1"),
    ("inception", dict(b3=(0, 32)), "inception space: `b3` must be a list of int >= 1, but got b3=(0, 32)"),
    ("conv", dict(padding="full"), "conv space: `padding` must be 'same' or 'valid', but got padding='full'"),
    ("conv", dict(input_shape=(8, 8, 1), padding="valid"), "conv space: with padding='valid', 5 stages of 3 convolutions with kernel 5 can shrink the 8x8 input below 1 pixel"),
    ("families", dict(families=("conv", "transformer")), "families space: `families` must be a list of values from"),
    ("families", dict(widths=(16, 18)), "families space: `widths` must be divisible by every bottleneck expansion"),
    ("compound", dict(base="resnet99"), "compound space: `base` must be a baseline name"),
    ("compound", dict(mode="beta"), "compound space: `mode` must be 'free' or 'phi', but got mode='beta'"),
    ("compound", dict(depth=(2.0, 1.0)), "compound space: `depth` must be (low, high) numbers"),
    ("compound", dict(image_sizes=(224, 227)), "`image_sizes` must be (low, high) pixel sizes with high - low a multiple of size_step 4"),
    ("compound", dict(max_macs=-1), "compound space: `max_macs` must be a positive number, but got max_macs=-1"),
]


@pytest.mark.parametrize("name, options, message", BAD_OPTIONS)
def test_bad_options_are_refused_at_construction(name: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as err:
        search_spaces.get(name, **options)
    assert message in str(err.value)


def test_unknown_space() -> None:
    with pytest.raises(ValueError, match="`space` must be one of conv, residual, inception, mbconv, families, compound, nasbench201, but got space='resnet'"):
        search_spaces.get("resnet")


def test_small_inputs_use_small_stems() -> None:
    assert search_spaces.get("residual", input_shape=(8, 8, 1)).stem == "small"
    assert search_spaces.get("residual", input_shape=(224, 224, 3)).stem == "imagenet"
    assert search_spaces.get("mbconv", input_shape=(28, 28, 1)).stem_stride == 1
    # a valid-padding conv space that fits 8x8 is accepted, and all its samples are valid
    space = search_spaces.get("conv", input_shape=(8, 8, 1), padding="valid", stages=(1, 2), depth=(1, 1), kernels=(3,))
    for seed in range(50):
        space.sample(RandomTrial(seed))


def test_sampling_imports_no_tensorflow() -> None:
    code = ("import sys, search_spaces; from nas.trial import RandomTrial;"
            "[search_spaces.get(n).sample(RandomTrial(1)) for n in search_spaces.names()];"
            "print(sorted(m for m in ('tensorflow', 'keras', 'optuna', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_random_trial_and_fixed_trial() -> None:
    t = RandomTrial(seed=5)
    a = t.suggest_int("a", 1, 9, step=2)
    assert a in (1, 3, 5, 7, 9) and t.suggest_int("a", 1, 9, step=2) == a
    with pytest.raises(ValueError, match="label 'a' was asked with two distributions"):
        t.suggest_int("a", 1, 10)
    with pytest.raises(ValueError, match="without '/'"):
        t.suggest_categorical("s1/width", [1, 2])
    with pytest.raises(ValueError, match="categorical choices must be int, float, str, bool or None"):
        t.suggest_categorical("x", [(1, 2)])
    f = FixedTrial({"w": 1.25, "k": 3})
    with pytest.raises(ValueError, match=r"label 'w' must be a number in \[1.0, 2.0\] on a grid of step 0.1, but got w=1.25"):
        f.suggest_float("w", 1.0, 2.0, step=0.1)
    with pytest.raises(ValueError, match=r"label 'k' must be one of \[5, 7\], but got k=3"):
        f.suggest_categorical("k", [5, 7])
    with pytest.raises(ValueError, match="FixedTrial has no value for label 'z'"):
        f.suggest_int("z", 0, 1)
    assert FixedTrial({"b": True}).suggest_categorical("b", [False, True]) is True
    with pytest.raises(ValueError, match="must be one of"):
        FixedTrial({"b": 1}).suggest_categorical("b", [False, True])
