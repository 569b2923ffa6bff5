"""Data for search trials: named embedded sets, numpy arrays, tf.data datasets and image folders.

Everything becomes a :class:`Data`: float32 images in [0, 1] shaped (N, H, W, C), int labels, a fixed seeded
validation split, and a *reference* (plain JSON) from which a worker process, or a later ``nas resume``,
loads exactly the same data again. Arrays and tf.data datasets given from Python are written once to an
``.npz`` file in the study's artefact folder so that their reference is a path.

Input is checked strictly: images are uint8 (scaled to [0, 1] here) or finite numbers in [0, 1] (not booleans);
labels are integers 0..K-1 with every class present (K >= 2); a split made here needs enough images of every
class to put each class in both training and validation; an explicit validation split holds every training
class and no other; ``train_samples`` / ``val_samples`` may not ask for more images than there are. Bad input
raises a ``ValueError`` naming the field, the rule and the value received.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import numbers
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf
    from numpy.typing import ArrayLike

__all__ = ["Data", "DataLike", "check_data", "load_data", "FASHION_MNIST_DIR"]

# data as load_data takes it: a name ("digits", "fashion_mnist"), the path of an image folder (one sub-folder per
# class), a stored reference dict, (x, y) or (x_train, y_train, x_val, y_val) arrays (a tuple or a list), one tf.data
# dataset of (image, label) pairs (split here) or a pair (train, validation) of them
DataLike: TypeAlias = ("str | os.PathLike[str] | dict[str, Any] | tf.data.Dataset"
                       " | tuple[tf.data.Dataset, tf.data.Dataset] | list[tf.data.Dataset]"
                       " | tuple[ArrayLike, ArrayLike] | tuple[ArrayLike, ArrayLike, ArrayLike, ArrayLike]"
                       " | list[ArrayLike]")

FASHION_MNIST_DIR = Path(os.environ.get("NAS_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
NAMES = ("digits", "fashion_mnist")
_OPTIONS = ("seed", "val_fraction", "train_samples", "val_samples")
_DEFAULTS: dict[str, Any] = {"seed": 0, "val_fraction": 0.2, "train_samples": None, "val_samples": None,
                             "image_size": None}
# the keys a stored reference of each kind may hold
_REF_KEYS = {"name": ("kind", "name", *_OPTIONS), "folder": ("kind", "path", "image_size", *_OPTIONS),
             "npz": ("kind", "path", "input_scale")}
_NPZ_ARRAYS = ("x_train", "y_train", "x_val", "y_val")
_MAX_LABEL = 2 ** 31 - 1


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    ref: dict[str, Any]
    class_names: list[str] | None = None
    # what the raw inputs were multiplied by to give these [0, 1] images (digits 1/16, uint8 images 1/255): an
    # exported model applies it first, so that it takes the raw images a user has
    input_scale: float = 1.0

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return cast("tuple[int, int, int]", tuple(int(d) for d in self.x_train.shape[1:]))  # images are 4-D

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_val.max())) + 1

    def describe(self) -> str:
        h, w, c = self.input_shape
        return (f"{self.ref.get('name', self.ref.get('kind'))}: {len(self.x_train)} train / {len(self.x_val)} "
                f"validation images {h}x{w}x{c}, {self.num_classes} classes")


# ---------------------------------------------------------------- messages

def _brief(value: Any, limit: int = 80) -> str:
    """A short repr: arrays by shape and dtype, long texts cut."""
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape}, dtype={value.dtype})"
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k!r}: {_brief(v, 30)}" for k, v in list(value.items())[:8]) + \
               (", ..." if len(value) > 8 else "") + "}"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fail(field: str, rule: str, value: Any) -> ValueError:
    return ValueError(f"`{field}` must be {rule}, but got {field}={_brief(value)}")


def _num(v: Any) -> str:
    return f"{float(v):g}" if isinstance(v, (float, np.floating)) else str(v)


def _values(values: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(_num(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def _ranges(pairs: list[tuple[int, int]], limit: int = 5) -> str:
    parts = [str(a) if a == b else f"{a}..{b}" for a, b in pairs[:limit]]
    return ", ".join(parts) + (", ..." if len(pairs) > limit else "")


# ---------------------------------------------------------------- options

def _check_options(seed: Any, val_fraction: Any, train_samples: Any, val_samples: Any) -> dict[str, Any]:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise _fail("seed", "an integer >= 0", seed)
    if (isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real)
            or not 0 < float(val_fraction) < 1):
        raise ValueError(f"`val_fraction` must be in (0, 1), but got val_fraction={_brief(val_fraction)}")
    options: dict[str, Any] = {"seed": int(seed), "val_fraction": float(val_fraction)}
    for name, v in (("train_samples", train_samples), ("val_samples", val_samples)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1):
            raise ValueError(f"`{name}` must be a positive integer or None, but got {name}={_brief(v)}")
        options[name] = None if v is None else int(v)
    return options


def _check_image_size(image_size: Any) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1 for d in image_size)):
        raise _fail("image_size", "(height, width) of positive integers, or None", image_size)
    return int(image_size[0]), int(image_size[1])


def _min_per_class(fraction: float) -> int:
    """The fewest images a class needs so that the split below puts it in both training and validation."""
    n = max(2, int(max(0.5 / fraction, 0.5 / (1 - fraction))) - 1)
    while not (int(round(n * fraction)) >= 1 and n - int(round(n * fraction)) >= 1):
        n += 1
    return n


# ---------------------------------------------------------------- arrays

def _as_images(x: Any, field: str) -> np.ndarray:
    """(N, H, W[, C]) numbers as float32 in [0, 1]: uint8 is divided by 255, anything else must be in [0, 1]."""
    if hasattr(x, "as_numpy_iterator"):
        raise ValueError(f"`{field}` must be an array of images, but got a tf.data dataset; give datasets as "
                         f"data=dataset or data=(train_dataset, validation_dataset), not mixed with arrays")
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as exc:
        ragged = "inhomogeneous" in str(exc) or "sequence" in str(exc)
        raise ValueError(f"`{field}` must be an array of images shaped (N, H, W) or (N, H, W, C), but got "
                         f"{'a ragged sequence (images of different shapes?)' if ragged else type(x).__name__} "
                         f"that is not one array") from None
    if a.dtype.kind not in "iuf":  # booleans too: whether True is white or a mask is the user's to say
        hint = "; for 0/1 images pass x.astype(np.uint8) * 255 or x.astype(np.float32)" if a.dtype.kind == "b" else ""
        raise ValueError(f"`{field}` must be a numeric array of images (uint8 0-255, or floats in [0, 1]), but "
                         f"got dtype {a.dtype}" + (f" ({_brief(x)})" if a.ndim == 0 else "") + hint)
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4:
        raise ValueError(f"`{field}` must be images shaped (N, H, W) or (N, H, W, C), but got shape {a.shape}")
    if min(a.shape[1:]) < 1:
        raise ValueError(f"`{field}` images must have height, width and channels >= 1, but got shape {a.shape}")
    if a.shape[1] in (1, 3, 4) and a.shape[2] > 4 and a.shape[3] > 4:
        raise ValueError(f"`{field}` must be channels-last images (N, H, W, C), but got shape {a.shape}, which "
                         f"looks channels-first (N, C, H, W); use np.moveaxis({field}, 1, -1)")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            raise ValueError(f"`{field}` must be finite, but it contains NaN or inf ({int(bad.sum())} of "
                             f"{a.size} values, e.g. {_num(a[bad][0])})")
    if a.size:
        low, high = a.min(), a.max()
        if low < 0 or high > 1:
            hint = ("divide by 255 (or pass uint8 arrays, which are scaled for you)" if high <= 255 and low >= 0
                    else "scale them to [0, 1]")
            kind = "floats" if a.dtype.kind == "f" else f"{a.dtype} integers"
            raise ValueError(f"`{field}` must be images in [0, 1] (or uint8 0-255), but got {kind} with values in "
                             f"[{_num(low)}, {_num(high)}]; {hint}")
    return a.astype(np.float32, copy=False)


def _as_labels(y: Any, n: int, field: str) -> np.ndarray:
    """Integer class indices, one per image (one-hot rows are turned into indices)."""
    if hasattr(y, "as_numpy_iterator"):
        raise ValueError(f"`{field}` must be an array of integer class labels, but got a tf.data dataset")
    try:
        a = np.asarray(y)
    except (ValueError, TypeError):
        raise ValueError(f"`{field}` must be an array of integer class labels, but got {type(y).__name__} that "
                         f"is not one array") from None
    flat = a.reshape(-1)
    if a.dtype.kind in "US" or (a.dtype.kind == "O" and a.size
                                and all(isinstance(v, (str, bytes)) for v in flat[:1000])):
        examples = ", ".join(repr(v) for v in sorted({str(v) for v in flat[:1000]})[:3])
        raise ValueError(f"`{field}` must be integer class labels 0..K-1, but got strings (e.g. {examples}); map "
                         f"them to integers first, e.g. `class_names, {field} = np.unique({field}, "
                         f"return_inverse=True)`")
    if a.dtype.kind == "O" and all(isinstance(v, numbers.Real) for v in flat):  # e.g. a pandas object column
        try:
            a = a.astype(np.int64 if all(isinstance(v, numbers.Integral) for v in flat) else np.float64)
        except (OverflowError, ValueError, TypeError):
            raise ValueError(f"`{field}` must be class indices 0..K-1, but got label "
                             f"{_brief(max(flat, key=abs), 40)}") from None
    if a.dtype.kind not in "biuf":
        example = f" (e.g. {_brief(flat[0], 40)})" if a.size else ""
        raise ValueError(f"`{field}` must be integer class labels, but got dtype {a.dtype}{example}")
    if a.ndim == 0:
        raise ValueError(f"`{field}` must have one label per image ({n}), but got a single number "
                         f"{_num(a[()])}")
    if a.ndim > 2 and all(d == 1 for d in a.shape[2:]):
        a = a.reshape(a.shape[:2])
    if a.ndim > 2:
        raise ValueError(f"`{field}` must be labels shaped (N,) or one-hot rows (N, K), but got shape {a.shape}")
    if a.ndim == 2 and a.shape[1] > 1:  # one-hot
        if a.shape[0] != n:
            raise ValueError(f"`{field}` must have one label per image ({n}), but got {a.shape[0]} labels "
                             f"(one-hot rows of shape {a.shape})")
        onehot = ((a == 0) | (a == 1)).all(axis=1) & (np.count_nonzero(a, axis=1) == 1)
        if not onehot.all():
            row = int(np.flatnonzero(~onehot)[0])
            raise ValueError(f"`{field}` of shape {a.shape} must be one-hot rows (a single 1, zeros elsewhere) or "
                             f"integer labels, but row {row} is {_brief(a[row].tolist(), 60)}; for soft labels "
                             f"pass {field}.argmax(axis=1)")
        a = a.argmax(axis=1)
    a = a.reshape(-1)
    if len(a) != n:
        raise ValueError(f"`{field}` must have one label per image ({n}), but got {len(a)} labels")
    if not len(a):
        return a.astype(np.int64)
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (np.mod(np.nan_to_num(a), 1) != 0)
        if bad.any():
            raise ValueError(f"`{field}` must be integer class labels, but got dtype {a.dtype} with value "
                             f"{_num(a[bad][0])}")
    low, high = a.min(), a.max()
    if low < 0:
        raise ValueError(f"`{field}` must be class indices >= 0, but got {_num(low)}")
    if high > _MAX_LABEL:
        raise ValueError(f"`{field}` must be class indices 0..K-1, but got label {_num(high)}")
    return a.astype(np.int64)


def _check_classes(y: np.ndarray, field: str) -> np.ndarray:
    """``y`` holds every class 0..K-1 with K >= 2; returns the classes."""
    classes = np.unique(y)
    k = int(classes[-1]) + 1
    if len(classes) != k:
        gaps, expected = [], 0
        for v in classes.tolist():
            if v > expected:
                gaps.append((expected, v - 1))
            expected = v + 1
        missing = sum(b - a + 1 for a, b in gaps)
        raise ValueError(f"`{field}` must hold every class 0..K-1 (here K = largest label + 1 = {k}), but label"
                         f"{'s' if missing > 1 else ''} {_ranges(gaps)} never occur{'s' if missing == 1 else ''} "
                         f"(got label values {_values(classes)}); renumber the classes, e.g. "
                         f"`class_names, {field} = np.unique({field}, return_inverse=True)`")
    if k < 2:
        raise ValueError(f"`{field}` must hold at least 2 classes, but got only class {int(classes[0])} "
                         f"({len(y)} labels)")
    return classes


def _check_splittable(y: np.ndarray, fraction: float, field: str, names: list[str] | None = None) -> None:
    """Enough images of every class for a stratified split that keeps each class in training and validation."""
    need = _min_per_class(fraction)
    rule = (f"a validation split with val_fraction={fraction:g} needs at least 2 classes with at least {need} "
            f"images each (so that every class is in both training and validation)")
    if not len(y):
        raise ValueError(f"`{field}` is empty (no images): {rule}")
    _check_classes(y, field)
    counts = np.bincount(y)
    small = np.flatnonzero(counts < need)
    if len(small):
        label = (lambda c: repr(names[c])) if names else (lambda c: str(c))
        shown = ", ".join(f"class {label(int(c))}: {int(counts[c])}" for c in small[:5])
        raise ValueError(f"`{field}` has too few images of {len(small)} class{'es' if len(small) > 1 else ''} "
                         f"({shown}{', ...' if len(small) > 5 else ''}): {rule}")


def _check_explicit_split(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, y_va: np.ndarray,
                          fields: tuple[str, ...], *, classes: bool = True) -> None:
    """A split given by the user: both parts hold images of one shape; with ``classes``, training holds every
    class 0..K-1 (K >= 2) and validation no other class."""
    fx_tr, fy_tr, fx_va, fy_va = fields
    if not len(y_tr):
        raise ValueError(f"`{fx_tr}` holds no images: training needs at least one image of each of at least 2 "
                         f"classes")
    if not len(y_va):
        raise ValueError(f"`{fx_va}` holds no images: validation needs at least 1 image")
    if x_tr.shape[1:] != x_va.shape[1:]:
        raise ValueError(f"`{fx_tr}` and `{fx_va}` must hold images of the same shape, but got "
                         f"{x_tr.shape[1:]} and {x_va.shape[1:]}")
    if not classes:
        return
    present = _check_classes(y_tr, fy_tr)
    extra = np.setdiff1d(np.unique(y_va), present)
    if len(extra):
        raise ValueError(f"`{fy_va}` must only hold classes that `{fy_tr}` has (0..{int(present[-1])}), but got "
                         f"label{'s' if len(extra) > 1 else ''} {_values(extra)} absent from training")
    missing = np.setdiff1d(present, np.unique(y_va))
    if len(missing):  # a class never validated: its accuracy would be unknown and every search blind to it
        raise ValueError(f"`{fy_va}` must hold every class of `{fy_tr}` (0..{int(present[-1])}), but "
                         f"label{'s' if len(missing) > 1 else ''} {_values(missing)} "
                         f"{'are' if len(missing) > 1 else 'is'} missing from validation")


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


def _subset(x: np.ndarray, y: np.ndarray, n: int | None, seed: int, field: str) -> tuple[np.ndarray, np.ndarray]:
    """A seeded subset of ``n`` images (None: all); more than there are is an error saying how many there are."""
    if n is not None and n > len(y):
        part = "training" if field == "train_samples" else "validation"
        raise ValueError(f"`{field}` must be at most the {len(y):,} {part} images the data has, but got "
                         f"{field}={n}; leave it out to use them all")
    if n is None or n == len(y):
        return x, y
    idx = np.sort(np.random.default_rng(seed).choice(len(y), size=n, replace=False))
    return x[idx], y[idx]


# ---------------------------------------------------------------- named sets

def _digits(seed: int, val_fraction: float) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).reshape(-1, 8, 8, 1).astype(np.float32)
    _check_splittable(y.astype(np.int64), val_fraction, "digits labels")
    return _split(x, y.astype(np.int64), val_fraction, seed)


def _read_idx(path: Path, magic: int, dims: int) -> np.ndarray:
    """An idx file (big-endian magic number, ``dims`` sizes, uint8 values), gzip-compressed."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"`data` 'fashion_mnist': file {str(path)!r} must be a gzip-compressed idx file, but it "
                         f"could not be read ({exc})") from None
    header = 4 + 4 * dims
    got = struct.unpack(">I", raw[:4])[0] if len(raw) >= 4 else None
    if len(raw) < header or got != magic:
        raise ValueError(f"`data` 'fashion_mnist': file {str(path)!r} must be an idx file with magic number {magic}, "
                         f"but got {got if got is not None else f'{len(raw)} bytes'}")
    shape = struct.unpack(f">{dims}I", raw[4:header])
    values = np.frombuffer(raw, dtype=np.uint8, offset=header)
    if values.size != math.prod(shape):
        raise ValueError(f"`data` 'fashion_mnist': file {str(path)!r} must hold {math.prod(shape)} values (its header "
                         f"says shape {shape}), but got {values.size}")
    return values.reshape(shape)


def _fashion_mnist_files() -> tuple[Path, Path]:
    d = FASHION_MNIST_DIR
    images, labels = d / "train-images-idx3-ubyte.gz", d / "train-labels-idx1-ubyte.gz"
    if not images.is_file() or not labels.is_file():
        raise ValueError(
            f"`data` 'fashion_mnist' needs the Fashion-MNIST files in {d} (train-images-idx3-ubyte.gz, "
            f"train-labels-idx1-ubyte.gz); install them with `apt-get install dataset-fashion-mnist` (Debian), "
            f"or set NAS_FASHION_MNIST_DIR to a folder holding them")
    return images, labels


def _fashion_mnist(seed: int, val_fraction: float) -> tuple[np.ndarray, ...]:
    images, labels = _fashion_mnist_files()
    x = _read_idx(images, 2051, 3)[..., None].astype(np.float32) / 255.0
    y = _read_idx(labels, 2049, 1).astype(np.int64)
    if len(y) != len(x):
        raise ValueError(f"`data` 'fashion_mnist': file {str(labels)!r} must hold one label per image ({len(x)}), but "
                         f"got {len(y)} labels")
    _check_splittable(y, val_fraction, "fashion_mnist labels")
    return _split(x, y, val_fraction, seed)


# ---------------------------------------------------------------- image folders

def _read_image(file: Path, root: Path, image_size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(file) as opened:
            img = opened.convert("L" if opened.mode in ("L", "1", "I", "I;16") else "RGB")
            if image_size is not None:
                img = img.resize((image_size[1], image_size[0]))
            return np.asarray(img)
    except Exception as exc:  # PIL raises many types for broken files (UnidentifiedImageError, OSError, SyntaxError)
        reason = str(exc).replace(repr(str(file)), "").replace(str(file), "").strip(" :")[:200] or type(exc).__name__
        raise ValueError(f"`data` folder {str(root)!r}: {str(file.relative_to(root))!r} must be a readable image, "
                         f"but it could not be decoded ({reason})") from None


def _folder_files(path: Path, val_fraction: float) -> tuple[list[str], dict[str, list[Path]], np.ndarray]:
    """The class names, image files per class and labels of an image folder, checked without reading an image."""
    if not path.is_dir():
        hint = (f"; for an .npz file give data={{'kind': 'npz', 'path': {str(path)!r}}}"
                if path.suffix.lower() == ".npz" else "")
        raise ValueError(f"`data` folder {str(path)!r} does not exist or is not a folder{hint}")
    classes = sorted(p.name for p in path.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise ValueError(f"`data` folder {str(path)!r} must hold one sub-folder per class (at least 2), "
                         f"but has {len(classes)}")
    files = {name: sorted(p for p in (path / name).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
             for name in classes}
    if not any(files.values()):
        raise ValueError(f"`data` folder {str(path)!r} has no images ({', '.join(IMAGE_SUFFIXES)})")
    empty = [name for name in classes if not files[name]]
    if empty:
        raise ValueError(f"`data` folder {str(path)!r}: every sub-folder is a class and must hold images "
                         f"({', '.join(IMAGE_SUFFIXES)}), but class folder{'s' if len(empty) > 1 else ''} "
                         f"{', '.join(map(repr, empty[:5]))} {'have' if len(empty) > 1 else 'has'} none "
                         f"({len(classes)} class folders: {', '.join(classes[:10])}); remove or fill "
                         f"{'them' if len(empty) > 1 else 'it'}")
    ys = np.asarray([i for i, name in enumerate(classes) for _ in files[name]], dtype=np.int64)
    _check_splittable(ys, val_fraction, "data", names=classes)
    return classes, files, ys


def _folder(path: Path, image_size: tuple[int, int] | None, seed: int,
            val_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The split images of an image folder and its class names."""
    classes, files, ys = _folder_files(path, val_fraction)
    xs: list[np.ndarray] = []
    first: dict[tuple[int, ...], Path] = {}
    for name in classes:
        for f in files[name]:
            a = _read_image(f, path, image_size)
            xs.append(a)
            first.setdefault(a.shape, f)
    if len(first) != 1:
        (s1, f1), (s2, f2) = sorted(first.items(), key=lambda kv: str(kv[1]))[:2]
        if s1[:2] != s2[:2]:
            raise ValueError(f"`data` images in {str(path)!r} must all have the same size, but "
                             f"{str(f1.relative_to(path))!r} is {s1[1]}x{s1[0]} and {str(f2.relative_to(path))!r} "
                             f"is {s2[1]}x{s2[0]} (width x height); give `image_size` to resize them")
        gray, colour = (f1, f2) if len(s1) == 2 else (f2, f1)
        raise ValueError(f"`data` images in {str(path)!r} must be all grayscale or all colour, but "
                         f"{str(gray.relative_to(path))!r} is grayscale and {str(colour.relative_to(path))!r} is "
                         f"colour; convert them to one mode")
    x = _as_images(np.stack(xs), "data")
    x_tr, y_tr, x_va, y_va = _split(x, ys, val_fraction, seed)
    return x_tr, y_tr, x_va, y_va, classes


# ---------------------------------------------------------------- tf.data

def _from_tf_dataset(ds: Any, field: str) -> tuple[np.ndarray, np.ndarray]:
    """All (image, label) elements of a tf.data dataset, batched or not."""
    xs, ys = [], []
    shape = None
    try:
        iterator = iter(ds.as_numpy_iterator())
    except Exception as exc:
        raise ValueError(f"`{field}` must be a tf.data dataset of (image, label) pairs of tensors, but it cannot "
                         f"be read as numpy arrays ({str(exc)[:200]})") from None
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            break
        except Exception as exc:
            raise ValueError(f"`{field}`: iterating the tf.data dataset failed ({type(exc).__name__}: "
                             f"{str(exc)[:200]})") from exc
        if isinstance(item, dict):
            raise ValueError(f"`{field}` must yield (image, label) pairs, but it yields dicts with keys "
                             f"{sorted(item)}; map it, e.g. dataset.map(lambda d: (d['image'], d['label']))")
        if not isinstance(item, tuple) or len(item) != 2:
            raise ValueError(f"`{field}` must yield (image, label) pairs, but it yields "
                             f"{type(item).__name__ if not isinstance(item, tuple) else f'{len(item)}-tuples'}")
        x, y = np.asarray(item[0]), np.asarray(item[1])
        # batched: int labels (B,) with (B, H, W[, C]) images, or one-hot labels (B, K); unbatched: a scalar
        # label or one-hot (K,) with an (H, W[, C]) image
        batched = (y.ndim == 2 and x.ndim in (3, 4)) or (y.ndim == 1 and (
            x.ndim == 4 or (x.ndim == 3 and len(y) == len(x))))
        if not batched:
            x, y = x[None], y.reshape(1, *y.shape)
        if shape is None:
            shape = (x.shape[1:], y.shape[1:])
        elif (x.shape[1:], y.shape[1:]) != shape:
            raise ValueError(f"`{field}` must yield images and labels of one shape, but got images "
                             f"{shape[0]} and then {x.shape[1:]}" +
                             (f", labels {shape[1]} and then {y.shape[1:]}" if y.shape[1:] != shape[1] else ""))
        xs.append(x)
        ys.append(y)
    if not xs:
        raise ValueError(f"`{field}` must yield (image, label) pairs, but the dataset is empty")
    return np.concatenate(xs), np.concatenate(ys)


# ---------------------------------------------------------------- npz

def _npz_digest(arrays: tuple[np.ndarray, ...]) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()[:12]


def _open_npz(path: Any) -> Any:
    """The opened .npz archive at ``path`` (an ``NpzFile``: arrays are read when asked for), checked to hold the
    four arrays."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise _fail("path", "the path of an .npz file", path)
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"`data` .npz file {str(p)!r} does not exist or is not a file")
    try:
        z = np.load(p, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError, OSError, EOFError, BadZipFile... for what it cannot read
        raise ValueError(f"`data` .npz file {str(p)!r} must be a numpy .npz archive, but it could not be read "
                         f"({type(exc).__name__})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise ValueError(f"`data` .npz file {str(p)!r} must be a numpy .npz archive (np.savez) of x_train, y_train, "
                         f"x_val, y_val, but it holds a single array")
    missing = [k for k in _NPZ_ARRAYS if k not in z.files]
    if missing:
        z.close()
        raise ValueError(f"`data` .npz file {str(p)!r} must hold the arrays {', '.join(_NPZ_ARRAYS)}, but "
                         f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing (it holds "
                         f"{', '.join(z.files[:8]) or 'nothing'})")
    return z


def _load_npz(path: Any) -> tuple[np.ndarray, ...]:
    with _open_npz(path) as z:
        p = Path(path)
        arrays = []
        for k in _NPZ_ARRAYS:
            try:
                arrays.append(z[k])
            except Exception as exc:
                reason = "object arrays are not allowed" if "allow_pickle" in str(exc) else type(exc).__name__
                raise ValueError(f"`data` .npz file {str(p)!r}: array {k!r} could not be read ({reason})") from None
    raw = tuple(arrays)
    x_tr, x_va = _as_images(raw[0], "x_train"), _as_images(raw[2], "x_val")
    y_tr, y_va = _as_labels(raw[1], len(x_tr), "y_train"), _as_labels(raw[3], len(x_va), "y_val")
    _check_explicit_split(x_tr, y_tr, x_va, y_va, _NPZ_ARRAYS, classes=False)
    try:
        _check_explicit_split(x_tr, y_tr, x_va, y_va, _NPZ_ARRAYS)
    except ValueError:
        # a file nas saved (named by its content) holds checked data, which `train_samples` / `val_samples` may
        # have subset so that a class is missing; any other file is the user's split and must be complete
        if p.name != f"data-{_npz_digest(raw)}.npz":
            raise
    return x_tr, y_tr, x_va, y_va


def _save_arrays(data: Data, folder: Path) -> dict[str, Any]:
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"`save_to` must be a folder, but {str(folder)!r} is a file")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"data-{_npz_digest((data.x_train, data.y_train, data.x_val, data.y_val))}.npz"
    if not path.exists():
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, x_train=data.x_train, y_train=data.y_train, x_val=data.x_val, y_val=data.y_val)
        os.replace(tmp, path)
    return {"kind": "npz", "path": str(path.resolve()), "input_scale": data.input_scale}


def check_data(ref: dict[str, Any]) -> None:
    """Check, without reading the images, that the data a study stores (its reference) is where the reference
    says: the Fashion-MNIST files, the image folder with its class folders and images, or the .npz archive with
    its four arrays. A resume calls it before any worker starts, so data moved or deleted since the search began
    is one clear error, not a crash in every worker."""
    kind = ref.get("kind")
    if kind == "name" and ref.get("name") == "fashion_mnist":
        _fashion_mnist_files()
    elif kind == "folder":
        path = ref.get("path")
        if not isinstance(path, str) or not path:
            raise _fail("path", "the path of an image folder", path)
        options = _check_options(0, ref.get("val_fraction", _DEFAULTS["val_fraction"]), None, None)
        _folder_files(Path(path), options["val_fraction"])
    elif kind == "npz":
        _open_npz(ref.get("path")).close()


# ---------------------------------------------------------------- entry point

def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b))
    try:
        return bool(a == b)
    except Exception:  # e.g. an array compared with a number
        return False


def _from_ref(data: dict[str, Any], given: dict[str, Any], save_to: Any) -> Data:
    """A reference dict: ``{"kind": "name" | "folder" | "npz", ...}`` as stored with a study."""
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in _REF_KEYS:
        hint = ""
        if kind is None and any(k in data for k in ("name", "folder", "npz", "path")):
            hint = "; e.g. {'kind': 'name', 'name': 'digits'}, {'kind': 'folder', 'path': ...} or {'kind': 'npz', " \
                   "'path': ...}"
        elif kind == "arrays":
            hint = " (arrays given without `save_to` are not saved, so their reference cannot be loaded again)"
        raise ValueError(f"a data reference must have `kind` 'name', 'folder' or 'npz', but got kind={_brief(kind)} "
                         f"in data={_brief(data)}{hint}")
    unknown = [k for k in data if k not in _REF_KEYS[kind]]
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} in a data reference of kind {kind!r} (data={_brief(data)}); "
                         f"known keys: {', '.join(_REF_KEYS[kind])}")
    needed = "name" if kind == "name" else "path"
    if needed not in data:
        raise ValueError(f"a data reference of kind {kind!r} needs `{needed}`, but got data={_brief(data)}")
    for k, v in given.items():
        if not _same(v, _DEFAULTS[k]) and k in data and not _same(data[k], v):
            raise ValueError(f"`{k}` is given twice with different values: {k}={_brief(v)} and the data "
                             f"reference's {k}={_brief(data[k])}")
        if not _same(v, _DEFAULTS[k]) and k not in _REF_KEYS[kind]:
            raise ValueError(f"`{k}` does not apply to a data reference of kind {kind!r} (its arrays are stored "
                             f"already split), but got {k}={_brief(v)}")
    merged = {**given, **{k: v for k, v in data.items() if k in given}}
    if kind == "npz":
        arrays = _load_npz(data["path"])
        scale = data.get("input_scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 1:
            raise _fail("input_scale", "a number in (0, 1]", scale)
        out = _finish(arrays, {"kind": "npz", "path": data["path"], "input_scale": scale}, None, None, None, None)
        out.input_scale = float(scale)
        return out
    if kind == "name":
        if not isinstance(data["name"], str) or data["name"] not in NAMES:
            raise _fail("name", " or ".join(map(repr, NAMES)), data["name"])
        return load_data(data["name"], save_to=save_to, **merged)
    path = data["path"]
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise _fail("path", "the path of an image folder", path)
    return _load(Path(path), merged, save_to, folder=True)


def load_data(data: DataLike, *, seed: int = 0, val_fraction: float = 0.2, train_samples: int | None = None,
              val_samples: int | None = None, image_size: tuple[int, int] | list[int] | None = None,
              save_to: str | os.PathLike[str] | None = None) -> Data:
    """Turn ``data`` into :class:`Data`.

    ``data`` is a name (``"digits"``: scikit-learn's 8x8 digits, embedded; ``"fashion_mnist"``: the
    Debian package's files), a reference dict as stored with a study, ``(x, y)`` (split here) or
    ``(x_train, y_train, x_val, y_val)`` numpy arrays, a pair of tf.data datasets ``(train, validation)`` or one
    dataset (split here), or the path of a folder with one sub-folder of images per class.
    ``train_samples`` / ``val_samples`` keep a seeded subset (for fast search trials).

    Images are uint8 (divided by 255 here) or numbers in [0, 1]; labels are integers 0..K-1, every class
    present, K >= 2. Anything else raises a ``ValueError`` that names the field, the rule and the value.
    """
    given = {"seed": seed, "val_fraction": val_fraction, "train_samples": train_samples,
             "val_samples": val_samples, "image_size": image_size}
    if save_to is not None and not isinstance(save_to, (str, os.PathLike)):
        raise _fail("save_to", "a folder path or None", save_to)
    if isinstance(data, dict):
        return _from_ref(data, given, save_to)
    return _load(data, given, save_to)


def _load(data: Any, given: dict[str, Any], save_to: Any, folder: bool = False) -> Data:
    options = _check_options(given["seed"], given["val_fraction"], given["train_samples"], given["val_samples"])
    seed, val_fraction = options["seed"], options["val_fraction"]
    size = _check_image_size(given["image_size"])
    classes: list[str] | None = None
    if isinstance(data, str) and data in NAMES and not folder:
        if size is not None:
            raise ValueError(f"`image_size` resizes the images of an image folder; it does not apply to "
                             f"data={data!r}, but got image_size={given['image_size']!r}")
        arrays = _digits(seed, val_fraction) if data == "digits" else _fashion_mnist(seed, val_fraction)
        ref: dict[str, Any] = {"kind": "name", "name": data, **options}
    elif isinstance(data, (str, os.PathLike)):
        if not str(data) or (isinstance(data, str) and not data.strip()):
            raise _fail("data", "'digits', 'fashion_mnist', arrays, tf.data datasets or an image folder", data)
        path = Path(data)
        if not path.exists():
            raise ValueError(f"`data` must be 'digits', 'fashion_mnist', arrays, tf.data datasets or an image "
                             f"folder, but got data={str(data)!r} (no such name or folder)")
        x_tr, y_tr, x_va, y_va, classes = _folder(path, size, seed, val_fraction)
        arrays = (x_tr, y_tr, x_va, y_va)
        ref = {"kind": "folder", "path": str(path.resolve()), "image_size": list(size) if size else None, **options}
    else:
        if size is not None:
            raise ValueError(f"`image_size` resizes the images of an image folder; it does not apply to arrays "
                             f"or datasets, but got image_size={given['image_size']!r}")
        arrays = _from_python(data, seed, val_fraction)
        ref = {"kind": "arrays"}
    out = _finish(tuple(arrays), ref, classes, options["train_samples"], options["val_samples"], seed)
    out.input_scale = (1 / 16 if data == "digits" else 1 / 255) if ref["kind"] in ("name", "folder") \
        else _raw_scale(data)
    if ref["kind"] == "arrays" and save_to is not None:
        out.ref = _save_arrays(out, Path(save_to))
    return out


def _finish(arrays: tuple[np.ndarray, ...], ref: dict[str, Any], classes: list[str] | None,
            train_samples: int | None, val_samples: int | None, seed: int | None) -> Data:
    x_tr, y_tr, x_va, y_va = arrays
    if seed is not None:
        x_tr, y_tr = _subset(x_tr, y_tr, train_samples, seed, "train_samples")
        x_va, y_va = _subset(x_va, y_va, val_samples, seed + 1, "val_samples")
    out = Data(x_tr, y_tr, x_va, y_va, ref=ref, class_names=classes)
    if out.x_train.shape[1:] != out.x_val.shape[1:]:
        raise ValueError(f"training images {out.x_train.shape[1:]} and validation images {out.x_val.shape[1:]} "
                         f"must have the same shape")
    if out.num_classes < 2:
        raise ValueError(f"data must have at least 2 classes, but got {out.num_classes}")
    return out


def _raw_scale(data: Any) -> float:
    """1/255 when the images were given as uint8 (scaled here), else 1 (given in [0, 1])."""
    first = data[0] if isinstance(data, (tuple, list)) and len(data) else data
    spec = getattr(first, "element_spec", None)
    if spec is not None:  # a tf.data dataset of (images, labels)
        x = spec[0] if isinstance(spec, tuple) else spec
        return 1 / 255 if getattr(getattr(x, "dtype", None), "name", "") == "uint8" else 1.0
    return 1 / 255 if getattr(first, "dtype", None) == np.uint8 else 1.0


def _from_python(data: Any, seed: int, val_fraction: float) -> tuple[np.ndarray, ...]:
    if hasattr(data, "as_numpy_iterator"):  # one tf.data dataset: split it
        x, y = _from_tf_dataset(data, "data")
        x = _as_images(x, "data")
        y = _as_labels(y, len(x), "labels")
        _check_splittable(y, val_fraction, "labels")
        return _split(x, y, val_fraction, seed)
    if isinstance(data, (tuple, list)):
        if len(data) == 2 and all(hasattr(d, "as_numpy_iterator") for d in data):
            x_tr, y_tr = _from_tf_dataset(data[0], "train dataset")
            x_va, y_va = _from_tf_dataset(data[1], "validation dataset")
            fields = ("train dataset images", "train dataset labels", "validation dataset images",
                      "validation dataset labels")
            data = (x_tr, y_tr, x_va, y_va)
        else:
            fields = ("x_train", "y_train", "x_val", "y_val")
        if len(data) == 2:
            x = _as_images(data[0], "x")
            y = _as_labels(data[1], len(x), "y")
            _check_splittable(y, val_fraction, "y")
            return _split(x, y, val_fraction, seed)
        if len(data) == 4:
            x_tr = _as_images(data[0], fields[0])
            x_va = _as_images(data[2], fields[2])
            y_tr = _as_labels(data[1], len(x_tr), fields[1])
            y_va = _as_labels(data[3], len(x_va), fields[3])
            _check_explicit_split(x_tr, y_tr, x_va, y_va, fields)
            return x_tr, y_tr, x_va, y_va
        raise ValueError(f"`data` must be (x, y) or (x_train, y_train, x_val, y_val), but got a "
                         f"{type(data).__name__} of {len(data)} items")
    raise ValueError(f"`data` must be 'digits', 'fashion_mnist', (x, y) or (x_train, y_train, x_val, y_val) arrays, "
                     f"tf.data datasets or an image folder, but got {type(data).__name__}")
