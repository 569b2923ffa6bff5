"""Exports that deploy: the exported model takes the raw images a user has (its preprocessing is inside it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nas
import search_spaces
from nas.data import load_data


def test_the_input_scale_is_known_for_every_kind_of_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x8 = rng.integers(0, 256, size=(60, 8, 8, 1), dtype=np.uint8)
    y = np.arange(60) % 3
    assert load_data("digits").input_scale == 1 / 16
    assert load_data((x8, y)).input_scale == 1 / 255
    assert load_data((x8 / 255.0, y)).input_scale == 1.0
    saved = load_data((x8, y), save_to=tmp_path)
    assert saved.ref["input_scale"] == 1 / 255  # the stored reference keeps it for export
    again = load_data(saved.ref)
    assert again.input_scale == 1 / 255 and np.array_equal(again.x_train, saved.x_train)
    with pytest.raises(ValueError, match=r"`input_scale` must be a number in \(0, 1\], but got input_scale=3"):
        load_data({**saved.ref, "input_scale": 3})


def test_an_exported_model_rescales_and_resizes_like_training(tmp_path: Path) -> None:
    """A network searched at 16x16 (compound scaling's resolution) on 8x8 digits: the exported model takes the
    raw 8x8 pixels and gives what the trained network gives on the images training prepared."""
    import keras

    from nas.build import build_model
    from nas.export import _with_preprocessing
    from nas.train import resize_images

    data = load_data("digits")
    spec = search_spaces.get("conv", input_shape=(16, 16, 1)).sample(nas.RandomTrial(seed=1))
    net = build_model(spec)
    wrapped, note = _with_preprocessing(net, spec, data)
    assert note == {"shape": [8, 8, 1], "rescaling": 1 / 16, "raw": "pixel values 0-16 (scikit-learn digits)",
                    "resized_to": [16, 16]}
    wrapped.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    raw = data.x_val[:64] * 16
    expected = net.predict(resize_images(data.x_val[:64], spec.input_shape), verbose=0)
    assert np.allclose(loaded.predict(raw, verbose=0), expected, atol=1e-5)
    assert loaded.count_params() == net.count_params() == nas.cost(spec).params
