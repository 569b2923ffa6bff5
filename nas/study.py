"""The facade: ``nas.create_study``, ``nas.search``, ``nas.load_study``, ``nas.from_keras_tuner`` and ``nas.Study``.

A search is an Optuna study plus its stored record (:class:`~nas.engine.schema.StudyConfig`): the space, the data
and the groups ``goal`` (what for), ``strategy`` (how) and ``run`` (where). ``create_study`` checks all of it
(before anything trains), resolves it (the space configured for the data, the default sampler, the artefact
folder), stores the record and the warm-start trials, and runs nothing; ``search`` is ``create_study(...)
.resume()``; ``Study.resume`` runs trials on the study's backend.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias, TypedDict

import numpy as np
import optuna

import search_spaces
from nas import backends
from nas.budget import OBJECTIVES, Budget, Direction, ObjectivesLike, check_objectives
from nas.devices import check_devices
from nas.engine import records
from nas.engine.claims import counts
from nas.engine.components import (
    EvaluatorLike,
    check_runnable,
    evaluator_component,
    pruner_component,
    sampler_component,
)
from nas.engine.limits import check_reachable
from nas.engine.progress import FINISHED, listening
from nas.engine.records import TrialRecord
from nas.engine.schema import (
    Component,
    Goal,
    GoalLike,
    Strategy,
    StrategyLike,
    StudyConfig,
    data_ref,
    is_nas_study,
    now,
    read_config,
    space_ref,
    write_config,
)
from nas.engine.setup import configure_space, warm_start_params
from nas.engine.storage import (
    artifacts_folder,
    check_storage_path,
    claim_lock,
    default_artifacts,
    describe_storage,
    lock_path,
    mask_url,
    open_storage,
)
from nas.engine.where import Backend, BackendLike, KerasTuner, Ray, Run, RunLike, StorageLike, backend_of
from nas.ranking import hypervolume as _hypervolume
from nas.ranking import knee_index, non_dominated_ranks
from nas.validate import check_int

if TYPE_CHECKING:
    import keras_tuner
    import pandas as pd

    from nas.data import Data, DataLike

optuna.logging.set_verbosity(optuna.logging.WARNING)

__all__ = ["Callbacks", "EpochCounts", "SpaceLike", "Study", "TrialCallback", "TrialRecord", "create_study",
           "from_keras_tuner", "load_study", "search"]

# a search space as it is given: a name (configured from the data), {"name": ..., "options": {...}}, or a
# search_spaces.Space
SpaceLike: TypeAlias = str | dict[str, Any] | search_spaces.Space
# a function called as fn(study, record) for every trial that finishes; `callbacks` take one or an iterable of them
TrialCallback: TypeAlias = "Callable[[Study, TrialRecord], object]"
Callbacks: TypeAlias = "TrialCallback | Iterable[TrialCallback]"


class EpochCounts(TypedDict):
    """Training epochs a study spent (:meth:`Study.epochs`)."""

    trained: int
    full: int
    saved: int
    stopped_at: dict[int, int]


class Study:
    """A ``nas`` search stored in an Optuna study: its trials, ranking, resume and export."""

    _created_with: str | None = None  # the artefact folder create_study was given in this process (confirmed)

    def __init__(self, study: optuna.Study, storage_url: str) -> None:
        self.optuna_study = study
        self.storage_url = storage_url
        self.config = self._located(read_config(study))

    def _located(self, config: StudyConfig) -> StudyConfig:
        """The record with the storage it was read from (which the stored record leaves out)."""
        return config.replace(run=config.run.replace(storage=self.storage_url))

    # ------------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        return self.optuna_study.study_name

    @property
    def objectives(self) -> tuple[str, ...]:
        return self.config.objectives

    @property
    def n_trials(self) -> int:
        """The target number of finished trials."""
        return read_config(self.optuna_study).n_trials

    @property
    def space(self) -> search_spaces.Space:
        return search_spaces.from_config(self.config.space)

    @property
    def budget(self) -> Budget:
        return self.config.budget

    @property
    def backend(self) -> Backend:
        """The backend the study runs on (stored with it; ``resume`` continues on it unless given another)."""
        return self.config.run.backend

    def __repr__(self) -> str:
        return f"nas.Study({self.name!r}, storage={mask_url(self.storage_url)!r})"

    # ------------------------------------------------------------------ trials
    @property
    def trials(self) -> list[TrialRecord]:
        return [records.read(t) for t in self.optuna_study.get_trials(deepcopy=False)]

    def counts(self) -> dict[str, int]:
        """Trials by outcome: ``done`` (complete + pruned), ``running``, ``waiting``, ``infeasible``, ``failed``."""
        return counts(self.optuna_study.get_trials(deepcopy=False))

    def trials_dataframe(self) -> pd.DataFrame:
        """One row per trial (pandas): ``number``, ``state``, ``status``, the metrics (``accuracy``, ``macs``,
        ``flops``, ``params``, ``latency_ms``, ``epochs``), ``spec`` (the string form), ``pruned_by``, ``error``,
        ``duration_s``, where it trained (``devices``: the devices its strategy used, ``strategy``, ``precision``)
        and the sampled labels as ``params_<label>``, like Optuna's ``trials_dataframe()``."""
        import pandas as pd

        rows = []
        for t in self.optuna_study.get_trials(deepcopy=False):
            r = records.read(t)
            duration = ((t.datetime_complete - t.datetime_start).total_seconds()
                        if t.datetime_complete and t.datetime_start else None)
            row = {"number": r.number, "state": r.state, "status": r.status}
            row.update({k: r.metrics.get(k) for k in ("accuracy", "macs", "flops", "params", "latency_ms", "epochs")})
            placed = r.user_attrs.get("devices") or {}
            row.update({"spec": r.spec_str or None, "pruned_by": r.user_attrs.get("pruned_by"), "error": r.error,
                        "duration_s": duration, "devices": ",".join(placed.get("used") or []) or None,
                        "strategy": placed.get("strategy"), "precision": placed.get("precision")})
            row.update({f"params_{k}": v for k, v in sorted(r.params.items())})
            rows.append(row)
        return pd.DataFrame(rows)

    def devices(self) -> dict[str, int]:
        """Trained trials by where they trained: ``"GPU:0 (OneDeviceStrategy, mixed_float16)"`` -> count (from
        each trial's ``devices`` record; trials stored before it was recorded are left out)."""
        out: dict[str, int] = {}
        for r in self.trials:
            placed = r.user_attrs.get("devices")
            if placed:
                where = f"{','.join(placed.get('used') or [])} ({placed.get('strategy')}, {placed.get('precision')})"
                out[where] = out.get(where, 0) + 1
        return dict(sorted(out.items()))

    def epochs(self) -> EpochCounts:
        """Training epochs spent: ``trained`` (every trial's epochs, stopped trials' up to their stop),
        ``full`` (what the same trials would have cost at the full budget), ``saved`` (the difference: early stops,
        and children that inherited weights and trained ``inherit_epochs``) and
        ``stopped_at`` (epochs -> trials stopped there). Reused trials (a repeated architecture taking an earlier
        trial's result or stop, ``reused_from``) and over-budget ones train nothing; failed trials count the
        epochs they recorded."""
        full_budget = self.budget.epochs if self.config.evaluator is None else 0  # an evaluator trains nothing
        trained = full = 0
        stopped: dict[int, int] = {}
        for r in self.trials:
            epochs = r.trained_epochs
            if epochs is None:
                continue
            trained += epochs
            full += full_budget if r.status != "failed" else epochs
            if r.status == "pruned":
                stopped[epochs] = stopped.get(epochs, 0) + 1
        return {"trained": trained, "full": full, "saved": full - trained, "stopped_at": dict(sorted(stopped.items()))}

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

    def front_objectives(self, objectives: ObjectivesLike | None = None) -> tuple[str, ...]:
        """``objectives`` checked, or the study's own (accuracy and MACs for a single-objective study)."""
        if objectives is None:
            objectives = self.objectives if len(self.objectives) > 1 else ("accuracy", "macs")
        return check_objectives(objectives)

    def ranked(self, objectives: ObjectivesLike | None = None) -> list[tuple[int, TrialRecord]]:
        """(rank, record) for every evaluated architecture: non-dominated rank on ``objectives`` (default: the
        study's, or accuracy and MACs for a single-objective study), then higher accuracy, then fewer MACs,
        then fewer params, then the earlier trial."""
        objectives = self.front_objectives(objectives)
        records = self.evaluated()
        if not records:
            return []
        ranks = non_dominated_ranks(self._matrix(records, objectives), [OBJECTIVES[o] for o in objectives])
        order = sorted(range(len(records)), key=lambda i: (
            ranks[i], -records[i].metrics["accuracy"], records[i].metrics["macs"], records[i].metrics["params"],
            records[i].number))
        return [(int(ranks[i]), records[i]) for i in order]

    def pareto_front(self, objectives: ObjectivesLike | None = None) -> list[TrialRecord]:
        return [r for rank, r in self.ranked(objectives) if rank == 0]

    def knee(self, objectives: ObjectivesLike | None = None) -> TrialRecord | None:
        """The front's knee: the best trade-off point (see ``nas.ranking.knee_index``)."""
        objectives = self.front_objectives(objectives)
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
        from nas.export import check_selection

        check_selection("best", limits)
        ok = []
        for r in self.evaluated():
            if all(r.metrics.get(k[4:], np.inf) <= v for k, v in limits.items()):
                ok.append(r)
        if not ok:
            return None
        return min(ok, key=lambda r: (-r.metrics["accuracy"], r.metrics["macs"], r.number))

    def reference_point(self, objectives: ObjectivesLike | None = None) -> dict[str, float]:
        """The hypervolume reference: accuracy 0, and for each cost objective its constraint if the study has one,
        else 1.1 x the largest value among evaluated trials."""
        objectives = self.front_objectives(objectives)
        ref = {}
        constraints = self.config.constraints
        records = self.evaluated()
        for o in objectives:
            if o == "accuracy":
                ref[o] = 0.0
            elif f"max_{o}" in constraints:
                ref[o] = float(constraints[f"max_{o}"])
            else:
                ref[o] = 1.1 * max((r.metrics.get(o, 0.0) for r in records), default=1.0) or 1.0
        return ref

    def hypervolume(self, reference: dict[str, float] | None = None, objectives: ObjectivesLike | None = None) -> float:
        """Hypervolume of the evaluated trials, each cost objective divided by its reference value (so the
        result is in [0, 1] for accuracy x one cost). ``reference`` defaults to :meth:`reference_point`."""
        objectives = self.front_objectives(objectives)
        ref = {**self.reference_point(objectives), **(reference or {})}
        records = self.evaluated()
        if not records:
            return 0.0
        values = self._matrix(records, objectives)
        scale = np.array([1.0 if o == "accuracy" else ref[o] for o in objectives])
        return _hypervolume(values / scale, [OBJECTIVES[o] for o in objectives],
                            [ref[o] / s for o, s in zip(objectives, scale)])

    def table(self, objectives: ObjectivesLike | None = None, *, limit: int | None = None,
              file: TextIO | None = None) -> str:
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
    def resume(self, n_trials: int | None = None, *, backend: BackendLike = None, verbose: bool = True,
               callbacks: Callbacks = (), progress_bar: bool = False, max_failures: int | None = None,
               artifacts: str | os.PathLike[str] | None = None) -> Study:
        """Run trials until ``n_trials`` are finished (default: the stored target; a new target raises it and may
        not be below the trials already finished), on the study's stored backend or on ``backend`` (a name or a
        backend object, stored for later resumes; a study may switch between the local and Ray backends, a
        keras-tuner study stays on keras-tuner). Trials left running by a dead process are failed with the reason
        and re-run from their params. ``max_failures`` replaces the stored limit of failed trials (a search
        stopped by it continues with a higher one: failed trials stay failed). Everything is checked, the study's
        data included, before anything is stored or any worker starts.

        ``callbacks``: functions called as ``fn(study, record)`` (this :class:`Study`, the
        :class:`TrialRecord`) in this process for every trial that finishes (trained, reused, pruned, failed or
        over budget), like Optuna's ``optimize(callbacks=)``; an exception in one stops the search.
        ``progress_bar``: a tqdm bar of finished trials (``tqdm.auto``: a widget in notebooks).
        ``artifacts``: the study's artefact folder, given again to confirm it when it is not the default for its
        storage (a folder read from the storage is not written to otherwise; see
        :func:`nas.engine.storage.artifacts_folder`)."""
        callbacks = _check_callbacks(callbacks)
        config = read_config(self.optuna_study)
        stored = config.run.backend
        from_storage = backend is None or backend == stored.kind  # a bare name keeps the stored options
        chosen = stored if from_storage else backend_of(backend)
        if from_storage and isinstance(stored, Ray) and stored.address is not None:
            # an address read from the storage decides which machines get the storage URL and whose objects this
            # process unpickles: whoever resumes confirms it
            raise ValueError(f"study {self.name!r} ran on the Ray cluster at {stored.address!r}: resume it with "
                             f"backend=nas.Ray(address=...) (or `nas resume --ray-address ...`) to confirm the "
                             f"cluster, or backend='local'")
        if isinstance(stored, KerasTuner) or isinstance(chosen, KerasTuner):
            if not (isinstance(stored, KerasTuner) and isinstance(chosen, KerasTuner)):
                raise ValueError(f"`backend`: study {self.name!r} runs on {stored.kind!r}; a keras-tuner search and an "
                                 f"Optuna one cannot switch, but got backend={chosen.kind!r}")
            chosen = stored  # its tuner folder and options are the study's
        changed = config
        c = self.counts()
        if n_trials is not None:
            check_int("n_trials", n_trials, 1, 1_000_000)
            if n_trials < c["done"]:
                raise ValueError(f"`n_trials` is the target of finished trials and a resume can only raise it: it "
                                 f"must be at least the {c['done']} trials study {self.name!r} has finished, but got "
                                 f"n_trials={n_trials}")
            changed = changed.replace(strategy=changed.strategy.replace(n_trials=n_trials))
        if max_failures is not None:
            check_int("max_failures", max_failures, 1, 1_000_000)
            if max_failures <= c["failed"]:
                raise ValueError(f"`max_failures` must be above the {c['failed']} failed trials of study "
                                 f"{self.name!r} (failed trials stay failed, so the search would stop at once), but "
                                 f"got max_failures={max_failures}")
            changed = changed.replace(strategy=changed.strategy.replace(max_failures=max_failures))
        if chosen != stored:
            changed = changed.replace(run=changed.run.replace(backend=chosen))
        chosen.check(changed)
        check_runnable(changed)
        folder = artifacts_folder(changed.artifacts, self.storage_url, self.name,
                                  artifacts if artifacts is not None else self._created_with)
        if changed.evaluator is None and getattr(chosen, "address", None) is None:
            # the workers start here and load the data: moved or deleted data fails now, not in every worker
            from nas.data import check_data

            try:
                check_data(changed.data)
            except ValueError as exc:
                raise ValueError(f"study {self.name!r} cannot resume: its `data` cannot be loaded here: "
                                 f"{exc}") from None
        if changed != config:
            write_config(self.optuna_study, changed)
        self.config = self._located(changed)
        self._run(changed.with_artifacts(folder), verbose, callbacks, progress_bar)
        return self

    def _run(self, config: StudyConfig, verbose: bool, callbacks: list[TrialCallback], progress_bar: bool) -> None:
        """Run the backend, calling the callbacks (and the bar) for each trial reported finished; trials a backend
        does not report (keras-tuner's) are handed to them when it returns."""
        if not callbacks and not progress_bar:
            backends.run(self.optuna_study, self.storage_url, config, verbose=verbose)
            return
        seen = {t.number for t in self.optuna_study.get_trials(deepcopy=False, states=FINISHED)}
        bar = None
        if progress_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=config.n_trials, initial=counts(self.optuna_study.get_trials(deepcopy=False))["done"],
                       desc=f"nas {self.name}", unit="trial")

        def finished(t: optuna.trial.FrozenTrial) -> None:
            if t.number in seen:
                return
            seen.add(t.number)
            record = records.read(t)
            if bar is not None and record.status in ("ok", "reused", "pruned"):
                bar.update(1)
            for fn in callbacks:
                fn(self, record)
        try:
            with listening(finished):
                backends.run(self.optuna_study, self.storage_url, config, verbose=verbose)
            for t in sorted(self.optuna_study.get_trials(deepcopy=False, states=FINISHED), key=lambda t: t.number):
                finished(t)
        finally:
            if bar is not None:
                bar.close()

    def export(self, which: int | str = "best", path: str | os.PathLike[str] = "exports", *, retrain_epochs: int = 0,
               formats: str | Iterable[str] = ("keras",), verbose: bool = False, **limits: float) -> list[Path]:
        """Write ``.keras`` model + ``spec.json`` + ``metrics.json`` per architecture; ``which`` is a trial number,
        ``"best"`` (optionally under ``limits``, e.g. ``max_macs=``), ``"knee"`` or ``"front"``. With
        ``retrain_epochs`` > 0 each model is retrained from scratch on train + validation first. ``formats``
        adds ``"saved_model"`` (a TensorFlow SavedModel folder), ``"tflite"`` (``model.tflite``) and ``"onnx"``
        (``model.onnx``). ``verbose``: a line for each file as it is written, with the seconds it took."""
        from nas.export import export_trials

        return export_trials(self, which, Path(path), retrain_epochs=retrain_epochs, formats=formats,
                             report=print if verbose else None, **limits)


def _check_callbacks(callbacks: Callbacks) -> list[TrialCallback]:
    if callable(callbacks):
        callbacks = [callbacks]
    try:
        out = list(callbacks or ())
    except TypeError:
        raise ValueError(f"`callbacks` must be a list of functions fn(study, record), but got "
                         f"callbacks={callbacks!r}") from None
    for fn in out:
        if not callable(fn):
            raise ValueError(f"`callbacks` must be a list of functions fn(study, record), but got an item {fn!r}")
    return out


# ------------------------------------------------------------------ creating a study

def _data_and_space(space: Any, data: Any, evaluator: Component | None, artifacts: str) -> tuple[search_spaces.Space,
                                                                                               dict[str, Any]]:
    """The configured space and the stored data reference (arrays given in memory are saved to ``artifacts``)."""
    if evaluator is not None:
        return configure_space(space, getattr(space, "input_shape", (32, 32, 3)),
                               getattr(space, "num_classes", 10)), {"kind": "evaluator"}
    from nas.data import Data, load_data

    if isinstance(data, Data):
        loaded = data if data.ref.get("kind") != "arrays" else load_data(
            (data.x_train, data.y_train, data.x_val, data.y_val), save_to=Path(artifacts))
    else:
        loaded = load_data(data, save_to=Path(artifacts))
    space_obj = configure_space(space, loaded.input_shape, loaded.num_classes)
    if space_obj.input_shape[2] != loaded.input_shape[2]:
        raise ValueError(f"`space` input_shape {space_obj.input_shape} has {space_obj.input_shape[2]} channels, but "
                         f"the data has {loaded.input_shape[2]} ({loaded.describe()}); configure the space with "
                         f"input_shape={loaded.input_shape} or pass the space by name")
    if space_obj.num_classes != loaded.num_classes:
        raise ValueError(f"`space` num_classes={space_obj.num_classes}, but the data has {loaded.num_classes} classes "
                         f"({loaded.describe()})")
    return space_obj, loaded.ref


def _study_name(run: Run, space: Any) -> str:
    """The study's name: the one given, or the space's name and the time."""
    if run.study is not None:
        return run.study
    base = space.get("name") if isinstance(space, dict) else getattr(space, "name", "search")
    return f"{base}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _store(url: str, name: str, config: StudyConfig, warm: list[tuple[str, dict[str, Any]]]) -> optuna.Study:
    """Create the study, its record and warm-start trials under the storage's lock: of two processes creating the
    same study at once, one creates it and the other gets a clear error."""
    lock = lock_path(url)
    if not isinstance(lock, Path):
        open_storage(url)  # a database server: a clear error if it cannot be reached, before taking its lock
    with claim_lock(lock) as created:
        try:
            storage = open_storage(url)
        except ValueError:
            if created and isinstance(lock, Path):  # a search that fails before it starts leaves nothing behind
                lock.unlink()
            raise
        directions = [OBJECTIVES[o] for o in config.objectives]
        if name in optuna.get_all_study_names(storage):
            study = _adoptable(optuna.load_study(study_name=name, storage=storage), url, directions)
        else:
            study = optuna.create_study(study_name=name, storage=storage, directions=directions)
        with warnings.catch_warnings():  # experimental in Optuna 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(config.objectives))  # optuna-dashboard and trials_dataframe() show them
        write_config(study, config)
        for label, params in warm:
            records.enqueue(study, params, {"warm_start": label})
    return study


def _adoptable(study: optuna.Study, url: str, directions: list[Direction]) -> optuna.Study:
    """A study made beforehand with plain Optuna (same name, no trials, no nas record, the directions of the
    objectives) becomes the nas study; any other existing study is an error."""
    name = study.study_name
    if is_nas_study(study):
        raise ValueError(f"study {name!r} already exists in {mask_url(url)}: continue it with "
                         f"nas.load_study({name!r}, storage).resume() or `nas resume --study {name}`, or choose "
                         f"another name (run=nas.Run(study=...))")
    if study.get_trials(deepcopy=False):
        raise ValueError(f"study {name!r} in {mask_url(url)} is an Optuna study with {len(study.trials)} trials: nas "
                         f"searches only on an empty one (its trials are not nas records), or choose another name")
    have = [d.name.lower() for d in study.directions]
    if have != directions:
        raise ValueError(f"study {name!r} in {mask_url(url)} has the directions {have}, but the objectives need "
                         f"{directions}: create it with optuna.create_study(directions={directions!r}, ...)")
    return study


def _strategy_for(strategy: Strategy, goal: Goal, space: search_spaces.Space, backend: Backend,
                  evaluated: bool = False) -> Strategy:
    """The strategy as stored: the sampler chosen (default: evolution for several objectives, tpe for one) and
    checked against the space, the pruner checked against the objectives, ``budget.inherit_epochs`` resolved
    (None: ``epochs`` with the evolution sampler on training - ``evaluated`` is False - and no Ray Tune
    scheduler, else 0)."""
    if isinstance(backend, KerasTuner):
        if strategy.sampler is not None:
            raise ValueError(f"`strategy.sampler` is Optuna's; with the keras_tuner backend the keras-tuner `tuner` "
                             f"samples, but got sampler={strategy.sampler.name!r}")
        sampler = Component(name=f"keras_tuner.{backend.tuner}")
    else:
        sampler = sampler_component(strategy.sampler, goal.objectives, space)
    budget = strategy.budget
    if budget.inherit_epochs and sampler.name != "evolution":
        raise ValueError(f"budget: `inherit_epochs` starts a child of the `evolution` sampler from its parent's "
                         f"weights; it needs sampler='evolution', but got sampler={sampler.name!r} with "
                         f"inherit_epochs={budget.inherit_epochs}")
    if budget.inherit_epochs is None:
        on = sampler.name == "evolution" and not evaluated and getattr(backend, "scheduler", None) is None
        budget = dataclasses.replace(budget, inherit_epochs=budget.epochs if on else 0)
    return strategy.replace(sampler=sampler, pruner=pruner_component(strategy.pruner, goal.objectives), budget=budget)


def _resolve(space: Any, data: Any, *, goal: Any, strategy: Any, run: Any, evaluator: Any,
             description: str) -> tuple[str, StudyConfig, list[tuple[str, dict[str, Any]]], search_spaces.Space]:
    """Every argument checked and resolved into the record to store (before anything is stored or trained)."""
    goal, strategy = Goal.of(goal), Strategy.of(strategy)
    run = Run.of(run)
    if isinstance(run.storage, optuna.Study) and run.study is None:
        run = run.replace(study=run.storage.study_name)  # search on a study made with plain Optuna (empty)
    url = describe_storage(run.storage)
    check_storage_path(url)
    name = _study_name(run, space_ref(space))
    artifacts = str(Path(run.artifacts).resolve()) if run.artifacts is not None else default_artifacts(url, name)
    evaluator_ref = evaluator_component(evaluator)
    space_obj, data_stored = _data_and_space(space_ref(space), data_ref(data), evaluator_ref, artifacts)
    backend = run.backend
    if isinstance(backend, KerasTuner):
        backend = backend.replace(directory=str(Path(artifacts) / "keras_tuner"), project_name=name)
    goal = goal.replace(constraints={**dict(getattr(space_obj, "constraints", {}) or {}), **goal.constraints})
    strategy = _strategy_for(strategy, goal, space_obj, backend, evaluated=evaluator_ref is not None)
    stored_run = Run(study=name, artifacts=artifacts, backend=backend, device=run.device)
    config = StudyConfig(space=space_obj.config(), data=data_stored, evaluator=evaluator_ref, goal=goal,
                         strategy=strategy, run=stored_run, description=description, created=now())
    if strategy.sample_within_limits:
        check_reachable(space_obj, goal.constraints)
    warm = warm_start_params(space_obj, strategy.warm_start)
    backend.check(config)
    if evaluator_ref is None:
        check_devices(config.device)  # absent hardware fails the search now, not every trial
    return url, config, warm, space_obj


def create_study(space: SpaceLike, data: DataLike | Data = "digits", *, goal: GoalLike = None,
                 strategy: StrategyLike = None, run: RunLike = None, evaluator: EvaluatorLike = None,
                 description: str = "", verbose: bool = True) -> Study:
    """Check everything, store the study (its record and warm-start trials) and run nothing: the study is then run
    by ``Study.resume()``, ``nas resume`` or ``nas worker`` processes on other machines. See :func:`search`."""
    url, config, warm, _ = _resolve(space, data, goal=goal, strategy=strategy, run=run, evaluator=evaluator,
                                    description=description)
    name = config.run.study
    assert name is not None
    result = Study(_store(url, name, config, warm), url)
    result._created_with = config.artifacts
    if verbose:
        print(f"nas: study {name!r} in {mask_url(url)}")
    return result


def search(space: SpaceLike, data: DataLike | Data = "digits", *, goal: GoalLike = None,
           strategy: StrategyLike = None, run: RunLike = None, evaluator: EvaluatorLike = None,
           description: str = "", verbose: bool = True, callbacks: Callbacks = (),
           progress_bar: bool = False) -> Study:
    """Run a multi-objective architecture search and return the :class:`Study`.

    ``space``: a space name (configured from the data's shape and classes), ``{"name": ..., "options": {...}}`` or a
    ``search_spaces.Space``. ``data``: ``"digits"``, ``"fashion_mnist"``, ``{"name": ..., "train_samples": ...}``,
    a folder, arrays, tf.data datasets or ``nas.load_data(...)``'s result. ``goal``: ``nas.Goal(objectives=,
    constraints=)``; ``strategy``: ``nas.Strategy(n_trials=, sampler=, pruner=, budget=, seed=, warm_start=, ...)``;
    ``run``: ``nas.Run(study=, storage=, artifacts=, backend=, device=)`` (each also as a dict of its fields, as in a
    YAML config). ``evaluator``: a function marked with ``@nas.evaluator`` (or its import path, or a tabular
    benchmark such as ``search_spaces.nasbench201.Table``) that scores a spec instead of training it.

    Everything is validated before any training starts; the study's record is stored with it, so
    ``nas.load_study(...).resume()`` or ``nas resume`` continues it with nothing else. ``callbacks`` and
    ``progress_bar``: see :meth:`Study.resume`.
    """
    callbacks = _check_callbacks(callbacks)
    study = create_study(space, data, goal=goal, strategy=strategy, run=run, evaluator=evaluator,
                         description=description, verbose=verbose)
    # the caller's backend: its address is confirmed
    return study.resume(backend=Run.of(run).backend, verbose=verbose, callbacks=callbacks, progress_bar=progress_bar)


def load_study(study_name: str, storage: StorageLike = None) -> Study:
    """The :class:`Study` stored under ``study_name`` (for inspection, resume and export). Never creates a
    storage: a mistyped path is an error."""
    url = describe_storage(storage)
    storage_obj = open_storage(url, create=False)
    names = optuna.get_all_study_names(storage_obj)
    if study_name not in names:
        raise ValueError(f"no study {study_name!r} in {mask_url(url)} (studies there: {', '.join(names) or 'none'})")
    return Study(optuna.load_study(study_name=study_name, storage=storage_obj), url)


def from_keras_tuner(tuner: keras_tuner.Tuner, *, objectives: ObjectivesLike = ("accuracy", "macs"),
                     space: search_spaces.Space | None = None, storage: StorageLike = None,
                     study_name: str | None = None) -> Study:
    """A keras-tuner run as a :class:`Study`: every finished trial with its spec, analytic MACs / FLOPs / params
    and accuracy (the tuner's best ``val_accuracy``), so ``pareto_front()``, ``knee()``, ``best()``, ``table()``
    and ``export()`` (from keras-tuner's saved best-epoch weights) work as for a ``nas`` search.

    The tuner must have been made with ``nas.keras_tuner.HyperModel`` (or pass the ``space`` its values came
    from). Hyperband trials that trained fewer than ``max_epochs`` epochs are ``pruned``. Without ``storage``
    the view is in memory; with a storage it is kept there under ``study_name`` and a later call adds only the
    trials that are new.
    """
    from nas.keras_tuner import view

    return Study(*view(tuner, objectives=objectives, space=space, storage=storage, study_name=study_name))
