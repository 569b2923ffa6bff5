"""Training and measuring one candidate in Keras (runs inside a worker process)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from nas.budget import Budget, TrialFailed
from nas.data import Data
from nas.devices import Device, make_strategy, where
from nas.spec import ArchSpec

__all__ = ["TrialFailed", "build_training_state", "calibrated_accuracy", "calibration_sample", "evaluate_latency",
           "make_optimizer", "resize_images", "train_model"]

CALIBRATION_IMAGES = 1024  # training images whose batch statistics replace the moving ones for a rung check
# a rung check runs the calibration images forward in batches of this many training batches: a forward pass
# without gradients holds far less than a training step does, and each eager call pays its dispatch (six families
# networks on Fashion-MNIST, benchmarks/bench_rung_check.py: a whole check took a median 1.20 s in batches of 64,
# 0.87 steady epochs, and 0.53 s in batches of 256, 0.39 epochs; the accuracy moved by at most one image in 1,000)
CALIBRATION_BATCHES = 4
# create the optimizer's, metrics' and loss's variables before the first training step (build_training_state);
# False only to measure what it saves (benchmarks/bench_first_epoch.py)
PREBUILD = True


def resize_images(x: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Bilinear resize to the spec's resolution (compound scaling asks for other sizes than the data's)."""
    if x.shape[1:3] == tuple(shape[:2]):
        return x
    out = []
    for i in range(0, len(x), 1024):
        out.append(tf.image.resize(x[i:i + 1024], shape[:2]).numpy())
    return np.concatenate(out).astype(np.float32)


def _dataset(x: np.ndarray, y: np.ndarray, budget: Budget, seed: int, train: bool,
             replicas: int = 1) -> tf.data.Dataset:
    """The input pipeline: arrays in memory, shuffled each epoch (training), batched, augmented, prefetched.

    With several replicas (``MirroredStrategy``) every batch must split evenly between them: Keras 3 fails on an
    uneven last batch ("Inputs to operation AddN ... must have the same size", keras-team/keras#19246). So the
    arrays are padded to a multiple of the replicas with copies of their first examples carrying sample weight
    0, which no loss or accuracy counts, and evaluation batches are a multiple of the replicas. One replica:
    the pipeline is unchanged (no weights)."""
    batch = budget.batch_size if train else 512
    if replicas > 1:
        if train and batch % replicas:
            raise TrialFailed(f"`budget.batch_size`={batch} must be a multiple of the {replicas} replicas this worker "
                              f"trains on (each replica takes batch_size / replicas examples)")
        batch = batch if train else max(replicas, batch - batch % replicas)
        pad = -len(x) % replicas
        weights = np.concatenate([np.ones(len(x), np.float32), np.zeros(pad, np.float32)])
        x, y = np.concatenate([x, x[:pad]]), np.concatenate([y, y[:pad]])
        ds = tf.data.Dataset.from_tensor_slices((x, y, weights))
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, y))
    if train:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch)
    if train and budget.augment != "none":
        h, w = x.shape[1:3]
        pad_px = max(2, min(4, h // 8))

        def augment(images: tf.Tensor, *rest: tf.Tensor) -> tuple[tf.Tensor, ...]:
            if "flip" in budget.augment:
                images = tf.image.random_flip_left_right(images, seed=seed)
            if "shift" in budget.augment:
                padded = tf.pad(images, [[0, 0], [pad_px, pad_px], [pad_px, pad_px], [0, 0]], mode="REFLECT")
                images = tf.image.random_crop(padded, tf.shape(images), seed=seed)
            return (images, *rest)
        ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def make_optimizer(budget: Budget, steps: int) -> keras.optimizers.Optimizer:
    lr: Any = budget.learning_rate
    if budget.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(budget.learning_rate, decay_steps=max(1, steps))
    if budget.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    if budget.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=budget.weight_decay)
    return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=budget.weight_decay or None)


def build_training_state(model: keras.Model, x: np.ndarray, y: np.ndarray) -> None:
    """Create the optimizer's, the metrics' and the loss's variables of a compiled ``model`` now, from one batch
    of ``x`` and ``y`` (their shapes and types; nothing is computed).

    Without a distribution strategy (TensorFlow's default one, which a worker with ``device="auto"`` uses on a
    machine without GPUs: :func:`nas.devices.strategy_plan`) Keras 3 defers these variables to the first trace of
    the training step, and a ``tf.function`` that creates variables is traced twice: once creating them, once more
    using them. Creating them first halves the tracing, most of a trial's first epoch
    (``benchmarks/bench_first_epoch.py``). Keras does it itself under a strategy (``OneDeviceStrategy`` on one GPU
    or with ``device="cpu"``, ``MirroredStrategy``, ``TPUStrategy``); there, and on a Keras without the method
    used, this only builds the optimizer, as Keras would on the first step. Training is the same either way: the
    variables start at the same values."""
    build = getattr(model, "_symbolic_build", None)  # Keras 3's own pre-build (keras/src/trainers/trainer.py)
    if callable(build) and getattr(model, "_distribute_strategy", None) is None:
        build(data_batch=(x, y))
    elif model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def _batch_norms(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.BatchNormalization)]


def calibration_sample(n: int, seed: int) -> np.ndarray:
    """Indices (ascending) of the :data:`CALIBRATION_IMAGES` training images (all when fewer) whose batch
    statistics a rung check uses: drawn at random with ``seed``, not the first ones, which in arrays sorted by
    class would all be of one class."""
    return np.sort(np.random.default_rng(seed).choice(n, min(CALIBRATION_IMAGES, n), replace=False))


def calibrated_accuracy(model: keras.Model, x_cal: np.ndarray, val: tf.data.Dataset, batch_size: int) -> float | None:
    """Validation accuracy of ``model`` with its batch-norm statistics recomputed under the current weights.

    Early in training the moving averages of batch norm lag behind weights that change quickly, and the
    validation accuracy measured with them says little about the network (on the 266-architecture
    Fashion-MNIST curve table the epoch-1 accuracy has rank correlation 0.04 with the final one; recalibrated,
    0.83). Recomputing the statistics on training images before evaluating is what one-shot NAS does for every
    sub-network (Guo et al. 2020, "Single Path One-Shot Neural Architecture Search with Uniform Sampling"; Yu &
    Huang 2019, "Universally Slimmable Networks and Improved Training Techniques"): here the average of the
    batch statistics over the batches of ``x_cal`` (batch ``batch_size``), each weighted by its images, then the
    accuracy on ``val``. Every non-trainable variable (the moving statistics, dropout seed states) is set back
    afterwards, so training goes on exactly as without the check. None when the model has no batch norm (its
    validation accuracy is then already the calibrated one)."""
    layers = _batch_norms(model)
    if not layers:
        return None
    saved = [v.numpy() for v in model.non_trainable_variables]
    momenta = [layer.momentum for layer in layers]
    try:
        for start in range(0, len(x_cal), batch_size):
            batch = x_cal[start:start + batch_size]
            for layer in layers:  # moving * seen/(seen+n) + batch * n/(seen+n): the mean over the images so far
                layer.momentum = start / (start + len(batch))
            model(batch, training=True)
        _, acc = model.evaluate(val, verbose=0)
        return float(acc)
    finally:
        for layer, m in zip(layers, momenta):
            layer.momentum = m
        for v, value in zip(model.non_trainable_variables, saved):
            v.assign(value)


class _Watch(keras.callbacks.Callback):
    """Per-epoch validation reports (for pruners), NaN loss, and the per-trial timeout; at the epochs of
    ``calibrate`` (1-based) also the calibrated validation accuracy (:func:`calibrated_accuracy`)."""

    def __init__(self, budget: Budget, report: Callable[[int, float], None] | None,
                 calibrate: tuple[Collection[int], Callable[[keras.Model], float | None],
                                  Callable[[int, float], None]] | None = None) -> None:
        super().__init__()
        self.budget, self.report, self.calibrate = budget, report, calibrate
        self.start = time.perf_counter()
        self.failure: str | None = None
        self.history: list[float] = []

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.failure = f"training loss became {float(loss)} (batch {batch + 1})"
            self.model.stop_training = True
        elif self.budget.timeout and time.perf_counter() - self.start > self.budget.timeout:
            self.failure = f"timeout: training exceeded {self.budget.timeout:g} s"
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        acc = float((logs or {}).get("val_accuracy", float("nan")))
        self.history.append(acc)
        if self.failure is None and self.calibrate is not None:
            epochs, measure, tell = self.calibrate
            if epoch + 1 in epochs:
                t = time.perf_counter()
                calibrated = measure(self.model)
                self.start += time.perf_counter() - t  # the timeout is for training: a check does not count
                tell(epoch, acc if calibrated is None else calibrated)
        if self.failure is None and self.report is not None:
            self.report(epoch, acc)


def train_model(spec: ArchSpec, data: Data, budget: Budget, *, seed: int = 0,
                report: Callable[[int, float], None] | None = None, timings: dict[str, float] | None = None,
                x_extra: tuple[np.ndarray, np.ndarray] | None = None, validate: bool = True,
                device: Device | None = None, log_dir: str | None = None,
                calibrate_at: Collection[int] = (), calibrated: Callable[[int, float], None] | None = None,
                placed: dict[str, Any] | None = None,
                start: Callable[[keras.Model], None] | None = None) -> dict[str, Any]:
    """Build ``spec`` and train it with ``budget`` on ``data``, validating after every epoch on the validation split.

    ``report(epoch, val_accuracy)`` is called after every epoch (0-based); after the epochs of ``calibrate_at``
    (1-based: the rungs of early stopping) ``calibrated(epoch, accuracy)`` is called first, with the validation
    accuracy after recomputing batch-norm statistics on :data:`CALIBRATION_IMAGES` training images drawn with ``seed``,
    in batches of :data:`CALIBRATION_BATCHES` training batches (:func:`calibrated_accuracy`; the plain one for a
    model without batch norm). Training is not changed by it.

    ``placed`` (a dict) receives ``devices``, what the model trains on (:func:`nas.devices.where`), as soon as
    the strategy is made, so a trial stopped early or failed records it too. ``start(model)``, when given, is
    called on the built model before it is compiled (e.g. to set inherited weights: :mod:`nas.engine.inherit`).

    Returns ``model``, ``accuracy`` (validation top-1 of the last epoch's validation), ``train_accuracy``, ``loss``,
    ``epochs`` and ``history`` (validation accuracy per epoch). Raises :class:`TrialFailed` on NaN loss or timeout.
    """
    from nas.build import build_model

    timings = timings if timings is not None else {}
    if data.input_shape[2] != spec.input_shape[2]:
        raise TrialFailed(f"the spec expects {spec.input_shape[2]} input channels, but the data has "
                          f"{data.input_shape[2]}")
    keras.utils.set_random_seed(seed)
    t = time.perf_counter()
    x_train = resize_images(data.x_train, spec.input_shape)
    x_val = resize_images(data.x_val, spec.input_shape)
    y_train = data.y_train
    if x_extra is not None:
        x_train = np.concatenate([x_train, resize_images(x_extra[0], spec.input_shape)])
        y_train = np.concatenate([y_train, x_extra[1]])
    timings["data_s"] = time.perf_counter() - t
    t = time.perf_counter()
    device = device or Device()
    policy = device.mixed_precision or "float32"
    keras.mixed_precision.set_global_policy(policy)
    strategy = make_strategy(device)
    replicas = int(strategy.num_replicas_in_sync)
    if placed is not None:
        placed["devices"] = where(strategy, device, policy, device.jit_compile)
    with strategy.scope():
        model = build_model(spec, bn_momentum=budget.bn_momentum)
        if start is not None:
            start(model)
        steps = budget.epochs * math.ceil(len(x_train) / budget.batch_size)
        model.compile(optimizer=make_optimizer(budget, steps), loss="sparse_categorical_crossentropy",
                      # padded examples (several replicas, see _dataset) carry weight 0: the accuracy is weighted
                      **({"weighted_metrics": ["accuracy"]} if replicas > 1 else {"metrics": ["accuracy"]}),
                      jit_compile=device.jit_compile)
        if PREBUILD:
            build_training_state(model, x_train[:1], y_train[:1])
    if placed is not None:  # what XLA was, "auto" resolved by Keras (off on CPU-only machines and with tf.distribute)
        placed["devices"]["jit_compile"] = bool(model.jit_compile)
    timings["build_s"] = time.perf_counter() - t
    calibrate = None
    if calibrate_at and calibrated is not None and validate:
        x_cal = x_train[calibration_sample(len(x_train), seed)]
        val = _dataset(x_val, data.y_val, budget, seed, train=False, replicas=replicas)
        chunk = CALIBRATION_BATCHES * budget.batch_size
        calibrate = (frozenset(calibrate_at), lambda m: calibrated_accuracy(m, x_cal, val, chunk), calibrated)
    watch = _Watch(budget, report, calibrate)
    callbacks: list[Any] = [watch]
    if log_dir is not None:  # TensorBoard logs of this training (Budget(tensorboard=True))
        callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, histogram_freq=0, write_graph=False))
    t = time.perf_counter()
    history = model.fit(_dataset(x_train, y_train, budget, seed, train=True, replicas=replicas),
                        validation_data=(_dataset(x_val, data.y_val, budget, seed, train=False, replicas=replicas)
                                         if validate else None),
                        epochs=budget.epochs, verbose=0, callbacks=callbacks, shuffle=False)  # shuffled above
    timings["train_s"] = time.perf_counter() - t
    if placed is not None:
        placed["devices"].update(_peak_memory(placed["devices"]["used"]))
    if watch.failure:
        raise TrialFailed(watch.failure)
    out: dict[str, Any] = {"model": model, "epochs": len(history.history.get("loss", [])),
                           "train_accuracy": float(history.history["accuracy"][-1]),
                           "loss": float(history.history["loss"][-1])}
    if validate:
        # the last epoch's validation is the final model's (same weights, same split): no second model.evaluate
        out["accuracy"] = float(history.history["val_accuracy"][-1])
        out["history"] = [round(a, 6) for a in watch.history]
    return out


def _peak_memory(used: list[str]) -> dict[str, Any]:
    """Peak memory (MB) TensorFlow allocated on each accelerator the training used (GPUs, TPU cores; none for the
    CPU), reset for the next trial."""
    peaks = {}
    for name in used:
        if name.startswith(("GPU", "TPU")):
            try:
                peaks[name] = round(tf.config.experimental.get_memory_info(name)["peak"] / 2**20, 1)
                tf.config.experimental.reset_memory_stats(name)
            except (ValueError, RuntimeError):
                pass
    return {"peak_mb": peaks} if peaks else {}


def evaluate_latency(model: keras.Model, spec: ArchSpec, *, runs: int = 20) -> float:
    """Median wall time (ms) of one batch-1 inference on this worker, after warm-up."""
    fn = tf.function(lambda x: model(x, training=False))
    x = tf.random.uniform((1, *spec.input_shape))
    for _ in range(3):
        fn(x).numpy()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(x).numpy()
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e3)
