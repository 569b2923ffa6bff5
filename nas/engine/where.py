"""Where a search runs and keeps its results: the ``run`` group of the study record.

``Run(study=, storage=, artifacts=, backend=, device=)``: the study's name, its storage (never stored with it: it
is where the record itself lives, and a database URL may hold a password), the folder of weights and logs, the
backend that runs the trials and the device each trial trains on.

A backend is a small frozen object with its own options and checks, stored with the study so that a resume
continues on it (as Optuna's samplers behind one base class, or Ray Tune's ``RunConfig``):

* :class:`Local` - worker processes on this machine, placed on its GPUs (``n_workers``, ``max_trials_per_worker``,
  ``gpus_per_worker``, ``gpu_memory_mb``);
* :class:`Ray` - long-lived workers on a Ray instance or cluster (``address``, ``resources``, ``max_concurrent``,
  ``scheduler``, ``max_trials_per_worker``);
* :class:`KerasTuner` - keras-tuner's own tuners (``tuner``, ``options``).

These are the options and their checks only; what starts, places and stops the workers is in ``nas.backends``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from nas.devices import Device, DeviceLike, Found, Placement, check_placement, find_devices, place_workers
from nas.validate import check_int, check_name, check_path, known_fields

if TYPE_CHECKING:
    import optuna

__all__ = ["BACKENDS", "Backend", "BackendLike", "KerasTuner", "Local", "Ray", "Run", "RunLike", "SCHEDULERS",
           "StorageLike", "TUNER_KINDS", "backend_of", "ray_resources_text"]

# a study's storage as it is given (nas.engine.storage.describe_storage): a file path (``.db`` SQLite, ``.log`` /
# ``.journal`` journal file) or storage URL, an Optuna RDBStorage or file-backed JournalStorage, an (empty) Optuna
# study made beforehand, or None (runs/nas.db)
StorageLike: TypeAlias = ("str | os.PathLike[str] | optuna.storages.RDBStorage | optuna.storages.JournalStorage"
                          " | optuna.Study | None")

SCHEDULERS = ("asha", "hyperband")
TUNER_KINDS = ("random", "bayesian", "hyperband")
# keras-tuner arguments that nas sets itself
TUNER_RESERVED = ("hypermodel", "objective", "max_trials", "seed", "directory", "project_name", "overwrite")


def ray_resources_text(resources: dict[str, Any]) -> str:
    """Ray resources as people read them: ``CPU 2, gpu_standin 1, memory 2.0 GB`` (sorted; memory in GB; Ray's
    bookkeeping entries ``node:...``, ``accelerator_type:...`` and the object store left out)."""
    keep = {k: v for k, v in resources.items() if not k.startswith("node:") and not k.startswith(
        "accelerator_type") and k != "object_store_memory"}
    return ", ".join(f"{k} {v / 2**30:.1f} GB" if k == "memory" else f"{k} {v:g}" for k, v in sorted(keep.items()))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Backend:
    """A way to run a study's trials. Subclasses add their options as fields, check them in ``__post_init__``
    and against the study in :meth:`check`."""

    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        """The stored form: ``{"kind": ..., **options}``."""
        return {"kind": self.kind, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Backend:
        options = {k: v for k, v in data.items() if k != "kind"}
        known_fields(f"backend {cls.kind!r}", options, [f.name for f in dataclasses.fields(cls)], what="option")
        return cls(**options)

    def replace(self, **changes: Any) -> Backend:
        return dataclasses.replace(self, **changes)

    def check(self, config: Any) -> None:
        """Refuse (with the field named) a study this backend cannot run, ``config`` being its record (a
        ``nas.engine.schema.StudyConfig``, which holds this object: the record's module imports this one). Called
        before anything runs."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Local(Backend):
    """Worker processes on this machine: ``n_workers`` at a time (None: one per GPU slot when the device asks for
    GPUs, else 1), each recycled after ``max_trials_per_worker`` trials (0: never). With GPUs each worker sees
    ``gpus_per_worker`` of its own (a fraction ``1/k``: ``k`` workers share a GPU, each with a memory limit of
    ``gpu_memory_mb``, default the GPU's memory / k); see :func:`nas.devices.place_workers`."""

    kind = "local"
    n_workers: int | None = None
    max_trials_per_worker: int = 20
    gpus_per_worker: float = 1
    gpu_memory_mb: int | None = None

    def __post_init__(self) -> None:
        check_int("n_workers", self.n_workers, 1, 256, optional=True)
        check_int("max_trials_per_worker", self.max_trials_per_worker, 0, 1_000_000)
        check_placement(self.n_workers, self.gpus_per_worker, self.gpu_memory_mb)

    def placements(self, device: Device, found: Found | None = None) -> tuple[Placement, ...]:
        """What each worker slot sees on this machine (``found``: the devices found; default: looked for now)."""
        return place_workers(find_devices(device) if found is None else found, device, n_workers=self.n_workers,
                             gpus_per_worker=self.gpus_per_worker, gpu_memory_mb=self.gpu_memory_mb)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Ray(Backend):
    """Ray places the workers: ``address`` of a cluster to join (None: start a private local Ray instance),
    ``resources`` per worker (``{"cpu": 1, "gpu": 0.5}``, custom resource names too), ``max_concurrent`` workers
    at once (default 2 locally; on a cluster as many as its live nodes hold: :meth:`capacity`),
    ``max_trials_per_worker`` trials per Ray worker before it is replaced (0: never), and ``scheduler`` ``asha``
    / ``hyperband`` (Ray Tune's single-metric early stopping: single-objective accuracy searches only; one Ray
    worker process per trial)."""

    kind = "ray"
    address: str | None = None
    resources: dict[str, float] = dataclasses.field(default_factory=lambda: {"cpu": 1})
    max_concurrent: int | None = None
    scheduler: str | None = None
    max_trials_per_worker: int = 20

    def __post_init__(self) -> None:
        if self.address is not None:
            check_name("Ray: `address`", self.address)
        if not isinstance(self.resources, dict) or not self.resources:
            raise ValueError(f"Ray: `resources` must be a dict like {{'cpu': 1, 'gpu': 0.5}}, but got "
                             f"resources={self.resources!r}")
        for k, v in self.resources.items():
            if not isinstance(k, str) or not k:
                raise ValueError(f"Ray: `resources` keys must be 'cpu', 'gpu', 'memory' or custom resource names, "
                                 f"but got {k!r}")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"Ray: `resources[{k!r}]` must be a finite number >= 0, but got {k}={v!r}")
        check_int("max_concurrent", self.max_concurrent, 1, 100_000, optional=True)
        check_int("max_trials_per_worker", self.max_trials_per_worker, 0, 1_000_000)
        if self.scheduler is not None and self.scheduler not in SCHEDULERS:
            raise ValueError(f"Ray: `scheduler` must be None, 'asha' or 'hyperband', "
                             f"but got scheduler={self.scheduler!r}")

    def _wanted(self) -> dict[str, float]:
        """``resources`` under Ray's names (``CPU``, ``GPU``, ``memory``, custom names), those asked for (> 0)."""
        names = {"cpu": "CPU", "gpu": "GPU", "memory": "memory"}
        return {names.get(k, k): float(v) for k, v in self.resources.items() if float(v) > 0}

    def capacity(self, nodes: list[dict[str, Any]]) -> int:
        """How many workers with ``resources`` the live nodes of a Ray cluster hold at once, counted node by node
        and by every resource asked for (a node with 8 CPUs and 1 GPU holds one worker of ``{'cpu': 1, 'gpu':
        1}``, not 8; a request of nothing counts CPUs, one per worker), from the nodes as ``ray.nodes()`` lists
        them. The default ``max_concurrent`` on a cluster: workers beyond it could not be placed."""
        wanted = self._wanted() or {"CPU": 1.0}
        return sum(min(int(float((n.get("Resources") or {}).get(k, 0.0)) // v) for k, v in wanted.items())
                   for n in nodes if n.get("Alive", True))

    def unsatisfiable(self, nodes: list[dict[str, Any]]) -> str | None:
        """Why no node of a Ray cluster can ever hold one worker with ``resources`` (None: some node can), from
        the nodes as ``ray.nodes()`` lists them (``Alive``, ``Resources``: ``CPU``, ``GPU``, ``memory`` in bytes,
        custom names). A plain function of the nodes given, so it is tested without a cluster."""
        wanted = self._wanted()
        alive = [n for n in nodes if n.get("Alive", True)]
        for node in alive:
            have = node.get("Resources") or {}
            if all(float(have.get(k, 0.0)) >= v for k, v in wanted.items()):
                return None
        head = f"Ray: no node of the cluster can ever hold a worker with resources={self.resources}: "
        if not alive:
            return head + "the Ray cluster has no live node"
        missing = sorted({k for k, v in wanted.items()
                          if all(float((n.get("Resources") or {}).get(k, 0.0)) < v for n in alive)})
        nodes_text = "; ".join(f"node {n.get('NodeManagerAddress', '?')}: "
                               f"{ray_resources_text(n.get('Resources') or {})}" for n in alive)
        hint = (" (on a machine without a GPU leave `gpu` out, e.g. resources={'cpu': 1})" if "GPU" in missing
                else "")
        return f"{head}{', '.join(missing) or 'their combination'} is more than any node has ({nodes_text}){hint}"

    def check(self, config: Any) -> None:
        strategy = config.strategy
        if self.scheduler is not None and not config.goal.single_accuracy:
            raise ValueError(f"Ray: `scheduler` ({self.scheduler}) stops trials on one metric: it needs "
                             f"objectives=('accuracy',), but got objectives={list(config.goal.objectives)!r}")
        if strategy.pruner is not None and not strategy.pruner.is_nas_pruner:
            raise ValueError(f"`pruner` {strategy.pruner.name!r} (Optuna's) works with the local backend; with the "
                             f"Ray backend use pruner='pareto' (any objectives) or nas.Ray(scheduler='asha') or "
                             f"'hyperband'")
        if strategy.pruner is not None and self.scheduler is not None:
            raise ValueError(f"Ray: `scheduler` ({self.scheduler}) and `pruner` ('pareto') both stop trials early: "
                             f"choose one")
        if strategy.budget.inherit_epochs and self.scheduler is not None:
            raise ValueError(f"Ray: `scheduler` ({self.scheduler}) would compare the early accuracy of children that "
                             f"inherit their parent's weights with fresh trainings' (budget.inherit_epochs="
                             f"{strategy.budget.inherit_epochs}): use pruner='pareto', which keeps them apart, or "
                             f"inherit_epochs=0")


@dataclasses.dataclass(frozen=True, kw_only=True)
class KerasTuner(Backend):
    """keras-tuner runs the search in this process: ``tuner`` random / bayesian / hyperband with keras-tuner
    ``options`` (e.g. ``{"max_epochs": 6, "factor": 3}`` for Hyperband). ``directory`` and ``project_name`` (the
    tuner's folder) are set by nas when the study is created; ``continuable`` is False for a view of a keras-tuner
    run made outside nas (``nas.from_keras_tuner``), which nas cannot continue."""

    kind = "keras_tuner"
    tuner: str = "random"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    directory: str | None = None
    project_name: str | None = None
    continuable: bool = True

    def __post_init__(self) -> None:
        if self.continuable and self.tuner not in TUNER_KINDS:
            raise ValueError(f"KerasTuner: `tuner` must be one of {', '.join(TUNER_KINDS)}, "
                             f"but got tuner={self.tuner!r}")
        if not isinstance(self.options, dict):
            raise ValueError(f"KerasTuner: `options` must be a dict of keras-tuner arguments, but got {self.options!r}")
        clash = sorted(set(TUNER_RESERVED) & set(self.options))
        if clash:
            raise ValueError(f"KerasTuner: `options` {clash[0]!r} is set by nas (n_trials, seed, the study's "
                             f"directory); remove it from options")

    def check(self, config: Any) -> None:
        from nas.budget import ANALYTIC, CONSTRAINTS

        goal, strategy = config.goal, config.strategy
        if not self.continuable:
            raise ValueError(f"this study is a view of a keras-tuner run made outside nas ({self.directory}/"
                             f"{self.project_name}): continue the tuner itself (overwrite=False) and call "
                             f"nas.from_keras_tuner(tuner) again")
        if self.directory is not None and config.run.artifacts is not None:  # read from the storage: written to
            folder = Path(config.run.artifacts).resolve()
            tuner_dir = Path(self.directory, self.project_name or "").resolve()
            if folder not in tuner_dir.parents:
                raise ValueError(f"`backend`: the keras-tuner folder {str(tuner_dir)!r} is not inside the study's "
                                 f"artefact folder {str(folder)!r}, where nas keeps it; a folder read from the "
                                 f"storage is not written to")
        if strategy.sampler is not None and not strategy.sampler.name.startswith("keras_tuner."):
            raise ValueError(f"`sampler` is Optuna's; with the keras_tuner backend the keras-tuner `tuner` samples, "
                             f"but got sampler={strategy.sampler.name!r}")
        if strategy.pruner is not None:
            raise ValueError("`pruner` is Optuna's; with the keras_tuner backend use KerasTuner(tuner='hyperband')")
        if "accuracy" not in goal.objectives or "latency" in goal.objectives:
            raise ValueError(f"`objectives` with the keras_tuner backend must include accuracy and may add macs, flops "
                             f"or params (keras-tuner measures no latency), but got objectives={list(goal.objectives)}")
        for name in goal.constraints:
            if CONSTRAINTS[name] not in ANALYTIC:
                raise ValueError(f"`constraints` with the keras_tuner backend may only limit analytic costs "
                                 f"(max_macs, max_flops, max_params), but got {name}")
        if config.evaluator is not None and self.tuner == "hyperband":
            raise ValueError("`evaluator` with tuner='hyperband': Hyperband's budget is training epochs; use "
                             "tuner='random' or 'bayesian' with a tabular evaluator")


BACKENDS: dict[str, type[Backend]] = {cls.kind: cls for cls in (Local, Ray, KerasTuner)}
# a backend as it is given: itself, its kind name (default options), its stored dict {"kind": ..., **options} or
# None (Local())
BackendLike: TypeAlias = Backend | str | dict[str, Any] | None


def backend_of(value: BackendLike) -> Backend:
    """A backend from itself, its name (default options) or its stored dict ``{"kind": ..., **options}``."""
    if isinstance(value, Backend):
        return value
    if value is None:
        return Local()
    if isinstance(value, str):
        value = {"kind": value}
    if isinstance(value, dict) and value.get("kind") in BACKENDS:
        return BACKENDS[value["kind"]].from_dict(value)
    raise ValueError(f"`backend` must be one of {', '.join(repr(k) for k in BACKENDS)} or a backend object "
                     f"(nas.Local(...), nas.Ray(...), nas.KerasTuner(...)), but got backend={value!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Run:
    """Where the search runs and keeps its results: ``study`` (its name; default: the space's name and the time),
    ``storage`` (a file path or database URL; default ``runs/nas.db``; never stored in the record), ``artifacts``
    (the folder of weights and logs; default ``<storage>-artifacts/<study>``), ``backend`` (``nas.Local(...)``,
    ``nas.Ray(...)``, ``nas.KerasTuner(...)`` or their names) and ``device`` (``nas.Device(...)`` or a kind name).

    What the constructor takes and what the fields hold: ``storage`` is any :data:`StorageLike` and kept as given;
    ``artifacts`` a string or path, held as a string; ``backend`` a :data:`BackendLike`, held as a
    :class:`Backend`; ``device`` a :data:`nas.devices.DeviceLike`, held as a ``Device``."""

    study: str | None = None
    storage: StorageLike = dataclasses.field(default=None, repr=False)  # a URL may hold a password: never in a repr
    artifacts: str | None = None
    backend: Backend = dataclasses.field(default_factory=Local)
    device: Device = dataclasses.field(default_factory=Device)

    if TYPE_CHECKING:  # what the constructor takes; the fields above hold it checked and normalised
        def __init__(self, *, study: str | None = None, storage: StorageLike = None,
                     artifacts: str | os.PathLike[str] | None = None, backend: BackendLike = ...,
                     device: DeviceLike = ...) -> None: ...

    def __post_init__(self) -> None:
        if self.study is not None:
            check_name("`study`", self.study, max_length=200, forbid="/")
        if self.artifacts is not None:
            object.__setattr__(self, "artifacts", check_path("`artifacts`", self.artifacts))
        object.__setattr__(self, "backend", backend_of(self.backend))
        object.__setattr__(self, "device", Device.of(self.device))

    @classmethod
    def of(cls, value: RunLike) -> Run:
        """A :class:`Run` from itself, None (the defaults) or a dict of its fields (a YAML ``run:`` mapping)."""
        if value is None:
            return cls()
        if isinstance(value, Run):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"`run` must be a nas.Run or a mapping of its fields (study, storage, artifacts, backend, "
                             f"device), but got {value!r}")
        known_fields("run", value, [f.name for f in dataclasses.fields(cls)])
        return cls(**value)

    def to_dict(self, *, stored: bool = False) -> dict[str, Any]:
        """The ``run`` mapping; ``stored=True`` leaves the storage out (the record is kept *in* it)."""
        out: dict[str, Any] = {"study": self.study, "artifacts": self.artifacts, "backend": self.backend.to_dict(),
                               "device": self.device.to_dict()}
        if not stored:
            storage = self.storage
            out["storage"] = storage if storage is None or isinstance(storage, str) else str(storage)
        return out

    def replace(self, **changes: Any) -> Run:
        return dataclasses.replace(self, **changes)


# the run group as it is given: itself, a dict of its fields (a YAML mapping) or None (its defaults)
RunLike: TypeAlias = Run | dict[str, Any] | None
