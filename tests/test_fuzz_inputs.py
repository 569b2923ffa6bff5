"""Property tests of every input a user hands to nas: spec JSON, block strings, data arrays and references.

The property, for each generated input: it works (and round-trips exactly), or it raises a ``ValueError`` whose
message names the field at fault; never any other exception type. No TensorFlow: tf.data datasets are stood in
for by an object with ``as_numpy_iterator``, which is all ``nas.data`` asks of one.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

import search_spaces
from nas import KINDS, ArchSpec, parse_block
from nas._ops import ShapeError
from nas.data import load_data
from nas.trial import RandomTrial

from random_specs import random_spec

# derandomized (the same examples every run, so CI cannot turn red by chance) and without an example database
# (nothing is written into the work tree); NAS_FUZZ_EXAMPLES=5000 NAS_FUZZ_RANDOM=1 explores much further
EXAMPLES = int(os.environ.get("NAS_FUZZ_EXAMPLES", "150"))
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "nas-hypothesis")  # its caches, out of the work tree
RANDOM = os.environ.get("NAS_FUZZ_RANDOM") == "1"
FAST = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
                suppress_health_check=[HealthCheck.too_slow])
SPACES = [search_spaces.get(name) for name in search_spaces.names()]

# any JSON value, small
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)
# values that often pass a type check but not a range check
NEAR = st.sampled_from([0, 1, 2, 3, -1, 7, 64, 65, 0.0, 0.5, 1.0, 1.5, -0.1, True, False, None, "", "relu", "same",
                        "valid", "max", "avg", "1x1", "conv", [], [1], {}, {"kind": "conv"}, 2 ** 63, 10 ** 30,
                        10 ** 400, 1e308])
VALUE = NEAR | JSON


@st.composite
def specs(draw: st.DrawFn) -> ArchSpec:
    """A valid spec: from the seeded generator (every block kind and option) or sampled from a search space."""
    if draw(st.booleans()):
        return random_spec(draw(st.integers(0, 10 ** 6)))
    space = draw(st.sampled_from(SPACES))
    return space.sample(RandomTrial(seed=draw(st.integers(0, 10 ** 6))))


def _round_trips(spec: ArchSpec) -> None:
    text = spec.to_json()
    again = ArchSpec.from_json(text)
    assert again == spec
    assert again.to_json() == text
    assert again.key() == spec.key()
    assert ArchSpec.from_json(spec.to_json(indent=2)) == spec
    assert ArchSpec.from_json(text.encode()) == spec


# a message names a field: a `backticked` name, a quoted key, or where in the network it is
NAMES_A_FIELD = re.compile(r"`[^`]+`|'[^']*'|\b(stage|stem) \d+|\bhead\b|JSON")


def _names(message: str, field: str) -> bool:
    """``field`` is named: `field`, `head.field`, 'field' or field=..."""
    return bool(re.search(rf"`(head\.)?{re.escape(field)}`|'{re.escape(field)}'|\b{re.escape(field)}=", message))


def _check_outcome(text: str | bytes, field: str | None = None, *, also: tuple[str, ...] = ()) -> ArchSpec | None:
    """from_json either gives a spec that round-trips, or a ValueError naming ``field`` (or holding ``also``).

    A value of the right type may still not fit the rest of the network (a stride that shrinks a later stage
    below 1 pixel, channels a cell cannot take): that is a ShapeError, which names the layer and the stage."""
    try:
        spec = ArchSpec.from_json(text)
    except ShapeError as exc:
        assert re.search(r"\((stage|stem) \d+: ", str(exc)), str(exc)
        return None
    except ValueError as exc:
        message = str(exc)
        assert NAMES_A_FIELD.search(message), message
        if field is not None:
            assert _names(message, field) or any(a in message for a in also), (field, message)
        assert "Traceback" not in message and "unhashable" not in message, message
        return None
    _round_trips(spec)
    return spec


# ---------------------------------------------------------------- specs

@FAST
@given(specs())
def test_valid_specs_round_trip_exactly(spec: ArchSpec) -> None:
    _round_trips(spec)
    # every stage written as its string form is the same spec too
    data = json.loads(spec.to_json())
    data["stages"] = [str(b) for b in spec.stages]
    data["stem"] = [str(b) for b in spec.stem]
    assert ArchSpec.from_json(json.dumps(data)) == spec


@FAST
@given(specs(), st.data())
def test_mutated_top_level_fields(spec: ArchSpec, data: st.DataObject) -> None:
    d = json.loads(spec.to_json())
    key = data.draw(st.sampled_from(sorted(d) + ["extra"]), label="key")
    how = data.draw(st.sampled_from(["drop", "replace"]), label="how")
    if how == "drop":
        d.pop(key, None)
        out = _check_outcome(json.dumps(d), key)
        if key in ("input_shape", "num_classes"):
            assert out is None  # required
        elif key in ("format", "bn_momentum", "bn_epsilon", "head", "extra"):  # optional: its default
            assert out is not None
            default = ArchSpec(input_shape=(8, 8, 1), num_classes=2, stages=())
            if key in ("bn_momentum", "bn_epsilon", "head"):
                assert getattr(out, key) == getattr(default, key)
        return
    value = data.draw(VALUE, label="value")
    d[key] = value
    # a block that is not a block is named by its place: "(stage 1)"
    out = _check_outcome(json.dumps(d), key, also=("stage 1",) if key == "stages" else ("stem 1",))
    if key == "extra":
        assert out is None
    if out is not None and key in ("num_classes", "bn_momentum", "bn_epsilon"):
        assert getattr(out, key) == value


@FAST
@given(specs(), st.data())
def test_mutated_block_options(spec: ArchSpec, data: st.DataObject) -> None:
    assume(spec.stages)
    d = json.loads(spec.to_json())
    i = data.draw(st.integers(0, len(d["stages"]) - 1), label="stage")
    block = d["stages"][i]
    key = data.draw(st.sampled_from(sorted(block) + ["extra", "Kind"]), label="option")
    how = data.draw(st.sampled_from(["drop", "replace"]), label="how")
    if how == "drop":
        block.pop(key, None)
    else:
        block[key] = data.draw(VALUE, label="value")
    # another kind may not have the options of this one, or need others
    out = _check_outcome(json.dumps(d), key, also=("for block kind", "block kind") if key == "kind" else ())
    if out is None:
        return
    assert how == "drop" or key not in ("extra", "Kind")
    if how == "replace" and key in ("repeats", "stride", "filters"):
        assert getattr(out.stages[i], key) == block[key]


@FAST
@given(specs(), st.data())
def test_mutated_head(spec: ArchSpec, data: st.DataObject) -> None:
    d = json.loads(spec.to_json())
    key = data.draw(st.sampled_from(["conv", "pool", "hidden", "dropout", "activation", "bn", "units"]))
    d["head"][key] = data.draw(VALUE)
    out = _check_outcome(json.dumps(d), key)
    if out is not None:
        assert key != "units"
        if key in ("pool", "activation", "dropout"):
            assert getattr(out.head, key) == d["head"][key]


@FAST
@given(specs(), st.data())
def test_spec_json_as_text_is_refused_or_round_trips(spec: ArchSpec, data: st.DataObject) -> None:
    """Cut, spliced, duplicated-key and re-typed texts of a valid spec."""
    text = spec.to_json()
    how = data.draw(st.sampled_from(["cut", "splice", "duplicate", "nan", "bytes", "utf16", "nest"]))
    if how == "cut":
        text = text[: data.draw(st.integers(0, len(text) - 1))]
        assert _check_outcome(text, also=("JSON",)) is None
    elif how == "splice":
        at = data.draw(st.integers(0, len(text)))
        text = text[:at] + data.draw(st.text(max_size=6)) + text[at:]
        _check_outcome(text)
    elif how == "duplicate":
        text = text[:-1] + ',"num_classes":' + str(spec.num_classes) + "}"
        with pytest.raises(ValueError, match="'num_classes' appears twice"):
            ArchSpec.from_json(text)
    elif how == "nan":
        with pytest.raises(ValueError, match="holds NaN"):
            ArchSpec.from_json(text.replace('"bn_epsilon":', '"bn_epsilon":NaN,"x":'))
    elif how == "bytes":
        assert ArchSpec.from_json(bytearray(text.encode())) == spec
    elif how == "utf16":
        assert ArchSpec.from_json(text.encode("utf-16")) == spec
    else:
        depth = data.draw(st.integers(2, 100_000))
        d = json.loads(text)
        d["stages"] = "@"
        nested = json.dumps(d).replace('"@"', "[" * depth + "]" * depth)
        assert _check_outcome(nested, "stages", also=("stage 1", "JSON is nested too deeply")) is None


@FAST
@given(JSON | st.binary(max_size=40) | st.text(max_size=40) | st.sampled_from([None, 3, 1.5, b"\xff\xfe\xfd"]))
def test_anything_that_is_not_a_spec_raises_value_error(value: Any) -> None:
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    with pytest.raises(ValueError) as err:
        ArchSpec.from_json(value)
    assert NAMES_A_FIELD.search(str(err.value)) or "ArchSpec" in str(err.value), str(err.value)


# ---------------------------------------------------------------- block strings

@st.composite
def blocks(draw: st.DrawFn) -> Any:
    spec = draw(specs())
    assume(spec.stages or spec.stem)
    return draw(st.sampled_from(list(spec.stem) + list(spec.stages)))


@FAST
@given(blocks())
def test_block_strings_round_trip(block: Any) -> None:
    text = str(block)
    assert parse_block(text) == block
    assert str(parse_block(text)) == text
    assert type(block).from_dict(block.to_dict()) == block


TOKEN = st.from_regex(r"[a-z]{0,3}[0-9.eE+-]{0,4}(/[0-9])?(-same)?", fullmatch=True)


@FAST
@given(blocks(), st.data())
def test_mutated_block_strings(block: Any, data: st.DataObject) -> None:
    kind, *tokens = str(block).split("_")
    how = data.draw(st.sampled_from(["drop", "duplicate", "renumber", "insert", "kind", "text"]))
    if how == "drop" and tokens:
        tokens.pop(data.draw(st.integers(0, len(tokens) - 1)))
    elif how == "duplicate" and tokens:
        tokens.append(data.draw(st.sampled_from(tokens)))
    elif how == "renumber" and tokens:
        j = data.draw(st.integers(0, len(tokens) - 1))
        tokens[j] = re.sub(r"\d+(\.\d+)?", lambda m: data.draw(st.sampled_from(
            ["0", "1", "2", "7", "65", "0.5", "1.5", "1e999", "9" * 30, "1e-400"])), tokens[j], count=1)
    elif how == "insert":
        tokens.insert(data.draw(st.integers(0, len(tokens))), data.draw(TOKEN))
    elif how == "kind":
        kind = data.draw(st.sampled_from(sorted(KINDS) + ["", "Conv", "conv2", "head"]))
    text = "_".join([kind, *tokens]) if how != "text" else data.draw(st.text(max_size=30))
    try:
        parsed = parse_block(text)
    except ValueError as exc:
        message = str(exc)
        assert "block string" in message or re.search(r"`\w+`", message), message
        return
    assert parse_block(str(parsed)) == parsed
    assert type(parsed).from_dict(parsed.to_dict()) == parsed


# ---------------------------------------------------------------- data arrays

def _min_per_class(fraction: float) -> int:
    n = 2
    while not (round(n * fraction) >= 1 and n - round(n * fraction) >= 1):
        n += 1
    return n


@st.composite
def image_arrays(draw: st.DrawFn) -> tuple[np.ndarray, str | None]:
    """Images and the rule they break (None: valid)."""
    n = draw(st.integers(0, 24))
    shape = draw(st.sampled_from([(n, 5, 6), (n, 5, 6, 1), (n, 5, 5, 3), (n, 6), (n, 5, 6, 2, 1), (n, 0, 5),
                                  (n, 3, 8, 8)]))
    dtype = draw(st.sampled_from(["uint8", "float32", "float64", "int64", "bool", "float16", "<U1"]))
    scale = draw(st.sampled_from([1.0, 255.0, -1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    if dtype == "<U1":
        return np.full(shape, "a"), "dtype"
    if dtype == "bool":  # refused: whether True is white or a mask is the user's to say
        return rng.random(shape) > 0.5, "dtype"
    x = rng.random(shape) * scale
    x = (x if dtype.startswith("float") else np.round(x)).astype(dtype) if dtype != "uint8" else \
        rng.integers(0, 256, shape).astype(np.uint8)
    special = draw(st.sampled_from([None, None, np.nan, np.inf]))
    if special is not None and x.size and dtype.startswith("float"):
        x.flat[draw(st.integers(0, x.size - 1))] = special
    if len(shape) not in (3, 4) or 0 in shape[1:]:
        return x, "shape"
    if len(shape) == 4 and shape[1] == 3 and shape[3] == 8:
        return x, "channels"
    if dtype.startswith("float") and x.size and not np.isfinite(x).all():
        return x, "finite"
    if dtype != "uint8" and x.size and (x.min() < 0 or x.max() > 1):
        return x, "range"
    return x, None


@st.composite
def label_arrays(draw: st.DrawFn, n: int) -> np.ndarray:
    how = draw(st.sampled_from(["classes", "classes", "random", "strings", "floats", "onehot", "length"]))
    if how == "strings":
        return np.array(["cat", "dog"] * n)[:n]
    if how == "length":
        return np.zeros(n + draw(st.sampled_from([-1, 1] if n else [1])), dtype=np.int64)
    if how == "random":
        return np.array(draw(st.lists(st.integers(-1, 9), min_size=n, max_size=n)), dtype=np.int64)
    k = draw(st.integers(1, 4))
    y = np.arange(n) % k
    y = np.random.default_rng(draw(st.integers(0, 100))).permutation(y)
    if how == "floats":
        return y.astype(np.float64) + draw(st.sampled_from([0.0, 0.0, 0.5]))
    if how == "onehot":
        return np.eye(max(k, 2))[y] if n else np.zeros((0, 2))
    return y


def _label_rule(y: np.ndarray, n: int, fraction: float) -> str | None:
    if y.dtype.kind not in "biuf":
        return "strings"
    if y.ndim == 2:
        y = y.argmax(axis=1)
    if len(y) != n:
        return "length"
    if n == 0:
        return "empty"
    if y.dtype.kind == "f" and (np.mod(y, 1) != 0).any():
        return "integer"
    if y.min() < 0:
        return "negative"
    classes = np.unique(y)
    if len(classes) != classes.max() + 1 or len(classes) < 2:
        return "classes"
    if np.bincount(y.astype(np.int64)).min() < _min_per_class(fraction):
        return "count"
    return None


def _rows(a: np.ndarray) -> list[bytes]:
    return sorted(r.tobytes() for r in a)


@settings(FAST, max_examples=2 * EXAMPLES)
@given(image_arrays(), st.data(), st.sampled_from([0.2, 0.5, 0.1]))
def test_arrays_either_load_exactly_or_name_the_field(xs: tuple[np.ndarray, str | None], data: st.DataObject,
                                                      fraction: float) -> None:
    x, image_rule = xs
    y = data.draw(label_arrays(len(x)))
    label_rule = _label_rule(y, len(x), fraction) if image_rule != "shape" else None
    try:
        d = load_data((x, y), val_fraction=fraction, seed=data.draw(st.integers(0, 5)))
    except ValueError as exc:
        message = str(exc)
        assert image_rule or label_rule, f"valid input refused: {message}"
        assert ("`x`" if image_rule else "`y`") in message, (image_rule, label_rule, message)
        return
    assert image_rule is None and label_rule is None, (image_rule, label_rule)
    # exactly the input, split: images as float32 in [0, 1] (uint8 / 255), every class in both parts
    expected = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    expected = expected.reshape(len(x), *x.shape[1:3], -1)
    got = np.concatenate([d.x_train, d.x_val])
    assert got.dtype == np.float32 and _rows(got) == _rows(expected)
    labels = y.argmax(axis=1) if y.ndim == 2 else y
    assert sorted(np.concatenate([d.y_train, d.y_val]).tolist()) == sorted(labels.astype(int).tolist())
    k = int(labels.max()) + 1
    assert d.num_classes == k
    assert set(d.y_train.tolist()) == set(d.y_val.tolist()) == set(range(k))


@FAST
@given(st.lists(st.integers(-1, 5), min_size=0, max_size=12), st.lists(st.integers(-1, 5), min_size=0, max_size=6))
def test_explicit_split_labels(y_train: list[int], y_val: list[int]) -> None:
    x_tr = np.full((len(y_train), 4, 4, 1), 0.5, dtype=np.float32)
    x_va = np.full((len(y_val), 4, 4, 1), 0.25, dtype=np.float32)
    train = set(y_train)
    valid = (bool(y_train) and bool(y_val) and min(y_train + y_val) >= 0 and len(train) >= 2
             and train == set(range(max(train) + 1)) and set(y_val) == train)
    try:
        d = load_data((x_tr, y_train, x_va, y_val))
    except ValueError as exc:
        assert not valid, str(exc)
        assert re.search(r"`(x|y)_(train|val)`", str(exc)), str(exc)
        if y_train and y_val and min(y_train + y_val) >= 0 and train == set(range(max(train) + 1)) \
                and len(train) >= 2:
            if set(y_val) - train:
                assert "absent from training" in str(exc) and str(min(set(y_val) - train)) in str(exc)
            else:
                assert "missing from validation" in str(exc) and str(min(train - set(y_val))) in str(exc)
        return
    assert valid
    assert d.y_train.tolist() == y_train and d.y_val.tolist() == y_val
    assert d.num_classes == max(train) + 1


class FakeDataset:
    """What nas.data asks of a tf.data dataset: ``as_numpy_iterator`` over (image, label) elements."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch: int | None) -> None:
        self.x, self.y, self.batch = x, y, batch

    def as_numpy_iterator(self) -> Any:
        if self.batch is None:
            return iter(list(zip(self.x, self.y)))
        return iter([(self.x[i:i + self.batch], self.y[i:i + self.batch]) for i in range(0, len(self.y), self.batch)])


@FAST
@given(st.integers(6, 30), st.sampled_from([(5, 6), (5, 6, 1), (4, 4, 3)]), st.sampled_from([None, 1, 4, 7]),
       st.booleans(), st.integers(0, 3))
def test_datasets_give_the_same_data_as_arrays(n: int, shape: tuple[int, ...], batch: int | None, onehot: bool,
                                               seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, *shape)).astype(np.uint8)
    y = np.arange(n) % 2
    labels = np.eye(2)[y] if onehot else y
    from_arrays = load_data((x, y), seed=seed)
    from_ds = load_data(FakeDataset(x, labels, batch), seed=seed)
    for name in ("x_train", "y_train", "x_val", "y_val"):
        np.testing.assert_array_equal(getattr(from_ds, name), getattr(from_arrays, name))
    pair = load_data((FakeDataset(x, labels, batch), FakeDataset(x[:3], labels[:3], batch)))
    assert len(pair.x_train) == n and len(pair.x_val) == 3


@FAST
@given(st.sampled_from(["empty", "dicts", "triples", "shapes", "strings", "raises", "scalar"]))
def test_bad_datasets_name_the_dataset(how: str) -> None:
    x = np.zeros((6, 4, 4, 1), dtype=np.float32)
    y = np.arange(6) % 2
    ds = FakeDataset(x, y, 2)
    if how == "empty":
        ds = FakeDataset(x[:0], y[:0], 2)
    elif how == "dicts":
        ds.as_numpy_iterator = lambda: iter([{"image": x, "label": y}])  # type: ignore[method-assign]
    elif how == "triples":
        ds.as_numpy_iterator = lambda: iter([(x, y, y)])  # type: ignore[method-assign]
    elif how == "shapes":
        ds.as_numpy_iterator = lambda: iter([(x, y), (np.zeros((2, 5, 5, 1)), y[:2])])  # type: ignore
    elif how == "strings":
        ds = FakeDataset(x, np.array([b"cat", b"dog"] * 3), 2)
    elif how == "raises":
        def broken() -> Any:
            yield (x, y)
            raise RuntimeError("decoding failed")
        ds.as_numpy_iterator = broken  # type: ignore[method-assign]
    else:
        ds = FakeDataset(np.zeros((6, 4, 4, 1)) + 3, y, 2)
    with pytest.raises(ValueError) as err:
        load_data(ds)
    message = str(err.value)
    assert "`data`" in message or "`labels`" in message, message
    expected = {"empty": "empty", "dicts": "dicts with keys ['image', 'label']", "triples": "3-tuples",
                "shapes": "(4, 4, 1) and then (5, 5, 1)", "strings": "strings", "raises": "decoding failed",
                "scalar": "values in [3, 3]"}[how]
    assert expected in message, message


# ---------------------------------------------------------------- references and options

TMP = Path(tempfile.mkdtemp(prefix="nas-fuzz-"))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)


@FAST
@given(st.dictionaries(st.sampled_from(["kind", "name", "path", "seed", "val_fraction", "train_samples",
                                        "val_samples", "image_size", "extra"]), VALUE, max_size=5),
       st.sampled_from(["name", "folder", "npz", "arrays", None]))
def test_data_references(ref: dict[str, Any], kind: str | None) -> None:
    if kind is not None:
        ref["kind"] = kind
    if isinstance(ref.get("path"), str):  # keep paths inside an empty folder of our own
        ref["path"] = str(TMP / ref["path"].replace("..", "").lstrip("/"))
    if ref.get("name") == "digits":
        ref["name"] = "digitz"
    with pytest.raises(ValueError) as err:  # nothing here names a real data set or folder
        load_data(ref)
    message = str(err.value)
    assert NAMES_A_FIELD.search(message), message
    allowed = {"name": ("kind", "name", "seed", "val_fraction", "train_samples", "val_samples"),
               "npz": ("kind", "path")}.get(kind, ("kind", "path", "image_size", "seed", "val_fraction",
                                                   "train_samples", "val_samples"))
    unknown = [k for k in ref if k not in allowed]
    if kind in ("name", "folder", "npz") and unknown:
        assert f"unknown key {unknown[0]!r}" in message
    if kind not in ("name", "folder", "npz"):
        assert "`kind`" in message


XY = (np.random.default_rng(0).random((30, 5, 5)).astype(np.float32), np.arange(30) % 3)


@FAST
@given(st.sampled_from(["seed", "val_fraction", "train_samples", "val_samples", "image_size"]), VALUE)
def test_options(name: str, value: Any) -> None:
    full = load_data(XY)
    available = len(full.x_train if name == "train_samples" else full.x_val)
    try:
        d = load_data(XY, **{name: value})
    except ValueError as exc:
        assert f"`{name}`" in str(exc) or "`y`" in str(exc), str(exc)  # `y`: too few images for this split
        if name in ("train_samples", "val_samples") and isinstance(value, int) and value > available:
            assert f"must be at most the {available} " in str(exc), str(exc)
        return
    if name in ("train_samples", "val_samples"):
        part = d.x_train if name == "train_samples" else d.x_val
        assert value is None or value <= available
        assert len(part) == (available if value is None else value)
        assert d.ref == {"kind": "arrays"}
    elif name == "val_fraction":
        assert len(d.x_val) == sum(round(10 * value) for _ in range(3))
    elif name == "image_size":
        assert value is None
    assert isinstance(value, (int, float)) or value is None


def test_nas_data_does_not_import_tensorflow() -> None:
    code = ("import sys, numpy as np, nas; from nas.data import load_data; "
            "load_data((np.zeros((9, 4, 4)), np.arange(9) % 3)); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- exact cases of ArchSpec.from_json

GOOD = random_spec(1)


def _edit(**changes: Any) -> str:
    d = json.loads(GOOD.to_json())
    d.update(changes)
    return json.dumps(d)


def _stage(**changes: Any) -> str:
    d = json.loads(GOOD.to_json())
    d["stages"][0].update(changes)
    return json.dumps(d)


@pytest.mark.parametrize("text, message", [
    (None, "ArchSpec JSON must be a str or bytes, but got NoneType"),
    (42, "ArchSpec JSON must be a str or bytes, but got int"),
    ({"num_classes": 2}, "but got dict (use ArchSpec.from_dict for a dict)"),
    (b"\xff\xfe\xfd\x00\x80", "ArchSpec JSON"),
    (b"\x80\x81garbage", ("ArchSpec JSON must be text (UTF-8), but got bytes that do not decode: invalid start "
                          "byte at byte 0")),
    ("", "ArchSpec JSON is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    ("[1, 2]", "an ArchSpec must be a JSON object, but got list [1, 2]"),
    ('"conv_c8"', "an ArchSpec must be a JSON object, but got str 'conv_c8'"),
    ("null", "an ArchSpec must be a JSON object, but got NoneType"),
    ('{"num_classes": 2, "num_classes": 3}', ("ArchSpec JSON must not repeat a key, but 'num_classes' appears "
                                              "twice in one object (2 and 3)")),
    ('{"bn_epsilon": NaN}', "ArchSpec JSON must be standard JSON, but it holds NaN, which is not a JSON number"),
    ('{"bn_epsilon": -Infinity}', "it holds -Infinity"),
    ("[" * 100_000 + "]" * 100_000, "ArchSpec JSON is nested too deeply to be a spec"),
    (_edit(num_classes=10 ** 400), "`num_classes` must be a number below 2**63, but got num_classes=1000000000000"),
    (_edit(bn_momentum=10 ** 18), "`bn_momentum` must be in [0.0, 1.0), but got bn_momentum=1e+18"),
    (_edit(bn_momentum=10 ** 30), "`bn_momentum` must be a number below 2**63, but got bn_momentum=10000000000"),
    (_edit(input_shape=[8, 8, 10 ** 20]), "`input_shape` must be a number below 2**63"),
    (_edit(head={"activation": ["relu"]}), "`head.activation` must be a single value (str), but got head.activation="),
    (_edit(head={"dropout": 10 ** 400}), "`head.dropout` must be a number below 2**63"),
    (_edit(head={"units": 3}), "unknown field 'units' in `head`; known fields: activation, bn, conv, dropout, hidden"),
    (_edit(head=[]), "`head` must be an object, but got head=[]"),
    (_edit(stages={}), "`stages` must be a list of blocks, but got stages={}"),
    (_edit(stages=[["conv"]]), "a block must be an object with a `kind`, but got ['conv'] (stage 1)"),
    (_stage(kind=["conv"]), ("`kind` must be one of conv, sepconv, basic, bottleneck, inception, mbconv, "
                             "nb201cell, nb201res, but got kind=['conv'] (stage 1)")),
    (_stage(kind={"a": 1}), "but got kind={'a': 1} (stage 1)"),
    (_stage(activation=["relu"]), "`activation` must be a single value (str), but got activation=['relu'] (stage 1)"),
    (_stage(activation={}), "`activation` must be a single value (str), but got activation={} (stage 1)"),
    (_stage(repeats=10 ** 400), "`repeats` must be a number below 2**63, but got repeats=1000000000000"),
    (_stage(kernel=-10 ** 400), "`kernel` must be a number below 2**63, but got kernel=-100000000"),
    (_stage(se=0.5), "unknown option 'se' for block kind 'sepconv'"),
    (_stage(filters=None), "`filters` must be an integer, but got filters=None (stage 1)"),
    (_edit(stem=["mbconv_c8"]), "stem layers must be plain `conv` blocks"),
    (_edit(extra=1), "unknown ArchSpec field 'extra'"),
    (_edit(format="nas.ArchSpec/2"), "`format` must be 'nas.ArchSpec/1', but got format='nas.ArchSpec/2'"),
])
def test_from_json_refuses_with_the_field(text: Any, message: str) -> None:
    with pytest.raises(ValueError) as err:
        ArchSpec.from_json(text)
    assert message in str(err.value), str(err.value)


def test_from_json_takes_bytes_in_any_json_encoding() -> None:
    text = GOOD.to_json()
    for encoding in ("utf-8", "utf-8-sig", "utf-16", "utf-32"):
        assert ArchSpec.from_json(text.encode(encoding)) == GOOD
    assert ArchSpec.from_json(bytearray(text.encode())) == GOOD


def test_block_dicts_name_missing_and_unknown_options() -> None:
    with pytest.raises(ValueError, match=r"^block kind 'conv' needs `filters` \(stage 1\)$"):
        ArchSpec.from_json(_edit(stages=[{"kind": "conv", "kernel": 3}]))
    with pytest.raises(ValueError, match=r"^unknown option 'filter' for block kind 'conv'; known options: activation, "
                                         r"bias, .* \(stage 1\)$"):
        ArchSpec.from_json(_edit(stages=[{"kind": "conv", "filter": 8}]))


_ANY = st.none() | st.booleans() | st.integers(-2**70, 2**1100) | st.floats(allow_nan=True, allow_infinity=True) | \
    st.text(max_size=8) | st.lists(st.integers(0, 9), max_size=3) | st.dictionaries(st.text(max_size=3), st.integers(),
                                                                                    max_size=2)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(kind=st.sampled_from(sorted(KINDS)), field_values=st.data())
def test_block_constructors_take_any_python_value_or_name_the_field(kind: str, field_values) -> None:
    """The Python API of every block kind (``nas.Conv(...)`` and the others): any value for any field either builds
    a block that round-trips through its string, or raises ValueError naming a field; never TypeError or
    OverflowError (``Conv(activation=[1])``, ``MBConv(se=10**400)`` used to)."""
    import dataclasses

    cls = KINDS[kind]
    fields = [f.name for f in dataclasses.fields(cls)]
    chosen = field_values.draw(st.dictionaries(st.sampled_from(fields), _ANY, max_size=3))
    valid = {"filters": 16, "ops": ("nor_conv_3x3",) * 6, "b1": 8}  # a valid start, then the drawn values on top
    base = {k: v for k, v in valid.items() if k in fields}
    try:
        block = cls(**{**base, **chosen})
    except ValueError as exc:
        assert any(name in str(exc) for name in fields), str(exc)
    except TypeError as exc:  # a required field left out: the dataclass's own message names it
        assert "required" in str(exc) and "argument" in str(exc), str(exc)
    else:
        assert parse_block(str(block)) == block


def test_the_constructor_property_starts_from_a_valid_block_of_every_kind() -> None:
    import dataclasses

    valid = {"filters": 16, "ops": ("nor_conv_3x3",) * 6, "b1": 8}
    for kind, cls in KINDS.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        block = cls(**{k: v for k, v in valid.items() if k in fields})
        assert block.kind == kind and parse_block(str(block)) == block
