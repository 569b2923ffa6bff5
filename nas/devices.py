"""Where a trial trains: device strategies, mixed precision and XLA.

``device``: ``auto`` (every GPU the worker sees, else the CPU), ``cpu``, ``gpu`` (one GPU as is, several through
``tf.distribute.MirroredStrategy``) or ``tpu`` (``tf.distribute.TPUStrategy`` on the TPU named by
``tpu_address``, e.g. ``local`` on a TPU VM or ``grpc://10.0.0.2:8470``). ``mixed_precision``: None,
``mixed_float16`` (GPUs) or ``mixed_bfloat16`` (TPUs, recent CPUs); the classifier stays float32.
``jit_compile``: XLA for training steps (True / False / ``auto``, Keras's default).

A request for hardware that is absent fails the search when it starts (:func:`check_devices` probes it once in
a subprocess, so the supervisor itself never loads TensorFlow), not every trial later.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

__all__ = ["DEVICES", "check_device_options", "check_devices", "make_strategy"]

DEVICES = ("auto", "cpu", "gpu", "tpu")
PRECISIONS = (None, "mixed_float16", "mixed_bfloat16")


def check_device_options(device: Any, mixed_precision: Any, jit_compile: Any, tpu_address: Any) -> dict[str, Any]:
    if device not in DEVICES:
        raise ValueError(f"`device` must be one of {', '.join(DEVICES)}, but got device={device!r}")
    if mixed_precision not in PRECISIONS:
        raise ValueError(f"`mixed_precision` must be None, 'mixed_float16' or 'mixed_bfloat16', but got "
                         f"mixed_precision={mixed_precision!r}")
    if jit_compile not in (True, False, "auto"):
        raise ValueError(f"`jit_compile` must be True, False or 'auto', but got jit_compile={jit_compile!r}")
    if device == "tpu" and not (tpu_address or os.environ.get("TPU_NAME")):
        raise ValueError("`device='tpu'` needs `tpu_address` (e.g. 'local' on a TPU VM, or grpc://host:8470) or "
                         "the TPU_NAME environment variable, but got tpu_address=None")
    if tpu_address is not None and device != "tpu":
        raise ValueError(f"`tpu_address` is only used with device='tpu', but got device={device!r}")
    return {"device": device, "mixed_precision": mixed_precision, "jit_compile": jit_compile,
            "tpu_address": tpu_address}


_PROBE = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
out = {"gpus": len(tf.config.list_physical_devices("GPU")), "tpu": None}
address = sys.argv[1]
if address:
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        out["tpu"] = len(tf.config.list_logical_devices("TPU"))
    except Exception as exc:
        out["tpu"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def check_devices(options: dict[str, Any]) -> None:
    """Fail now if the requested hardware is absent on this machine (probed in a subprocess)."""
    device = options["device"]
    if device in ("auto", "cpu"):
        return
    address = (options.get("tpu_address") or os.environ.get("TPU_NAME") or "") if device == "tpu" else ""
    if address.startswith("grpc://"):
        # TensorFlow retries an unreachable TPU worker for minutes: check the port first
        import socket

        host, _, port = address[len("grpc://"):].rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except (OSError, ValueError) as exc:
            raise ValueError(f"`device='tpu'`: no TPU at tpu_address={address!r}: {exc}") from None
    try:
        out = subprocess.run([sys.executable, "-c", _PROBE, address], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise ValueError(f"`device={device!r}`: probing the devices timed out after 300 s "
                         f"(tpu_address={address!r})") from None
    if out.returncode != 0:
        raise ValueError(f"`device={device!r}`: probing TensorFlow's devices failed: {out.stderr[-1000:]}")
    found = json.loads(out.stdout.strip().splitlines()[-1])
    if device == "gpu" and found["gpus"] == 0:
        raise ValueError("`device='gpu'`, but TensorFlow sees no GPU on this machine (install the GPU extra: "
                         "pip install 'nas[gpu]', check nvidia-smi and CUDA_VISIBLE_DEVICES), or use device='auto'")
    if device == "tpu" and not isinstance(found["tpu"], int):
        raise ValueError(f"`device='tpu'`: no TPU at tpu_address={address!r}: {found['tpu']}")
    if device == "tpu" and found["tpu"] == 0:
        raise ValueError(f"`device='tpu'`: the TPU system at {address!r} has no TPU cores")


def make_strategy(options: dict[str, Any]) -> Any:
    """The tf.distribute strategy for this worker's trials."""
    import tensorflow as tf

    device = options.get("device", "auto")
    if device == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if device == "tpu":
        address = options.get("tpu_address") or os.environ.get("TPU_NAME")
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise RuntimeError("device='gpu', but this worker sees no GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    if len(gpus) == 1:
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    return tf.distribute.get_strategy()  # the default: whatever TensorFlow places, here the CPU
