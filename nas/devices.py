"""Where a trial trains: device strategies, mixed precision and XLA.

``Device(kind=...)``: ``auto`` (every GPU the worker sees, else the CPU), ``cpu``, ``gpu`` (one GPU as is, several through
``tf.distribute.MirroredStrategy``) or ``tpu`` (``tf.distribute.TPUStrategy`` on the TPU named by
``tpu_address``, e.g. ``local`` on a TPU VM or ``grpc://10.0.0.2:8470``). ``mixed_precision``: None,
``mixed_float16`` (GPUs) or ``mixed_bfloat16`` (TPUs, recent CPUs); the classifier stays float32.
``jit_compile``: XLA for training steps (True / False / ``auto``, Keras's default).

A request for hardware that is absent fails the search when it starts (:func:`check_devices` probes it once in
a subprocess, so the supervisor itself never loads TensorFlow), not every trial later.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

__all__ = ["DEVICES", "Device", "check_devices", "make_strategy"]

DEVICES = ("auto", "cpu", "gpu", "tpu")
PRECISIONS = (None, "mixed_float16", "mixed_bfloat16")


@dataclass(frozen=True, kw_only=True)
class Device:
    """Where and how each trial trains: ``kind`` (auto / cpu / gpu / tpu), ``mixed_precision``, ``jit_compile``
    and, for TPUs, ``tpu_address``. Stored with the study; checked here, probed on the hardware by
    :func:`check_devices` when a search starts."""

    kind: str = "auto"
    mixed_precision: str | None = None
    jit_compile: bool | str = "auto"
    tpu_address: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in DEVICES:
            raise ValueError(f"device: `kind` must be one of {', '.join(DEVICES)}, but got kind={self.kind!r}")
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(f"device: `mixed_precision` must be None, 'mixed_float16' or 'mixed_bfloat16', but got "
                             f"mixed_precision={self.mixed_precision!r}")
        if not (self.jit_compile is True or self.jit_compile is False or self.jit_compile == "auto"):
            raise ValueError(f"device: `jit_compile` must be True, False or 'auto', but got "
                             f"jit_compile={self.jit_compile!r}")
        if self.tpu_address is not None and (self.kind != "tpu" or not isinstance(self.tpu_address, str)):
            raise ValueError(f"device: `tpu_address` is a string used only with kind='tpu', but got "
                             f"kind={self.kind!r}, tpu_address={self.tpu_address!r}")

    @classmethod
    def of(cls, value: Any) -> Device:
        """A :class:`Device` from itself, a kind name (``"cpu"``) or a dict of its fields."""
        if isinstance(value, Device):
            return value
        if value is None:
            return cls()
        if isinstance(value, str):
            return cls(kind=value)
        if isinstance(value, dict):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise ValueError(f"device: unknown field {unknown[0]!r}; known fields: {', '.join(sorted(known))}")
            return cls(**value)
        raise ValueError(f"`device` must be a nas.Device, a kind name ({', '.join(DEVICES)}) or a dict of Device "
                         f"fields, but got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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


def check_devices(device_: Device) -> None:
    """Fail now if the requested hardware is absent on this machine (probed in a subprocess)."""
    device = device_.kind
    if device in ("auto", "cpu"):
        return
    if device == "tpu" and not (device_.tpu_address or os.environ.get("TPU_NAME")):
        raise ValueError("device: kind='tpu' needs `tpu_address` (e.g. 'local' on a TPU VM, or grpc://host:8470) "
                         "or the TPU_NAME environment variable, but got tpu_address=None")
    address = (device_.tpu_address or os.environ.get("TPU_NAME") or "") if device == "tpu" else ""
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


def make_strategy(device_: Device) -> Any:
    """The tf.distribute strategy for this worker's trials."""
    import tensorflow as tf

    device = device_.kind
    if device == "cpu":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if device == "tpu":
        address = device_.tpu_address or os.environ.get("TPU_NAME")
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
