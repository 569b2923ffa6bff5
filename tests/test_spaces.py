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
from search_spaces._inception import LABELS as INCEPTION_LABELS

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
def test_smallest_sample_of_each_space_builds_with_exact_params(name: str) -> None:
    """The fast set's check that a space's samples build: the smallest of 10 samples at 8x8 (compound: around an
    8x8 base) has exactly its analytic params in Keras."""
    pytest.importorskip("keras")
    space = make_space(name, (8, 8, 1))
    spec = min((space.sample(RandomTrial(seed=seed)) for seed in range(10)), key=lambda s: nas.cost(s).params)
    assert nas.build_model(spec).count_params() == nas.cost(spec).params


@pytest.mark.slow
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


# ---------------------------------------------------------------- which labels a sample asks
#
# For every space, the exact set of labels a sample asks, derived from the sampled spec (and, where the spec
# does not show it, from the answers to the labels that switch parts on and off: n_stages, s{i}_modules...). A
# label is asked only for a part that exists and only when its option leaves a choice.

def _choice(label: str, choices: tuple[Any, ...]) -> set[str]:
    return {label} if len(choices) > 1 else set()


def _range(label: str, bounds: tuple[int, int]) -> set[str]:
    return {label} if bounds[0] != bounds[1] else set()


def _conv_labels(space: Any, spec: ArchSpec, params: dict[str, Any]) -> set[str]:
    labels = (_range("n_stages", space.stages) | _choice("bn", space.bns) | _choice("activation", space.activations)
              | _choice("head_pool", space.head_pools) | _range("n_hidden", space.hidden)
              | _choice("dropout", space.dropouts))
    for j in range(1, len(spec.head.hidden) + 1):
        labels |= _choice(f"fc{j}_units", space.hidden_units)
    h, w = spec.input_shape[:2]
    for i, s in enumerate(spec.stages, 1):
        labels |= _range(f"s{i}_depth", space.depth) | _choice(f"s{i}_width", space.widths) | \
            _choice(f"s{i}_kernel", space.kernels)
        if space.padding == "valid":
            h, w = h - s.repeats * (s.kernel - 1), w - s.repeats * (s.kernel - 1)
        if min(h, w) >= 2:  # a pooling only where the map can still be halved
            labels |= _choice(f"s{i}_pool", space.pools)
        else:
            assert s.pool is None
        if s.pool is not None:
            h, w = h // 2, w // 2
    return labels


def _residual_labels(space: Any, spec: ArchSpec, params: dict[str, Any]) -> set[str]:
    labels = (_choice("stem_width", space.stem_widths) | _range("n_stages", space.stages)
              | _choice("block", space.blocks) | _choice("bias", space.biases)
              | _choice("activation", space.activations) | _choice("dropout", space.dropouts))
    if spec.stages[0].kind == "bottleneck":  # a basic block has no expansion and no stride position
        labels |= _choice("expansion", space.expansions) | _choice("stride_on", space.stride_on)
    for i in range(1, len(spec.stages) + 1):
        labels |= _range(f"s{i}_depth", space.depth) | _choice(f"s{i}_width", space.widths) | \
            _choice(f"s{i}_stride", space.strides)
    return labels


def _inception_labels(space: Any, spec: ArchSpec, params: dict[str, Any]) -> set[str]:
    labels = _range("n_stages", space.stages) | _choice("bn", space.bns) | _choice("dropout", space.dropouts)
    if space.stem == "small":  # the imagenet stem has fixed widths
        labels |= _choice("stem_width", space.stem_widths)
    n_stages = params["n_stages"] if "n_stages" in labels else space.stages[0]
    modules = iter(spec.stages)
    for i in range(1, n_stages + 1):
        labels |= _range(f"s{i}_modules", space.modules) | _choice(f"s{i}_stride", space.strides)
        n_modules = params[f"s{i}_modules"] if f"s{i}_modules" in labels else space.modules[0]
        for j in range(1, n_modules + 1):
            m = next(modules)
            for branch in ("b1", "b3_reduce", "b3", "b5", "pool_proj"):
                labels |= _choice(f"s{i}_m{j}_{INCEPTION_LABELS[branch]}", space.branches[branch])
            if m.b5:  # the 5x5 branch's reduce and factorisation only with the branch
                labels |= _choice(f"s{i}_m{j}_b5r", space.branches["b5_reduce"]) | \
                    _choice(f"s{i}_m{j}_fact", space.factorize)
            else:
                assert m.b5_reduce == 0 and m.factorize is False
    assert next(modules, None) is None  # every module of the spec belongs to an asked stage
    return labels


def _mbconv_labels(space: Any, spec: ArchSpec, params: dict[str, Any]) -> set[str]:
    labels = (_choice("stem_width", space.stem_widths) | _range("n_stages", space.stages)
              | _choice("activation", space.activations) | _choice("head_width", space.head_widths)
              | _choice("drop_connect", space.drop_connect) | _choice("dropout", space.dropouts))
    for i in range(1, len(spec.stages) + 1):
        labels |= (_choice(f"s{i}_kernel", space.kernels) | _choice(f"s{i}_expansion", space.expansions)
                   | _range(f"s{i}_depth", space.depth) | _choice(f"s{i}_width", space.widths)
                   | _choice(f"s{i}_se", space.se) | _choice(f"s{i}_stride", space.strides))
    return labels


def _families_labels(space: Any, spec: ArchSpec, params: dict[str, Any]) -> set[str]:
    labels = (_choice("stem_width", space.stem_widths) | _range("n_stages", space.stages)
              | _choice("activation", space.activations) | _choice("head_width", space.head_widths)
              | _choice("dropout", space.dropouts))
    for i, s in enumerate(spec.stages, 1):
        labels |= (_choice(f"s{i}_family", space.families) | _range(f"s{i}_depth", space.depth)
                   | _choice(f"s{i}_width", space.widths) | _choice(f"s{i}_stride", space.strides))
        own = {"conv": _choice(f"s{i}_conv_kernel", space.conv_kernels),
               "sepconv": _choice(f"s{i}_sepconv_kernel", space.sepconv_kernels),
               "basic": set(),
               "bottleneck": _choice(f"s{i}_bottleneck_expansion", space.bottleneck_expansions),
               "inception": _choice(f"s{i}_inception_fact", space.inception_factorize),
               "mbconv": (_choice(f"s{i}_mbconv_kernel", space.mbconv_kernels)
                          | _choice(f"s{i}_mbconv_expansion", space.mbconv_expansions)
                          | _choice(f"s{i}_mbconv_se", space.mbconv_se))}
        labels |= own[s.kind]  # only the stage's own family's options
    return labels


def _compound_labels(space: Any, spec: ArchSpec, params: dict[str, Any]) -> set[str]:
    scale_labels = {"free": {"depth_mult", "width_mult", "image_size"}, "phi": {"phi"}}[space.mode]
    return scale_labels | _choice("dropout", space.dropouts)


def _nasbench201_labels(space: Any, spec: ArchSpec, params: dict[str, Any]) -> set[str]:
    labels = _choice("channels", space.channels) | _range("cells", space.cells) | _choice("dropout", space.dropouts)
    for label in search_spaces.nasbench201.LABELS:
        labels |= _choice(label, space.ops)
    return labels


EXPECTED_LABELS = {"conv": _conv_labels, "residual": _residual_labels, "inception": _inception_labels,
                   "mbconv": _mbconv_labels, "families": _families_labels, "compound": _compound_labels,
                   "nasbench201": _nasbench201_labels}


def _stage_labels(stages: range, names: tuple[str, ...]) -> set[str]:
    return {f"s{i}_{n}" for i in stages for n in names}


_INCEPTION_MODULE = ("b1", "b3r", "b3", "b5", "pp", "b5r", "fact")
_FAMILY_OWN = ("conv_kernel", "sepconv_kernel", "bottleneck_expansion", "inception_fact", "mbconv_kernel",
               "mbconv_expansion", "mbconv_se")

# (space, options, shape, every label some of the 100 samples asks): configurations whose options switch parts
# off for good (fixed options, an imagenet stem, a tiny input) besides what single samples switch off
LABEL_CONFIGS: list[tuple[str, dict[str, Any], tuple[int, int, int], set[str]]] = [
    ("conv", {}, (32, 32, 3),  # activation: one choice
     {"n_stages", "bn", "head_pool", "n_hidden", "fc1_units", "fc2_units", "dropout"}
     | _stage_labels(range(1, 6), ("depth", "width", "kernel", "pool"))),
    ("conv", dict(kernels=(3,), hidden=(1, 1), pools=("max", "avg")), (8, 8, 1),  # 8, 4, 2, 1: s4, s5 cannot pool
     {"n_stages", "bn", "head_pool", "fc1_units", "dropout"} | _stage_labels(range(1, 6), ("depth", "width"))
     | _stage_labels(range(1, 4), ("pool",))),
    ("residual", {}, (32, 32, 3),  # activation, dropout: one choice
     {"stem_width", "n_stages", "block", "expansion", "stride_on", "bias"}
     | _stage_labels(range(1, 5), ("depth", "width", "stride"))),
    ("residual", dict(expansions=(4,)), (32, 32, 3),
     {"stem_width", "n_stages", "block", "stride_on", "bias"}
     | _stage_labels(range(1, 5), ("depth", "width", "stride"))),
    ("residual", dict(blocks=("basic",)), (32, 32, 3),
     {"stem_width", "n_stages", "bias"} | _stage_labels(range(1, 5), ("depth", "width", "stride"))),
    ("inception", {}, (32, 32, 3),
     {"stem_width", "n_stages", "bn", "dropout"} | _stage_labels(range(1, 4), ("modules", "stride"))
     | {f"s{i}_m{j}_{b}" for i in range(1, 4) for j in range(1, 6) for b in _INCEPTION_MODULE}),
    ("inception", dict(b5=(0,), stages=(1, 2)), (224, 224, 3),  # imagenet stem: no stem_width; no 5x5 branch
     {"n_stages", "bn", "dropout"} | _stage_labels(range(1, 3), ("modules", "stride"))
     | {f"s{i}_m{j}_{b}" for i in range(1, 3) for j in range(1, 6) for b in ("b1", "b3r", "b3", "pp")}),
    ("mbconv", {}, (32, 32, 3),
     {"stem_width", "n_stages", "activation", "head_width", "drop_connect", "dropout"}
     | _stage_labels(range(1, 8), ("kernel", "expansion", "depth", "width", "se", "stride"))),
    ("mbconv", dict(expansions=(6,), se=(0.25,), stages=(2, 4)), (32, 32, 3),
     {"stem_width", "n_stages", "activation", "head_width", "drop_connect", "dropout"}
     | _stage_labels(range(1, 5), ("kernel", "depth", "width", "stride"))),
    ("families", {}, (32, 32, 3),  # activation: one choice
     {"stem_width", "n_stages", "head_width", "dropout"}
     | _stage_labels(range(1, 6), ("family", "depth", "width", "stride") + _FAMILY_OWN)),
    ("families", dict(families=("basic", "sepconv", "mbconv"), mbconv_expansions=(6,)), (32, 32, 3),
     {"stem_width", "n_stages", "head_width", "dropout"}
     | _stage_labels(range(1, 6), ("family", "depth", "width", "stride", "sepconv_kernel", "mbconv_kernel",
                                   "mbconv_se"))),
    ("compound", {}, (32, 32, 3), {"depth_mult", "width_mult", "image_size", "dropout"}),
    ("compound", dict(mode="phi", dropouts=(0.2,)), (32, 32, 3), {"phi"}),
    ("nasbench201", {}, (32, 32, 3), set(search_spaces.nasbench201.LABELS)),  # channels, cells, dropout fixed
    ("nasbench201", dict(channels=(8, 16), cells=(1, 3), dropouts=(0.0, 0.2)), (32, 32, 3),
     {*search_spaces.nasbench201.LABELS, "channels", "cells", "dropout"}),
    ("nasbench201", dict(ops=("nor_conv_3x3",), cells=(1, 2)), (32, 32, 3), {"cells"}),
]


@pytest.mark.parametrize("name", search_spaces.names())
def test_samples_ask_exactly_the_labels_of_their_parts(name: str) -> None:
    """Every sample asks exactly the labels of the parts it has (no label of a stage beyond ``n_stages``, of a
    module beyond ``s{i}_modules``, of an absent branch, of another block family, of a fixed option...), and
    over 100 samples each configuration asks exactly its label universe."""
    expected_labels = EXPECTED_LABELS[name]
    configs = [c for c in LABEL_CONFIGS if c[0] == name]
    assert len(configs) >= 2, f"no label configurations for the {name!r} space"
    for _, options, shape, universe in configs:
        space = make_space(name, shape, **options)
        seen: set[str] = set()
        strict_subsets = 0
        for seed in range(100):
            trial = RandomTrial(seed=seed)
            spec = space.sample(trial)
            asked = set(trial.params)
            assert asked == expected_labels(space, spec, trial.params), (options, seed)
            seen |= asked
            strict_subsets += asked < universe
        assert seen == universe, options
        if name in ("compound", "nasbench201"):
            assert strict_subsets == 0, options  # nothing in them is switched on or off per sample
        else:
            assert strict_subsets >= 25, options  # samples really switch parts off


def _given(labels: dict[str, Any], stages: range, **per_stage: Any) -> dict[str, Any]:
    return {**labels, **{f"s{i}_{k}": v for i in stages for k, v in per_stage.items()}}


# (space, options, shape, labels given to a FixedTrial, the given labels the space must not ask): each case
# switches something off and gives a valid value for its labels, so a space that asked them would take it
SWITCHED_OFF = [
    ("conv", {}, (8, 8, 1),  # 4 stages, 1 hidden layer; the map is 1x1 after 3 poolings
     _given({"n_stages": 4, "bn": True, "head_pool": "avg", "n_hidden": 1, "fc1_units": 64, "fc2_units": 64,
             "dropout": 0.0}, range(1, 6), depth=1, width=8, kernel=3, pool="max"),
     {"fc2_units", "s4_pool", "s5_depth", "s5_width", "s5_kernel", "s5_pool"}),
    ("residual", {}, (32, 32, 3),  # basic blocks, 2 stages
     _given({"stem_width": 16, "n_stages": 2, "block": "basic", "expansion": 4, "stride_on": "3x3", "bias": False,
             "activation": "relu", "dropout": 0.0}, range(1, 5), depth=1, width=16, stride=1),
     {"expansion", "stride_on", "activation", "dropout", "s3_depth", "s3_width", "s3_stride", "s4_depth",
      "s4_width", "s4_stride"}),
    ("inception", {}, (32, 32, 3),  # 1 stage of 2 modules, the second without a 5x5 branch
     {"stem_width": 32, "n_stages": 1, "bn": True, "dropout": 0.0, "s1_modules": 2, "s1_stride": 1,
      **{f"s1_m{j}_{b}": v for j in (1, 2, 3) for b, v in
         (("b1", 16), ("b3r", 16), ("b3", 32), ("b5r", 8), ("fact", True), ("pp", 16))},
      "s1_m1_b5": 16, "s1_m2_b5": 0, "s1_m3_b5": 16, "s2_modules": 1, "s2_stride": 2},
     {"s1_m2_b5r", "s1_m2_fact", "s2_modules", "s2_stride"} | {f"s1_m3_{b}" for b in _INCEPTION_MODULE}),
    ("mbconv", dict(expansions=(6,)), (32, 32, 3),  # fixed expansion, 3 stages
     _given({"stem_width": 16, "n_stages": 3, "activation": "swish", "head_width": 0, "drop_connect": 0.0,
             "dropout": 0.0}, range(1, 5), kernel=3, expansion=6, depth=1, width=16, se=0.0, stride=1),
     {"s1_expansion", "s2_expansion", "s3_expansion"} | _stage_labels(range(4, 5), ("kernel", "expansion", "depth",
                                                                                   "width", "se", "stride"))),
    ("families", {}, (32, 32, 3),  # a basic stage and an mbconv stage: only the mbconv stage's own options
     _given({"stem_width": 16, "n_stages": 2, "activation": "relu", "head_width": 0, "dropout": 0.0,
             "s1_family": "basic", "s2_family": "mbconv"}, range(1, 3), depth=1, width=16, stride=1, conv_kernel=3,
            sepconv_kernel=3, bottleneck_expansion=2, inception_fact=False, mbconv_kernel=3, mbconv_expansion=6,
            mbconv_se=0.25),
     {"activation"} | _stage_labels(range(1, 2), _FAMILY_OWN)
     | _stage_labels(range(2, 3), ("conv_kernel", "sepconv_kernel", "bottleneck_expansion", "inception_fact"))),
    ("compound", dict(mode="phi"), (32, 32, 3),
     {"phi": 1.0, "dropout": 0.3, "depth_mult": 1.2, "width_mult": 1.1, "image_size": 36},
     {"depth_mult", "width_mult", "image_size"}),
    ("compound", {}, (32, 32, 3),
     {"phi": 1.0, "dropout": 0.3, "depth_mult": 1.2, "width_mult": 1.1, "image_size": 36}, {"phi"}),
    ("nasbench201", {}, (32, 32, 3),
     {**dict.fromkeys(search_spaces.nasbench201.LABELS, "nor_conv_1x1"), "channels": 16, "cells": 5,
      "dropout": 0.0}, {"channels", "cells", "dropout"}),
    ("nasbench201", dict(ops=("skip_connect",), channels=(8, 16)), (32, 32, 3),
     {**dict.fromkeys(search_spaces.nasbench201.LABELS, "skip_connect"), "channels": 8, "cells": 5,
      "dropout": 0.0}, {*search_spaces.nasbench201.LABELS, "cells", "dropout"}),
]


@pytest.mark.parametrize("name", search_spaces.names())
def test_labels_of_switched_off_parts_are_not_asked(name: str) -> None:
    cases = [c for c in SWITCHED_OFF if c[0] == name]
    assert cases, f"no switched-off case for the {name!r} space"
    for _, options, shape, given, off in cases:
        assert off < set(given)
        space = make_space(name, shape, **options)
        trial = FixedTrial(given)
        spec = space.sample(trial)
        assert trial.unused() == sorted(off), options
        assert set(trial.params) == set(given) - off
        assert set(trial.params) == EXPECTED_LABELS[name](space, spec, trial.params)


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
    ("mbconv", dict(kernels=(3, 4)),
     "mbconv space: `kernels` must be a list of values from [3, 5, 7], but got kernels=(3, 4)"),
    ("mbconv", dict(depth=(0, 3)),
     "mbconv space: `depth` must be (low, high) integers with 1 <= low <= high <= 16, but got depth=(0, 3)"),
    ("mbconv", dict(widths=()), "mbconv space: `widths` must be a non-empty list, but got widths=()"),
    ("mbconv", dict(activations=("mish",)), "`activation` must be one of"),
    ("residual", dict(widht=(8,)), "residual space: unknown option 'widht'"),
    ("residual", dict(stem="huge"), "`stem` must be one of 'auto', 'imagenet', 'small', but got stem='huge'"),
    ("residual", dict(input_shape=(32, 32)), "`input_shape` must be (height, width, channels) of positive integers"),
    ("residual", dict(num_classes=1), "residual space: `num_classes` must be an integer >= 2, but got num_classes=1"),
    ("inception", dict(b3=(0, 32)), "inception space: `b3` must be a list of int >= 1, but got b3=(0, 32)"),
    ("conv", dict(padding="full"), "conv space: `padding` must be 'same' or 'valid', but got padding='full'"),
    ("conv", dict(input_shape=(8, 8, 1), padding="valid"),
     "conv space: with padding='valid', 5 stages of 3 convolutions with kernel 5 can shrink the 8x8 input "
     "below 1 pixel"),
    ("families", dict(families=("conv", "transformer")), "families space: `families` must be a list of values from"),
    ("families", dict(widths=(16, 18)), "families space: `widths` must be divisible by every bottleneck expansion"),
    ("compound", dict(base="resnet99"), "compound space: `base` must be a baseline name"),
    ("compound", dict(mode="beta"), "compound space: `mode` must be 'free' or 'phi', but got mode='beta'"),
    ("compound", dict(depth=(2.0, 1.0)), "compound space: `depth` must be (low, high) numbers"),
    ("compound", dict(image_sizes=(224, 227)),
     "`image_sizes` must be (low, high) pixel sizes with high - low a multiple of size_step 4"),
    ("compound", dict(max_macs=-1), "compound space: `max_macs` must be a positive number, but got max_macs=-1"),
]


@pytest.mark.parametrize("name, options, message", BAD_OPTIONS)
def test_bad_options_are_refused_at_construction(name: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as err:
        search_spaces.get(name, **options)
    assert message in str(err.value)


def test_unknown_space() -> None:
    with pytest.raises(ValueError, match="`space` must be one of conv, residual, inception, mbconv, families, "
                                         "compound, nasbench201, but got space='resnet'"):
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
    with pytest.raises(ValueError,
                       match=r"label 'w' must be a number in \[1.0, 2.0\] on a grid of step 0.1, but got w=1.25"):
        f.suggest_float("w", 1.0, 2.0, step=0.1)
    with pytest.raises(ValueError, match=r"label 'k' must be one of \[5, 7\], but got k=3"):
        f.suggest_categorical("k", [5, 7])
    with pytest.raises(ValueError, match="FixedTrial has no value for label 'z'"):
        f.suggest_int("z", 0, 1)
    assert FixedTrial({"b": True}).suggest_categorical("b", [False, True]) is True
    with pytest.raises(ValueError, match="must be one of"):
        FixedTrial({"b": 1}).suggest_categorical("b", [False, True])


def test_compound_takes_input_shape_and_knows_b0_given_as_its_spec() -> None:
    from search_spaces._baselines import baseline

    # the base given as EfficientNet-B0's spec keeps B1..B7 as points, as the name does
    by_spec = search_spaces.get("compound", base=baseline("efficientnet_b0"))
    assert by_spec.classics == search_spaces.get("compound").classics == tuple(f"efficientnet_b{i}" for i in range(8))
    # input_shape, as every space takes it: the base at the data's resolution and channels
    small = search_spaces.get("compound", input_shape=(32, 32, 1), num_classes=10)
    spec = small.sample(nas.RandomTrial(seed=0))
    assert small.input_shape == (32, 32, 1) and spec.input_shape[2] == 1 and 32 <= spec.input_shape[0] <= 88
    assert small.classics == ()  # B1..B7 are points around B0 at its own 224x224 only
    with pytest.raises(ValueError, match=r"compound.*`input_shape`"):
        search_spaces.get("compound", input_shape=(32, 32))


# ------------------------------------------------------------------ default ranges fitted to the data

def test_default_ranges_fit_small_inputs_and_leave_32_pixels_and_given_options_alone() -> None:
    from search_spaces._mbconv import DEFAULTS as MB

    small = search_spaces.get("mbconv", input_shape=(8, 8, 1), num_classes=10)
    o = small.config()["options"]
    assert (small.stages, small.depth, small.max_downsampling) == ((3, 4), (1, 2), 2)
    assert small.widths == (16, 24, 32, 40, 48, 64, 80, 96, 112, 128) and small.head_widths == (0, 320, 640)
    assert o["stages"] == [3, 4] and o["max_downsampling"] == 2
    fashion = search_spaces.get("mbconv", input_shape=(28, 28, 1))
    assert (fashion.stages, fashion.depth, fashion.max_downsampling) == ((3, 6), (1, 4), 4)
    for shape in ((32, 32, 3), (224, 224, 3)):
        big = search_spaces.get("mbconv", input_shape=shape, num_classes=1000)
        assert (big.stages, big.depth, big.widths, big.max_downsampling) == \
            (MB["stages"], MB["depth"], MB["widths"], None)
    given = search_spaces.get("mbconv", input_shape=(8, 8, 1), stages=(5, 7), widths=(256, 512), strides=(1, 2))
    assert (given.stages, given.widths, given.max_downsampling) == ((5, 7), (256, 512), None)
    residual = search_spaces.get("residual", input_shape=(8, 8, 1))
    assert (residual.depth, residual.widths, residual.max_downsampling) == ((1, 3), (16, 32, 64, 128), 2)
    with pytest.raises(ValueError, match=r"mbconv space: `max_downsampling` must be 'auto', null or an integer "
                                         r">= 0, but got max_downsampling=-1"):
        search_spaces.get("mbconv", input_shape=(8, 8, 1), max_downsampling=-1)


@pytest.mark.parametrize("name", ["mbconv", "residual", "families"])
def test_fitted_spaces_never_shrink_the_map_below_2_pixels_and_rebuild_the_same(name: str) -> None:
    space = search_spaces.get(name, input_shape=(8, 8, 1))
    again = search_spaces.from_config(space.config())
    asked_strides = skipped = 0
    for seed in range(150):
        trial = RandomTrial(seed=seed)
        spec = space.sample(trial)
        assert again.sample(RandomTrial(seed=seed)) == spec
        downs = sum(b.stride == 2 for b in spec.stem + spec.stages)
        assert downs <= 2
        smallest = min(layer.output_shape[0] for layer in nas.cost(spec).layers
                       if len(layer.output_shape) == 3 and "_se_" not in layer.name and layer.op != "global_avgpool")
        assert smallest >= 2
        # a stage's stride is asked exactly while stride-2 steps are left
        used = sum(b.stride == 2 for b in spec.stem)
        for i, block in enumerate(spec.stages, 1):
            asked = f"s{i}_stride" in trial.params
            assert asked == (used < 2), (seed, i)
            asked_strides += asked
            skipped += not asked
            used += block.stride == 2
    assert asked_strides > 100 and skipped >= 20  # both cases happen
