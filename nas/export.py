"""Export trials as Keras models: ``model.keras`` (plain ``keras.saving.load_model``), ``spec.json``,
``metrics.json`` per architecture, and an ``index.json`` of what was exported."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas._files import check_folder
from nas.engine.records import TrialRecord, file_sha256

__all__ = ["LIMITS", "check_selection", "export_trials"]


LIMITS = ("max_macs", "max_flops", "max_params", "max_latency")


def check_selection(which: Any, limits: dict[str, Any], where: str = "") -> None:
    """``which`` (a trial number >= 0, ``best``, ``knee`` or ``front``) and the ``limits`` (``max_macs``...: positive
    finite numbers, which only ``best`` takes), checked before anything is read or written; ``where`` prefixes the
    field names (``export.`` in a config)."""
    number = (isinstance(which, int) and not isinstance(which, bool) and which >= 0) or (
        isinstance(which, str) and which.isascii() and which.isdigit())
    if not number and which not in ("best", "knee", "front"):
        raise ValueError(f"`{where}which` must be a trial number, 'best', 'knee' or 'front', but got "
                         f"{where}which={which!r}")
    for k, v in limits.items():
        if k not in LIMITS:
            raise ValueError(f"export limits must be chosen from {', '.join(LIMITS)}, but got {where}{k}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
            raise ValueError(f"`{where}{k}` must be a positive finite number, but got {where}{k}={v!r}")
        if which != "best":
            raise ValueError(f"`{where}{k}` picks the best trial within it: it needs {where}which='best', but got "
                             f"{where}which={which!r}")


def _select(study: Any, which: Any, limits: dict[str, float]) -> list[TrialRecord]:
    if isinstance(which, int) or (isinstance(which, str) and which.isascii() and which.isdigit()):
        number = int(which)
        records = {r.number: r for r in study.trials}
        if number not in records:
            raise ValueError(f"`which`: study {study.name!r} has no trial {number}")
        r = records[number]
        if r.status not in ("ok", "reused"):
            raise ValueError(f"`which`: trial {number} has no trained model (status {r.status}"
                             f"{': ' + r.error if r.error else ''})")
        return [r]
    if which == "best":
        best = study.best(**limits)
        if best is None:
            raise ValueError(f"`which='best'`: no evaluated trial{' within ' + str(limits) if limits else ''}")
        return [best]
    if which == "knee":
        knee = study.knee()
        if knee is None:
            raise ValueError("`which='knee'`: no evaluated trial")
        return [knee]
    if which == "front":
        front = study.pareto_front()
        if not front:
            raise ValueError("`which='front'`: no evaluated trial")
        return front
    raise ValueError(f"`which` must be a trial number, 'best', 'knee' or 'front', but got which={which!r}")


def _verified_weights(r: TrialRecord) -> str:
    """The trial's weights file, after checking that it is the one the trial saved (its SHA-256 is recorded
    with the trial): weights overwritten by another study or run are an error, never a wrong model."""
    weights = r.user_attrs.get("weights")
    if not weights or not Path(weights).exists():
        raise ValueError(f"trial {r.number}: its trained weights are not at {weights!r} (artefacts moved or "
                         f"deleted?); export with retrain_epochs > 0 to train it again")
    expected = r.user_attrs.get("weights_sha256")
    if expected is not None and file_sha256(weights) != expected:
        raise ValueError(f"trial {r.number}: the weights at {weights} are not the ones it saved (SHA-256 differs: "
                         f"another study or run wrote there); export with retrain_epochs > 0 to train it again")
    return weights


def _with_preprocessing(model: Any, spec: Any, data: Any) -> tuple[Any, dict[str, Any]]:
    """The trained network behind its input preprocessing, as Keras applications do: a ``Rescaling`` by the
    factor nas applied to the raw images (digits 1/16, uint8 images 1/255) and, when the architecture's
    resolution differs from the data's (compound scaling), the same bilinear ``Resizing`` training used. The
    exported model takes the images a user has and gives the recorded accuracy."""
    import keras

    shape = tuple(int(d) for d in data.input_shape)
    inputs = keras.Input(shape=shape, name="image")
    x = keras.layers.Rescaling(data.input_scale, name="rescale")(inputs)
    resized = tuple(shape[:2]) != tuple(spec.input_shape[:2])
    if resized:
        x = keras.layers.Resizing(*spec.input_shape[:2], interpolation="bilinear", name="resize")(x)
    wrapped = keras.Model(inputs, model(x), name=model.name)
    note = {"shape": list(shape), "rescaling": data.input_scale,
            "raw": ("pixel values 0-16 (scikit-learn digits)" if data.input_scale == 1 / 16 else
                    "uint8 pixel values 0-255" if data.input_scale == 1 / 255 else "values in [0, 1]"),
            "resized_to": list(spec.input_shape[:2]) if resized else None}
    return wrapped, note


FORMATS = ("keras", "saved_model", "tflite", "onnx")


def check_formats(formats: Any) -> tuple[str, ...]:
    """``formats`` as a tuple of known names (``keras`` always included: it is what the others are made from)."""
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",") if f.strip()]
    try:
        items = list(formats)
    except TypeError:
        items = [formats]
    for f in items:
        if f not in FORMATS:
            raise ValueError(f"`formats` must be among {', '.join(FORMATS)}, but got {f!r}")
    return tuple(f for f in FORMATS if f in items or f == "keras")


def _convert(model: Any, folder: Path, formats: tuple[str, ...],
             wrote: Callable[[Path, float], None]) -> dict[str, str]:
    """``saved_model/`` (TensorFlow serving), ``model.tflite`` (TensorFlow Lite, float32) and ``model.onnx``
    (ONNX opset 17, by tf2onnx) beside model.keras, each with the model's input preprocessing inside;
    ``wrote(path, seconds)`` is called as each is written."""
    out: dict[str, str] = {}
    if "onnx" in formats:
        import tensorflow as tf
        import tf2onnx

        t0 = time.perf_counter()
        signature = tuple(tf.TensorSpec((None, *x.shape[1:]), tf.float32, name=f"input_{i}")
                          for i, x in enumerate(model.inputs))
        tf2onnx.convert.from_keras(model, input_signature=signature, opset=17, output_path=str(folder / "model.onnx"))
        out["onnx"] = "model.onnx"
        wrote(folder / "model.onnx", time.perf_counter() - t0)
    if "saved_model" not in formats and "tflite" not in formats:
        return out
    import shutil
    import tempfile

    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        saved = Path(tmp) / "saved_model"
        model.export(str(saved), format="tf_saved_model", verbose=False)
        if "saved_model" in formats:
            shutil.rmtree(folder / "saved_model", ignore_errors=True)
            shutil.copytree(saved, folder / "saved_model")
            out["saved_model"] = "saved_model"
            wrote(folder / "saved_model", time.perf_counter() - t0)
        if "tflite" in formats:
            t0 = time.perf_counter()
            (folder / "model.tflite").write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert())
            out["tflite"] = "model.tflite"
            wrote(folder / "model.tflite", time.perf_counter() - t0)
    return {f: out[f] for f in FORMATS if f in out}


def export_trials(study: Any, which: Any, path: Path, *, retrain_epochs: int = 0, formats: Any = ("keras",),
                  report: Callable[[str], None] | None = None, **limits: float) -> list[Path]:
    """Write each selected trial's folder (see :meth:`nas.Study.export`); ``report(line)`` is told each model and
    format as it is written (the TensorFlow conversions take seconds each)."""
    if isinstance(retrain_epochs, bool) or not isinstance(retrain_epochs, int) or retrain_epochs < 0:
        raise ValueError(f"`retrain_epochs` must be an integer >= 0, but got retrain_epochs={retrain_epochs!r}")
    formats = check_formats(formats)
    check_selection(which, limits)
    check_folder(path, "path", path)  # before anything is selected, retrained or converted
    path = path / study.name  # one layout from every entry point: a second study never overwrites the first
    records = _select(study, which, limits)
    # every trial's weights are checked before anything is written: a failed export leaves no folder behind
    weights = {r.number: _verified_weights(r) for r in records} if not retrain_epochs else {}
    from nas._quiet import import_keras

    import_keras()
    import dataclasses

    import keras

    from nas.build import build_model
    from nas.data import load_data
    from nas.train import train_model

    budget = study.budget
    data = None
    if study.config.evaluator is None and study.config.data.get("kind") in ("name", "folder", "npz"):
        data = load_data(study.config.data)  # its input shape and scale: the exported model takes raw images
    out_dirs = []
    path.mkdir(parents=True, exist_ok=True)
    say = report or (lambda text: None)
    for r in records:
        assert r.spec is not None
        folder = path / f"trial-{r.number}-{r.key}"

        def wrote(written: Path, seconds: float, number: int = r.number) -> None:
            say(f"nas export: trial {number}: wrote {written} ({seconds:.1f} s)")
        metrics: dict[str, Any] = {"trial": r.number, "study": study.name, "status": r.status, **r.metrics,
                                   "objectives": list(study.objectives)}
        if retrain_epochs:
            if data is None:
                raise ValueError(f"`retrain_epochs`: study {study.name!r} evaluates with an evaluator, it has no "
                                 f"training data to retrain on")
            retrain = dataclasses.replace(budget, epochs=retrain_epochs)
            say(f"nas export: trial {r.number}: retraining {r.spec_str} for {retrain_epochs} epochs on train + "
                f"validation")
            result = train_model(r.spec, data, retrain, seed=budget.seed + r.number, x_extra=(data.x_val, data.y_val),
                                 validate=False)
            model = result["model"]
            metrics["retrained"] = {"epochs": retrain_epochs, "on": "train+validation",
                                    "train_accuracy": result["train_accuracy"], "loss": result["loss"]}
        else:
            model = build_model(r.spec, bn_momentum=budget.bn_momentum)
            model.load_weights(weights[r.number])
        if data is not None:
            model, metrics["input"] = _with_preprocessing(model, r.spec, data)
        folder.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        model.save(folder / "model.keras")
        wrote(folder / "model.keras", time.perf_counter() - t)
        metrics["files"] = {"keras": "model.keras", **_convert(model, folder, formats, wrote)}
        (folder / "spec.json").write_text(r.spec.to_json(indent=2) + "\n")
        (folder / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        out_dirs.append(folder)
        keras.backend.clear_session()
    index = [{"trial": r.number, "key": r.key, "folder": d.name, "spec": r.spec_str, **r.metrics}
             for r, d in zip(records, out_dirs)]
    (path / "index.json").write_text(json.dumps({"study": study.name, "which": str(which), "exported": index},
                                                indent=2) + "\n")
    return out_dirs
