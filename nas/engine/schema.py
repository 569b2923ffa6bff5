"""The study record: one schema for what ``nas.search`` takes, what a YAML config spells and what a storage holds.

A search is described by a space, its data and three groups, the way a user thinks of it::

    StudyConfig(
        space={"name": "families", "options": {...}},    # what to search: the space...
        data="digits",                                   # ...trained on this data (or scored by `evaluator`)
        goal=Goal(objectives=("accuracy", "macs"), constraints={"max_macs": 2e6}),         # for what
        strategy=Strategy(n_trials=30, sampler="evolution", pruner="pareto", seed=0,       # how
                          budget=Budget(epochs=5)),
        run=Run(study="digits", storage="runs/nas.db", backend=Local(n_workers=2)),        # where
        description="...")

Each group is a frozen, keyword-only, validated object that also takes the spelling of a YAML file (names for
components and backends, mappings for groups); ``to_dict()`` gives that spelling back in full. So a YAML config
*is* ``StudyConfig.to_dict()`` (plus an optional ``export:`` block for the command line), ``nas.search(space,
data, goal=, strategy=, run=)`` takes the same groups, and the study's ``nas`` attribute in the storage holds
``to_dict(stored=True)`` of the record as created (the space configured for the data, the data reference, the
chosen sampler, the artefact folder, the creation time; never the storage URL) as JSON.

Nothing stored is executable: samplers, pruners and evaluators are :class:`Component` s, a name plus JSON options.

Older records load as they are: version 2 (the flat record of 2026-11 to 2026-12) and version 1 (nas 0.1) are
read into this schema by :func:`from_version_2` and :func:`from_version_1`; a flat YAML config of those versions
(``n_trials:``, ``sampler:`` ... at the top level) is read with a deprecation message that shows its grouped form.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from nas.budget import Budget, BudgetLike, ObjectivesLike, check_constraints, check_objectives
from nas.devices import Device
from nas.engine.where import Run
from nas.validate import check_bool, check_int, check_name, known_fields, plain_json

__all__ = ["CONFIG_ATTR", "CONFIG_VERSION", "RECORD_ATTR", "is_nas_study", "summary", "Component", "ComponentLike",
           "DATA_KINDS", "Goal", "GoalLike", "MAX_TRIALS", "NAS_PRUNERS", "PICKLE", "Strategy", "StrategyLike",
           "StudyConfig", "WarmStart", "data_ref", "from_flat", "now", "options_of", "read_config", "space_ref",
           "write_config"]

CONFIG_VERSION = 3
CONFIG_ATTR = "nas"  # the study user attribute: a one-line summary (the record itself before version 3)
RECORD_ATTR = "nas:config"  # the study system attribute holding the record (JSON), out of Optuna's listings
MAX_TRIALS = 1_000_000
NAS_PRUNERS = ("pareto",)  # nas's own early stopping, decided from the storage on every backend
DATA_KINDS = ("name", "folder", "npz", "evaluator", "keras_tuner")
PICKLE = "pickle"  # the component name of a nas 0.1 pickle (refused unless opted in)


@dataclass(frozen=True, kw_only=True)
class Component:
    """A sampler, pruner or evaluator stored as data: a ``name`` and JSON ``options`` (constructor arguments)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a component `name` must be a non-empty string, but got name={self.name!r}")
        if not isinstance(self.options, dict):
            raise ValueError(f"component {self.name!r}: `options` must be a dict, but got {self.options!r}")
        object.__setattr__(self, "options", plain_json(self.options, f"component {self.name!r} options"))

    @property
    def is_nas_pruner(self) -> bool:
        return self.name in NAS_PRUNERS

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options)}

    @classmethod
    def of(cls, value: ComponentLike, what: str) -> Component | None:
        """A component from itself, None, a name, or ``{"name": ..., "options": {...}}``."""
        if value is None or isinstance(value, Component):
            return value
        if isinstance(value, str):
            return cls(name=value)
        if not isinstance(value, dict) or set(value) - {"name", "options"} or "name" not in value:
            raise ValueError(f"`{what}` must be a name or {{'name': ..., 'options': {{...}}}}, but got {value!r}")
        return cls(name=value["name"], options=options_of(value, what))


# a sampler, pruner or evaluator as it is given (Component.of): a name, {"name": ..., "options": {...}}, itself, None
ComponentLike: TypeAlias = str | dict[str, Any] | Component | None
# a warm-start point: a classic network of the space by name, or a dict of the space's labels
WarmStart: TypeAlias = str | dict[str, Any]


def options_of(value: dict[str, Any], what: str) -> dict[str, Any]:
    """A copy of the ``options`` of a ``{"name": ..., "options": {...}}`` mapping (none: empty), which must map
    option names to values."""
    options = value.get("options")
    if options is None:
        return {}
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise ValueError(f"`{what}.options` must be a dict of option names to values, but got "
                         f"{what}.options={options!r}")
    return dict(options)


G = TypeVar("G", "Goal", "Strategy")


def _group_of(cls: type[G], value: G | dict[str, Any] | None, name: str) -> G:
    """A group from itself, None (its defaults) or a mapping of its fields."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if not isinstance(value, dict):
        fields = ", ".join(f.name for f in dataclasses.fields(cls))
        raise ValueError(f"`{name}` must be a nas.{cls.__name__} or a mapping of its fields ({fields}), but got "
                         f"{value!r}")
    known_fields(name, value, [f.name for f in dataclasses.fields(cls)])
    return cls(**value)


@dataclass(frozen=True, kw_only=True)
class Goal:
    """What the search is for: ``objectives`` (any of accuracy, macs, flops, params, latency; default accuracy
    and MACs) and ``constraints`` (``max_macs``, ``max_flops``, ``max_params``: analytic, checked before anything
    is built; ``max_latency``: milliseconds, measured).

    ``objectives`` may be given as one name or a list (:data:`nas.budget.ObjectivesLike`) and is held as a
    tuple; ``constraints`` None is no constraint (held as ``{}``), each limit is held as a float."""

    objectives: tuple[str, ...] = ("accuracy", "macs")
    constraints: dict[str, float] = field(default_factory=dict)

    if TYPE_CHECKING:  # what the constructor takes; the fields above hold it checked and normalised
        def __init__(self, *, objectives: ObjectivesLike = ("accuracy", "macs"),
                     constraints: dict[str, float] | None = ...) -> None: ...

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", check_objectives(self.objectives))
        object.__setattr__(self, "constraints", check_constraints(self.constraints))

    @property
    def single_accuracy(self) -> bool:
        return self.objectives == ("accuracy",)

    @classmethod
    def of(cls, value: GoalLike) -> Goal:
        return _group_of(cls, value, "goal")

    def to_dict(self) -> dict[str, Any]:
        return {"objectives": list(self.objectives), "constraints": dict(self.constraints)}

    def replace(self, **changes: Any) -> Goal:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class Strategy:
    """How the search goes: ``n_trials`` finished trials to reach, the ``sampler`` (``evolution``, ``nsga2``,
    ``tpe``, ``random``, ``grid`` or an Optuna sampler class by name with options; None: ``evolution`` for
    several objectives, ``tpe`` for one), the ``pruner`` (``pareto``: nas's early stopping; or Optuna's), the
    training ``budget`` of each trial, the ``seed``, ``warm_start`` (classic networks of the space by name, or
    label dicts, enqueued first), ``sample_within_limits`` (draw inside the analytic constraints), and the
    failure limits ``max_retries`` (re-runs of a trial whose worker died) and ``max_failures`` (failed trials
    that stop the search; None: max(5, n_trials)).

    What the constructor takes and what the fields hold: ``sampler`` and ``pruner`` are given as
    :data:`ComponentLike` (a name, ``{"name": ..., "options": {...}}``, a :class:`Component` or None; pruner
    ``"none"`` is None) and held as a :class:`Component` or None; ``budget`` as a ``Budget``, a dict of its fields
    or None (:data:`nas.budget.BudgetLike`), held as a ``Budget``; ``warm_start`` as one :data:`WarmStart` or a
    list of them, held as a tuple."""

    n_trials: int = 20
    sampler: Component | None = None
    pruner: Component | None = None
    budget: Budget = field(default_factory=Budget)
    seed: int | None = None
    warm_start: tuple[WarmStart, ...] = ()
    sample_within_limits: bool = True
    max_retries: int = 2
    max_failures: int | None = None

    if TYPE_CHECKING:  # what the constructor takes; the fields above hold it checked and normalised
        def __init__(self, *, n_trials: int = 20, sampler: ComponentLike = None, pruner: ComponentLike = None,
                     budget: BudgetLike = ..., seed: int | None = None,
                     warm_start: WarmStart | list[WarmStart] | tuple[WarmStart, ...] = (),
                     sample_within_limits: bool = True, max_retries: int = 2, max_failures: int | None = None) -> None:
            ...

    def __post_init__(self) -> None:
        check_int("n_trials", self.n_trials, 1, MAX_TRIALS)
        object.__setattr__(self, "sampler", Component.of(self.sampler, "sampler"))
        object.__setattr__(self, "pruner", None if self.pruner == "none" else Component.of(self.pruner, "pruner"))
        object.__setattr__(self, "budget", Budget.of(self.budget))
        check_int("seed", self.seed, 0, 2**31 - 1, optional=True)
        warm = self.warm_start
        if isinstance(warm, (str, dict)):
            warm = (warm,)
        if not isinstance(warm, (list, tuple)) or not all(isinstance(w, (str, dict)) for w in warm):
            raise ValueError(f"`warm_start` must be a list of classic network names or label dicts, but got "
                             f"warm_start={self.warm_start!r}")
        object.__setattr__(self, "warm_start", tuple(plain_json(list(warm), "`warm_start`")))
        check_bool("sample_within_limits", self.sample_within_limits)
        check_int("max_retries", self.max_retries, 0, 100)
        check_int("max_failures", self.max_failures, 1, MAX_TRIALS, optional=True)

    @property
    def failure_cap(self) -> int:
        """Failed trials after which the search stops (``max_failures``, default max(5, n_trials))."""
        return self.max_failures if self.max_failures is not None else max(5, self.n_trials)

    @property
    def infeasible_cap(self) -> int:
        """Over-budget candidates after which the search stops: the constraints leave too little of the space."""
        return max(1000, 50 * self.n_trials)

    @classmethod
    def of(cls, value: StrategyLike) -> Strategy:
        return _group_of(cls, value, "strategy")

    def to_dict(self) -> dict[str, Any]:
        return {"n_trials": self.n_trials, "sampler": self.sampler.to_dict() if self.sampler else None,
                "pruner": self.pruner.to_dict() if self.pruner else None, "budget": self.budget.to_dict(),
                "seed": self.seed, "warm_start": list(self.warm_start),
                "sample_within_limits": self.sample_within_limits, "max_retries": self.max_retries,
                "max_failures": self.max_failures}

    def replace(self, **changes: Any) -> Strategy:
        return dataclasses.replace(self, **changes)


# a group as it is given: itself, a dict of its fields (a YAML mapping) or None (its defaults)
GoalLike: TypeAlias = Goal | dict[str, Any] | None
StrategyLike: TypeAlias = Strategy | dict[str, Any] | None


def space_ref(space: Any) -> Any:
    """A space given as data in its one spelling ``{"name": ..., "options": {...}}`` (from a name, that mapping,
    or the ``{"space": ...}`` spelling of earlier versions); anything else (a ``search_spaces.Space``) as it is."""
    if isinstance(space, str):
        check_name("`space`", space, max_length=100)
        return {"name": space, "options": {}}
    if isinstance(space, dict):
        if "space" in space and "name" not in space:  # nas <= 0.1.x spelled it {"space": name, ...}
            space = {"name": space["space"], **{k: v for k, v in space.items() if k != "space"}}
        known_fields("space", space, ("name", "options"), what="setting")
        if not isinstance(space.get("name"), str):
            raise ValueError(f"`space` must be a name or {{name: ..., options: {{...}}}}, but got {space!r}")
        return {"name": space["name"], "options": options_of(space, "space")}
    return space


def data_ref(data: Any) -> Any:
    """Data given as a reference in its one spelling (``{"kind": ..., ...}``) from the short mappings of a YAML file
    (``{name: fashion_mnist, train_samples: ...}``, ``{folder: path}``, ``{npz: file}``); anything else (a name or
    folder path as a string, arrays, datasets, a ``nas.data.Data``) as it is: ``nas.data.load_data`` reads them."""
    if isinstance(data, dict) and "kind" not in data:
        if "folder" in data:
            return {"kind": "folder", "path": data["folder"], **{k: v for k, v in data.items() if k != "folder"}}
        if "npz" in data:
            return {"kind": "npz", "path": data["npz"], **{k: v for k, v in data.items() if k != "npz"}}
        if "name" in data:
            return {"kind": "name", **data}
        raise ValueError(f"`data` must be a name or {{name: ...}}, {{folder: ...}} or {{npz: ...}}, but got {data!r}")
    return data


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """The whole record of a search but its trials (see the module docstring): ``space``, ``data``,
    ``evaluator`` (a function marked with ``@nas.evaluator`` that scores a spec instead of training, stored by
    name), the groups ``goal``, ``strategy`` and ``run``, a free ``description``, ``created`` (set when the study
    is stored) and the schema ``version``."""

    space: Any
    data: Any = "digits"
    evaluator: Component | None = None
    goal: Goal = field(default_factory=Goal)
    strategy: Strategy = field(default_factory=Strategy)
    run: Run = field(default_factory=Run)
    description: str = ""
    created: str = ""
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "space", space_ref(self.space))
        object.__setattr__(self, "data", data_ref(self.data))
        object.__setattr__(self, "evaluator", Component.of(self.evaluator, "evaluator"))
        object.__setattr__(self, "goal", Goal.of(self.goal))
        object.__setattr__(self, "strategy", Strategy.of(self.strategy))
        object.__setattr__(self, "run", Run.of(self.run))
        if not isinstance(self.description, str):
            raise ValueError(f"`description` must be text, but got description={self.description!r}")
        if self.version != CONFIG_VERSION:
            raise ValueError(f"study config: `version` must be {CONFIG_VERSION} (older ones are read by "
                             f"StudyConfig.from_dict), but got version={self.version!r}")
        if isinstance(self.data, dict) and self.data.get("kind") not in DATA_KINDS:
            raise ValueError(f"`data` must have a `kind` among {', '.join(DATA_KINDS)}, but got data={self.data!r}")

    # -- shorthands used throughout the engine
    @property
    def objectives(self) -> tuple[str, ...]:
        return self.goal.objectives

    @property
    def constraints(self) -> dict[str, float]:
        return self.goal.constraints

    @property
    def n_trials(self) -> int:
        return self.strategy.n_trials

    @property
    def budget(self) -> Budget:
        return self.strategy.budget

    @property
    def device(self) -> Device:
        return self.run.device

    @property
    def artifacts(self) -> str:
        if self.run.artifacts is None:
            raise ValueError("study config: `run.artifacts` is not set (it is when the study is created)")
        return self.run.artifacts

    def replace(self, **changes: Any) -> StudyConfig:
        return dataclasses.replace(self, **changes)

    def with_artifacts(self, folder: str) -> StudyConfig:
        """This record with its artefact folder set to ``folder`` (itself when it already is)."""
        return self if self.run.artifacts == folder else self.replace(run=self.run.replace(artifacts=folder))

    # -- the one spelling: YAML, Python dicts, JSON in the storage
    def to_dict(self, *, stored: bool = False) -> dict[str, Any]:
        """The record as plain data: what a YAML config spells (``stored=True``: what the storage holds, which
        leaves out the storage URL)."""
        space = self.space if isinstance(self.space, dict) else {"name": getattr(self.space, "name", "?"),
                                                                 "options": "<a configured space object>"}
        data = self.data if isinstance(self.data, (dict, str)) or self.data is None else "<data given in memory>"
        return {"version": self.version, "description": self.description, "created": self.created,
                "space": space, "data": data, "evaluator": self.evaluator.to_dict() if self.evaluator else None,
                "goal": self.goal.to_dict(), "strategy": self.strategy.to_dict(),
                "run": self.run.to_dict(stored=stored)}

    def to_json(self) -> str:
        """The stored form (JSON, sorted keys, no storage URL)."""
        return json.dumps(self.to_dict(stored=True), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "study config") -> StudyConfig:
        """The record from its plain-data form, of this version or an older one (versions 1 and 2 and flat YAML
        configs are converted; a flat YAML config with a deprecation warning)."""
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be a mapping, but got {type(data).__name__}")
        version = data.get("version")
        if version == 1:
            data = from_version_2(from_version_1(data))
        elif version == 2:
            data = from_version_2(data)
        elif version is None and set(data) & set(FLAT_KEYS):
            grouped = sorted(set(data) & {"goal", "strategy", "run"})
            if grouped:  # a grouped config with a flat setting of earlier versions left in it
                flat = sorted(set(data) & set(FLAT_KEYS))[0]
                raise ValueError(f"{where}: `{flat}` is a flat setting of earlier versions, "
                                 f"but this config is grouped; write it in {_where_to(flat)}, "
                                 f"but got {flat}={data[flat]!r}")
            data = from_flat(data, where)
        known_fields(where, data, [f.name for f in dataclasses.fields(cls)])
        if not isinstance(data.get("space"), (str, dict)):
            raise ValueError(f"{where}: `space` must be a space name or {{name: ..., options: {{...}}}}, but got "
                             f"space={data.get('space')!r}")
        if not isinstance(data.get("data", "digits"), (str, dict)):
            raise ValueError(f"{where}: `data` must be a data set name or a mapping (e.g. {{name: fashion_mnist, "
                             f"train_samples: 5000}}), but got data={data.get('data')!r}")
        return cls(**{k: v for k, v in data.items() if k != "version" or v is not None})

    @classmethod
    def from_json(cls, text: Any) -> StudyConfig:
        if not isinstance(text, str):
            raise ValueError(f"study config must be JSON text, but got {type(text).__name__}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"study config is not valid JSON: {exc}") from None
        return cls.from_dict(data)


def now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


# ------------------------------------------------------------------ older spellings

# the top-level keys of flat configs (YAML before version 3; version-2 records)
FLAT_KEYS = ("study", "storage", "objectives", "n_trials", "sampler", "seed", "budget", "constraints", "warm_start",
             "pruner", "n_workers", "max_retries", "max_trials_per_worker", "max_failures", "artifacts",
             "sample_within_limits", "device", "mixed_precision", "jit_compile", "tpu_address", "backend",
             "resources_per_trial", "ray_address", "max_concurrent", "scheduler", "tuner", "tuner_options")
_GOAL = ("objectives", "constraints")
_STRATEGY = ("n_trials", "sampler", "pruner", "budget", "seed", "warm_start", "sample_within_limits", "max_retries",
             "max_failures")
_BACKEND_SHORT = {"local": ("n_workers", "max_trials_per_worker"),
                  "ray": ("ray_address", "resources_per_trial", "max_concurrent", "scheduler"),
                  "keras_tuner": ("tuner", "tuner_options")}
_DEVICE_SHORT = ("mixed_precision", "jit_compile", "tpu_address")


def _where_to(flat: str) -> str:
    """Where a flat setting of earlier versions goes in the grouped record."""
    if flat in _GOAL:
        return f"`goal.{flat}`"
    if flat in _STRATEGY:
        return f"`strategy.{flat}`"
    if flat in ("study", "storage", "artifacts", "backend", "device"):
        return f"`run.{flat}`"
    if flat in _DEVICE_SHORT:
        return f"`run.device` ({{kind: ..., {flat}: ...}})"
    renamed = {"ray_address": "address", "resources_per_trial": "resources", "tuner_options": "options"}
    kind = next(k for k, keys in _BACKEND_SHORT.items() if flat in keys)
    return f"`run.backend` ({{kind: {kind}, {renamed.get(flat, flat)}: ...}})"


def _backend_from_flat(flat: dict[str, Any], where: str) -> dict[str, Any]:
    backend = flat.get("backend", "local")
    if isinstance(backend, dict):
        given = [k for keys in _BACKEND_SHORT.values() for k in keys if k in flat]
        if given:
            raise ValueError(f"{where}: `{given[0]}` is a shorthand; with `backend` given as a mapping put the option "
                             f"inside it")
        return dict(backend)
    if backend not in _BACKEND_SHORT:
        raise ValueError(f"{where}: `backend` must be one of {', '.join(_BACKEND_SHORT)} or a mapping {{kind: ...}}, "
                         f"but got backend={backend!r}")
    for kind, keys in _BACKEND_SHORT.items():
        for k in keys:
            if kind != backend and k in flat and not (k == "n_workers" and flat[k] in (0, 1)):
                raise ValueError(f"{where}: `{k}` is an option of the {kind} backend, but the config chooses "
                                 f"backend={backend!r}")
    if backend == "local":
        workers = flat.get("n_workers")
        out: dict[str, Any] = {"kind": "local", "n_workers": None if workers in (None, 0) else workers}
        if "max_trials_per_worker" in flat:
            out["max_trials_per_worker"] = flat["max_trials_per_worker"]
        return out
    if backend == "ray":
        return {"kind": "ray", "address": flat.get("ray_address"),
                "resources": flat.get("resources_per_trial") or {"cpu": 1},
                "max_concurrent": flat.get("max_concurrent"), "scheduler": flat.get("scheduler")}
    return {"kind": "keras_tuner", "tuner": flat.get("tuner", "random"), "options": flat.get("tuner_options") or {}}


def _device_from_flat(flat: dict[str, Any], where: str) -> Any:
    device = flat.get("device", "auto")
    extra = {k: flat[k] for k in _DEVICE_SHORT if k in flat}
    if isinstance(device, dict):
        if extra:
            raise ValueError(f"{where}: `{next(iter(extra))}` is a shorthand; with `device` given as a mapping put it "
                             f"inside it")
        return device
    return {"kind": device, **extra}


def from_flat(flat: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """A flat config of earlier versions (``n_trials:``, ``sampler:``, ``n_workers:`` ... at the top level) as the
    grouped mapping, with a deprecation warning that shows the grouped form to write instead."""
    grouped = _grouped(flat, where)
    warnings.warn(f"{where}: flat settings ({', '.join(sorted(set(flat) & set(FLAT_KEYS)))}) are deprecated since "
                  f"nas 0.2; write them in the groups goal, strategy and run, e.g.\n{_yaml_hint(grouped)}",
                  FutureWarning, stacklevel=3)
    return grouped


def _grouped(flat: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in flat.items() if k in ("space", "data", "evaluator", "description",
                                                                  "created", "version")}
    goal = {k: flat[k] for k in _GOAL if k in flat}
    strategy = {k: flat[k] for k in _STRATEGY if k in flat}
    run: dict[str, Any] = {}
    if set(flat) & ({"backend"} | {k for keys in _BACKEND_SHORT.values() for k in keys}):
        run["backend"] = _backend_from_flat(flat, where)
    if set(flat) & ({"device"} | set(_DEVICE_SHORT)):
        run["device"] = _device_from_flat(flat, where)
    for key, to in (("study", "study"), ("storage", "storage"), ("artifacts", "artifacts")):
        if key in flat:
            run[to] = flat[key]
    unknown = sorted(set(flat) - set(out) - set(FLAT_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown setting {unknown[0]!r}; known settings: space, data, evaluator, goal, "
                         f"strategy, run, description (or the flat settings of earlier versions: "
                         f"{', '.join(FLAT_KEYS)})")
    out.update({"goal": goal, "strategy": strategy, "run": run})
    out.pop("version", None)
    return out


def _yaml_hint(grouped: dict[str, Any]) -> str:
    import yaml

    shown = {k: v for k, v in grouped.items() if k in ("goal", "strategy", "run")}
    return yaml.safe_dump(shown, sort_keys=False, default_flow_style=None).rstrip()


def from_version_2(old: dict[str, Any]) -> dict[str, Any]:
    """The grouped record of a version-2 one (the flat, typed record stored from 2026-11 to 2026-12)."""
    out: dict[str, Any] = {"space": space_ref(old.get("space")), "data": old.get("data", {"kind": "evaluator"}),
                           "evaluator": old.get("evaluator"), "created": old.get("created", ""),
                           "description": old.get("description", "")}
    out["goal"] = {k: old[k] for k in _GOAL if k in old}
    out["strategy"] = {k: old[k] for k in _STRATEGY if k in old}
    out["run"] = {"artifacts": old.get("artifacts"), "backend": old.get("backend") or {"kind": "local"},
                  "device": old.get("device")}
    unknown = sorted(set(old) - set(_GOAL) - set(_STRATEGY) - {"space", "data", "evaluator", "created", "description",
                                                                 "artifacts", "backend", "device", "version"})
    if unknown:
        raise ValueError(f"study config (version 2): unknown field {unknown[0]!r}")
    return out


def _legacy_component(value: Any, kind: str) -> dict[str, Any] | None:
    """A nas 0.1 sampler / pruner dict (``{"name": ..., "seed": ..., other options}`` or a pickled object)."""
    if value is None:
        return None
    if not isinstance(value, dict) or "name" not in value:
        raise ValueError(f"study config (version 1): `{kind}` must be a dict with a name, but got {value!r}")
    if value["name"] == "object":
        return {"name": PICKLE, "options": {"class": value.get("class"), "pickle": value.get("pickle")}}
    return {"name": value["name"], "options": {k: v for k, v in value.items() if k not in ("name", "seed")}}


def from_version_1(old: dict[str, Any]) -> dict[str, Any]:
    """The version-2 fields of a configuration written by nas 0.1 (an untyped dict)."""
    new: dict[str, Any] = {k: old[k] for k in ("space", "objectives", "n_trials", "artifacts", "budget", "constraints",
                                               "data", "max_retries", "max_failures", "created") if k in old}
    new["version"] = 2
    sampler = old.get("sampler") or {"name": "tpe"}
    seed = sampler.get("seed")
    new["seed"] = seed % (2**31 - 1) if isinstance(seed, int) and seed >= 2**31 - 1 else seed  # 0.1 reduced it so
    for key, top in (("n_trials", MAX_TRIALS), ("max_retries", 100), ("max_failures", MAX_TRIALS)):
        if isinstance(new.get(key), int) and new[key] > top:
            new[key] = top  # nas 0.1 had no upper bounds
    new["sampler"] = _legacy_component(sampler, "sampler")
    new["pruner"] = _legacy_component(old.get("pruner"), "pruner")
    new["warm_start"] = list(old.get("warm_start") or [])
    if old.get("evaluator"):
        new["evaluator"] = {"name": PICKLE, "options": {"pickle": old["evaluator"]}}
    devices = dict(old.get("devices") or {})
    new["device"] = {"kind": devices.get("device", "auto"), "mixed_precision": devices.get("mixed_precision"),
                     "jit_compile": devices.get("jit_compile", "auto"), "tpu_address": devices.get("tpu_address")}
    if "keras_tuner" in old:
        kt = dict(old["keras_tuner"])
        new["backend"] = {"kind": "keras_tuner", "tuner": kt.get("tuner"), "options": kt.get("options") or {},
                          "directory": kt.get("directory"), "project_name": kt.get("project_name"),
                          "continuable": bool(kt.get("run"))}
    else:
        new["backend"] = {"kind": "local", "n_workers": min(256, max(1, int(old.get("n_workers") or 1))),
                          "max_trials_per_worker": int(old.get("max_trials_per_worker", 20))}
    return new




# ------------------------------------------------------------------ the one reader and writer of the stored record

def _stored_text(study: Any) -> str | None:
    """The stored record's JSON: the study system attribute ``nas:config`` (version 3), or for studies stored
    before it the ``nas`` user attribute (versions 1 and 2); None for a study that is not a nas study."""
    text = study._storage.get_study_system_attrs(study._study_id).get(RECORD_ATTR)
    return text if text is not None else study.user_attrs.get(CONFIG_ATTR)


def is_nas_study(study: Any) -> bool:
    return _stored_text(study) is not None


def read_config(study: Any) -> StudyConfig:
    """The record stored with ``study`` (see :func:`write_config`). An error naming the study if it is not a nas
    study."""
    text = _stored_text(study)
    if text is None:
        raise ValueError(f"study {study.study_name!r} is not a nas study (it has no {RECORD_ATTR!r} attribute)")
    try:
        return _parse(text, study.study_name)
    except ValueError as exc:
        raise ValueError(f"study {study.study_name!r}: {exc}") from None


@functools.lru_cache(maxsize=16)
def _parse(text: str, name: str) -> StudyConfig:
    """Parsed once per distinct stored text (a worker reads the record before every claim; it is frozen). The
    study's name is the storage's: a record copied elsewhere takes the name it is stored under."""
    config = StudyConfig.from_json(text)
    if config.strategy.budget.inherit_epochs is None:  # stored before it had a default (it is resolved when stored):
        budget = dataclasses.replace(config.strategy.budget, inherit_epochs=0)  # such a study trained every trial
        config = config.replace(strategy=config.strategy.replace(budget=budget))  # from scratch: a resume does too
    return config.replace(run=config.run.replace(study=name))


def summary(config: StudyConfig) -> str:
    """One line that says what the study is, for Optuna's listings (``optuna studies``, the dashboard)."""
    strategy, backend = config.strategy, config.run.backend
    sampler = strategy.sampler.name if strategy.sampler else "-"
    how = "evaluator" if config.evaluator is not None else f"{strategy.budget.epochs} epochs"
    pruner = f", pruner {strategy.pruner.name}" if strategy.pruner else ""
    return (f"{config.space.get('name') if isinstance(config.space, dict) else '?'} space, "
            f"{'+'.join(config.goal.objectives)}, {sampler}{pruner}, {strategy.n_trials} trials of {how}, "
            f"{backend.kind} (the record: system attribute {RECORD_ATTR})")


def write_config(study: Any, config: StudyConfig) -> None:
    """Store ``config`` with ``study``: the record (JSON, version 3, without the storage URL) as the study system
    attribute ``nas:config``, and a one-line summary as the user attribute ``nas``, so that ``optuna studies``
    and the dashboard list short rows."""
    study._storage.set_study_system_attr(study._study_id, RECORD_ATTR, config.to_json())
    study.set_user_attr(CONFIG_ATTR, summary(config))
