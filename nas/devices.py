"""Where a trial trains: device strategies, mixed precision and XLA.

``Device(kind=...)``: ``auto`` (every GPU the worker sees, else the CPU), ``cpu``, ``gpu`` (one GPU as is, several
through ``tf.distribute.MirroredStrategy``) or ``tpu`` (``tf.distribute.TPUStrategy`` on the TPU named by
``tpu_address``, e.g. ``local`` on a TPU VM or ``grpc://10.0.0.2:8470``). ``mixed_precision``: None,
``mixed_float16`` (GPUs) or ``mixed_bfloat16`` (TPUs, recent CPUs); the classifier stays float32.
``jit_compile``: XLA for training steps (True / False / ``auto``, Keras's default).

A request for hardware that is absent fails the search when it starts (:func:`check_devices` probes it once in
a subprocess, so the supervisor itself never loads TensorFlow), not every trial later.

Which accelerators each worker process sees is a decision, so it is a plain function:
:func:`place_workers` turns the devices found on the machine (:class:`Found`) and the request (the device, the
number of workers, GPUs per worker, a memory limit) into one :class:`Placement` per worker slot; the local
backend starts each worker with its placement's environment (``CUDA_VISIBLE_DEVICES`` set before TensorFlow
starts), and the worker applies the rest (:func:`configure_process`: memory growth, or a memory limit when
workers share a GPU) before its first TensorFlow operation. :func:`strategy_plan` decides the
``tf.distribute`` strategy from the devices a worker sees, and :func:`where` describes what a trial trained on,
for its record.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = ["CPU_DEVICES_ENV", "DEVICES", "Device", "DeviceLike", "Found", "GPU_MEMORY_ENV", "Placement",
           "check_devices", "check_placement", "configure_process", "find_devices", "make_strategy", "place_workers",
           "strategy_plan", "where"]

DEVICES = ("auto", "cpu", "gpu", "tpu")
GPU_MEMORY_ENV = "NAS_GPU_MEMORY_MB"  # a worker's memory limit per visible GPU (MB), set by its placement
CPU_DEVICES_ENV = "NAS_CPU_DEVICES"  # split the CPU into this many logical devices (tests, the accelerator check)
MAX_WORKERS = 256
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
    def of(cls, value: DeviceLike) -> Device:
        """A :class:`Device` from itself, None (the defaults), a kind name (``"cpu"``) or a dict of its fields."""
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


# a device as it is given: itself, a kind name ("cpu"), a dict of its fields (a YAML mapping) or None ("auto")
DeviceLike: TypeAlias = Device | str | dict[str, Any] | None


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
    found = _probe(address)
    if device == "gpu" and found["gpus"] == 0:
        raise ValueError("`device='gpu'`, but TensorFlow sees no GPU on this machine (install the GPU extra: "
                         "pip install 'nas[gpu]', check nvidia-smi and CUDA_VISIBLE_DEVICES), or use device='auto'")
    if device == "tpu" and not isinstance(found["tpu"], int):
        raise ValueError(f"`device='tpu'`: no TPU at tpu_address={address!r}: {found['tpu']}")
    if device == "tpu" and found["tpu"] == 0:
        raise ValueError(f"`device='tpu'`: the TPU system at {address!r} has no TPU cores")


# ------------------------------------------------------------------ which worker sees which devices

@dataclass(frozen=True, kw_only=True)
class Found:
    """The accelerators of this machine as the supervisor sees them: ``gpus``, the ids to hand to
    ``CUDA_VISIBLE_DEVICES`` (the entries of the supervisor's own ``CUDA_VISIBLE_DEVICES`` when it is set, else
    ``"0"`` .. ``"n-1"``), ``gpu_memory_mb`` (the total memory of each, None where unknown) and ``tpu`` (a TPU
    system is reachable)."""

    gpus: tuple[str, ...] = ()
    gpu_memory_mb: tuple[int | None, ...] = ()
    tpu: bool = False

    def __post_init__(self) -> None:
        if len(self.gpu_memory_mb) not in (0, len(self.gpus)):
            raise ValueError(f"Found: `gpu_memory_mb` has {len(self.gpu_memory_mb)} entries for {len(self.gpus)} GPUs")
        if len(set(self.gpus)) != len(self.gpus):
            raise ValueError(f"Found: GPU ids must be distinct, but got gpus={self.gpus!r}")

    def memory_of(self, gpu: str) -> int | None:
        return self.gpu_memory_mb[self.gpus.index(gpu)] if self.gpu_memory_mb else None


@dataclass(frozen=True, kw_only=True)
class Placement:
    """What one worker slot sees: ``kind`` (cpu / gpu / tpu), the ``gpus`` it may use (its
    ``CUDA_VISIBLE_DEVICES``), ``memory_mb`` (a memory limit per visible GPU when workers share one; None: memory
    growth) and ``share`` (how many workers share its GPU)."""

    kind: str
    gpus: tuple[str, ...] = ()
    memory_mb: int | None = None
    share: int = 1

    def env(self) -> dict[str, str]:
        """The environment that makes a worker process see exactly this placement (set before it starts, so before
        TensorFlow starts). CPU and TPU workers see no GPU: TensorFlow would otherwise reserve every GPU's memory."""
        out = {"CUDA_VISIBLE_DEVICES": ",".join(self.gpus)}
        if self.memory_mb is not None:
            out[GPU_MEMORY_ENV] = str(self.memory_mb)
        return out

    def describe(self) -> str:
        if self.kind != "gpu":
            return self.kind
        share = f", 1/{self.share} of it ({self.memory_mb} MB)" if self.share > 1 else ""
        return f"GPU {','.join(self.gpus)}{share}"


def _fraction_share(gpus_per_worker: float) -> int:
    """Workers per GPU for a fraction (0.5 -> 2); an error unless 1/fraction is a whole number."""
    share = round(1 / gpus_per_worker)
    if share < 2 or abs(share * gpus_per_worker - 1) > 1e-6:
        raise ValueError(f"`gpus_per_worker` below 1 must be 1/k for a whole number k >= 2 (0.5, 0.25, ...), so that "
                         f"k workers share each GPU, but got gpus_per_worker={gpus_per_worker!r}")
    return share


def check_placement(n_workers: int | None, gpus_per_worker: float, gpu_memory_mb: int | None) -> None:
    """The placement options, checked (an error naming the option, the rule and the value)."""
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int)
                                  or not 1 <= n_workers <= MAX_WORKERS):
        raise ValueError(f"`n_workers` must be an integer in [1, {MAX_WORKERS}] or None (one per GPU slot), but got "
                         f"n_workers={n_workers!r}")
    if isinstance(gpus_per_worker, bool) or not isinstance(gpus_per_worker, (int, float)) \
            or not 0 < gpus_per_worker <= 64 \
            or (gpus_per_worker > 1 and gpus_per_worker != int(gpus_per_worker)):
        raise ValueError(f"`gpus_per_worker` must be a whole number of GPUs (1 to 64) or a fraction 1/k of one, "
                         f"but got gpus_per_worker={gpus_per_worker!r}")
    if gpu_memory_mb is not None and (isinstance(gpu_memory_mb, bool) or not isinstance(gpu_memory_mb, int)
                                      or gpu_memory_mb < 256):
        raise ValueError(f"`gpu_memory_mb` must be an integer number of megabytes >= 256, but got "
                         f"gpu_memory_mb={gpu_memory_mb!r}")
    if gpus_per_worker < 1:
        _fraction_share(gpus_per_worker)


def place_workers(found: Found, device: Device, *, n_workers: int | None = None, gpus_per_worker: float = 1,
                  gpu_memory_mb: int | None = None) -> tuple[Placement, ...]:
    """One :class:`Placement` per worker slot: which devices each of the local backend's workers sees.

    * ``cpu``, or ``auto`` on a machine without GPUs: ``n_workers`` (default 1) workers, none sees a GPU.
    * ``gpu``, or ``auto`` with GPUs: each worker gets ``gpus_per_worker`` GPUs of its own (a whole number:
      several through ``MirroredStrategy``), or a fraction ``1/k`` of one GPU shared by ``k`` workers, each with a
      memory limit of ``gpu_memory_mb`` (default: the GPU's memory / k, less 5% for the CUDA context). By default
      one worker per slot, i.e. per GPU; ``n_workers`` takes the first slots and may not exceed them.
    * ``tpu``: one worker, since one process owns a TPU host.

    Plain data in, plain data out: tested with given device lists on machines without accelerators."""
    check_placement(n_workers, gpus_per_worker, gpu_memory_mb)
    kind = device.kind
    if kind == "auto":
        kind = "gpu" if found.gpus else "cpu"
    if kind == "tpu":
        if n_workers not in (None, 1):
            raise ValueError(f"`n_workers` must be 1 with device kind 'tpu' (one process owns a TPU host), but got "
                             f"n_workers={n_workers}")
        return (Placement(kind="tpu"),)
    if kind == "cpu":
        return tuple(Placement(kind="cpu") for _ in range(n_workers or 1))
    if not found.gpus:
        raise ValueError("`device='gpu'`, but no GPU was found on this machine (check nvidia-smi and "
                         "CUDA_VISIBLE_DEVICES), or use device='auto'")
    slots: list[Placement] = []
    if gpus_per_worker >= 1:
        per = int(gpus_per_worker)
        if per > len(found.gpus):
            raise ValueError(f"`gpus_per_worker` is {per}, but this machine has {len(found.gpus)} GPU(s) "
                             f"({', '.join(found.gpus)})")
        slots = [Placement(kind="gpu", gpus=found.gpus[i:i + per]) for i in range(0, len(found.gpus) - per + 1, per)]
    else:
        share = _fraction_share(gpus_per_worker)
        for gpu in found.gpus:
            memory = gpu_memory_mb
            if memory is None:
                total = found.memory_of(gpu)
                if total is None:
                    raise ValueError(f"`gpus_per_worker`={gpus_per_worker} shares each GPU between {share} workers, "
                                     f"each with a memory limit, but the memory of GPU {gpu} is unknown: give "
                                     f"`gpu_memory_mb`")
                memory = int(total * 0.95) // share
            elif found.memory_of(gpu) is not None and memory * share > int(found.memory_of(gpu) or 0):
                raise ValueError(f"`gpu_memory_mb`={memory} for each of {share} workers on GPU {gpu} is more than its "
                                 f"{found.memory_of(gpu)} MB")
            slots += [Placement(kind="gpu", gpus=(gpu,), memory_mb=memory, share=share) for _ in range(share)]
    if n_workers is not None and n_workers > len(slots):
        raise ValueError(f"`n_workers` asks for more workers than the GPUs hold: n_workers={n_workers}, "
                         f"but {len(found.gpus)} GPU(s) at gpus_per_worker={gpus_per_worker} "
                         f"hold {len(slots)} worker(s): lower n_workers, or share GPUs (gpus_per_worker=0.5)")
    return tuple(slots[:n_workers] if n_workers is not None else slots)


def _visible_ids(count: int) -> tuple[str, ...]:
    """The ids a worker is given: the entries of this process's CUDA_VISIBLE_DEVICES, else 0..count-1."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None and given.strip() not in ("", "-1"):
        ids = tuple(p.strip() for p in given.split(",") if p.strip())
        return ids[:count]
    return tuple(str(i) for i in range(count))


def find_devices(device: Device) -> Found:
    """The accelerators the supervisor places its workers on, without loading TensorFlow in this process: for
    ``cpu`` nothing is looked for; for ``auto`` a machine without an NVIDIA driver (no ``/dev/nvidia0``, no
    ``nvidia-smi``) has no GPU, else TensorFlow counts them in a subprocess; ``nvidia-smi`` gives each GPU's
    memory where it exists."""
    import glob
    import shutil

    if device.kind == "cpu":
        return Found()
    if device.kind == "tpu":
        return Found(tpu=True)
    smi = shutil.which("nvidia-smi")
    if device.kind == "auto" and not glob.glob("/dev/nvidia[0-9]*") and smi is None:
        return Found()
    count = _probe("")["gpus"]
    ids = _visible_ids(count)
    memory: tuple[int | None, ...] = tuple(None for _ in ids)
    if smi is not None and ids:
        try:
            out = subprocess.run([smi, "--query-gpu=index,uuid,memory.total", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=30)
            table = {}
            for line in out.stdout.strip().splitlines():
                index, uuid, total = (p.strip() for p in line.split(","))
                table[index] = table[uuid] = int(float(total))
            memory = tuple(table.get(i) for i in ids)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
    return Found(gpus=ids, gpu_memory_mb=memory)


def _probe(address: str) -> dict[str, Any]:
    """TensorFlow's view of the devices, in a subprocess (this process never loads TensorFlow for it)."""
    try:
        out = subprocess.run([sys.executable, "-c", _PROBE, address], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise ValueError(f"device: probing the devices timed out after 300 s (tpu_address={address!r})") from None
    if out.returncode != 0:
        raise ValueError(f"device: probing TensorFlow's devices failed: {out.stderr[-1000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# ------------------------------------------------------------------ inside a worker

CONFIGURED: dict[str, Any] = {}  # what configure_process did in this process

def configure_process() -> dict[str, Any]:
    """Apply this worker's placement to TensorFlow before its first operation: on each visible GPU either memory
    growth (TensorFlow otherwise reserves nearly all of a GPU's memory when it starts) or, when workers share a
    GPU, a logical device with the memory limit of ``NAS_GPU_MEMORY_MB``; with ``NAS_CPU_DEVICES=n`` the CPU is
    split into ``n`` logical devices (``MirroredStrategy`` over them: tests and the accelerator check on
    machines without accelerators). Returns what it did (recorded with each trial)."""
    import tensorflow as tf

    memory = os.environ.get(GPU_MEMORY_ENV)
    cpus = os.environ.get(CPU_DEVICES_ENV)
    done = CONFIGURED
    try:
        for gpu in tf.config.list_physical_devices("GPU"):
            if memory:
                tf.config.set_logical_device_configuration(gpu, [tf.config.LogicalDeviceConfiguration(
                    memory_limit=int(memory))])
                done["gpu_memory_mb"] = int(memory)
            else:
                tf.config.experimental.set_memory_growth(gpu, True)
                done["memory_growth"] = True
        if cpus and int(cpus) > 1:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()
                                                             for _ in range(int(cpus))])
            done["cpu_devices"] = int(cpus)
    except RuntimeError as exc:  # TensorFlow already initialised its devices in this process
        done["error"] = str(exc)
    return done


def strategy_plan(kind: str, gpus: list[str], cpus: list[str], tpu: bool = False) -> tuple[str, tuple[str, ...]]:
    """The ``tf.distribute`` strategy for a worker, from the logical devices it sees: ``("tpu", ())``,
    ``("mirrored", devices)`` over several GPUs (or several logical CPUs, for ``cpu``), ``("one", (device,))``,
    or ``("default", ())`` (whatever TensorFlow places: ``auto`` without GPUs)."""
    if kind == "tpu":
        return ("tpu", ())
    if kind == "cpu":
        return ("mirrored", tuple(cpus)) if len(cpus) > 1 else ("one", ("/cpu:0",))
    if kind == "gpu" and not gpus:
        raise RuntimeError("device='gpu', but this worker sees no GPU")
    if len(gpus) > 1:
        return ("mirrored", tuple(gpus))
    if len(gpus) == 1:
        return ("one", ("/gpu:0",))
    return ("default", ())


_STRATEGIES: dict[tuple[str, tuple[str, ...], str | None], Any] = {}


def make_strategy(device_: Device) -> Any:
    """The tf.distribute strategy for this worker's trials (see :func:`strategy_plan`), made once per process
    and reused by every trial: a second ``MirroredStrategy`` in one process reuses the collective instance keys of
    the first, and its all-reduce then fails ("Shape mismatch in the collective instance ...")."""
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    name, devices = strategy_plan(device_.kind, gpus, cpus)
    key = (name, devices, device_.tpu_address)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = _new_strategy(name, devices, device_)
    return _STRATEGIES[key]


def _new_strategy(name: str, devices: tuple[str, ...], device_: Device) -> Any:
    import tensorflow as tf

    if name == "tpu":
        address = device_.tpu_address or os.environ.get("TPU_NAME")
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(list(devices))
    if name == "one":
        return tf.distribute.OneDeviceStrategy(devices[0])
    return tf.distribute.get_strategy()


def where(strategy: Any, device: Device, policy: str, jit_compile: Any) -> dict[str, Any]:
    """What a trial trained on, for its record: the devices the worker saw and the ones its strategy used, the
    strategy, its replicas, the precision policy and XLA setting, and the worker's placement environment."""
    import tensorflow as tf

    seen = sorted({d.name.replace("/device:", "") for kind in ("CPU", "GPU", "TPU")
                   for d in tf.config.list_logical_devices(kind)})
    try:
        used = [str(d).replace("/job:localhost/replica:0/task:0/device:", "") for d in strategy.extended.worker_devices]
    except RuntimeError:  # the default strategy (``auto`` without GPUs): TensorFlow places ops on its first device
        used = [next((d for d in seen if d.startswith("GPU")), "CPU:0")]
    return {"used": used, "seen": seen, "strategy": type(strategy).__name__,
            "replicas": int(strategy.num_replicas_in_sync), "precision": policy, "jit_compile": jit_compile,
            "kind": device.kind, "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            **{k: v for k, v in CONFIGURED.items() if k != "error"}}
