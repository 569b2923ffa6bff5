"""Batch-norm recalibration for rung checks (``nas.train.calibrated_accuracy``): the accuracy it returns is the
one of the network with batch-norm statistics recomputed on the calibration images, the model is left as it
was, and training with rung checks is exactly training without them. Real Keras models on real digits."""

from __future__ import annotations

import keras
import numpy as np

import nas
from nas import train as train_module
from nas.budget import Budget
from nas.data import Data, load_data
from nas.engine.setup import configure_space
from nas.train import CALIBRATION_BATCHES, CALIBRATION_IMAGES, calibrated_accuracy, calibration_sample, train_model


def _model_with_one_batch_norm() -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn")(inputs)
    x = keras.layers.Dropout(0.2)(x)  # a seed state that must be set back too
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_calibrated_accuracy_uses_the_mean_batch_statistics_and_sets_the_model_back() -> None:
    keras.utils.set_random_seed(0)
    data = load_data("digits", train_samples=512, val_samples=256)
    model = _model_with_one_batch_norm()
    model.fit(data.x_train, data.y_train, epochs=10, batch_size=64, verbose=0)
    bn = model.get_layer("bn")
    bn.moving_mean.assign(np.full((1,), 5.0, np.float32))  # badly lagging statistics
    bn.moving_variance.assign(np.full((1,), 9.0, np.float32))
    before = [v.numpy().copy() for v in model.variables]
    x_cal = data.x_train[:192]
    import tensorflow as tf

    val_ds = tf.data.Dataset.from_tensor_slices((data.x_val, data.y_val)).batch(512)
    got = calibrated_accuracy(model, x_cal, val_ds, batch_size=64)
    # by hand: the mean over the 3 batches of each batch's mean and (biased) variance
    batches = [x_cal[i:i + 64] for i in range(0, 192, 64)]
    mean = np.mean([b.mean() for b in batches])
    var = np.mean([b.var() for b in batches])
    gamma, beta = bn.gamma.numpy()[0], bn.beta.numpy()[0]
    x = (data.x_val - mean) / np.sqrt(var + bn.epsilon) * gamma + beta
    dense = model.layers[-1]
    w, b = (v.numpy() for v in dense.weights)
    expected = float(np.mean(np.argmax(x.reshape(len(x), -1) @ w + b, 1) == data.y_val))
    assert got == expected
    plain = float(model.evaluate(val_ds, verbose=0)[1])
    assert plain < 0.5 < got  # the lagging statistics cost accuracy; recomputed ones give it back
    for v, old in zip(model.variables, before):  # moving statistics, seed state and weights set back
        np.testing.assert_array_equal(v.numpy(), old, err_msg=v.path)
    assert bn.momentum == 0.9
    # a last, partial batch counts by its images: 200 images in batches of 64, 64, 64 and 8 (8 bright ones,
    # which would move the statistics by far more if they counted as a full batch)
    x_cal = np.concatenate([data.x_train[:192], np.full((8, *data.x_train.shape[1:]), 20.0, np.float32)])
    got = calibrated_accuracy(model, x_cal, val_ds, batch_size=64)
    batches = [x_cal[i:i + 64] for i in range(0, 200, 64)]
    sizes = [len(b) for b in batches]
    mean = np.average([b.mean() for b in batches], weights=sizes)
    var = np.average([b.var() for b in batches], weights=sizes)
    x = (data.x_val - mean) / np.sqrt(var + bn.epsilon) * gamma + beta
    assert got == float(np.mean(np.argmax(x.reshape(len(x), -1) @ w + b, 1) == data.y_val))


def test_a_model_without_batch_norm_has_no_calibrated_accuracy() -> None:
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    assert calibrated_accuracy(model, np.zeros((4, 8, 8, 1), np.float32), None, 2) is None  # type: ignore[arg-type]


def _digits_conv(stages: int, dropout: float) -> tuple[nas.ArchSpec, Data]:
    """A small conv network of ``stages`` stages for 8x8 digits, and 384/128 digits images."""
    space = configure_space({"space": "conv", "options": {"stages": (stages, stages), "depth": (1, 1), "widths": (8,),
                                                              "kernels": (3,), "hidden": (0, 0),
                                                              "dropouts": (dropout,)}}, (8, 8, 1), 10)
    return space.sample(nas.RandomTrial(seed=0)), load_data("digits", train_samples=384, val_samples=128)


def test_training_with_rung_checks_is_training_without_them() -> None:
    spec, data = _digits_conv(stages=2, dropout=0.3)
    budget = Budget(epochs=3, batch_size=64)
    plain: list[float] = []
    checked: list[float] = []
    calibrated: dict[int, float] = {}
    train_model(spec, data, budget, seed=1, report=lambda e, a: plain.append(a))
    result = train_model(spec, data, budget, seed=1, report=lambda e, a: checked.append(a), calibrate_at=(1, 2),
                         calibrated=calibrated.__setitem__)
    assert checked == plain and len(plain) == 3
    assert result["history"] == [round(a, 6) for a in plain]
    assert sorted(calibrated) == [0, 1] and all(0.0 <= a <= 1.0 for a in calibrated.values())
    assert CALIBRATION_IMAGES == 1024  # digits' 384 training images: all of them calibrate


def test_the_calibration_images_are_a_seeded_random_sample_not_the_first_ones() -> None:
    labels = np.repeat(np.arange(10), 300)  # 3,000 images sorted by class: the first 1,024 hold 4 classes
    pick = calibration_sample(len(labels), seed=7)
    assert len(pick) == CALIBRATION_IMAGES == len(set(pick.tolist())) and list(pick) == sorted(pick)
    counts = np.bincount(labels[pick], minlength=10)
    assert counts.min() >= 70 and counts.max() <= 135  # about 102 of each class
    assert list(calibration_sample(len(labels), seed=7)) == list(pick)
    assert list(calibration_sample(len(labels), seed=8)) != list(pick)
    assert list(calibration_sample(300, seed=7)) == list(range(300))  # fewer than 1,024: all of them


def test_a_rung_check_calibrates_in_batches_of_four_training_batches(monkeypatch) -> None:
    # the check's batches are CALIBRATION_BATCHES training batches (fewer eager calls); with one epoch the model
    # after training is the model the check saw, so the recorded accuracy is the one recomputed on it
    spec, data = _digits_conv(stages=1, dropout=0.0)
    budget = Budget(epochs=1, batch_size=16)
    seen: list[int] = []

    def calibrated_spy(model, x_cal, val, batch_size):  # the real function, its batch size recorded
        seen.append(batch_size)
        return calibrated_accuracy(model, x_cal, val, batch_size)

    monkeypatch.setattr(train_module, "calibrated_accuracy", calibrated_spy)
    got: dict[int, float] = {}
    result = train_model(spec, data, budget, seed=2, calibrate_at=(1,), calibrated=got.__setitem__)
    assert CALIBRATION_BATCHES == 4 and seen == [64]
    import tensorflow as tf

    x_cal = data.x_train[calibration_sample(len(data.x_train), 2)]
    val = tf.data.Dataset.from_tensor_slices((data.x_val, data.y_val)).batch(16)
    assert got == {0: calibrated_accuracy(result["model"], x_cal, val, 64)}


def test_the_training_step_is_traced_once_and_trains_the_same(monkeypatch) -> None:
    """build_training_state creates the optimizer's and metrics' variables before training, so TensorFlow traces
    the training step once; without it (Keras defers them into the first trace) twice. The training is the same."""
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    original = TensorFlowTrainer.train_step
    traces: list[int] = []

    def counted(self, data):  # runs only while TensorFlow traces the step (in graph mode)
        traces.append(1)
        return original(self, data)

    monkeypatch.setattr(TensorFlowTrainer, "train_step", counted)
    spec, data = _digits_conv(stages=2, dropout=0.3)
    budget = Budget(epochs=2, batch_size=64)
    runs = {}
    for prebuild in (True, False):
        monkeypatch.setattr(train_module, "PREBUILD", prebuild)
        traces.clear()
        result = train_model(spec, data, budget, seed=1)
        runs[prebuild] = (len(traces), result["history"], result["loss"])
    assert runs[True][0] == 1 and runs[False][0] == 2
    assert runs[True][1:] == runs[False][1:] and len(runs[True][1]) == 2


def test_the_trial_accuracy_is_the_final_models_without_a_second_validation_pass(monkeypatch) -> None:
    """train_model takes the accuracy from the last epoch's validation (no model.evaluate after fit): it is the
    returned model's accuracy on the validation split, also when a rung check recalibrated batch norm in between."""
    import tensorflow as tf

    calls: list[int] = []
    original = keras.Model.evaluate

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "evaluate", counted)
    spec, data = _digits_conv(stages=2, dropout=0.3)
    for rungs in ((), (1, 3)):
        result = train_model(spec, data, Budget(epochs=3, batch_size=64), seed=1, calibrate_at=rungs,
                             calibrated=lambda e, a: None)
        assert len(calls) == 3 + len(rungs)  # fit validates through Model.evaluate each epoch, then the rung checks
        calls.clear()
        val = tf.data.Dataset.from_tensor_slices((data.x_val, data.y_val)).batch(64)
        _, acc = original(result["model"], val, verbose=0)
        assert result["accuracy"] == float(acc)
        assert result["history"][-1] == round(float(acc), 6) and len(result["history"]) == 3
