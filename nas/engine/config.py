"""The study's configuration: one typed, frozen, validated record, stored with the study as JSON.

:class:`StudyConfig` holds everything a worker, a resume or a report needs to know about a search: the space
(as its config), objectives, sampler, pruner, training budget, constraints, data reference, evaluator, trial
target, failure limits, artefact folder, backend and device. It is written once when the study is created
(and again only when a resume raises the target or changes the backend), by :func:`write_config`, and read by
:func:`read_config`; nothing else touches the stored attribute.

Nothing stored is executable. Samplers, pruners and evaluators are :class:`Component` s, a name plus JSON
options:

* samplers: ``evolution`` (nas's own, :mod:`nas.engine.evolution`), ``nsga2``, ``tpe``, ``random``, ``grid``, or
  the name of any class in ``optuna.samplers`` (e.g. ``GridSampler``) with its constructor arguments;
* pruners: ``median``, ``successive_halving``, ``asha``, ``hyperband``, or a class in ``optuna.pruners``;
* evaluators: a registered name (``nasbench201``: the NAS-Bench-201 table) or an import path
  ``"package.module:function"``, which is called only if it carries the :func:`nas.evaluator` mark.

Studies written by nas 0.1 (``version: 1``) load as they are. Their samplers, pruners and evaluators given as
objects were stored as pickles; those are refused when the study would run them, unless the environment
variable ``NAS_RUN_CODE_FROM_STORAGE=1`` says that everyone who can write to the storage is trusted.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import importlib
import inspect
import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any

import optuna

import search_spaces
from nas.budget import Budget, check_constraints, check_objectives
from nas.devices import Device
from nas.engine.evolution import ParetoEvolutionSampler
from nas.engine.sources import check_marked_source
from nas.trial import EVALUATOR_MARK, FixedTrial

__all__ = ["CONFIG_ATTR", "CONFIG_VERSION", "Component", "EVALUATORS",
           "check_runnable", "PRUNERS", "RUN_CODE_ENV", "SAMPLERS", "StudyConfig",
           "NAS_PRUNERS", "check_int", "configure_space", "evaluator_component", "make_evaluator", "make_pruner",
           "make_sampler", "rung_options",
           "now", "pruner_component", "read_config", "sampler_component", "warm_start_params", "write_config"]

CONFIG_VERSION = 2
CONFIG_ATTR = "nas"  # the study user attribute holding the configuration (JSON)
RUN_CODE_ENV = "NAS_RUN_CODE_FROM_STORAGE"
SAMPLERS = ("evolution", "nsga2", "tpe", "random", "grid")
PRUNERS = ("pareto", "median", "successive_halving", "asha", "hyperband")
# nas's own early stopping (decided by nas from the study storage, on every backend, multi-objective too);
# the others are Optuna's pruners (single-objective accuracy, local backend)
NAS_PRUNERS = ("pareto",)
# registered evaluators: name -> import path of a marked factory
EVALUATORS = {"nasbench201": "search_spaces.nasbench201:Table"}
MAX_TRIALS = 1_000_000
DATA_KINDS = ("name", "folder", "npz", "evaluator", "keras_tuner")
PICKLE = "pickle"  # the component name of a nas 0.1 pickle

_SAMPLER_OPTIONS = {"evolution": ("population_size", "tournament_size", "candidates"), "nsga2": ("population_size",),
                    "tpe": ("n_startup_trials",), "random": (), "grid": ()}
_PRUNER_OPTIONS = {"pareto": ("min_epochs", "reduction_factor", "rule", "calibrate"), "median": ("n_startup_trials",),
                   "successive_halving": ("reduction_factor",),
                   "asha": ("reduction_factor",), "hyperband": ("reduction_factor",)}


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an integer in [low, high], else an error naming ``name``, the rule and the value."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        rule = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high:,}]"
        raise ValueError(f"`{name}` must be {rule}, but got {name}={value!r}")
    return value


def _plain(value: Any, where: str) -> Any:
    """``value`` if it is plain JSON data (and a copy of it through JSON), else an error naming ``where``."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be plain JSON data (numbers, strings, lists, dicts), but got "
                         f"{value!r}") from None


def _options_of(value: dict[str, Any], what: str) -> dict[str, Any]:
    """A copy of the ``options`` of a ``{"name": ..., "options": {...}}`` dict (none: empty), which must be a dict
    of option names to values."""
    options = value.get("options")
    if options is None:
        return {}
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise ValueError(f"`{what}.options` must be a dict of option names to values, but got "
                         f"{what}.options={options!r}")
    return dict(options)


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
        object.__setattr__(self, "options", _plain(self.options, f"component {self.name!r} options"))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options)}

    @classmethod
    def of(cls, value: Any, what: str) -> Component | None:
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) - {"name", "options"} or "name" not in value:
            raise ValueError(f"`{what}` must be stored as {{'name': ..., 'options': {{...}}}}, but got {value!r}")
        return cls(name=value["name"], options=_options_of(value, what))


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """Everything stored about a search except its trials (see the module docstring)."""

    space: dict[str, Any]
    objectives: tuple[str, ...]
    n_trials: int
    artifacts: str
    sampler: Component
    seed: int | None = None
    pruner: Component | None = None
    budget: Budget = field(default_factory=Budget)
    constraints: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=lambda: {"kind": "evaluator"})
    evaluator: Component | None = None
    warm_start: tuple[str, ...] = ()
    max_retries: int = 2
    max_failures: int | None = None
    backend: dict[str, Any] = field(default_factory=lambda: {"kind": "local"})
    device: Device = field(default_factory=Device)
    sample_within_limits: bool = True
    created: str = ""
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", check_objectives(self.objectives))
        object.__setattr__(self, "constraints", check_constraints(self.constraints))
        object.__setattr__(self, "warm_start", tuple(self.warm_start))
        check_int("n_trials", self.n_trials, 1, MAX_TRIALS)
        check_int("max_retries", self.max_retries, 0, 100)
        if self.max_failures is not None:
            check_int("max_failures", self.max_failures, 1, MAX_TRIALS)
        if self.seed is not None:
            check_int("seed", self.seed, 0, 2**31 - 1)
        if not isinstance(self.sample_within_limits, bool):
            raise ValueError(f"`sample_within_limits` must be true or false, but got "
                             f"sample_within_limits={self.sample_within_limits!r}")
        if self.version not in (1, CONFIG_VERSION):
            raise ValueError(f"study config: `version` must be 1 or {CONFIG_VERSION} (this nas reads those), but got "
                             f"version={self.version!r}; upgrade nas to read this study")
        for name, kind in (("budget", Budget), ("device", Device), ("sampler", Component)):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"study config: `{name}` must be a {kind.__name__}, but got {getattr(self, name)!r}")
        for name in ("space", "data", "backend"):
            value = getattr(self, name)
            if not isinstance(value, dict):
                raise ValueError(f"study config: `{name}` must be a dict, but got {name}={value!r}")
            object.__setattr__(self, name, _plain(value, f"study config `{name}`"))
        if not isinstance(self.backend.get("kind"), str):
            raise ValueError(f"study config: `backend` needs a `kind`, but got backend={self.backend!r}")
        if self.data.get("kind") not in DATA_KINDS:
            raise ValueError(f"study config: `data` must have a `kind` among {', '.join(DATA_KINDS)}, but got "
                             f"data={self.data!r}")
        try:  # a space that cannot be rebuilt fails here, naming the option
            search_spaces.from_config(self.space)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"study config: `space`: {exc}") from None
        if not isinstance(self.artifacts, str) or not self.artifacts:
            raise ValueError(f"study config: `artifacts` must be a folder path, but got artifacts={self.artifacts!r}")

    # -- limits, stated once
    @property
    def failure_cap(self) -> int:
        """Failed trials after which the search stops (``max_failures``, default max(5, n_trials))."""
        return self.max_failures if self.max_failures is not None else max(5, self.n_trials)

    @property
    def infeasible_cap(self) -> int:
        """Over-budget candidates after which the search stops: the constraints leave too little of the space."""
        return max(1000, 50 * self.n_trials)

    @property
    def single_accuracy(self) -> bool:
        return self.objectives == ("accuracy",)

    def replace(self, **changes: Any) -> StudyConfig:
        return dataclasses.replace(self, **changes)

    # -- JSON
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if hasattr(value, "to_dict"):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> StudyConfig:
        if not isinstance(data, dict):
            raise ValueError(f"study config must be a JSON object, but got {type(data).__name__}")
        if data.get("version") == 1:
            data = _from_version_1(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"study config: unknown field {unknown[0]!r} (written by a newer nas?); known fields: "
                             f"{', '.join(sorted(known))}")
        missing = sorted(f.name for f in dataclasses.fields(cls)
                         if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                         and f.name not in data)
        if missing:
            raise ValueError(f"study config: the field {missing[0]!r} is missing")
        kwargs = dict(data)
        kwargs["budget"] = Budget.of(data.get("budget"))
        kwargs["device"] = Device.of(data.get("device"))
        kwargs["sampler"] = Component.of(data["sampler"], "sampler")
        kwargs["pruner"] = Component.of(data.get("pruner"), "pruner")
        kwargs["evaluator"] = Component.of(data.get("evaluator"), "evaluator")
        if not isinstance(data["objectives"], (list, tuple)):
            raise ValueError(f"study config: `objectives` must be a list, but got {data['objectives']!r}")
        kwargs["objectives"] = tuple(data["objectives"])
        kwargs["warm_start"] = tuple(data.get("warm_start") or ())
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: Any) -> StudyConfig:
        if not isinstance(text, str):
            raise ValueError(f"study config must be JSON text, but got {type(text).__name__}")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"study config is not valid JSON: {exc}") from None
        return cls.from_dict(data)


def _legacy_component(value: Any, kind: str) -> dict[str, Any] | None:
    """A nas 0.1 sampler / pruner dict (``{"name": ..., "seed": ..., other options}`` or a pickled object)."""
    if value is None:
        return None
    if not isinstance(value, dict) or "name" not in value:
        raise ValueError(f"study config (version 1): `{kind}` must be a dict with a name, but got {value!r}")
    if value["name"] == "object":
        return {"name": PICKLE, "options": {"class": value.get("class"), "pickle": value.get("pickle")}}
    return {"name": value["name"], "options": {k: v for k, v in value.items() if k not in ("name", "seed")}}


def _from_version_1(old: dict[str, Any]) -> dict[str, Any]:
    """The version-2 fields of a configuration written by nas 0.1 (an untyped dict)."""
    new = {k: old[k] for k in ("space", "objectives", "n_trials", "artifacts", "budget", "constraints", "data",
                               "max_retries", "max_failures", "created") if k in old}
    new["version"] = CONFIG_VERSION
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


def read_config(study: optuna.Study) -> StudyConfig:
    """The configuration stored with ``study`` (an error naming the study if it is not a nas study)."""
    text = study.user_attrs.get(CONFIG_ATTR)
    if text is None:
        raise ValueError(f"study {study.study_name!r} is not a nas study (it has no {CONFIG_ATTR!r} user attribute)")
    try:
        return _parse(text)
    except ValueError as exc:
        raise ValueError(f"study {study.study_name!r}: {exc}") from None


@functools.lru_cache(maxsize=16)
def _parse(text: str) -> StudyConfig:
    """Parsed once per distinct stored text (a worker reads the configuration before every claim; it is frozen)."""
    return StudyConfig.from_json(text)


def write_config(study: optuna.Study, config: StudyConfig) -> None:
    study.set_user_attr(CONFIG_ATTR, config.to_json())


# ------------------------------------------------------------------ from what a user passes to stored components

def _constructor_args(obj: Any, what: str) -> dict[str, Any]:
    """The constructor arguments of an Optuna sampler / pruner object, read back from its ``_<name>`` attributes;
    an error when one cannot be read back as plain data."""
    args = {}
    for name, p in inspect.signature(type(obj).__init__).parameters.items():
        if name in ("self", "seed") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if hasattr(obj, f"_{name}"):
            value = getattr(obj, f"_{name}")
            try:
                args[name] = json.loads(json.dumps(value, allow_nan=False))
                continue
            except (TypeError, ValueError):
                pass
        if p.default is p.empty or not hasattr(obj, f"_{name}"):
            raise ValueError(f"`{what}`: the {type(obj).__name__} object cannot be stored as data (its argument "
                             f"{name!r} cannot be read back as plain JSON); pass it as {{'name': "
                             f"'{type(obj).__name__}', 'options': {{...its arguments...}}}} or use a built-in name")
    return args


def _optuna_class(module: Any, base: type, name: str, what: str) -> type:
    """The class ``name`` (``GridSampler`` or ``optuna.samplers.GridSampler``) of ``module``: nothing else can be
    named, so a stored configuration cannot name an arbitrary callable."""
    builtins = SAMPLERS if what == "sampler" else PRUNERS
    short = name.rsplit(".", 1)[-1]
    cls = getattr(module, short, None) if short.isidentifier() and not short.startswith("_") else None
    if (name != short and name.rsplit(".", 1)[0] != module.__name__) or not (isinstance(cls, type)
                                                                            and issubclass(cls, base)):
        raise ValueError(f"`{what}` must be one of {', '.join(builtins)} or the name of a class of {module.__name__} "
                         f"(e.g. {'GridSampler' if what == 'sampler' else 'PercentilePruner'}), but got {what}={name!r}")
    return cls


def _check_options(name: str, options: dict[str, Any], known: tuple[str, ...], what: str) -> None:
    bad = sorted(set(options) - set(known))
    if bad:
        raise ValueError(f"`{what}` {name!r}: unknown option {bad[0]!r}; known options: {', '.join(known) or 'none'}")
    for k, v in options.items():
        if k not in ("rule", "calibrate"):  # the pareto pruner's name and flag (checked by rung_options)
            check_int(f"{what}.{k}", v, 1)


def sampler_component(sampler: Any, objectives: tuple[str, ...], space: Any) -> Component:
    """The stored form of the ``sampler`` argument: a built-in name (default: evolution for several objectives,
    tpe for one), ``{"name": ..., "options": {...}}``, or an Optuna sampler object whose arguments are plain data.
    The multi-objective default follows benchmarks/bench_sampler.py (NAS-Bench-201 tables, 20 seeds): at 100
    trials evolution's median hypervolume gap is 0.0024 / 0.0046 / 0.0093 (CIFAR-10 / -100 / ImageNet16-120)
    against 0.0067 / 0.0194 / 0.0174 for NSGA-II with nas's population rule (p <= 0.001 on each)."""
    if sampler is None:
        sampler = "evolution" if len(objectives) > 1 else "tpe"
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return Component(name=type(sampler).__name__, options=_constructor_args(sampler, "sampler"))
    if isinstance(sampler, str):
        sampler = {"name": sampler}
    if not isinstance(sampler, dict) or not isinstance(sampler.get("name"), str):
        raise ValueError(f"`sampler` must be one of {', '.join(SAMPLERS)}, a dict {{'name': ..., 'options': {{...}}}} "
                         f"or an Optuna sampler, but got sampler={sampler!r}")
    name = sampler["name"]
    bad = sorted(set(sampler) - {"name", "options"})
    options = _options_of(sampler, "sampler")
    if name in SAMPLERS:  # nas 0.1 spelled options beside the name: {"name": "nsga2", "population_size": 8}
        options.update({k: sampler[k] for k in bad})
        _check_options(name, options, _SAMPLER_OPTIONS[name], "sampler")
        if name == "grid" and not hasattr(space, "grid"):
            raise ValueError(f"`sampler`: grid sampling needs a space with a fixed set of labels, but the "
                             f"{space.name!r} space asks labels that depend on earlier choices; use evolution, random, "
                             f"tpe or nsga2, or pass {{'name': 'GridSampler', 'options': {{'search_space': {{...}}}}}}")
    else:
        if bad:
            raise ValueError(f"`sampler`: unknown key {bad[0]!r}; a sampler dict has `name` and `options`")
        _optuna_class(optuna.samplers, optuna.samplers.BaseSampler, name, "sampler")
    if "seed" in options:
        raise ValueError(f"`sampler` options must not hold a seed (every worker gets its own stream from the "
                         f"search's `seed`), but got options={options!r}")
    component = Component(name=name, options=options)
    with warnings.catch_warnings():  # TPE's multivariate/group options are "experimental" in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        make_sampler(component, n_trials=1, space=space, seed=None)  # bad options fail now, not in every worker
    return component


def pruner_component(pruner: Any, objectives: tuple[str, ...]) -> Component | None:
    """The stored form of the ``pruner`` argument (a built-in name, a dict, or an Optuna pruner object)."""
    if pruner is None or pruner == "none":
        return None
    if isinstance(pruner, optuna.pruners.BasePruner):
        component = Component(name=type(pruner).__name__, options=_constructor_args(pruner, "pruner"))
    else:
        if isinstance(pruner, str):
            pruner = {"name": pruner}
        if not isinstance(pruner, dict) or not isinstance(pruner.get("name"), str) or set(pruner) - {"name", "options"}:
            raise ValueError(f"`pruner` must be one of {', '.join(PRUNERS)}, a dict {{'name': ..., 'options': "
                             f"{{...}}}} or an Optuna pruner, but got pruner={pruner!r}")
        name, options = pruner["name"], _options_of(pruner, "pruner")
        if name in PRUNERS:
            _check_options(name, options, _PRUNER_OPTIONS[name], "pruner")
        else:
            _optuna_class(optuna.pruners, optuna.pruners.BasePruner, name, "pruner")
        if name in NAS_PRUNERS:
            options = rung_options(options)
        component = Component(name=name, options=options)
    if component.name in NAS_PRUNERS:
        return component
    if objectives != ("accuracy",):
        raise ValueError(f"`pruner` works on per-epoch validation accuracy: it needs objectives=('accuracy',), "
                         f"but got objectives={list(objectives)!r}")
    make_pruner(component, epochs=1)
    return component


def evaluator_component(evaluator: Any) -> Component | None:
    """The stored form of the ``evaluator`` argument: an object with ``evaluator_ref()`` (e.g. the NAS-Bench-201
    table), a function or class marked with :func:`nas.evaluator`, a ``functools.partial`` of one with JSON
    keyword arguments, an import path ``"package.module:name"`` or a dict ``{"name": ..., "options": {...}}``."""
    if evaluator is None:
        return None
    if hasattr(evaluator, "evaluator_ref"):
        name, options = evaluator.evaluator_ref()
        component = Component(name=name, options=options)
    elif isinstance(evaluator, (str, dict)):
        component = Component.of({"name": evaluator} if isinstance(evaluator, str) else evaluator, "evaluator")
    elif isinstance(evaluator, functools.partial) and not evaluator.args:
        component = Component(name=_import_path(evaluator.func), options=dict(evaluator.keywords))
    elif callable(evaluator):
        component = Component(name=_import_path(evaluator))
    else:
        raise ValueError(f"`evaluator` must be a function from ArchSpec to a metrics dict, but got {evaluator!r}")
    assert component is not None
    make_evaluator(component)  # importable and marked: checked now, before any trial
    return component


def _import_path(obj: Any) -> str:
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "")
    if not getattr(obj, EVALUATOR_MARK, False):
        raise ValueError(f"`evaluator` {qualname or obj!r} is not marked as an evaluator: decorate it with "
                         f"@nas.evaluator (a study stores its evaluator as an import path, and workers call only "
                         f"functions their authors marked)")
    if module in (None, "__main__") or "<" in qualname:
        raise ValueError(f"`evaluator` {qualname!r} is defined in {module or 'no module'}: worker processes import "
                         f"it by name, so define it at the top level of an importable module")
    return f"{module}:{qualname}"


# ------------------------------------------------------------------ from stored components to objects

_BY_NAME = {"sampler": "sampler='tpe' or {'name': 'GridSampler', 'options': {...}}",
            "pruner": "pruner='median' or {'name': 'PercentilePruner', 'options': {...}}",
            "evaluator": "an evaluator marked with @nas.evaluator, or 'nasbench201'"}


def _refuse_pickle(what: str, component: Component) -> None:
    if os.environ.get(RUN_CODE_ENV) == "1":
        return
    kind = component.options.get("class") or what
    raise ValueError(f"this study stores its {what} as a pickle ({kind}, written by nas 0.1); unpickling runs code "
                     f"from the database, so nas refuses it. Re-create the study with the {what} given as data "
                     f"({_BY_NAME[what]}), or, if you trust everyone who can write to this storage, set "
                     f"{RUN_CODE_ENV}=1")


def _unpickle(component: Component) -> Any:
    import base64
    import pickle

    return pickle.loads(base64.b64decode(component.options["pickle"]))  # noqa: S301 - refused unless opted in


def check_runnable(config: StudyConfig) -> None:
    """Refuse now (before any worker starts) a study whose components cannot run here: a nas 0.1 pickle without
    the opt-in, an evaluator that is not importable or not marked, a stored sampler or pruner whose options do
    not make one (a storage anyone edited)."""
    for what in ("sampler", "pruner", "evaluator"):
        component = getattr(config, what)
        if component is not None and component.name == PICKLE:
            _refuse_pickle(what, component)
    make_evaluator(config.evaluator)
    if config.sampler.name != PICKLE and not config.sampler.name.startswith("keras_tuner."):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make_sampler(config.sampler, n_trials=config.n_trials, space=search_spaces.from_config(config.space),
                         seed=None)
    if config.pruner is not None and config.pruner.name in NAS_PRUNERS:
        rung_options(config.pruner.options)
    elif config.pruner is not None and config.pruner.name != PICKLE:
        make_pruner(config.pruner, epochs=config.budget.epochs)


def make_sampler(component: Component, *, n_trials: int, space: Any, seed: int | None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler a stored component stands for, seeded with ``seed`` (each worker has its own)."""
    name, options = component.name, component.options
    if name == PICKLE:
        _refuse_pickle("sampler", component)
        sampler = _unpickle(component)
        if seed is not None and hasattr(sampler, "reseed_rng"):
            sampler.reseed_rng()
        return sampler
    for k in _SAMPLER_OPTIONS.get(name, ()):  # a stored configuration is data anyone with the storage may edit
        if options.get(k) is not None:
            check_int(f"sampler.{k}", options[k], 2 if (name, k) == ("nsga2", "population_size") else 1)
    if name == "evolution":
        # tuned on the NAS-Bench-201 CIFAR-10 table (benchmarks/bench_sampler.py): 10 random networks from 50 trials
        # up, fewer for smaller budgets (as NSGA-II's rule below, a population must leave trials to evolve)
        tournament = options.get("tournament_size")
        size = options.get("population_size") or max(tournament or 0, 4, min(10, n_trials // 5))
        return ParetoEvolutionSampler(space, population_size=int(size),
                                      tournament_size=int(tournament or min(3, size)),
                                      candidates=int(options.get("candidates", 8)), constraints=_stored_constraints,
                                      seed=seed)
    if name == "nsga2":
        size = options.get("population_size") or max(4, min(50, n_trials // 4))
        return optuna.samplers.NSGAIISampler(population_size=int(size), seed=seed)
    if name == "tpe":
        startup = options.get("n_startup_trials") or max(3, min(10, n_trials // 5))
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                          n_startup_trials=int(startup))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    if name.startswith("keras_tuner."):
        raise ValueError(f"sampler {name!r} is keras-tuner's: this study runs on the keras_tuner backend")
    cls = _optuna_class(optuna.samplers, optuna.samplers.BaseSampler, name, "sampler")
    kwargs = {k: v for k, v in options.items() if k != "seed"}
    if "seed" in inspect.signature(cls.__init__).parameters:
        kwargs["seed"] = seed  # this worker's stream
    try:
        return cls(**kwargs)
    except Exception as exc:  # an Optuna class's own checks raise what they raise (AttributeError for a list, ...)
        raise ValueError(f"`sampler` {name} with options {options}: {type(exc).__name__}: {exc}") from None


def _stored_constraints(study: optuna.Study) -> dict[str, float]:
    """The analytic limits a nas study stores (the evolution sampler proposes only children within them); none
    for a study that is not a nas study, or that draws and rejects (``sample_within_limits=False``)."""
    try:
        config = read_config(study)
    except ValueError:
        return {}
    return dict(config.constraints) if config.sample_within_limits else {}


def rung_options(options: dict[str, Any]) -> dict[str, Any]:
    """The ``pareto`` pruner's options with their defaults, checked: ``min_epochs`` (first rung, default 1),
    ``reduction_factor`` (eta, default 3), ``rule`` (``margin`` - cost-aware, ranked by the margin to the
    front at each trial's cost, the default - ``pareto`` - cost-aware, against the cheaper trials only -
    ``nds`` - MO-ASHA's non-dominated sorting - or ``asha`` - accuracy only) and ``calibrate`` (default True:
    a rung judges the validation accuracy measured after recomputing batch-norm statistics,
    ``nas.train.calibrated_accuracy``; False: the plain one, as studies stored before this option)."""
    from nas.rungs import RULES

    out = {"min_epochs": options.get("min_epochs", 1), "reduction_factor": options.get("reduction_factor", 3),
           "rule": options.get("rule", "margin"), "calibrate": options.get("calibrate", True)}
    check_int("pruner.min_epochs", out["min_epochs"], 1)
    check_int("pruner.reduction_factor", out["reduction_factor"], 2)
    if out["rule"] not in RULES:
        raise ValueError(f"`pruner.rule` must be one of {', '.join(RULES)}, but got pruner.rule={out['rule']!r}")
    if not isinstance(out["calibrate"], bool):
        raise ValueError(f"`pruner.calibrate` must be true or false, but got pruner.calibrate={out['calibrate']!r}")
    return out


def make_pruner(component: Component | None, *, epochs: int) -> optuna.pruners.BasePruner | None:
    """The Optuna pruner a stored component stands for (None: no pruning, or nas's own ``pareto``, which the
    trial pipeline applies)."""
    if component is None or component.name in NAS_PRUNERS:
        return None
    name, options = component.name, component.options
    if name == PICKLE:
        _refuse_pickle("pruner", component)
        return _unpickle(component)
    for k in _PRUNER_OPTIONS.get(name, ()):  # stored data anyone with the storage may edit
        if k in options:
            check_int(f"pruner.{k}", options[k], 2 if k == "reduction_factor" else 1)
    factor = options.get("reduction_factor", 3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=options.get("n_startup_trials", 3), n_warmup_steps=1)
    if name in ("successive_halving", "asha"):
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=factor)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=factor)
    cls = _optuna_class(optuna.pruners, optuna.pruners.BasePruner, name, "pruner")
    try:
        return cls(**options)
    except Exception as exc:  # an Optuna class's own checks raise what they raise
        raise ValueError(f"`pruner` {name} with options {options}: {type(exc).__name__}: {exc}") from None


def make_evaluator(component: Component | None) -> Any:
    """The evaluator a stored component stands for: a registered name or a marked import path (None: train)."""
    if component is None:
        return None
    if component.name == PICKLE:
        _refuse_pickle("evaluator", component)
        return _unpickle(component)
    path = EVALUATORS.get(component.name, component.name)
    module_name, _, qualname = path.partition(":")
    parts = module_name.split(".") + qualname.split(".")
    if not module_name or not qualname or not all(p.isidentifier() and not p.startswith("_") for p in parts):
        raise ValueError(f"`evaluator` must be a registered name ({', '.join(EVALUATORS)}) or an import path "
                         f"'package.module:function' of public names, but got {component.name!r}")
    if parts[0] in sys.stdlib_module_names:
        raise ValueError(f"`evaluator` {component.name!r} names the standard library, not an evaluator")
    check_marked_source(module_name, qualname, f"`evaluator` {component.name!r}")  # before any import
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"`evaluator` {component.name!r} cannot be imported here: {type(exc).__name__}: {exc}") from None
    if vars(obj).get(EVALUATOR_MARK) is not True:  # marked itself, not through a marked base class
        raise ValueError(f"`evaluator` {component.name!r} is not marked with @nas.evaluator, so a study may not call "
                         f"it")
    try:
        if isinstance(obj, type):
            return obj(**component.options)
        return functools.partial(obj, **component.options) if component.options else obj
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`evaluator` {component.name!r} with options {component.options}: {exc}") from None


# ------------------------------------------------------------------ the space and its warm start

def configure_space(space: Any, data_shape: tuple[int, int, int], num_classes: int) -> search_spaces.Space:
    """A configured space from a name, a ``{"space": name, "options": {...}}`` dict or a space object; input
    shape and class count come from the data unless the options set them."""
    if isinstance(space, str):
        if space not in search_spaces.names():
            raise ValueError(f"`space` must be one of {', '.join(search_spaces.names())} or a configured space, "
                             f"but got space={space!r}")
        if space == "compound":
            raise ValueError("`space`: the compound space needs a base spec: pass search_spaces.get('compound', "
                             "base=...) or {'space': 'compound', 'options': {'base': ...}}")
        return search_spaces.get(space, input_shape=data_shape, num_classes=num_classes)
    if isinstance(space, dict):
        if "space" not in space:
            raise ValueError(f"`space` given as a dict must be {{'space': name, 'options': {{...}}}}, but got {space!r}")
        options = _options_of(space, "space")
        if space["space"] != "compound":
            options.setdefault("input_shape", data_shape)
        options.setdefault("num_classes", num_classes)
        return search_spaces.get(space["space"], **search_spaces.from_jsonable(options))
    if isinstance(space, search_spaces.Space):
        return space
    raise ValueError(f"`space` must be a space name, a config dict or a search_spaces.Space, but got "
                     f"{type(space).__name__}")


def warm_start_params(space: search_spaces.Space, warm_start: Any) -> list[tuple[str, dict[str, Any]]]:
    """(name, labels) per warm-start item: classic networks of the space by name, or label dicts (checked
    against the space now, with the label named if one is outside it)."""
    if isinstance(warm_start, (str, dict)):
        warm_start = [warm_start]
    if not isinstance(warm_start, (list, tuple)):
        raise ValueError(f"`warm_start` must be a list of classic network names or label dicts, but got "
                         f"warm_start={warm_start!r}")
    warm: list[tuple[str, dict[str, Any]]] = []
    for item in warm_start:
        if not isinstance(item, (str, dict)):
            raise ValueError(f"`warm_start` items must be classic network names or label dicts, but got {item!r}")
        try:
            if isinstance(item, str):
                warm.append((item, space.params_of(item)))
            else:
                space.sample(FixedTrial(item))
                warm.append(("params", dict(item)))
        except ValueError as exc:
            raise ValueError(f"`warm_start` item {item!r}: {exc}") from None
    return warm


def now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")

