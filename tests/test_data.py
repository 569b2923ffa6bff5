"""Data loading: embedded digits, Fashion-MNIST idx files, arrays, tf.data, image folders, and bad input."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

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
    assert a.x_train.min() >= 0.0 and a.x_train.max() <= 1.0
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
            pixels = rng.integers(0, 256, size=(9, 9, 3)).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / cls / f"{i}.png")
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


# ---------------------------------------------------------------- every kind of bad input: a ValueError that says what


def _fails(data, *parts: str, **options) -> str:
    """load_data(data) raises a ValueError whose message holds every one of ``parts``."""
    with pytest.raises(ValueError) as err:
        load_data(data, **options)
    message = str(err.value)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


X20 = np.linspace(0, 1, 20 * 8 * 8, dtype=np.float32).reshape(20, 8, 8)
Y20 = np.arange(20) % 2


def test_nas_load_data_is_the_same_function() -> None:
    import nas
    import nas.data

    assert nas.load_data is nas.data.load_data


def test_uint8_is_scaled_and_float_in_unit_range_kept() -> None:
    x = (np.arange(20 * 4 * 4) % 256).astype(np.uint8).reshape(20, 4, 4)
    d = load_data((x, Y20))
    got = np.concatenate([d.x_train, d.x_val])
    assert got.dtype == np.float32 and got.shape == (20, 4, 4, 1)
    np.testing.assert_array_equal(np.sort(got.reshape(-1)), np.sort(x.reshape(-1).astype(np.float32) / 255.0))
    f = load_data((X20.astype(np.float64), Y20.astype(np.float64)))  # float labels with integer values are fine
    np.testing.assert_array_equal(np.sort(np.concatenate([f.x_train, f.x_val]).reshape(-1)), np.sort(X20.reshape(-1)))
    assert f.y_train.dtype == np.int64
    onehot = load_data((X20, np.eye(2)[Y20]))  # one-hot rows become indices
    np.testing.assert_array_equal(onehot.y_val, load_data((X20, Y20)).y_val)


@pytest.mark.parametrize("labels, parts", [
    (np.r_[np.arange(19) % 2, 1000], ["`y` must hold every class 0..K-1", "K = largest label + 1 = 1001",
                                      "labels 2..999 never occur", "got label values 0, 1, 1000"]),
    (Y20 * 7, ["K = largest label + 1 = 8", "labels 1..6 never occur", "got label values 0, 7"]),
    (Y20 + 1, ["K = largest label + 1 = 3", "label 0 never occurs", "got label values 1, 2"]),
    (np.array(["cat", "dog"] * 10), ["`y` must be integer class labels 0..K-1, but got strings (e.g. 'cat', 'dog')",
                                     "np.unique(y, return_inverse=True)"]),
    (np.array([b"cat", b"dog"] * 10, dtype=object), ["`y` must be integer class labels 0..K-1, but got strings"]),
    (np.r_[Y20[:19], -1], ["`y` must be class indices >= 0, but got -1"]),
    (np.r_[Y20[:19], np.nan], ["`y` must be integer class labels, but got dtype float64 with value nan"]),
    (np.r_[Y20[:19], 0.5], ["`y` must be integer class labels, but got dtype float64 with value 0.5"]),
    (None, ["`y` must be integer class labels, but got dtype object (e.g. None)"]),
    (np.tile([[0.6, 0.4], [0.3, 0.7]], (10, 1)), ["`y` of shape (20, 2) must be one-hot rows", "row 0 is [0.6, 0.4]",
                                                  "y.argmax(axis=1)"]),
    (np.zeros(19), ["`y` must have one label per image (20), but got 19 labels"]),
    (np.eye(2)[np.arange(21) % 2], ["`y` must have one label per image (20), but got 21 labels"]),
    (np.zeros((20, 2, 2)), ["`y` must be labels shaped (N,) or one-hot rows (N, K), but got shape (20, 2, 2)"]),
    (np.zeros(20), ["`y` must hold at least 2 classes, but got only class 0 (20 labels)"]),
    (np.r_[np.zeros(18), 1, 1], ["`y` has too few images of 1 class (class 1: 2)",
                                 "val_fraction=0.2 needs at least 2 classes with at least 3 images each"]),
    (np.array([2 ** 40] * 20), ["`y` must be class indices 0..K-1, but got label 1099511627776"]),
])
def test_bad_labels(labels, parts) -> None:
    _fails((X20, labels), *parts)


@pytest.mark.parametrize("images, parts", [
    (X20 * 255, ["`x` must be images in [0, 1] (or uint8 0-255), but got floats with values in [0, 255]",
                 "divide by 255"]),
    ((X20 * 255).astype(np.int64), ["`x` must be images in [0, 1] (or uint8 0-255), but got int64 integers",
                                    "with values in [0, 255]", "divide by 255"]),
    (X20 - 0.5, ["`x` must be images in [0, 1]", "values in [-0.5, 0.5]", "scale them to [0, 1]"]),
    (np.where(X20 > 0.5, np.inf, X20), ["`x` must be finite, but it contains NaN or inf",
                                        "(640 of 1280 values, e.g. inf)"]),
    (np.where(X20 > 0.99, np.nan, X20), ["`x` must be finite, but it contains NaN or inf", "e.g. nan"]),
    (X20.astype(np.float64) * 1e300, ["`x` must be images in [0, 1]", "values in [0, 1e+300]"]),
    (X20[:, 0], ["`x` must be images shaped (N, H, W) or (N, H, W, C), but got shape (20, 8)"]),
    (X20[:, None, None], ["but got shape (20, 1, 1, 8, 8)"]),
    (np.zeros((20, 0, 8)), ["`x` images must have height, width and channels >= 1, but got shape (20, 0, 8, 1)"]),
    (np.zeros((20, 3, 8, 8)), ["`x` must be channels-last images (N, H, W, C), but got shape (20, 3, 8, 8)",
                               "np.moveaxis(x, 1, -1)"]),
    (np.full((20, 8, 8), "a"), ["`x` must be a numeric array of images", "got dtype <U1"]),
    ([np.zeros((8, 8))] * 19 + [np.zeros((7, 7))], ["`x` must be an array of images", "a ragged sequence"]),
])
def test_bad_images(images, parts) -> None:
    _fails((images, Y20), *parts)


def test_too_few_samples_say_how_many_are_needed() -> None:
    _fails((np.zeros((0, 8, 8)), np.zeros(0)), "`y` is empty (no images)",
           "needs at least 2 classes with at least 3 images each")
    _fails((X20[:2], [0, 1]), "`y` has too few images of 2 classes (class 0: 1, class 1: 1)",
           "needs at least 2 classes with at least 3 images each (so that every class is in both training and "
           "validation)")
    # the count follows val_fraction: at 0.5 two per class do, at 0.1 five are needed
    assert len(load_data((X20[:4], [0, 1, 0, 1]), val_fraction=0.5).x_val) == 2
    # (round() is Python's: 5 * 0.1 = 0.5 rounds to 0 validation images, so 5 per class are not enough)
    _fails((X20[:10], np.arange(10) % 2), "(class 0: 5, class 1: 5)", "val_fraction=0.1 needs at least 2 classes "
           "with at least 6 images each", val_fraction=0.1)
    assert len(load_data((X20[:12], np.arange(12) % 2), val_fraction=0.1).x_val) == 2


def test_explicit_validation_split() -> None:
    x = X20[:, :, :, None]
    _fails((x[:10], Y20[:10], x[10:], np.arange(10) % 3),
           "`y_val` must only hold classes that `y_train` has (0..1), but got label 2 absent from training")
    _fails((x[:10], Y20[:10] * 2, x[10:], Y20[10:]), "`y_train` must hold every class 0..K-1", "label 1 never occurs")
    _fails((x[:10], Y20[:10], x[10:], Y20[:9]), "`y_val` must have one label per image (10), but got 9 labels")
    _fails((x[:10], Y20[:10], x[:0], Y20[:0]), "`x_val` holds no images: validation needs at least 1 image")
    _fails((x[:0], Y20[:0], x, Y20), "`x_train` holds no images")
    _fails((x[:10], Y20[:10], x[10:, :4], Y20[10:]), "`x_train` and `x_val` must hold images of the same shape, but "
           "got (8, 8, 1) and (4, 8, 1)")
    _fails((x[:10], Y20[:10], x[10:] * 255, Y20[10:]), "`x_val` must be images in [0, 1]")
    # a training class absent from validation is refused: its accuracy would never be measured
    _fails((x[:10], Y20[:10], x[10:], np.zeros(10)), "`y_val` must hold every class of `y_train` (0..1), but label 1 "
           "is missing from validation")
    _fails((x[:10], np.arange(10) % 5, x[10:], np.arange(10) % 2), "`y_val` must hold every class of `y_train` "
           "(0..4), but labels 2, 3, 4 are missing from validation")
    _fails((x, Y20, x), "`data` must be (x, y) or (x_train, y_train, x_val, y_val), but got a tuple of 3 items")


def test_data_references(tmp_path) -> None:
    _fails({"kind": "name", "name": "digits", "bogus": 1}, "unknown key 'bogus' in a data reference of kind 'name'",
           "known keys: kind, name, seed, val_fraction, train_samples, val_samples")
    _fails({"kind": "npz", "path": "x.npz", "seed": 1}, "unknown key 'seed' in a data reference of kind 'npz'")
    _fails({"kind": "name"}, "a data reference of kind 'name' needs `name`")
    _fails({"kind": "folder"}, "a data reference of kind 'folder' needs `path`")
    _fails({"kind": "folder", "path": 3}, "`path` must be the path of an image folder, but got path=3")
    _fails({"kind": "name", "name": str(tmp_path)}, "`name` must be 'digits' or 'fashion_mnist', but got name=")
    _fails({"kind": "name", "name": "digits", "seed": "0"}, "`seed` must be an integer >= 0, but got seed='0'")
    _fails({"kind": "tfds"}, "a data reference must have `kind` 'name', 'folder' or 'npz', but got kind='tfds'")
    _fails({"kind": ["name"]}, "but got kind=['name']")
    _fails({"name": "digits"}, "but got kind=None", "e.g. {'kind': 'name', 'name': 'digits'}")
    _fails({"kind": "arrays"}, "arrays given without `save_to` are not saved")
    _fails({"x": X20, "y": Y20}, "got kind=None in data={'x': array(shape=(20, 8, 8), dtype=float32), 'y': ")
    # an option given both ways must agree; an option that has no effect is refused
    _fails({"kind": "name", "name": "digits", "train_samples": 500}, "`train_samples` is given twice with different "
           "values: train_samples=100 and the data reference's train_samples=500", train_samples=100)
    ref = load_data((X20, Y20), save_to=tmp_path).ref
    _fails(ref, "`train_samples` does not apply to a data reference of kind 'npz'", train_samples=5)
    _fails(ref, "`image_size` does not apply", image_size=(4, 4))
    assert load_data({"kind": "name", "name": "digits", "train_samples": 500}, train_samples=500).ref[
        "train_samples"] == 500


def test_options_are_checked() -> None:
    _fails(XY := (X20, Y20), "`seed` must be an integer >= 0, but got seed='a'", seed="a")
    _fails(XY, "`seed` must be an integer >= 0, but got seed=-1", seed=-1)
    _fails(XY, "`seed` must be an integer >= 0, but got seed=1.5", seed=1.5)
    _fails(XY, "`val_fraction` must be in (0, 1), but got val_fraction='a'", val_fraction="a")
    _fails(XY, "`val_fraction` must be in (0, 1), but got val_fraction=1", val_fraction=1)
    _fails(XY, "`val_fraction` must be in (0, 1), but got val_fraction=nan", val_fraction=float("nan"))
    _fails(XY, "`train_samples` must be a positive integer or None, but got train_samples=0", train_samples=0)
    _fails(XY, "`val_samples` must be a positive integer or None, but got val_samples=True", val_samples=True)
    _fails(XY, "`image_size` resizes the images of an image folder; it does not apply to arrays", image_size=(4, 4))
    _fails("digits", "it does not apply to data='digits'", image_size=(4, 4))
    _fails(XY, "`save_to` must be a folder path or None, but got save_to=3", save_to=3)
    _fails("", "`data` must be 'digits', 'fashion_mnist', arrays, tf.data datasets or an image folder, but got data=''")
    # numpy numbers are fine, and stored as plain JSON numbers
    d = load_data(XY, seed=np.int64(3), val_fraction=np.float32(0.5), train_samples=np.int32(4))
    assert len(d.x_train) == 4 and len(d.x_val) == 10


def test_save_to_must_be_a_folder(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    _fails((X20, Y20), "`save_to` must be a folder, but", "is a file", save_to=tmp_path / "file")
    d = load_data((X20, Y20), save_to=str(tmp_path / "new"))  # a str path is fine
    assert Path(d.ref["path"]).parent == (tmp_path / "new").resolve()


def test_digits_val_fraction_is_applied() -> None:
    d = load_data("digits", val_fraction=0.5)
    assert d.ref["val_fraction"] == 0.5
    counts = np.bincount(np.r_[d.y_train, d.y_val])
    assert len(d.x_val) == sum(int(round(c * 0.5)) for c in counts) == 898  # the default 0.2 gives 359
    _fails("digits", "`digits labels` has too few images of 10 classes",
           "val_fraction=0.001 needs at least 2 classes with at least 501 images each", val_fraction=0.001)


def _images(folder, classes: dict[str, int], size=(6, 6), mode="RGB") -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, n in classes.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            shape = (*size, 3) if mode == "RGB" else size
            Image.fromarray(rng.integers(0, 256, size=shape).astype(np.uint8), mode).save(folder / name / f"{i}.png")


def test_folder_problems(tmp_path) -> None:
    _images(tmp_path / "ok", {"a": 5, "b": 5})
    d = load_data(tmp_path / "ok")
    again = load_data(d.ref)  # what a worker does
    np.testing.assert_array_equal(again.x_val, d.x_val)
    assert again.class_names == ["a", "b"] and d.ref["image_size"] is None

    _images(tmp_path / "empty", {"a": 5, "b": 5})
    (tmp_path / "empty" / "c").mkdir()
    (tmp_path / "empty" / "c" / "notes.txt").write_text("no images here")
    _fails(tmp_path / "empty", "class folder 'c' has none (3 class folders: a, b, c)", "every sub-folder is a class")

    _images(tmp_path / "corrupt", {"a": 5, "b": 5})
    (tmp_path / "corrupt" / "b" / "broken.png").write_bytes(b"not an image at all")
    _fails(tmp_path / "corrupt", "'b/broken.png' must be a readable image, but it could not be decoded "
           "(cannot identify image file)")

    _images(tmp_path / "truncated", {"a": 5, "b": 5}, size=(32, 32))
    good = (tmp_path / "truncated" / "a" / "0.png").read_bytes()
    (tmp_path / "truncated" / "a" / "0.png").write_bytes(good[: len(good) // 2])
    _fails(tmp_path / "truncated", "'a/0.png' must be a readable image, but it could not be decoded")

    _images(tmp_path / "few", {"a": 5, "b": 2})
    _fails(tmp_path / "few", "`data` has too few images of 1 class (class 'b': 2)", "at least 3 images each")

    _images(tmp_path / "sizes", {"a": 3, "b": 3})
    _images(tmp_path / "sizes", {"c": 3}, size=(7, 5))
    _fails(tmp_path / "sizes", "must all have the same size", "'a/0.png' is 6x6 and 'c/0.png' is 5x7",
           "give `image_size` to resize them")
    assert load_data(tmp_path / "sizes", image_size=(4, 5)).input_shape == (4, 5, 3)

    _images(tmp_path / "modes", {"a": 3, "b": 3})
    _images(tmp_path / "modes", {"c": 3}, mode="L")
    _fails(tmp_path / "modes", "must be all grayscale or all colour, but 'c/0.png' is grayscale and 'a/0.png' is "
           "colour")

    _fails(tmp_path / "ok", "`image_size` must be (height, width) of positive integers, or None, but got "
           "image_size=8", image_size=8)
    _fails(tmp_path / "ok" / "a" / "0.png", "is not a folder")
    _fails(tmp_path / "data.npz", "no such name or folder")


def _npz(path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def test_npz_problems(tmp_path) -> None:
    x = X20[:, :, :, None]
    good = {"x_train": x[:10], "y_train": Y20[:10], "x_val": x[10:], "y_val": Y20[10:]}
    d = load_data({"kind": "npz", "path": _npz(tmp_path / "good.npz", **good)})
    np.testing.assert_array_equal(d.x_val, x[10:])
    assert d.ref == {"kind": "npz", "path": str(tmp_path / "good.npz"), "input_scale": 1.0}
    u8 = load_data({"kind": "npz", "path": _npz(tmp_path / "u8.npz", **{**good, "x_train": (x[:10] * 255).astype(
        np.uint8)})})
    assert u8.x_train.dtype == np.float32 and u8.x_train.max() <= 1.0

    def ref(name: str, **changes) -> dict:
        return {"kind": "npz", "path": _npz(tmp_path / name, **{**good, **changes})}

    _fails({"kind": "npz", "path": str(tmp_path / "none.npz")}, "`data` .npz file", "does not exist or is not a file")
    (tmp_path / "garbage.npz").write_bytes(b"garbage" * 10)
    _fails({"kind": "npz", "path": str(tmp_path / "garbage.npz")}, "must be a numpy .npz archive, but it could not "
           "be read")
    np.save(tmp_path / "single.npy", x)
    _fails({"kind": "npz", "path": str(tmp_path / "single.npy")}, "it holds a single array")
    _fails({"kind": "npz", "path": _npz(tmp_path / "xy.npz", x=x, y=Y20)}, "must hold the arrays x_train, y_train, "
           "x_val, y_val, but x_train, y_train, x_val, y_val are missing (it holds x, y)")
    _fails(ref("object.npz", y_val=np.array([None] * 10)), "array 'y_val' could not be read (object arrays are not "
           "allowed)")
    _fails(ref("scaled.npz", x_train=x[:10] * 255), "`x_train` must be images in [0, 1]", "divide by 255")
    _fails(ref("nan.npz", x_val=x[10:] * np.nan), "`x_val` must be finite")
    _fails(ref("labels.npz", y_train=np.array(["a", "b"] * 5)), "`y_train` must be integer class labels 0..K-1, "
           "but got strings")
    _fails(ref("length.npz", y_val=Y20[:3]), "`y_val` must have one label per image (10), but got 3 labels")
    _fails(ref("extra.npz", y_val=np.arange(10) % 3), "`y_val` must only hold classes that `y_train` has (0..1), "
           "but got label 2 absent from training")
    _fails(ref("gap.npz", y_train=Y20[:10] * 3), "`y_train` must hold every class 0..K-1", "labels 1..2 never occur")
    _fails({"kind": "npz", "path": 5}, "`path` must be the path of an .npz file, but got path=5")


def test_saved_subsets_reload_even_when_a_class_is_missing(tmp_path) -> None:
    """train_samples may leave a class out of a small training subset; the study's saved file must still reload
    in a worker, while a user's file with the same content is refused."""
    y = np.arange(30) % 3
    d = load_data((np.full((30, 4, 4), 0.5), y), train_samples=2, save_to=tmp_path)
    assert len(set(d.y_train.tolist())) < len(set(d.y_val.tolist())) == 3
    again = load_data(d.ref)
    np.testing.assert_array_equal(again.y_train, d.y_train)
    np.testing.assert_array_equal(again.x_val, d.x_val)
    copy = tmp_path / "mine.npz"
    copy.write_bytes(Path(d.ref["path"]).read_bytes())
    _fails({"kind": "npz", "path": str(copy)}, "`y_train` must hold every class 0..K-1")


class _Dataset:
    """Stands in for a tf.data dataset (what nas.data uses of one)."""

    def __init__(self, items) -> None:
        self.items = items

    def as_numpy_iterator(self):
        return iter(self.items)


def test_bad_datasets() -> None:
    x, y = X20[:, :, :, None], Y20
    _fails(_Dataset([]), "`data` must yield (image, label) pairs, but the dataset is empty")
    _fails(_Dataset([{"image": x, "label": y}]), "yields dicts with keys ['image', 'label']",
           "dataset.map(lambda d: (d['image'], d['label']))")
    _fails(_Dataset([(x[:4], y[:4]), (x[:4, :4], y[:4])]), "`data` must yield images and labels of one shape, but "
           "got images (8, 8, 1) and then (4, 8, 1)")
    _fails(_Dataset([(x[:4] * 255, y[:4])] * 5), "`data` must be images in [0, 1]")
    _fails(_Dataset([(x[:4], y[:4] * 3)] * 5), "`labels` must hold every class 0..K-1")
    _fails((_Dataset([(x, y)]), _Dataset([(x[:4], y[:4] + 5)])), "`validation dataset labels` must only hold classes "
           "that `train dataset labels` has (0..1), but got labels 5, 6 absent from training")
    _fails((_Dataset([(x, y)]), y), "`x` must be an array of images, but got a tf.data dataset")
    unbatched = load_data(_Dataset(list(zip(x, y))))
    batched = load_data(_Dataset([(x[i:i + 3], y[i:i + 3]) for i in range(0, 20, 3)]))
    np.testing.assert_array_equal(unbatched.x_train, batched.x_train)
    np.testing.assert_array_equal(unbatched.y_val, load_data((x, y)).y_val)


def _idx_header(path, magic: int, dims: tuple[int, ...], payload: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(f">I{len(dims)}I", magic, *dims) + payload)


def test_fashion_mnist_bad_files(tmp_path, monkeypatch) -> None:
    import nas.data

    monkeypatch.setattr(nas.data, "FASHION_MNIST_DIR", tmp_path)
    images, labels = tmp_path / "train-images-idx3-ubyte.gz", tmp_path / "train-labels-idx1-ubyte.gz"
    pixels = np.zeros((30, 28, 28), dtype=np.uint8).tobytes()
    _idx_header(images, 2051, (30, 28, 28), pixels)
    _idx_header(labels, 2049, (30,), (np.arange(30) % 10).astype(np.uint8).tobytes())
    assert load_data("fashion_mnist", val_fraction=0.5).num_classes == 10
    _idx_header(labels, 2049, (29,), (np.arange(29) % 10).astype(np.uint8).tobytes())
    _fails("fashion_mnist", "must hold one label per image (30), but got 29 labels")
    _idx_header(labels, 2051, (30,), bytes(30))
    _fails("fashion_mnist", "must be an idx file with magic number 2049, but got 2051")
    _idx_header(images, 2051, (30, 28, 28), pixels[:-5])
    _fails("fashion_mnist", "must hold 23520 values (its header says shape (30, 28, 28)), but got 23515")
    images.write_bytes(b"plain bytes, not gzip")
    _fails("fashion_mnist", "must be a gzip-compressed idx file, but it could not be read")
