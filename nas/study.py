"""``nas.search``, ``nas.load_study`` and ``nas.Study``: a search is an Optuna study plus its stored config."""

from __future__ import annotations

import base64
import datetime
import json
import os
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import optuna
from optuna.trial import TrialState

import search_spaces
from nas._storage import (default_artifacts, describe_storage, open_storage, read_config,
                          write_config)
from nas.budget import OBJECTIVES, Budget, check_constraints, check_objectives
from nas.ranking import hypervolume as _hypervolume
from nas.ranking import knee_index, non_dominated_ranks
from nas.spec import ArchSpec

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)

__all__ = ["Study", "TrialRecord", "search", "load_study"]

SAMPLERS = ("nsga2", "tpe", "random", "grid")
BACKENDS = ("local", "ray", "keras_tuner")
PRUNERS = ("median", "successive_halving", "asha", "hyperband")
CONFIG_VERSION = 1


@dataclass(frozen=True)
class TrialRecord:
    """One trial as stored: what was sampled, what it cost, how it did, and why it failed if it did.

    ``status``: ``ok`` (trained), ``reused`` (same spec as an earlier trial: its result), ``infeasible`` (over a
    constraint: never built), ``pruned``, ``failed``, ``running`` or ``waiting``.
    """

    number: int
    state: str
    status: str
    spec: ArchSpec | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    timings: dict[str, float]
    error: str | None
    user_attrs: dict[str, Any] = field(repr=False)

    @property
    def key(self) -> str | None:
        return self.user_attrs.get("spec_key")

    @property
    def spec_str(self) -> str:
        return self.user_attrs.get("spec_str", "")


def _record(t: optuna.trial.FrozenTrial) -> TrialRecord:
    a = t.user_attrs
    spec = ArchSpec.from_json(a["spec"]) if "spec" in a else None
    status = a.get("status") or {TrialState.RUNNING: "running", TrialState.WAITING: "waiting",
                                 TrialState.FAIL: "failed", TrialState.PRUNED: "pruned"}.get(t.state, "ok")
    metrics = {k: a[k] for k in ("accuracy", "macs", "flops", "params", "latency_ms", "train_accuracy", "loss",
                                 "epochs") if k in a}
    if "latency_ms" in metrics:
        metrics["latency"] = metrics["latency_ms"]
    if t.state == TrialState.PRUNED and "accuracy" not in metrics and t.intermediate_values:
        metrics["accuracy"] = t.intermediate_values[max(t.intermediate_values)]
    return TrialRecord(number=t.number, state=t.state.name, status=status, spec=spec, params=dict(t.params),
                       metrics=metrics, timings=dict(a.get("timings", {})), error=a.get("error"), user_attrs=dict(a))


class Study:
    """A ``nas`` search stored in an Optuna study: its trials, ranking, resume and export."""

    def __init__(self, study: optuna.Study, storage_url: str) -> None:
        self.optuna_study = study
        self.storage_url = storage_url
        self.config = read_config(study)

    # ------------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        return self.optuna_study.study_name

    @property
    def objectives(self) -> tuple[str, ...]:
        return tuple(self.config["objectives"])

    @property
    def n_trials(self) -> int:
        """The target number of finished trials."""
        return int(read_config(self.optuna_study)["n_trials"])

    @property
    def space(self) -> search_spaces.Space:
        return search_spaces.from_config(self.config["space"])

    @property
    def budget(self) -> Budget:
        return Budget.of(self.config["budget"])

    def __repr__(self) -> str:
        return f"nas.Study({self.name!r}, storage={self.storage_url!r})"

    # ------------------------------------------------------------------ trials
    @property
    def trials(self) -> list[TrialRecord]:
        return [_record(t) for t in self.optuna_study.get_trials(deepcopy=False)]

    def counts(self) -> dict[str, int]:
        from nas._worker import counts

        return counts(self.optuna_study.get_trials(deepcopy=False))

    def evaluated(self) -> list[TrialRecord]:
        """Trials with a full result, one per distinct architecture (reused trials point to the original)."""
        seen, out = set(), []
        for r in self.trials:
            if r.status in ("ok", "reused") and r.key not in seen and "accuracy" in r.metrics:
                seen.add(r.key)
                out.append(r)
        return out

    # ------------------------------------------------------------------ ranking
    def _matrix(self, records: list[TrialRecord], objectives: tuple[str, ...]) -> np.ndarray:
        return np.array([[r.metrics.get(o, np.nan) for o in objectives] for r in records], dtype=float)

    def _front_objectives(self, objectives: Any) -> tuple[str, ...]:
        if objectives is None:
            objectives = self.objectives if len(self.objectives) > 1 else ("accuracy", "macs")
        return check_objectives(objectives)

    def ranked(self, objectives: Any = None) -> list[tuple[int, TrialRecord]]:
        """(rank, record) for every evaluated architecture: non-dominated rank on ``objectives`` (default: the
        study's, or accuracy and MACs for a single-objective study), then higher accuracy, then fewer MACs,
        then fewer params, then the earlier trial."""
        objectives = self._front_objectives(objectives)
        records = self.evaluated()
        if not records:
            return []
        ranks = non_dominated_ranks(self._matrix(records, objectives), [OBJECTIVES[o] for o in objectives])
        order = sorted(range(len(records)), key=lambda i: (
            ranks[i], -records[i].metrics["accuracy"], records[i].metrics["macs"], records[i].metrics["params"],
            records[i].number))
        return [(int(ranks[i]), records[i]) for i in order]

    def pareto_front(self, objectives: Any = None) -> list[TrialRecord]:
        return [r for rank, r in self.ranked(objectives) if rank == 0]

    def knee(self, objectives: Any = None) -> TrialRecord | None:
        """The front's knee: the best trade-off point (see ``nas.ranking.knee_index``)."""
        objectives = self._front_objectives(objectives)
        front = self.pareto_front(objectives)
        i = knee_index(self._matrix(front, objectives), [OBJECTIVES[o] for o in objectives])
        return None if i is None else front[i]

    def best(self, **limits: float) -> TrialRecord | None:
        """Highest accuracy (ties: fewer MACs) among evaluated trials within ``limits``: ``max_macs``,
        ``max_flops``, ``max_params``, ``max_latency`` (ms)."""
        bad = sorted(set(limits) - {"max_macs", "max_flops", "max_params", "max_latency"})
        if bad:
            raise ValueError(f"best(): limits must be chosen from max_macs, max_flops, max_params, max_latency, "
                             f"but got {bad[0]!r}")
        ok = []
        for r in self.evaluated():
            if all(r.metrics.get(k[4:], np.inf) <= v for k, v in limits.items()):
                ok.append(r)
        if not ok:
            return None
        return min(ok, key=lambda r: (-r.metrics["accuracy"], r.metrics["macs"], r.number))

    def reference_point(self, objectives: Any = None) -> dict[str, float]:
        """The hypervolume reference: accuracy 0, and for each cost objective its constraint if the study has one,
        else 1.1 x the largest value among evaluated trials."""
        objectives = self._front_objectives(objectives)
        ref = {}
        constraints = self.config.get("constraints") or {}
        records = self.evaluated()
        for o in objectives:
            if o == "accuracy":
                ref[o] = 0.0
            elif f"max_{o}" in constraints:
                ref[o] = float(constraints[f"max_{o}"])
            else:
                ref[o] = 1.1 * max((r.metrics.get(o, 0.0) for r in records), default=1.0) or 1.0
        return ref

    def hypervolume(self, reference: dict[str, float] | None = None, objectives: Any = None) -> float:
        """Hypervolume of the evaluated trials, each cost objective divided by its reference value (so the
        result is in [0, 1] for accuracy x one cost). ``reference`` defaults to :meth:`reference_point`."""
        objectives = self._front_objectives(objectives)
        ref = {**self.reference_point(objectives), **(reference or {})}
        records = self.evaluated()
        if not records:
            return 0.0
        values = self._matrix(records, objectives)
        scale = np.array([1.0 if o == "accuracy" else ref[o] for o in objectives])
        return _hypervolume(values / scale, [OBJECTIVES[o] for o in objectives],
                            [ref[o] / s for o, s in zip(objectives, scale)])

    def table(self, objectives: Any = None, *, limit: int | None = None, file: TextIO | None = None) -> str:
        """The ranked table (rank, trial, accuracy, MACs, params, latency, spec), knee marked with ``*``."""
        ranked = self.ranked(objectives)
        knee = self.knee(objectives)
        lines = [f"{'rank':>4} {'trial':>5}  {'accuracy':>8} {'MACs':>12} {'params':>10} {'latency':>9}  spec"]
        for rank, r in ranked[:limit]:
            lat = r.metrics.get("latency_ms")
            mark = "*" if knee is not None and r.number == knee.number else " "
            lines.append(f"{rank:>4} {r.number:>5}{mark} {r.metrics['accuracy']:>8.4f} {r.metrics['macs']:>12,} "
                         f"{r.metrics['params']:>10,} {f'{lat:.2f}ms' if lat is not None else '-':>9}  {r.spec_str}")
        text = "\n".join(lines)
        if file is not None:
            print(text, file=file)
        return text

    # ------------------------------------------------------------------ running
    def resume(self, n_trials: int | None = None, *, n_workers: int | None = None, verbose: bool = True,
               backend: str = "local", resources_per_trial: dict[str, float] | None = None,
               ray_address: str | None = None, max_concurrent: int | None = None, scheduler: str | None = None) -> Study:
        """Continue the search until ``n_trials`` trials are finished (default: the stored target). Trials left
        running by a dead process are failed with the reason and re-run from their params. ``backend`` is
        ``local`` (worker processes here) or ``ray`` (Ray Tune; see :func:`search`) - a study may switch. A study
        made with ``backend="keras_tuner"`` continues its keras-tuner run (``overwrite=False``)."""
        if "keras_tuner" in self.config:
            if not self.config["keras_tuner"].get("run"):
                raise ValueError(f"study {self.name!r} is a view of a keras-tuner run made outside nas: continue the "
                                 f"tuner itself (overwrite=False) and call nas.from_keras_tuner(tuner) again")
            if backend not in ("local", "keras_tuner") or scheduler is not None or ray_options_given(
                    resources_per_trial, ray_address, max_concurrent):
                raise ValueError(f"study {self.name!r} is a keras-tuner search: it continues with keras-tuner "
                                 f"(backend='keras_tuner'), but got backend={backend!r}")
            config = read_config(self.optuna_study)
            if n_trials is not None:
                _check_int("n_trials", n_trials, 1)
                config["n_trials"] = n_trials
                write_config(self.optuna_study, config)
            self.config = config
            from nas.keras_tuner import run_study

            run_study(self, verbose=verbose)
            return self
        if backend not in ("local", "ray"):
            raise ValueError(f"`backend` must be 'local' or 'ray', but got backend={backend!r}")
        ray_options = None
        if backend == "ray":
            from nas._ray import check_ray_options

            ray_options = check_ray_options(resources_per_trial, scheduler, self.objectives, max_concurrent)
        elif scheduler is not None:
            raise ValueError("`scheduler` (Ray Tune's ASHA / HyperBand) needs backend='ray'; the local backend "
                             "prunes with `pruner`")
        config = read_config(self.optuna_study)
        if n_trials is not None:
            if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
                raise ValueError(f"`n_trials` must be a positive integer, but got n_trials={n_trials!r}")
            config["n_trials"] = n_trials
            write_config(self.optuna_study, config)
        self.config = config
        if ray_options is not None:
            from nas._ray import run_ray

            run_ray(self, options=ray_options, ray_address=ray_address, verbose=verbose)
            return self
        from nas._supervise import supervise

        workers = n_workers if n_workers is not None else int(config.get("n_workers") or 1)
        supervise(self, n_workers=max(1, workers), verbose=verbose)
        return self

    def export(self, which: Any = "best", path: str | os.PathLike[str] = "exports", *, retrain_epochs: int = 0,
               **limits: float) -> list[Path]:
        """Write ``.keras`` model + ``spec.json`` + ``metrics.json`` per architecture; ``which`` is a trial number,
        ``"best"`` (optionally under ``limits``, e.g. ``max_macs=``), ``"knee"`` or ``"front"``. With
        ``retrain_epochs`` > 0 each model is retrained from scratch on train + validation first."""
        from nas.export import export_trials

        return export_trials(self, which, Path(path), retrain_epochs=retrain_epochs, **limits)


# ------------------------------------------------------------------ creating a search

def _space_for(space: Any, data_shape: tuple[int, int, int], num_classes: int) -> search_spaces.Space:
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
        options = dict(space.get("options") or {})
        if space["space"] != "compound":
            options.setdefault("input_shape", data_shape)
        options.setdefault("num_classes", num_classes)
        from search_spaces._space import from_jsonable

        return search_spaces.get(space["space"], **from_jsonable(options))
    if isinstance(space, search_spaces.Space):
        return space
    raise ValueError(f"`space` must be a space name, a config dict or a search_spaces.Space, but got "
                     f"{type(space).__name__}")


def _sampler_config(sampler: Any, objectives: tuple[str, ...], space: search_spaces.Space) -> dict[str, Any]:
    if sampler is None:
        sampler = "nsga2" if len(objectives) > 1 else "tpe"
    if isinstance(sampler, str):
        if sampler not in SAMPLERS:
            raise ValueError(f"`sampler` must be one of {', '.join(SAMPLERS)} or an Optuna sampler, but got "
                             f"sampler={sampler!r}")
        if sampler == "grid" and not hasattr(space, "grid"):
            raise ValueError(f"`sampler`: grid sampling needs a space with a fixed set of labels, but the "
                             f"{space.name!r} space asks labels that depend on earlier choices; use random, tpe "
                             f"or nsga2, or pass optuna.samplers.GridSampler(...)")
        return {"name": sampler}
    if isinstance(sampler, dict) and sampler.get("name") in SAMPLERS:
        return dict(sampler)
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return {"name": "object", "class": type(sampler).__name__,
                "pickle": base64.b64encode(pickle.dumps(sampler)).decode()}
    raise ValueError(f"`sampler` must be one of {', '.join(SAMPLERS)} or an Optuna sampler, but got {sampler!r}")


def _pruner_config(pruner: Any, objectives: tuple[str, ...]) -> dict[str, Any] | None:
    if pruner is None or pruner == "none":
        return None
    if len(objectives) > 1 or objectives[0] != "accuracy":
        raise ValueError(f"`pruner` works on per-epoch validation accuracy: it needs objectives=('accuracy',), "
                         f"but got objectives={list(objectives)!r}")
    if isinstance(pruner, str):
        if pruner not in PRUNERS:
            raise ValueError(f"`pruner` must be one of {', '.join(PRUNERS)} or an Optuna pruner, but got "
                             f"pruner={pruner!r}")
        return {"name": pruner}
    if isinstance(pruner, optuna.pruners.BasePruner):
        return {"name": "object", "class": type(pruner).__name__,
                "pickle": base64.b64encode(pickle.dumps(pruner)).decode()}
    raise ValueError(f"`pruner` must be one of {', '.join(PRUNERS)} or an Optuna pruner, but got {pruner!r}")


def ray_options_given(resources_per_trial: Any, ray_address: Any, max_concurrent: Any) -> bool:
    return any(v is not None for v in (resources_per_trial, ray_address, max_concurrent))


def _keras_tuner_config(backend: str, tuner: Any, tuner_options: Any, *, sampler: Any, pruner: Any,
                        objectives: tuple[str, ...], n_workers: int, constraints: dict[str, float] | None,
                        evaluator: Any) -> dict[str, Any] | None:
    """Check the keras-tuner backend's arguments (before anything runs) and return its config part."""
    if backend != "keras_tuner":
        if tuner is not None or tuner_options is not None:
            raise ValueError(f"`tuner` / `tuner_options` choose a keras-tuner tuner and need backend='keras_tuner', "
                             f"but got backend={backend!r}")
        return None
    from nas.budget import ANALYTIC, CONSTRAINTS

    kinds = ("random", "bayesian", "hyperband")
    if tuner not in kinds:
        raise ValueError(f"`tuner` must be one of {', '.join(kinds)} with backend='keras_tuner', but got tuner={tuner!r}")
    if tuner_options is not None and not isinstance(tuner_options, dict):
        raise ValueError(f"`tuner_options` must be a dict of keras-tuner arguments, but got {tuner_options!r}")
    reserved = {"hypermodel", "objective", "max_trials", "seed", "directory", "project_name", "overwrite"}
    clash = sorted(reserved & set(tuner_options or {}))
    if clash:
        raise ValueError(f"`tuner_options`: {clash[0]!r} is set by nas (n_trials, seed, the study's directory); "
                         f"remove it from tuner_options")
    if evaluator is not None and tuner == "hyperband":
        raise ValueError("`evaluator` with tuner='hyperband': Hyperband's budget is training epochs; use "
                         "tuner='random' or 'bayesian' with a tabular evaluator")
    if sampler is not None:
        raise ValueError(f"`sampler` is Optuna's; with backend='keras_tuner' the keras-tuner `tuner` samples, but got "
                         f"sampler={sampler!r}")
    if pruner is not None:
        raise ValueError("`pruner` is Optuna's; with backend='keras_tuner' use tuner='hyperband'")
    if "accuracy" not in objectives or "latency" in objectives:
        raise ValueError(f"`objectives` with backend='keras_tuner' must include accuracy and may add macs, flops or "
                         f"params (keras-tuner measures no latency), but got objectives={list(objectives)}")
    if n_workers != 1:
        raise ValueError(f"`n_workers` with backend='keras_tuner' must be 1 (keras-tuner runs its trials in this "
                         f"process), but got n_workers={n_workers!r}")
    for name in constraints or {}:
        if CONSTRAINTS.get(name) not in ANALYTIC:
            raise ValueError(f"`constraints` with backend='keras_tuner' may only limit analytic costs "
                             f"(max_macs, max_flops, max_params), but got {name}")
    return {"tuner": tuner, "options": dict(tuner_options or {}), "run": True}


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"`{name}` must be an integer >= {low}, but got {name}={value!r}")
    return value


def search(space: Any, data: Any = "digits", *, objectives: Any = ("accuracy", "macs"), n_trials: int = 20,
           sampler: Any = None, storage: Any = None, study_name: str | None = None, budget: Any = None,
           constraints: dict[str, float] | None = None, warm_start: Any = (), n_workers: int = 1,
           seed: int | None = None, pruner: Any = None, max_retries: int = 2, max_trials_per_worker: int = 20,
           max_failures: int | None = None, device: str = "auto", mixed_precision: str | None = None,
           jit_compile: Any = "auto", tpu_address: str | None = None, backend: str = "local",
           resources_per_trial: dict[str, float] | None = None, ray_address: str | None = None,
           max_concurrent: int | None = None, scheduler: str | None = None,
           artifacts: str | os.PathLike[str] | None = None, evaluator: Any = None,
           data_options: dict[str, Any] | None = None, tuner: str | None = None,
           tuner_options: dict[str, Any] | None = None, verbose: bool = True) -> Study:
    """Run a multi-objective architecture search and return the :class:`Study`.

    Everything is validated before any training starts. Trials run in worker processes (``n_workers`` at a
    time, each recycled after ``max_trials_per_worker`` trials so that TensorFlow's per-model memory growth
    cannot accumulate). The study's configuration is stored with it, so ``nas.load_study(...).resume()`` or
    ``nas resume`` continues it with nothing else. See the README for every argument.
    """
    from nas.data import load_data

    objectives = check_objectives(objectives)
    _check_int("n_trials", n_trials, 1)
    _check_int("n_workers", n_workers, 0)
    _check_int("max_retries", max_retries, 0)
    _check_int("max_trials_per_worker", max_trials_per_worker, 0)
    if max_failures is not None:
        _check_int("max_failures", max_failures, 1)
    if seed is not None:
        _check_int("seed", seed, 0)
    budget_obj = Budget.of(budget)
    from nas.devices import check_device_options, check_devices

    devices = check_device_options(device, mixed_precision, jit_compile, tpu_address)
    if backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {', '.join(BACKENDS)}, but got backend={backend!r}")
    keras_tuner_config = _keras_tuner_config(backend, tuner, tuner_options, sampler=sampler, pruner=pruner,
                                             objectives=objectives, n_workers=n_workers, constraints=constraints,
                                             evaluator=evaluator)
    if backend == "ray":
        from nas._ray import check_ray_options

        check_ray_options(resources_per_trial, scheduler, objectives, max_concurrent)
    elif scheduler is not None:
        raise ValueError("`scheduler` (Ray Tune's ASHA / HyperBand) needs backend='ray'; the local backend prunes "
                         "with `pruner`")
    if pruner is not None and backend == "ray":
        raise ValueError("`pruner` (Optuna's) works with the local backend; with backend='ray' use "
                         "scheduler='asha' or 'hyperband'")
    constraints = check_constraints(constraints)
    url = describe_storage(storage)
    storage_obj = open_storage(url)
    if study_name is None:
        study_name = f"{space if isinstance(space, str) else getattr(space, 'name', 'search')}-" \
                     f"{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if not isinstance(study_name, str) or not study_name or "/" in study_name:
        raise ValueError(f"`study_name` must be a non-empty string without '/', but got study_name={study_name!r}")
    if study_name in optuna.get_all_study_names(storage_obj):
        raise ValueError(f"study {study_name!r} already exists in {url}: continue it with "
                         f"nas.load_study({study_name!r}, {url!r}).resume(), or choose another study_name")
    artifacts_dir = str(Path(artifacts).resolve()) if artifacts is not None else default_artifacts(url, study_name)

    evaluator_pickle = None
    if evaluator is not None:
        if not callable(evaluator):
            raise ValueError(f"`evaluator` must be a function from ArchSpec to a metrics dict, but got {evaluator!r}")
        evaluator_pickle = base64.b64encode(pickle.dumps(evaluator)).decode()
        space_obj = _space_for(space, getattr(space, "input_shape", (32, 32, 3)),
                               getattr(space, "num_classes", 10))
        data_ref: dict[str, Any] = {"kind": "evaluator"}
    else:
        if isinstance(data, dict) and "name" in data and "kind" not in data:
            data = {"kind": "name", **data}
        loaded = load_data(data, save_to=Path(artifacts_dir), **(data_options or {}))
        space_obj = _space_for(space, loaded.input_shape, loaded.num_classes)
        if space_obj.input_shape[2] != loaded.input_shape[2]:
            raise ValueError(f"`space` input_shape {space_obj.input_shape} has {space_obj.input_shape[2]} channels, "
                             f"but the data has {loaded.input_shape[2]} ({loaded.describe()}); configure the space "
                             f"with input_shape={loaded.input_shape} or pass the space by name")
        if space_obj.num_classes != loaded.num_classes:
            raise ValueError(f"`space` num_classes={space_obj.num_classes}, but the data has {loaded.num_classes} "
                             f"classes ({loaded.describe()})")
        data_ref = loaded.ref
    space_constraints = dict(getattr(space_obj, "constraints", {}) or {})
    constraints = {**space_constraints, **constraints}
    # warm start: classic networks of the space (by name) or explicit label dicts
    if isinstance(warm_start, (str, dict)):
        warm_start = [warm_start]
    warm: list[tuple[str, dict[str, Any]]] = []
    for item in warm_start:
        if isinstance(item, str):
            warm.append((item, space_obj.params_of(item)))
        elif isinstance(item, dict):
            from nas.trial import FixedTrial

            space_obj.sample(FixedTrial(item))  # fails now, with the label named, if outside the space
            warm.append(("params", dict(item)))
        else:
            raise ValueError(f"`warm_start` items must be classic network names or label dicts, but got {item!r}")
    config = {
        "version": CONFIG_VERSION, "space": space_obj.config(), "objectives": list(objectives),
        "sampler": {**_sampler_config(sampler, objectives, space_obj), "seed": seed},
        "pruner": _pruner_config(pruner, objectives), "budget": budget_obj.to_dict(), "constraints": constraints,
        "data": data_ref, "n_trials": n_trials, "n_workers": n_workers, "max_retries": max_retries,
        "max_trials_per_worker": max_trials_per_worker, "max_failures": max_failures, "artifacts": artifacts_dir,
        "warm_start": [name for name, _ in warm], "evaluator": evaluator_pickle,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    config["devices"] = devices
    if keras_tuner_config is not None:
        keras_tuner_config.update(directory=str(Path(artifacts_dir) / "keras_tuner"), project_name=study_name)
        config["keras_tuner"] = keras_tuner_config
        config["sampler"] = {"name": f"keras_tuner.{tuner}", "seed": seed}
    json.dumps(config)  # everything stored must be plain JSON
    if evaluator is None:
        check_devices(devices)  # absent hardware fails the search now, not every trial
    # create the study once, here, before any worker starts (concurrent creation races on SQLite)
    study = optuna.create_study(study_name=study_name, storage=storage_obj,
                                directions=[OBJECTIVES[o] for o in objectives])
    write_config(study, config)
    for name, params in warm:
        study.enqueue_trial(params, user_attrs={"warm_start": name})
    result = Study(study, url)
    if verbose:
        print(f"nas: study {study_name!r} in {url}")
    if n_workers == 0:  # created for workers started elsewhere (`nas worker --study NAME --storage URL`)
        if verbose:
            print(f"nas: no local workers; start them with `nas worker --study {study_name} --storage {url}`")
        return result
    if keras_tuner_config is not None:
        return result.resume(verbose=verbose)
    return result.resume(verbose=verbose, backend=backend, resources_per_trial=resources_per_trial,
                         ray_address=ray_address, max_concurrent=max_concurrent, scheduler=scheduler)


def load_study(study_name: str, storage: Any = None) -> Study:
    """The :class:`Study` stored under ``study_name`` (for inspection, resume and export)."""
    url = describe_storage(storage)
    storage_obj = open_storage(url)
    names = optuna.get_all_study_names(storage_obj)
    if study_name not in names:
        raise ValueError(f"no study {study_name!r} in {url} (studies there: {', '.join(names) or 'none'})")
    return Study(optuna.load_study(study_name=study_name, storage=storage_obj), url)
