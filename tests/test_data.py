"""Data loading: embedded digits, Fashion-MNIST idx files, arrays, tf.data, image folders, and bad input."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from nas.data import load_data


def test_digits_split_is_fixed_and_stratified() -> None:
    a = load_data("digits")
    b = load_data("digits")
    assert len(a.x_train) + len(a.x_val) == 1797 and len(a.x_val) == 359
    assert a.input_shape == (8, 8, 1) and a.num_classes == 10
    np.testing.assert_array_equal(a.y_val, b.y_val)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    counts = np.bincount(a.y_val, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0
    c = load_data("digits", train_samples=500, val_samples=100)
    assert len(c.x_train) == 500 and len(c.x_val) == 100
    assert c.ref == {"kind": "name", "name": "digits", "seed": 0, "val_fraction": 0.2, "train_samples": 500,
                     "val_samples": 100}
    again = load_data(c.ref)
    np.testing.assert_array_equal(again.x_train, c.x_train)


def _write_idx(folder, images: np.ndarray, labels: np.ndarray) -> None:
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, len(images), 28, 28) + images.astype(np.uint8).tobytes())
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def test_fashion_mnist_reads_idx_files(tmp_path, monkeypatch) -> None:
    import nas.data

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(100, 28, 28))
    labels = np.repeat(np.arange(10), 10)
    _write_idx(tmp_path, images, labels)
    monkeypatch.setattr(nas.data, "FASHION_MNIST_DIR", tmp_path)
    d = load_data("fashion_mnist")
    assert d.input_shape == (28, 28, 1) and d.num_classes == 10
    assert len(d.x_train) == 80 and len(d.x_val) == 20
    # pixel values survive the header offsets: the first validation image is one of the written images / 255
    assert any(np.allclose(d.x_val[0, :, :, 0], images[i] / 255.0) for i in range(100))


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch) -> None:
    import nas.data

    monkeypatch.setattr(nas.data, "FASHION_MNIST_DIR", tmp_path / "nothing")
    with pytest.raises(ValueError, match="apt-get install dataset-fashion-mnist"):
        load_data("fashion_mnist")


def test_arrays_tf_data_and_folder(tmp_path) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(60, 12, 10, 3)).astype(np.uint8)
    y = np.arange(60) % 3
    d = load_data((x, y), save_to=tmp_path)
    assert d.input_shape == (12, 10, 3) and d.num_classes == 3 and len(d.x_val) == 12
    assert d.x_train.max() <= 1.0
    assert d.ref["kind"] == "npz"
    reloaded = load_data(d.ref)
    np.testing.assert_array_equal(reloaded.x_val, d.x_val)
    d4 = load_data((x[:40], y[:40], x[40:], y[40:]))
    assert len(d4.x_train) == 40 and len(d4.x_val) == 20
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x.astype("float32") / 255, y)).batch(16)
    dt = load_data((ds, ds.take(1)))
    assert len(dt.x_train) == 60 and len(dt.x_val) == 16
    from PIL import Image

    for cls in ("cat", "dog"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, size=(9, 9, 3)).astype(np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    f = load_data(tmp_path / "imgs", image_size=(8, 8))
    assert f.input_shape == (8, 8, 3) and f.num_classes == 2 and f.class_names == ["cat", "dog"]
    assert len(f.x_train) + len(f.x_val) == 10


@pytest.mark.parametrize("data, message", [
    ("cifar100", "no such name or folder"),
    ((np.zeros((10, 8)), np.zeros(10)), "must be images shaped (N, H, W) or (N, H, W, C), but got shape (10, 8)"),
    ((np.zeros((10, 8, 8)), np.zeros(9)), "must have one label per image (10), but got 9 labels"),
    ((np.zeros((10, 8, 8)), np.full(10, 0.5)), "must be integer class labels"),
    ((np.full((10, 8, 8), np.nan), np.arange(10) % 2), "must be finite"),
    ((np.zeros((10, 8, 8)), np.zeros(10)), "at least 2 classes"),
    (42, "but got int"),
])
def test_bad_data_is_refused(data, message: str) -> None:
    with pytest.raises(ValueError) as err:
        load_data(data)
    assert message in str(err.value)
