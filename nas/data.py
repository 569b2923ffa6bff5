"""Data for search trials: named embedded sets, numpy arrays, tf.data datasets and image folders.

Everything becomes a :class:`Data`: float32 images in [0, 1] shaped (N, H, W, C), int labels, a fixed seeded
validation split, and a *reference* (plain JSON) from which a worker process, or a later ``nas resume``,
loads exactly the same data again. Arrays and tf.data datasets given from Python are written once to an
``.npz`` file in the study's artefact folder so that their reference is a path.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Data", "load_data", "FASHION_MNIST_DIR"]

FASHION_MNIST_DIR = Path(os.environ.get("NAS_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    ref: dict[str, Any]
    class_names: list[str] | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_val.max())) + 1

    def describe(self) -> str:
        h, w, c = self.input_shape
        return (f"{self.ref.get('name', self.ref.get('kind'))}: {len(self.x_train)} train / {len(self.x_val)} "
                f"validation images {h}x{w}x{c}, {self.num_classes} classes")


def _split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """A seeded, stratified split (every class keeps its share in both parts)."""
    rng = np.random.default_rng(seed)
    val_idx = []
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        val_idx.append(idx[: int(round(len(idx) * fraction))])
    val = np.sort(np.concatenate(val_idx))
    mask = np.ones(len(y), dtype=bool)
    mask[val] = False
    return x[mask], y[mask], x[val], y[val]


def _subset(x: np.ndarray, y: np.ndarray, n: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if n is None or n >= len(y):
        return x, y
    idx = np.sort(np.random.default_rng(seed).choice(len(y), size=n, replace=False))
    return x[idx], y[idx]


def _as_images(x: Any, field: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4:
        raise ValueError(f"`{field}` must be images shaped (N, H, W) or (N, H, W, C), but got shape {x.shape}")
    if x.dtype == np.uint8:
        return (x.astype(np.float32) / 255.0)
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"`{field}` must be finite, but it contains NaN or inf")
    return x


def _as_labels(y: Any, n: int, field: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if len(y) != n:
        raise ValueError(f"`{field}` must have one label per image ({n}), but got {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.equal(np.mod(y, 1), 0)):
            raise ValueError(f"`{field}` must be integer class labels, but got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise ValueError(f"`{field}` must be class indices >= 0, but got {int(y.min())}")
    return y


def _digits(seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).reshape(-1, 8, 8, 1).astype(np.float32)
    return _split(x, y.astype(np.int64), 0.2, seed)


def _read_idx(path: Path, header: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header)


def _fashion_mnist(seed: int, val_fraction: float) -> tuple[np.ndarray, ...]:
    d = FASHION_MNIST_DIR
    images, labels = d / "train-images-idx3-ubyte.gz", d / "train-labels-idx1-ubyte.gz"
    if not images.exists() or not labels.exists():
        raise ValueError(
            f"data 'fashion_mnist' needs the Fashion-MNIST files in {d} (train-images-idx3-ubyte.gz, "
            f"train-labels-idx1-ubyte.gz); install them with `apt-get install dataset-fashion-mnist` (Debian), "
            f"or set NAS_FASHION_MNIST_DIR to a folder holding them")
    x = _read_idx(images, 16).reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    y = _read_idx(labels, 8).astype(np.int64)
    return _split(x, y, val_fraction, seed)


def _folder(path: Path, image_size: tuple[int, int] | None, seed: int, val_fraction: float) -> tuple[Any, ...]:
    from PIL import Image

    if not path.is_dir():
        raise ValueError(f"data folder {str(path)!r} does not exist or is not a folder")
    classes = sorted(p.name for p in path.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise ValueError(f"data folder {str(path)!r} must hold one sub-folder per class (at least 2), "
                         f"but has {len(classes)}")
    xs, ys = [], []
    for i, name in enumerate(classes):
        files = sorted(p for p in (path / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for f in files:
            img = Image.open(f)
            img = img.convert("L" if img.mode in ("L", "1", "I", "I;16") else "RGB")
            if image_size is not None:
                img = img.resize((image_size[1], image_size[0]))
            xs.append(np.asarray(img))
            ys.append(i)
    if not xs:
        raise ValueError(f"data folder {str(path)!r} has no images ({', '.join(IMAGE_SUFFIXES)})")
    shapes = {a.shape for a in xs}
    if len(shapes) != 1:
        raise ValueError(f"images in {str(path)!r} have different sizes {sorted(shapes)[:3]}...; "
                         f"give `image_size` to resize them")
    x = _as_images(np.stack(xs), "data")
    return (*_split(x, np.asarray(ys, dtype=np.int64), val_fraction, seed), classes)


def _from_tf_dataset(ds: Any) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for item in ds.as_numpy_iterator():
        if not isinstance(item, tuple) or len(item) != 2:
            raise ValueError("a tf.data dataset must yield (image, label) pairs")
        x, y = item
        if np.ndim(x) in (3, 4) and np.ndim(x) == np.ndim(y) + 3:  # batched
            xs.append(x)
            ys.append(y)
        else:
            xs.append(np.asarray(x)[None])
            ys.append(np.asarray(y).reshape(1))
    return np.concatenate(xs), np.concatenate(ys)


def _save_arrays(data: Data, folder: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    for a in (data.x_train, data.y_train, data.x_val, data.y_val):
        digest.update(np.ascontiguousarray(a).tobytes())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"data-{digest.hexdigest()[:12]}.npz"
    if not path.exists():
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, x_train=data.x_train, y_train=data.y_train, x_val=data.x_val, y_val=data.y_val)
        os.replace(tmp, path)
    return {"kind": "npz", "path": str(path.resolve())}


def load_data(data: Any, *, seed: int = 0, val_fraction: float = 0.2, train_samples: int | None = None,
              val_samples: int | None = None, image_size: Any = None, save_to: Path | None = None) -> Data:
    """Turn ``data`` into :class:`Data`.

    ``data`` is a name (``"digits"``: scikit-learn's 8x8 digits, embedded; ``"fashion_mnist"``: the
    Debian package's files), a reference dict as stored with a study, ``(x, y)`` (split here) or
    ``(x_train, y_train, x_val, y_val)`` numpy arrays, a pair of tf.data datasets ``(train, validation)`` or one
    dataset (split here), or the path of a folder with one sub-folder of images per class.
    ``train_samples`` / ``val_samples`` keep a seeded subset (for fast search trials).
    """
    options = {"seed": seed, "val_fraction": val_fraction, "train_samples": train_samples,
               "val_samples": val_samples}
    for name in ("train_samples", "val_samples"):
        v = options[name]
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"`{name}` must be a positive integer or None, but got {name}={v!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"`val_fraction` must be in (0, 1), but got val_fraction={val_fraction!r}")
    classes = None
    if isinstance(data, dict):
        ref = dict(data)
        kind = ref.pop("kind", None)
        if kind == "npz":
            with np.load(ref["path"]) as z:
                arrays = (z["x_train"], z["y_train"], z["x_val"], z["y_val"])
            out = Data(*arrays, ref={"kind": "npz", "path": ref["path"]})
            return out
        if kind == "name":
            return load_data(ref.pop("name"), **{**options, **ref})
        if kind == "folder":
            return load_data(ref.pop("path"), **{**options, **{k: v for k, v in ref.items() if k != "path"}})
        raise ValueError(f"a data reference must have `kind` name, npz or folder, but got {data!r}")
    if isinstance(data, str) and data in ("digits", "fashion_mnist"):
        arrays = _digits(seed) if data == "digits" else _fashion_mnist(seed, val_fraction)
        ref: dict[str, Any] = {"kind": "name", "name": data, **options}
    elif isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise ValueError(f"`data` must be 'digits', 'fashion_mnist', arrays, tf.data datasets or an image "
                             f"folder, but got data={str(data)!r} (no such name or folder)")
        size = tuple(image_size) if image_size is not None else None
        *arrays, classes = _folder(path, size, seed, val_fraction)  # type: ignore[assignment]
        ref = {"kind": "folder", "path": str(path.resolve()), "image_size": list(size) if size else None, **options}
    else:
        arrays = _from_python(data, seed, val_fraction)
        ref = {"kind": "arrays"}
    x_tr, y_tr, x_va, y_va = arrays
    x_tr, y_tr = _subset(x_tr, y_tr, train_samples, seed)
    x_va, y_va = _subset(x_va, y_va, val_samples, seed + 1)
    out = Data(x_tr, y_tr, x_va, y_va, ref=ref, class_names=classes)
    if out.x_train.shape[1:] != out.x_val.shape[1:]:
        raise ValueError(f"training images {out.x_train.shape[1:]} and validation images {out.x_val.shape[1:]} "
                         f"must have the same shape")
    if out.num_classes < 2:
        raise ValueError(f"data must have at least 2 classes, but got {out.num_classes}")
    if ref["kind"] == "arrays" and save_to is not None:
        out.ref = _save_arrays(out, save_to)
    return out


def _from_python(data: Any, seed: int, val_fraction: float) -> tuple[np.ndarray, ...]:
    if hasattr(data, "as_numpy_iterator"):  # one tf.data dataset: split it
        x, y = _from_tf_dataset(data)
        x = _as_images(x, "data")
        return _split(x, _as_labels(y, len(x), "labels"), val_fraction, seed)
    if isinstance(data, (tuple, list)):
        if len(data) == 2 and all(hasattr(d, "as_numpy_iterator") for d in data):
            x_tr, y_tr = _from_tf_dataset(data[0])
            x_va, y_va = _from_tf_dataset(data[1])
            data = (x_tr, y_tr, x_va, y_va)
        if len(data) == 2:
            x = _as_images(data[0], "x")
            return _split(x, _as_labels(data[1], len(x), "y"), val_fraction, seed)
        if len(data) == 4:
            x_tr = _as_images(data[0], "x_train")
            x_va = _as_images(data[2], "x_val")
            return (x_tr, _as_labels(data[1], len(x_tr), "y_train"), x_va, _as_labels(data[3], len(x_va), "y_val"))
    raise ValueError(f"`data` must be 'digits', 'fashion_mnist', (x, y) or (x_train, y_train, x_val, y_val) arrays, "
                     f"tf.data datasets or an image folder, but got {type(data).__name__}")
