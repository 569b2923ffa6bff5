"""Samplers, pruners and evaluators: from what a user passes to the stored :class:`Component` (a name and JSON
options), and from a stored component back to the object, with the safety checks in between.

* samplers: ``evolution`` (nas's own, :mod:`nas.engine.evolution`), ``nsga2``, ``tpe``, ``random``, ``grid``, or
  the name of any class in ``optuna.samplers`` (e.g. ``GridSampler``) with its constructor arguments;
* pruners: ``pareto`` (nas's early stopping), ``median``, ``successive_halving``, ``asha``, ``hyperband``, or a
  class in ``optuna.pruners``;
* evaluators: a registered name (``nasbench201``: the NAS-Bench-201 table) or an import path
  ``"package.module:function"``, imported only when its source shows the :func:`nas.evaluator` mark
  (:mod:`nas.engine.sources`) and called only if the imported object carries it.

Only classes of ``optuna.samplers`` / ``optuna.pruners`` can be named, so a stored record cannot name an
arbitrary callable. Records written by nas 0.1 may hold pickled components; they are refused unless the
environment variable ``NAS_RUN_CODE_FROM_STORAGE=1`` says that everyone who can write to the storage is trusted.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import sys
import warnings
from typing import Any, Protocol, TypeAlias

import optuna

import search_spaces
from nas.engine.evolution import EXPLOIT, ParetoEvolutionSampler, check_init
from nas.engine.schema import NAS_PRUNERS, PICKLE, Component, StudyConfig, options_of, read_config
from nas.engine.sources import check_marked_source
from nas.trial import EVALUATOR_MARK, Evaluator
from nas.validate import check_int, check_number

__all__ = ["EVALUATORS", "EvaluatorLike", "HasEvaluatorRef", "PRUNERS", "RUN_CODE_ENV", "SAMPLERS", "check_runnable",
           "evaluator_component", "make_evaluator", "make_pruner", "make_sampler", "pruner_component", "rung_options",
           "sampler_component"]

RUN_CODE_ENV = "NAS_RUN_CODE_FROM_STORAGE"
SAMPLERS = ("evolution", "nsga2", "tpe", "random", "grid")
PRUNERS = ("pareto", "median", "successive_halving", "asha", "hyperband")
# registered evaluators: name -> import path of a marked factory
EVALUATORS = {"nasbench201": "search_spaces.nasbench201:Table"}


class HasEvaluatorRef(Protocol):
    """An evaluator object that says how a study stores it: a registered name and its JSON arguments (e.g. the
    NAS-Bench-201 table)."""

    def evaluator_ref(self) -> tuple[str, dict[str, Any]]: ...


# an evaluator as it is given (evaluator_component): a function or class marked with @nas.evaluator (or a
# functools.partial of one with JSON keyword arguments), an object with evaluator_ref(), an import path
# "package.module:name", {"name": ..., "options": {...}}, a Component, or None (the trials train)
EvaluatorLike: TypeAlias = Evaluator | type[Evaluator] | HasEvaluatorRef | str | dict[str, Any] | Component | None

_SAMPLER_OPTIONS = {"evolution": ("population_size", "tournament_size", "candidates", "exploit", "init"),
                    "nsga2": ("population_size",),
                    "tpe": ("n_startup_trials",), "random": (), "grid": ()}
# the pareto pruner's `reach` for a new study (rung_options): off, since on tuning seeds 100-103 of
# `benchmarks/bench_plain_tpe.py --arms evolution,pareto:reach --first-seed 100` it stopped no trial
# (BENCHMARKS.md, "pareto pruner: stopping what cannot reach the front")
REACH_DEFAULT = False
_PRUNER_OPTIONS = {"pareto": ("min_epochs", "reduction_factor", "rule", "calibrate", "reach"),
                   "median": ("n_startup_trials",),
                   "successive_halving": ("reduction_factor",),
                   "asha": ("reduction_factor",), "hyperband": ("reduction_factor",)}


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
                         f"(e.g. {'GridSampler' if what == 'sampler' else 'PercentilePruner'}), "
                         f"but got {what}={name!r}")
    return cls


def _check_options(name: str, options: dict[str, Any], known: tuple[str, ...], what: str) -> None:
    bad = sorted(set(options) - set(known))
    if bad:
        raise ValueError(f"`{what}` {name!r}: unknown option {bad[0]!r}; known options: {', '.join(known) or 'none'}")
    for k, v in options.items():
        _check_option(name, k, v, what)


def _check_option(name: str, k: str, v: Any, what: str) -> None:
    """One option of a built-in sampler or pruner, as the user gave it or as a storage holds it (data anyone with
    the storage may edit): the one check for both."""
    if k == "exploit":  # evolution's probability
        check_number(f"{what}.{k}", v, 0.0, 1.0)
    elif k == "init":  # evolution's first population
        check_init(f"{what}.{k}", v)
    elif k not in ("rule", "calibrate", "reach"):  # the pareto pruner's rule and flags (checked by rung_options)
        low = 2 if k == "reduction_factor" or (name, k) == ("nsga2", "population_size") else 1
        check_int(f"{what}.{k}", v, low)


def sampler_component(sampler: Any, objectives: tuple[str, ...], space: Any) -> Component:
    """The stored form of the ``sampler`` argument: a built-in name (default: evolution for several objectives,
    tpe for one), ``{"name": ..., "options": {...}}``, or an Optuna sampler object whose arguments are plain data.
    The multi-objective default follows benchmarks/bench_sampler.py (NAS-Bench-201 tables, 20 seeds): at 100
    trials evolution's median hypervolume gap is 0.0024 / 0.0045 / 0.0047 (CIFAR-10 / -100 / ImageNet16-120)
    against 0.0067 / 0.0194 / 0.0174 for NSGA-II with nas's population rule (p <= 2e-6 on each). The evolution
    sampler's ``init`` is stored resolved (absent: ``"spread"``; a record stored without it reads ``"random"``)."""
    if sampler is None:
        sampler = "evolution" if len(objectives) > 1 else "tpe"
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return Component(name=type(sampler).__name__, options=_constructor_args(sampler, "sampler"))
    if isinstance(sampler, Component):
        sampler = sampler.to_dict()
    if isinstance(sampler, str):
        sampler = {"name": sampler}
    if not isinstance(sampler, dict) or not isinstance(sampler.get("name"), str):
        raise ValueError(f"`sampler` must be one of {', '.join(SAMPLERS)}, a dict {{'name': ..., 'options': {{...}}}} "
                         f"or an Optuna sampler, but got sampler={sampler!r}")
    name = sampler["name"]
    bad = sorted(set(sampler) - {"name", "options"})
    options = options_of(sampler, "sampler")
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
    if name == "evolution" and "init" not in options:
        # stored resolved: a study stored before this default (no `init`) resumes with random first draws
        options["init"] = "spread"
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
        if isinstance(pruner, Component):
            pruner = pruner.to_dict()
        if isinstance(pruner, str):
            pruner = {"name": pruner}
        if not isinstance(pruner, dict) or not isinstance(pruner.get("name"), str) or set(pruner) - {"name", "options"}:
            raise ValueError(f"`pruner` must be one of {', '.join(PRUNERS)}, a dict {{'name': ..., 'options': "
                             f"{{...}}}} or an Optuna pruner, but got pruner={pruner!r}")
        name, options = pruner["name"], options_of(pruner, "pruner")
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


def evaluator_component(evaluator: EvaluatorLike) -> Component | None:
    """The stored form of the ``evaluator`` argument: an object with ``evaluator_ref()`` (e.g. the NAS-Bench-201
    table), a function or class marked with :func:`nas.evaluator`, a ``functools.partial`` of one with JSON
    keyword arguments, an import path ``"package.module:name"`` or a dict ``{"name": ..., "options": {...}}``."""
    if evaluator is None:
        return None
    if isinstance(evaluator, Component):
        evaluator = evaluator.to_dict()
    component: Component | None
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
    strategy = config.strategy
    for what, component in (("sampler", strategy.sampler), ("pruner", strategy.pruner),
                            ("evaluator", config.evaluator)):
        if component is not None and component.name == PICKLE:
            _refuse_pickle(what, component)
    make_evaluator(config.evaluator)
    sampler = strategy.sampler
    if sampler is not None and sampler.name != PICKLE and not sampler.name.startswith("keras_tuner."):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make_sampler(sampler, n_trials=strategy.n_trials, space=search_spaces.from_config(config.space), seed=None)
    if strategy.pruner is not None and strategy.pruner.is_nas_pruner:
        rung_options(strategy.pruner.options)
    elif strategy.pruner is not None and strategy.pruner.name != PICKLE:
        make_pruner(strategy.pruner, epochs=strategy.budget.epochs)


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
            _check_option(name, k, options[k], "sampler")
    if name == "evolution":
        # tuned on the NAS-Bench-201 CIFAR-10 table (benchmarks/bench_sampler.py): 10 random networks from 50 trials
        # up, fewer for smaller budgets (as NSGA-II's rule below, a population must leave trials to evolve)
        tournament, exploit = options.get("tournament_size"), options.get("exploit")
        size = options.get("population_size") or max(tournament or 0, 4, min(10, n_trials // 5))
        return ParetoEvolutionSampler(space, population_size=int(size),
                                      tournament_size=int(tournament or min(3, size)),
                                      candidates=int(options.get("candidates", 8)), constraints=_stored_constraints,
                                      seed=seed, exploit=EXPLOIT if exploit is None else float(exploit),
                                      init=options.get("init") or "random")
    if name == "nsga2":
        size = options.get("population_size") or max(4, min(50, n_trials // 4))
        return optuna.samplers.NSGAIISampler(population_size=int(size), seed=seed)
    if name == "tpe":
        startup = options.get("n_startup_trials") or max(3, min(10, n_trials // 5))
        with warnings.catch_warnings():  # multivariate, group and constant_liar are "experimental" in Optuna 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
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
    if "seed" in inspect.signature(cls).parameters:
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
    return dict(config.goal.constraints) if config.strategy.sample_within_limits else {}


def rung_options(options: dict[str, Any]) -> dict[str, Any]:
    """The ``pareto`` pruner's options with their defaults, checked: ``min_epochs`` (first rung, default 1),
    ``reduction_factor`` (eta, default 3), ``rule`` (``margin`` - cost-aware, ranked by the margin to the
    front at each trial's cost, the default - ``ranked`` - the same with front members under the quota too -
    ``pareto`` - cost-aware, against the cheaper trials only -
    ``nds`` - MO-ASHA's non-dominated sorting - or ``asha`` - accuracy only) and ``calibrate`` (default True:
    a rung judges the validation accuracy measured after recomputing batch-norm statistics,
    ``nas.train.calibrated_accuracy``; False: the plain one, as studies stored before this option) and ``reach``
    (default ``REACH_DEFAULT``: also stop a trial that cannot reach the front of the finished trials even with the
    largest gain after the rung of a finished trial of its kind, ``nas.rungs.can_reach``; a study stored before
    the option reads False)."""
    from nas.rungs import RULES

    out = {"min_epochs": options.get("min_epochs", 1), "reduction_factor": options.get("reduction_factor", 3),
           "rule": options.get("rule", "margin"), "calibrate": options.get("calibrate", True),
           "reach": options.get("reach", REACH_DEFAULT)}
    check_int("pruner.min_epochs", out["min_epochs"], 1)
    check_int("pruner.reduction_factor", out["reduction_factor"], 2)
    if out["rule"] not in RULES:
        raise ValueError(f"`pruner.rule` must be one of {', '.join(RULES)}, but got pruner.rule={out['rule']!r}")
    for flag in ("calibrate", "reach"):
        if not isinstance(out[flag], bool):
            raise ValueError(f"`pruner.{flag}` must be true or false, but got pruner.{flag}={out[flag]!r}")
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
            _check_option(name, k, options[k], "pruner")
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


def make_evaluator(component: Component | None) -> Evaluator | None:
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
        raise ValueError(f"`evaluator` {component.name!r} cannot be imported here: "
                         f"{type(exc).__name__}: {exc}") from None
    if vars(obj).get(EVALUATOR_MARK) is not True:  # marked itself, not through a marked base class
        raise ValueError(f"`evaluator` {component.name!r} is not marked with @nas.evaluator, so a study may not call "
                         f"it")
    try:
        if isinstance(obj, type):
            return obj(**component.options)
        return functools.partial(obj, **component.options) if component.options else obj
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`evaluator` {component.name!r} with options {component.options}: {exc}") from None
