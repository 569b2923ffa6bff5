"""The Keras builder against the analytic cost: exact params, layer by layer, and against Keras's own models."""

from __future__ import annotations

import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import nas  # noqa: E402
import search_spaces  # noqa: E402
from nas import ArchSpec, Basic, Bottleneck, Conv, Head, Inception, MBConv, SepConv  # noqa: E402
from nas.blocks import NB201Cell, NB201Res  # noqa: E402

from random_specs import random_spec  # noqa: E402


def assert_model_matches_cost(spec: ArchSpec) -> keras.Model:
    """Build ``spec`` and check it against ``nas.cost`` layer by layer; returns the model."""
    model = nas.build_model(spec)
    c = nas.cost(spec)
    assert model.count_params() == c.params
    assert sorted(layer.name for layer in model.layers[1:]) == sorted(r.name for r in c.layers)
    for row in c.layers:
        layer = model.get_layer(row.name)
        assert layer.count_params() == row.params, row.name
        assert tuple(layer.output.shape[1:]) == row.output_shape, row.name
    keras.backend.clear_session()
    return model


def _spec(shape: tuple[int, int, int], *stages: object, stem: tuple[object, ...] = (),
          head: Head | None = None) -> ArchSpec:
    return ArchSpec(input_shape=shape, num_classes=10, stem=stem, stages=stages,  # type: ignore[arg-type]
                    head=Head() if head is None else head)


NB201_STEM = (Conv(filters=8, activation="linear"),)  # a cell keeps its input's channels

# every registered block kind, in small specs that between them take each of its options and shortcut paths
KIND_CASES: dict[str, list[ArchSpec]] = {
    "conv": [
        _spec((12, 12, 3), Conv(filters=8, kernel=5, stride=2, padding="valid", bn=False, bias=True)),
        _spec((16, 14, 1), Conv(filters=4, repeats=2, kernel=1, activation="swish", pool="avg", pool_size=3,
                                pool_stride=1, pool_padding="same"),
              Conv(filters=12, kernel=7, stride=4, pool="max", pool_size=2, pool_stride=2, bias=True),
              head=Head(pool="flatten", hidden=(16, 8), dropout=0.2)),
    ],
    "sepconv": [
        _spec((12, 12, 3), SepConv(filters=8, kernel=3, stride=2)),
        _spec((8, 12, 1), SepConv(filters=12, kernel=7, repeats=2, bn=False, bias=True, activation="hswish"),
              SepConv(filters=12, kernel=5, bias=True), head=Head(conv=16, pool="max")),
    ],
    "basic": [
        _spec((16, 16, 3), Basic(filters=8, repeats=2), Basic(filters=16, stride=2, bias=True),
              stem=(Conv(filters=8),)),  # identity shortcut, then a projection
        _spec((12, 12, 1), Basic(filters=4, activation="gelu"), Basic(filters=12, stride=1)),
    ],
    "bottleneck": [
        _spec((16, 16, 3), Bottleneck(filters=4, repeats=2, stride=2, expansion=4, stride_on="1x1"),
              stem=(Conv(filters=16),)),
        _spec((12, 12, 1), Bottleneck(filters=8, expansion=1, stride_on="3x3", stride=2, bias=True),
              Bottleneck(filters=4, expansion=2, stride_on="3x3", activation="relu6")),
    ],
    "inception": [
        _spec((16, 16, 3), Inception(b1=4, b3_reduce=4, b3=8, b5_reduce=2, b5=4, pool_proj=4, factorize=True,
                                     bn=True, bias=False, repeats=2),
              Inception(b1=8, b3=8, b5=4, stride=2)),  # no reduces
        _spec((12, 12, 1), Inception(b1=0, b3_reduce=4, b3=8, pool_proj=0, stride=2, activation="swish"),
              Inception(b1=0, b3=0, b5=0, pool_proj=8)),  # absent branches
    ],
    "mbconv": [
        _spec((16, 16, 3), MBConv(filters=8, expansion=1, se=0.25, kernel=3), MBConv(filters=8, repeats=2, drop=0.1),
              stem=(Conv(filters=8),)),  # expansion 1: no expand conv; same shape: skip
        _spec((12, 12, 1), MBConv(filters=12, expansion=4, kernel=7, stride=2, se=0.5, activation="swish"),
              MBConv(filters=12, kernel=5, skip=False), head=Head(conv=24)),
    ],
    "nb201cell": [
        _spec((8, 8, 3), NB201Cell(filters=8, ops=("nor_conv_3x3",) * 6, repeats=2), stem=NB201_STEM),
        _spec((8, 8, 3), NB201Cell(filters=8, ops=("none",) * 6), stem=NB201_STEM),  # the zero cell
        # node 1 is zero and a convolution reads it: materialised
        _spec((8, 8, 3), NB201Cell(filters=8, ops=("none", "nor_conv_1x1", "nor_conv_3x3", "skip_connect",
                                                   "avg_pool_3x3", "none")), stem=NB201_STEM),
        # node 1 has a convolution but never reaches the output: still computed
        _spec((8, 8, 3), NB201Cell(filters=8, ops=("nor_conv_1x1", "skip_connect", "none", "nor_conv_3x3", "none",
                                                   "avg_pool_3x3")), stem=NB201_STEM),
    ],
    "nb201res": [
        # stride 2: pool + 1x1 shortcut; stride 1 same channels: identity; stride 1 new channels: 1x1 + BN
        _spec((8, 8, 3), NB201Res(filters=16, stride=2), NB201Res(filters=16), NB201Res(filters=24),
              stem=NB201_STEM, head=Head(bn=True, pool="avg")),
    ],
}


def test_every_registered_kind_has_build_cases() -> None:
    assert list(KIND_CASES) == list(nas.KINDS)
    for kind, specs in KIND_CASES.items():
        assert specs, kind
        for spec in specs:
            assert {b.kind for b in spec.stages} == {kind}


@pytest.mark.parametrize("kind", list(nas.KINDS))
def test_every_kind_params_equal_built_model(kind: str) -> None:
    """Analytic params == Keras's count_params, layer by layer, for every block kind ``nas.KINDS`` registers."""
    assert kind in KIND_CASES, f"block kind {kind!r} is registered in nas.KINDS but has no build case here"
    for spec in KIND_CASES[kind]:
        model = assert_model_matches_cost(spec)
        assert model.count_params() == nas.cost(spec).params > 0


# random_spec draws the kinds that compose freely; the NAS-Bench-201 kinds need their skeleton (a cell keeps its
# input's channels) and are covered by KIND_CASES and tests/test_nasbench201.py
RANDOM_KINDS = set(nas.KINDS) - {"nb201cell", "nb201res"}


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(10))
def test_200_random_specs_params_equal_built_model(chunk: int) -> None:
    kinds_seen: set[str] = set()
    for seed in range(chunk * 20, chunk * 20 + 20):
        spec = random_spec(seed)
        kinds_seen.update(b.kind for b in spec.stages)
        assert_model_matches_cost(spec)
    assert kinds_seen == RANDOM_KINDS


SMALL_BASELINES = ["lenet5", "alexnet", "resnet18", "googlenet", "mobilenet_v1", "mobilenet_v2", "efficientnet_b0"]


@pytest.mark.parametrize("name", SMALL_BASELINES)
def test_baselines_build_layer_by_layer(name: str) -> None:
    assert_model_matches_cost(search_spaces.baseline(name))


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in search_spaces.baselines() if n not in SMALL_BASELINES])
def test_large_baselines_build_layer_by_layer(name: str) -> None:
    assert_model_matches_cost(search_spaces.baseline(name))


KERAS_APPS = {"vgg16": "VGG16", "resnet50": "ResNet50", "mobilenet_v1": "MobileNet", "mobilenet_v2": "MobileNetV2",
              **{f"efficientnet_b{i}": f"EfficientNetB{i}" for i in range(8)}}


@pytest.mark.slow
@pytest.mark.parametrize("name", KERAS_APPS)
def test_params_equal_keras_applications(name: str) -> None:
    app = getattr(keras.applications, KERAS_APPS[name])(weights=None)  # include_top, 1000 classes, default size
    preprocessing = sum(layer.count_params() for layer in app.layers
                        if isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)))
    spec = search_spaces.baseline(name)
    assert tuple(app.input_shape[1:]) == spec.input_shape
    assert nas.cost(spec).params == app.count_params() - preprocessing
    keras.backend.clear_session()


def profiled_flops(model: keras.Model, shape: tuple[int, ...]) -> int:
    import tensorflow as tf

    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, *shape], tf.float32))  # batch 1: a None batch gives no counts
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(tf.compat.v1.profiler.profile(graph=fn.graph, options=options).total_float_ops)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg16", "resnet50", "mobilenet_v1", "mobilenet_v2", "efficientnet_b0"])
def test_tensorflow_profiler_agrees(name: str) -> None:
    """TensorFlow's graph profiler counts 2 flops per multiply-add plus what our convention leaves out (batch
    norm, bias adds, pooling, swish and squeeze-excite multiplications, additions, softmax; not ReLU).

    1. Our built model profiles to exactly the float ops of Keras's own application (for EfficientNet, less
       its input Rescaling + Normalization: 2 + 2 ops per input value, and 3 square roots).
    2. 2 * analytic MACs <= profiled <= 1.05 * 2 * analytic MACs.
    """
    spec = search_spaces.baseline(name)
    ours = profiled_flops(nas.build_model(spec), spec.input_shape)
    theirs = profiled_flops(getattr(keras.applications, KERAS_APPS[name])(weights=None), spec.input_shape)
    h, w, c = spec.input_shape
    preprocessing = 4 * h * w * c + 3 if name.startswith("efficientnet") else 0
    assert ours == theirs - preprocessing
    flops = nas.cost(spec).flops
    assert flops <= ours <= 1.05 * flops
    keras.backend.clear_session()


def test_profiler_counts_exactly_twice_the_macs_without_extras() -> None:
    """With no conv bias, batch norm, pooling or counted activations (ReLU is not counted), the profiler gives
    exactly 2 * MACs + the dense layers' bias adds + 5 ops per class for the softmax: an exact check of the
    formulas for conv (strided, valid, 1x1), depthwise and dense."""
    stages = (Conv(filters=8, kernel=5, stride=2, bn=False), SepConv(filters=16, kernel=5, bn=False),
              Conv(filters=12, kernel=3, padding="valid", bn=False),
              Conv(filters=24, kernel=1, stride=2, bn=False))
    spec = ArchSpec(input_shape=(20, 20, 3), num_classes=10, stages=stages, head=Head(pool="flatten", hidden=(32,)))
    profiled = profiled_flops(nas.build_model(spec), spec.input_shape)
    assert profiled == nas.cost(spec).flops + (32 + 10) + 5 * 10


def test_saved_keras_file_loads_without_custom_objects(tmp_path) -> None:
    spec = ArchSpec(
        input_shape=(16, 16, 3), num_classes=5,
        stem=(Conv(filters=8, activation="hswish"),),
        stages=(MBConv(filters=8, expansion=3, se=0.25, drop=0.2, repeats=2, activation="swish"),
                Inception(b1=4, b3_reduce=4, b3=8, b5_reduce=2, b5=4, pool_proj=4, factorize=True, bn=True, stride=2),
                Bottleneck(filters=4, stride=2, stride_on="3x3"), Basic(filters=8),
                SepConv(filters=8, activation="relu6"), Conv(filters=8, pool="avg", pool_padding="same")),
        head=Head(conv=16, pool="max", hidden=(8,), dropout=0.1, activation="gelu"),
    )
    model = nas.build_model(spec)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # no custom_objects
    assert loaded.count_params() == nas.cost(spec).params
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    x = np.random.default_rng(0).normal(size=(4, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.predict(x, verbose=0).sum(axis=1), 1.0, rtol=1e-5)


def test_layer_names_are_deterministic() -> None:
    spec = random_spec(7)
    first = [layer.name for layer in nas.build_model(spec).layers]
    keras.backend.clear_session()
    second = [layer.name for layer in nas.build_model(spec).layers]
    assert first == second and first[0] == "input"
    assert nas.build_model(spec).name == f"nas_{spec.key()}"


def test_bn_settings_reach_the_layers() -> None:
    spec = search_spaces.baseline("resnet18", input_shape=(32, 32, 3), num_classes=10).replace(bn_momentum=0.9)
    layer = nas.build_model(spec).get_layer("s1b1_bn1")
    assert layer.momentum == 0.9 and layer.epsilon == pytest.approx(1e-3)


@pytest.mark.slow
def test_small_model_trains_on_digits() -> None:
    """The built model is a working network: a tiny CNN learns the 8x8 digits well above chance in 3 epochs."""
    from sklearn.datasets import load_digits

    os.environ.setdefault("PYTHONHASHSEED", "0")
    keras.utils.set_random_seed(0)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).reshape(-1, 8, 8, 1).astype("float32")
    spec = ArchSpec(input_shape=(8, 8, 1), num_classes=10,
                    stages=(Conv(filters=16), MBConv(filters=16, stride=2, se=0.25)),
                    bn_momentum=0.9)
    model = nas.build_model(spec)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:1400], y[:1400], epochs=3, batch_size=32, verbose=0)
    _, acc = model.evaluate(x[1400:], y[1400:], verbose=0)
    assert acc > 0.5
