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
        from nas.devices import where

        placed = where(auto, Device(), "float32", "auto")  # the default strategy has no worker_devices()
        assert (placed["used"], placed["strategy"], placed["replicas"]) == \
            (["CPU:0"], "_DefaultDistributionStrategy", 1)
    else:
        assert auto.num_replicas_in_sync == _gpus()


@pytest.mark.slow
def test_mixed_precision_trial_on_cpu(tmp_path: Path) -> None:
    study = nas.search({"space": "conv",
                        "options": {"stages": (1, 1), "depth": (1, 1), "widths": (8,), "kernels": (3,),
                                    "hidden": (0, 0), "dropouts": (0.0,), "bns": (True,)}}, "digits",
                       strategy=nas.Strategy(n_trials=1, budget={"epochs": 1, "batch_size": 128}),
                       run=nas.Run(storage=tmp_path / "mp.db", study="mp",
                                   device=nas.Device(kind="cpu", mixed_precision="mixed_bfloat16", jit_compile=False)),
                       verbose=False)
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


# ------------------------------------------------------------------ which worker sees which devices

from nas.devices import Found, Placement, place_workers, strategy_plan  # noqa: E402

GPU = Device(kind="gpu")


def envs(placements: tuple[Placement, ...]) -> list[dict[str, str]]:
    return [p.env() for p in placements]


def test_one_worker_per_gpu_by_default_each_seeing_only_its_own() -> None:
    four = Found(gpus=("0", "1", "2", "3"))
    assert envs(place_workers(four, GPU)) == [{"CUDA_VISIBLE_DEVICES": str(i)} for i in range(4)]
    assert envs(place_workers(four, Device(kind="auto"))) == [{"CUDA_VISIBLE_DEVICES": str(i)} for i in range(4)]
    assert envs(place_workers(four, GPU, n_workers=2)) == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]
    # the supervisor's own CUDA_VISIBLE_DEVICES entries are what its workers get
    assert envs(place_workers(Found(gpus=("5", "2")), GPU)) == [{"CUDA_VISIBLE_DEVICES": "5"},
                                                                {"CUDA_VISIBLE_DEVICES": "2"}]
    with pytest.raises(ValueError, match=r"`n_workers` asks for more workers than the GPUs hold: n_workers=5, but 4 "
                                         r"GPU\(s\) at gpus_per_worker=1 hold 4 worker\(s\)"):
        place_workers(four, GPU, n_workers=5)


def test_several_gpus_per_worker_are_disjoint() -> None:
    assert envs(place_workers(Found(gpus=("0", "1", "2", "3")), GPU, gpus_per_worker=2)) == [
        {"CUDA_VISIBLE_DEVICES": "0,1"}, {"CUDA_VISIBLE_DEVICES": "2,3"}]
    assert envs(place_workers(Found(gpus=("0", "1", "2")), GPU, gpus_per_worker=2)) == [{"CUDA_VISIBLE_DEVICES": "0,1"}]
    with pytest.raises(ValueError, match=r"`gpus_per_worker` is 4, but this machine has 2 GPU\(s\) \(0, 1\)"):
        place_workers(Found(gpus=("0", "1")), GPU, gpus_per_worker=4)


def test_a_shared_gpu_gives_each_worker_a_memory_limit() -> None:
    two = Found(gpus=("0", "1"), gpu_memory_mb=(16000, 8000))
    placed = place_workers(two, GPU, gpus_per_worker=0.5)
    assert envs(placed) == [{"CUDA_VISIBLE_DEVICES": "0", "NAS_GPU_MEMORY_MB": "7600"}] * 2 + [
        {"CUDA_VISIBLE_DEVICES": "1", "NAS_GPU_MEMORY_MB": "3800"}] * 2
    assert {p.share for p in placed} == {2} and placed[0].describe() == "GPU 0, 1/2 of it (7600 MB)"
    assert envs(place_workers(two, GPU, gpus_per_worker=0.25, gpu_memory_mb=1000, n_workers=3)) == [
        {"CUDA_VISIBLE_DEVICES": "0", "NAS_GPU_MEMORY_MB": "1000"}] * 3
    with pytest.raises(ValueError, match="the memory of GPU 0 is unknown: give `gpu_memory_mb`"):
        place_workers(Found(gpus=("0",)), GPU, gpus_per_worker=0.5)
    with pytest.raises(ValueError,
                       match="`gpu_memory_mb`=5000 for each of 2 workers on GPU 1 is more than its 8000 MB"):
        place_workers(two, GPU, gpus_per_worker=0.5, gpu_memory_mb=5000)


def test_cpu_and_tpu_workers_see_no_gpu() -> None:
    four = Found(gpus=("0", "1", "2", "3"))
    assert envs(place_workers(four, Device(kind="cpu"), n_workers=3)) == [{"CUDA_VISIBLE_DEVICES": ""}] * 3
    assert envs(place_workers(Found(), Device(kind="auto"))) == [{"CUDA_VISIBLE_DEVICES": ""}]
    assert place_workers(Found(), Device(kind="auto"), n_workers=2) == (Placement(kind="cpu"),) * 2
    assert place_workers(Found(tpu=True), Device(kind="tpu", tpu_address="local")) == (Placement(kind="tpu"),)
    with pytest.raises(ValueError, match="`n_workers` must be 1 with device kind 'tpu' .one process owns a TPU host"):
        place_workers(Found(tpu=True), Device(kind="tpu", tpu_address="local"), n_workers=2)
    with pytest.raises(ValueError, match="`device='gpu'`, but no GPU was found on this machine"):
        place_workers(Found(), GPU)


@pytest.mark.parametrize("options, message", [
    (dict(gpus_per_worker=0.3), "`gpus_per_worker` below 1 must be 1/k for a whole number k >= 2 (0.5, 0.25, ...)"),
    (dict(gpus_per_worker=1.5), "`gpus_per_worker` must be a whole number of GPUs (1 to 64) or a fraction 1/k"),
    (dict(gpus_per_worker=float("nan")), "but got gpus_per_worker=nan"),
    (dict(gpus_per_worker=True), "but got gpus_per_worker=True"),
    (dict(gpu_memory_mb=100),
     "`gpu_memory_mb` must be an integer number of megabytes >= 256, but got gpu_memory_mb=100"),
    (dict(n_workers=0), "`n_workers` must be an integer in [1, 256]"),
])
def test_bad_placement_options_fail_when_the_backend_is_made(options: dict, message: str) -> None:
    with pytest.raises(ValueError) as err:
        nas.Local(**options)
    assert message in str(err.value)


def test_strategies_from_the_devices_a_worker_sees() -> None:
    assert strategy_plan("gpu", ["/device:GPU:0", "/device:GPU:1"], ["/device:CPU:0"]) == (
        "mirrored", ("/device:GPU:0", "/device:GPU:1"))
    assert strategy_plan("auto", ["/device:GPU:0"], ["/device:CPU:0"]) == ("one", ("/gpu:0",))
    assert strategy_plan("auto", [], ["/device:CPU:0"]) == ("default", ())
    assert strategy_plan("cpu", [], ["/device:CPU:0"]) == ("one", ("/cpu:0",))
    assert strategy_plan("cpu", [], ["/device:CPU:0", "/device:CPU:1"]) == ("mirrored", ("/device:CPU:0",
                                                                                         "/device:CPU:1"))
    assert strategy_plan("tpu", [], ["/device:CPU:0"]) == ("tpu", ())
    with pytest.raises(RuntimeError, match="device='gpu', but this worker sees no GPU"):
        strategy_plan("gpu", [], ["/device:CPU:0"])


def test_this_machine_places_cpu_workers() -> None:
    """No NVIDIA driver here: `auto` finds no GPU without starting TensorFlow, and workers see none."""
    assert nas.Local(n_workers=2).placements(Device()) == (Placement(kind="cpu"),) * 2
    assert nas.Local().placements(Device(kind="cpu")) == (Placement(kind="cpu"),)


MIRRORED = """
import json, sys
from nas._quiet import import_keras
import_keras()
import numpy as np
import nas, search_spaces
from nas.budget import Budget
from nas.data import load_data
from nas.devices import Device
from nas.train import train_model
space = search_spaces.get("conv", input_shape=(8, 8, 1), num_classes=10, stages=(2, 2), depth=(1, 1), widths=(16,),
                          kernels=(3,), hidden=(0, 0), dropouts=(0.0,), bns=(True,))
data = load_data("digits", val_samples=359)  # an odd split: the last batch is padded for two replicas
placed = {}
device = Device(kind="cpu", mixed_precision=sys.argv[1] or None, jit_compile=True if sys.argv[2] == "1" else "auto")
r = train_model(space.sample(nas.RandomTrial(seed=0)), data, Budget(epochs=4, batch_size=64), seed=3, device=device,
                placed=placed)
from nas.train import _dataset  # the batches the evaluation saw, padding included: predictions batch by batch
replicas = placed["devices"]["replicas"]
batches = _dataset(data.x_val, data.y_val, Budget(batch_size=64), 3, train=False, replicas=replicas)
predicted = np.argmax(r["model"].predict(batches, verbose=0), axis=1)[:len(data.y_val)]
print(json.dumps({"accuracy": r["accuracy"], "by_hand": float(np.mean(predicted == data.y_val)),
                  "history": r["history"], "devices": placed["devices"]}))
"""


def _train_in_a_process(cpus: int, precision: str = "", jit: bool = False) -> dict:
    import json
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", MIRRORED, precision, "1" if jit else "0"], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "NAS_CPU_DEVICES": str(cpus)})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_mirrored_training_over_two_logical_cpus_matches_one_device() -> None:
    """MirroredStrategy over two logical CPU devices (what a worker with two GPUs runs) against one device, same
    data, seed and budget: the accuracies agree within 0.03 (measured: 0.7967 against 0.7994 after 4 epochs;
    the replicas keep batch-norm statistics of half batches, so they are not bit-identical), and the padded
    examples of the odd validation split count for nothing (the recorded accuracy is the one computed by hand)."""
    one, two = _train_in_a_process(1), _train_in_a_process(2)
    assert one["devices"]["strategy"] == "OneDeviceStrategy" and one["devices"]["used"] == ["CPU:0"]
    assert two["devices"]["strategy"] == "MirroredStrategy" and two["devices"]["replicas"] == 2
    assert two["devices"]["used"] == ["CPU:0", "CPU:1"] and two["devices"]["cpu_devices"] == 2
    assert abs(one["accuracy"] - two["accuracy"]) <= 0.03
    assert two["accuracy"] == pytest.approx(two["by_hand"], abs=1e-6)
    assert one["accuracy"] == pytest.approx(one["by_hand"], abs=1e-6)
    assert len(two["history"]) == 4 and 0.5 < two["accuracy"] <= 1.0


@pytest.mark.slow
def test_bfloat16_and_xla_train_on_the_cpu() -> None:
    """mixed_bfloat16 over two replicas, and with XLA (jit_compile) on one device: real trainings that learn,
    recorded as such. (XLA over two *logical CPU* replicas fails in TensorFlow, "Trying to access resource ...
    located in device CPU:1 from device CPU:0", an XLA limitation of logical devices; a GPU machine checks
    XLA with MirroredStrategy: benchmarks/accelerator_check.py.)"""
    mirrored = _train_in_a_process(2, "mixed_bfloat16")
    assert (mirrored["devices"]["precision"], mirrored["devices"]["replicas"]) == ("mixed_bfloat16", 2)
    assert mirrored["devices"]["jit_compile"] is False  # "auto": Keras turns XLA off on CPU-only machines
    xla = _train_in_a_process(1, "mixed_bfloat16", jit=True)
    assert (xla["devices"]["precision"], xla["devices"]["jit_compile"]) == ("mixed_bfloat16", True)
    for run in (mirrored, xla):
        assert run["accuracy"] > 0.5 and run["accuracy"] == pytest.approx(run["by_hand"], abs=1e-6)


@pytest.mark.slow
def test_every_trained_trial_records_where_it_trained(tmp_path: Path, monkeypatch) -> None:
    """A real search whose one worker splits the CPU into two logical devices: every trial trains mirrored over
    both (one strategy for the worker's life: a second MirroredStrategy in a process fails its all-reduce, "Shape
    mismatch in the collective instance"), records it, and the worker was started seeing no GPU."""
    monkeypatch.setenv("NAS_CPU_DEVICES", "2")
    study = nas.search({"space": "conv",
                        "options": {"stages": (1, 1), "depth": (1, 1), "widths": (8, 16), "kernels": (3,),
                                    "hidden": (0, 0), "dropouts": (0.0,)}}, "digits",
                       strategy=nas.Strategy(n_trials=3, sampler="random", seed=0,
                                             budget={"epochs": 1, "batch_size": 128}, max_failures=1),
                       run=nas.Run(storage=tmp_path / "d.db", study="d", device="cpu", backend=nas.Local(n_workers=1)),
                       verbose=False)
    placed = [r.user_attrs["devices"] for r in study.trials]
    assert [r.status for r in study.trials] == ["ok"] * 3
    for p in placed:
        assert (p["used"], p["strategy"], p["replicas"], p["precision"], p["kind"]) == (
            ["CPU:0", "CPU:1"], "MirroredStrategy", 2, "float32", "cpu")
        assert p["cuda_visible_devices"] == ""  # a CPU worker is started seeing no GPU
    frame = study.trials_dataframe()
    assert list(frame["devices"]) == ["CPU:0,CPU:1"] * 3 and list(frame["strategy"]) == ["MirroredStrategy"] * 3
    assert study.devices() == {"CPU:0,CPU:1 (MirroredStrategy, float32)": 3}
