"""Device strategies, mixed precision and XLA options, checked on this CPU machine."""

from __future__ import annotations

from pathlib import Path

import pytest

import nas
from nas.devices import Device, check_devices, make_strategy


@pytest.mark.parametrize("kwargs, message", [
    (dict(kind="npu"), "device: `kind` must be one of auto, cpu, gpu, tpu, but got kind='npu'"),
    (dict(mixed_precision="float8"), "device: `mixed_precision` must be None, 'mixed_float16' or 'mixed_bfloat16'"),
    (dict(jit_compile="yes"), "device: `jit_compile` must be True, False or 'auto', but got jit_compile='yes'"),
    (dict(jit_compile=1), "device: `jit_compile` must be True, False or 'auto', but got jit_compile=1"),
    (dict(tpu_address="local"), "device: `tpu_address` is a string used only with kind='tpu'"),
])
def test_bad_device_options(kwargs: dict, message: str, monkeypatch) -> None:
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(ValueError) as err:
        Device(**kwargs)
    assert message in str(err.value)


def test_device_shorthands_and_round_trip() -> None:
    assert Device.of("cpu") == Device(kind="cpu")
    assert Device.of(None) == Device()
    full = Device(kind="cpu", mixed_precision="mixed_bfloat16", jit_compile=False)
    assert Device.of(full.to_dict()) == full and full.to_dict() == {
        "kind": "cpu", "mixed_precision": "mixed_bfloat16", "jit_compile": False, "tpu_address": None}
    with pytest.raises(ValueError, match="device: unknown field 'gpus'"):
        Device.of({"kind": "gpu", "gpus": 2})
    with pytest.raises(ValueError, match="`device` must be a nas.Device, a kind name"):
        Device.of(3)


def _gpus() -> int:
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


def test_absent_gpu_fails_at_start_with_a_clear_message() -> None:
    options = Device(kind="gpu")
    if _gpus():
        check_devices(options)  # a machine with a GPU: accepted
    else:
        with pytest.raises(ValueError, match="`device='gpu'`, but TensorFlow sees no GPU on this machine"):
            check_devices(options)
    check_devices(Device(kind="cpu"))  # never probes


def test_a_tpu_without_address_fails_when_probed_not_when_read(monkeypatch) -> None:
    monkeypatch.delenv("TPU_NAME", raising=False)
    device = Device(kind="tpu")  # a stored study made where TPU_NAME was set still loads here
    with pytest.raises(ValueError, match="device: kind='tpu' needs `tpu_address`"):
        check_devices(device)


def test_absent_tpu_fails_at_start() -> None:
    with pytest.raises(ValueError, match="`device='tpu'`: no TPU at tpu_address='grpc://127.0.0.1:1'"):
        check_devices(Device(kind="tpu", tpu_address="grpc://127.0.0.1:1"))


def test_strategy_selection_on_cpu() -> None:
    import tensorflow as tf

    cpu = make_strategy(Device(kind="cpu"))
    assert isinstance(cpu, tf.distribute.OneDeviceStrategy) and cpu.extended.worker_devices[0].endswith("CPU:0")
    auto = make_strategy(Device())
    if _gpus() == 0:
        assert auto is tf.distribute.get_strategy() and auto.num_replicas_in_sync == 1
    else:
        assert auto.num_replicas_in_sync == _gpus()


@pytest.mark.slow
def test_mixed_precision_trial_on_cpu(tmp_path: Path) -> None:
    study = nas.search({"space": "conv", "options": {"stages": (1, 1), "depth": (1, 1), "widths": (8,), "kernels": (3,),
                                                     "hidden": (0, 0), "dropouts": (0.0,), "bns": (True,)}},
                       "digits", n_trials=1, storage=tmp_path / "mp.db", study_name="mp",
                       budget={"epochs": 1, "batch_size": 128}, device=nas.Device(kind="cpu", mixed_precision="mixed_bfloat16",
                                                                jit_compile=False), verbose=False)
    record = study.trials[0]
    assert record.status == "ok" and 0.0 < record.metrics["accuracy"] <= 1.0
    assert study.config.device == nas.Device(kind="cpu", mixed_precision="mixed_bfloat16", jit_compile=False)
    import keras

    from nas.budget import Budget
    from nas.data import load_data
    from nas.train import train_model

    keras.mixed_precision.set_global_policy("float32")
    result = train_model(record.spec, load_data("digits", train_samples=256, val_samples=64),
                         Budget(epochs=1, batch_size=64), device=Device(kind="cpu", mixed_precision="mixed_bfloat16"))
    model = result["model"]
    assert model.get_layer("s1b1_conv").compute_dtype == "bfloat16"
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert model.output.dtype == "float32"
    keras.mixed_precision.set_global_policy("float32")
