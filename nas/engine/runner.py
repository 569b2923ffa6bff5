"""The trial pipeline, the same on every backend: sample -> cost -> constraints -> reuse -> evaluate -> record.

:class:`Runner` holds what a worker loads once (configuration, space, data or evaluator) and runs claimed
trials through the steps, each a method below:

1. **sample** the spec from the trial (an invalid spec is a failed trial);
2. **cost**: analytic MACs, FLOPs and params, recorded with the spec;
3. **constraints**: a candidate over an analytic limit is recorded ``infeasible`` and never built;
4. **reuse**: an architecture already trained in this study takes that trial's result (one stopped at a rung
   takes its stop, while the stop still holds: :meth:`Runner._reuse_stopped`);
5. **evaluate**: train and validate (or call the evaluator), measure latency if asked, save the weights;
6. **record**: result, status, timings and worker memory, then tell Optuna the objective values.

``Runner.run`` never raises except ``KeyboardInterrupt`` / ``SystemExit``: every failure is recorded.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
import time
import traceback
from typing import Any

import optuna
from optuna.trial import TrialState

import search_spaces
from nas.budget import ANALYTIC, CONSTRAINTS, TrialFailed
from nas.cost import cost
from nas.engine import records
from nas.engine.claims import seed_of
from nas.engine.components import make_evaluator
from nas.engine.inherit import Unusable, copy_weights, parent_arrays, parent_of, parent_weights, weights_name
from nas.engine.progress import epoch_line, progress_attr
from nas.engine.schema import NAS_PRUNERS, StudyConfig
from nas.rungs import can_reach, keep
from nas.spec import ArchSpec

__all__ = ["Heartbeat", "Runner", "rss_mb"]


class Heartbeat:
    """Records a RUNNING trial's heartbeat every interval (RDB storages) until stopped."""

    def __init__(self, storage: Any, trial_id: int) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
        if interval is not None:

            def beat() -> None:  # the claim recorded the first heartbeat
                while not self._stop.wait(interval):
                    try:
                        storage.record_heartbeat(trial_id)
                    except Exception:
                        pass
            self._thread = threading.Thread(target=beat, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def rss_mb() -> float:
    """This process's resident memory (MB), from /proc (Linux); 0 where unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def _interrupted(exc: BaseException | None) -> bool:
    """Whether ``exc`` was caused by a KeyboardInterrupt somewhere down its chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


FULL_CLEAR_PARAMS = 1_000_000  # models from this size get clear_session()'s full garbage collection


def _json_ok(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def _retried_decision(trials: list[Any], retry_of: Any, rung: str) -> bool | None:
    """The decision recorded at ``rung`` by the trial this one re-runs (None: none recorded)."""
    original = records.numbered(trials, retry_of)
    decision = None if original is None else (records.attr(original, "rungs") or {}).get(rung)
    return None if decision is None else bool(decision[1])


def _rule_stop(rule: str, rung: Any, eta: int, source: str = "") -> str:
    """The ``pruned_by`` of a trial the pruner's rule stopped at ``rung`` (``source``: whose decision it took)."""
    return f"{rule} rung at epoch {rung} (reduction factor {eta}{source})"


class _Done(Exception):
    """A step finished the trial early (infeasible or reused): nothing more to run."""

    def __init__(self, values: list[float]) -> None:
        self.values = values


class Runner:
    """Runs claimed trials of one study through the pipeline (see the module docstring)."""

    trials_run = 0
    # called after every epoch with (epoch, validation accuracy): the Ray backend reports to Tune through it
    epoch_hook: Any = None
    # print each epoch's progress line to stdout too (a worker process: its log)
    echo = False

    def __init__(self, study: optuna.Study, config: StudyConfig) -> None:
        from nas.data import load_data

        self.study = study
        self.config = config
        self.space = search_spaces.from_config(config.space)
        self.evaluator = make_evaluator(config.evaluator)
        self.data = None if self.evaluator is not None else load_data(config.data)
        self._epochs = config.budget.epochs  # the current trial's (set again by run() for each trial)
        self._inheriting = False

    @property
    def objectives(self) -> tuple[str, ...]:
        return self.config.objectives

    def run(self, trial: optuna.Trial, seen: list[Any] | None = None,
            before: dict[str, float] | None = None) -> None:
        """Run ``trial`` to its end and record it. ``seen``: the study's trials as read at the claim (the
        reuse step looks the architecture up there instead of reading the study again); ``before``: timings
        of what came before the trial in its worker (start-up, claim), recorded with it."""
        timings: dict[str, float] = dict(before or {})
        t0 = time.perf_counter()
        self._pending: dict[str, Any] = {}  # written together: before training, and at the end
        self._history: list[float] = []  # per-epoch validation accuracy of this trial (a stopped one's record)
        self._calibrated: dict[int, float] = {}  # epoch (0-based) -> calibrated validation accuracy (rung checks)
        self._weights: str | None = None  # the weights file this trial saved
        self._violations: dict[str, float] = {}  # constraint name -> value (<= 0: within), written at the end
        self._epochs = self.config.budget.epochs  # this trial's epochs (fewer when it inherits weights)
        self._inheriting = False  # starts from its parent's weights (nas.engine.inherit): own rung pool, no reports
        beat = Heartbeat(self.study._storage, trial._trial_id)
        try:
            try:
                spec = self._sample(trial, timings, t0)
                metrics = self._metrics = self._cost(trial, spec)
                self._constraints(trial, metrics)
                self._reuse(trial, spec, metrics, seen)
                metrics.update(self._evaluate(trial, spec, timings))
                self._record(trial, timings, t0, metrics)
            except _Done as done:
                self._tell(trial, timings, t0, done.values)
            except optuna.TrialPruned as exc:
                self._pending.update({"status": "pruned", "pruned_by": str(exc) or "pruner",
                                      "history": self._history, "epochs": len(self._history)})
                self._tell(trial, timings, t0, state=TrialState.PRUNED)
            except optuna.exceptions.UpdateFinishedTrialError:
                raise
            except Exception as exc:
                if _interrupted(exc):  # a Ctrl-C a library wrapped (e.g. Optuna's StorageInternalError in a commit)
                    raise KeyboardInterrupt from exc
                self._fail(trial, timings, t0, exc)
        except optuna.exceptions.UpdateFinishedTrialError:
            self._ended_elsewhere(trial)
        finally:
            beat.stop()

    def _ended_elsewhere(self, trial: optuna.Trial) -> None:
        """Another process ended this trial while this worker ran it: its heartbeat had stopped for longer than
        the grace period (the worker was frozen, or cut off from the storage), so the trial was failed as dead and
        its params queued again for another worker. Whatever this worker measured is dropped: the re-run is the
        trial's result, recorded once. The weights file it saved, which no record names, is removed."""
        self._pending = {}
        if self._weights is not None and os.path.exists(self._weights):
            os.remove(self._weights)
        print(f"nas worker: trial {trial.number} was ended by another process while this worker ran it (no heartbeat "
              f"for longer than the grace period: frozen or cut off); its result is discarded", flush=True)

    # -- the steps
    def _sample(self, trial: optuna.Trial, timings: dict[str, float], t0: float) -> ArchSpec:
        try:
            spec = self.space.sample(trial)
        except ValueError as exc:
            raise TrialFailed(f"the space produced an invalid spec: {exc}") from None
        timings["sample_s"] = time.perf_counter() - t0
        return spec

    def _cost(self, trial: optuna.Trial, spec: ArchSpec) -> dict[str, Any]:
        attrs = records.spec_attrs(spec, cost(spec))
        self._pending.update(attrs)
        return {k: attrs[k] for k in ("spec_key", "macs", "flops", "params")}

    def _constraints(self, trial: optuna.Trial, metrics: dict[str, Any]) -> None:
        """Analytic limits are checked before anything is built; limits on measured values (latency) are known
        after evaluation. Optuna's constraint values: <= 0 feasible; they are written with the trial's end
        (:func:`nas.engine.records.constraints_attr`: the list form that optuna-dashboard reads too)."""
        limits = self.config.constraints
        violations = records.analytic_violations(limits, metrics)
        self._violations.update(violations)
        over = [f"{CONSTRAINTS[n]} {metrics[CONSTRAINTS[n]]:,} > {limits[n]:,.0f}"
                for n, v in violations.items() if v > 0]
        if over:
            self._pending.update(records.infeasible_attrs(", ".join(over)))
            self._violations.update({name: 1.0 for name in limits if name not in violations})  # never measured
            raise _Done(records.objective_values(self.objectives, metrics))

    def _reuse(self, trial: optuna.Trial, spec: ArchSpec, metrics: dict[str, Any], seen: list[Any] | None) -> None:
        same = records.same_spec_result(self.study, metrics["spec_key"], trial.number, seen or None)
        if same is None:
            self._reuse_stopped(trial, metrics["spec_key"], seen)
            return
        reused = records.result_attrs(records.attrs_of(same))
        self._pending.update({**reused, "status": "reused", "reused_from": same.number})
        measured = records.constraint_values(same, self.config.constraints)
        for name in self.config.constraints:  # the measured ones are the original's (the analytic ones are equal)
            if CONSTRAINTS[name] not in ANALYTIC:
                self._violations[name] = measured.get(name, -1.0)
        raise _Done(list(same.values))

    def _reuse_stopped(self, trial: optuna.Trial, key: str, seen: list[Any] | None) -> None:
        """A repeat of an architecture that nas's rung pruner stopped takes that stop, without training, while
        it still holds: the trial is PRUNED with the original's ``history`` and ``epochs`` (and its Optuna
        intermediate values), ``reused_from`` naming it, and counts as a finished trial, as a reused complete
        result does; otherwise it trains as any new trial.

        Why not always reuse: a decision at a rung is relative to the trials that had reached the rung then.
        Early in a search the pool is small (with fewer than ``eta`` trials at a rung a trial goes on only if
        it is the best so far), so an architecture stopped at the first rung by an early, harsh front might go
        on against the trials there now; reusing that stop for ever would deny it the second look any newly
        sampled architecture gets. Why not always train again: most repeats come later, when the stop still
        holds, and training them again spends the epochs the stop saved (TPE, NSGA-II and random draw repeats;
        ``evolution`` avoids them). So the decision is taken again at the rung where it was made, with the
        accuracy measured there, against the trials at that rung now (the original, whose measurement it is,
        and this trial left out): still stopped -> reused; kept -> trained from scratch (nas keeps no weights
        at rungs), with a new seed, and judged live at every rung. A reused stop copies no ``rungs``: the
        original's measurement already counts in the pools once. Only for nas's own pruner (``pareto``):
        Optuna's pruners and Ray Tune's schedulers keep their decisions outside the record, so architectures
        they stopped are trained again."""
        if not self._rungs():
            return
        trials = seen or self.study.get_trials(deepcopy=False)
        same = records.same_spec_stopped(trials, key, trial.number)
        if same is None:
            return
        stop = records.stopped_at(same)
        assert stop is not None  # same_spec_stopped finds a trial stopped at a rung
        rung, accuracy = stop
        inherited = "inherited" in records.attrs_of(same)  # judged again among the trials of its own kind
        if self._decide(trials, rung, accuracy, {trial.number, same.number}, inherited) is None:
            return  # it would go on now: train it
        self._history = list(records.attr(same, "history") or [])
        self._pending["reused_from"] = same.number
        for step, value in same.intermediate_values.items():  # what Optuna's samplers read of a stopped trial
            self.study._storage.set_trial_intermediate_value(trial._trial_id, step, value)
        raise optuna.TrialPruned(f"{records.attr(same, 'pruned_by')}, reused from trial {same.number}")

    def _evaluate(self, trial: optuna.Trial, spec: ArchSpec, timings: dict[str, float]) -> dict[str, Any]:
        if self.evaluator is not None:
            t = time.perf_counter()
            result = dict(self.evaluator(spec))
            timings["evaluate_s"] = time.perf_counter() - t
            return result
        return self._train(trial, spec, timings)

    def _record(self, trial: optuna.Trial, timings: dict[str, float], t0: float, metrics: dict[str, Any]) -> None:
        self._pending.update({**records.result_attrs(metrics), "status": "ok"})
        for name, limit in self.config.constraints.items():
            if CONSTRAINTS[name] not in ANALYTIC:
                self._violations[name] = (metrics.get("latency_ms", math.inf) - limit) / limit
        self._learning_curve(trial, metrics.get("history"))
        self._tell(trial, timings, t0, records.objective_values(self.objectives, metrics))

    def _learning_curve(self, trial: optuna.Trial, history: Any) -> None:
        """The per-epoch validation accuracy as Optuna intermediate values of a trained trial (optuna-dashboard's
        learning curves), where no pruner reported it already. Optuna's ``Trial.report`` refuses multi-objective
        studies, so they are written through the storage; only for complete trials: Optuna's TPE reads a pruned
        trial's intermediate values with the single-objective direction."""
        if not history or trial._cached_frozen_trial.intermediate_values or self._inheriting:
            return  # an inheriting trial's curve stays in its `history` only: pruners read intermediate values
        storage = self.study._storage
        for step, value in enumerate(history):
            storage.set_trial_intermediate_value(trial._trial_id, step, float(value))

    # -- endings
    def _fail(self, trial: optuna.Trial, timings: dict[str, float], t0: float, exc: Exception) -> None:
        reason = str(exc) if isinstance(exc, TrialFailed) else f"{type(exc).__name__}: {exc}"
        if "ResourceExhausted" in reason or isinstance(exc, MemoryError):
            reason = f"out of memory: {reason}"
        tb = None if isinstance(exc, TrialFailed) else traceback.format_exc()
        self._pending.update(records.failure_attrs(reason, tb))
        self._tell(trial, timings, t0, state=TrialState.FAIL)

    def _tell(self, trial: optuna.Trial, timings: dict[str, float], t0: float, values: list[float] | None = None,
              state: TrialState = TrialState.COMPLETE) -> None:
        """Timings and this worker's memory (recycling shows here) are written before the trial is finished:
        storages refuse attributes on finished trials."""
        self.trials_run += 1
        timings["total_s"] = time.perf_counter() - t0
        self._pending.update({"timings": timings,
                              "worker_memory": {"rss_mb": rss_mb(), "trial_in_worker": self.trials_run}})
        ended = state in (TrialState.COMPLETE, TrialState.PRUNED)
        self._flush(trial, records.constraints_attr(self.config.constraints, self._violations) if ended else None)
        try:
            self.study.tell(trial, values, state=state)
        except RuntimeError as exc:
            # Optuna's GridSampler asks the study to stop when its grid is exhausted, which Optuna allows only inside
            # Study.optimize; the trial is stored all the same (Optuna writes it in a `finally`), and the claim
            # decides whether the search goes on
            if "Study.stop" not in str(exc):
                raise

    def _flush(self, trial: optuna.Trial, system: dict[str, Any] | None = None) -> None:
        pending, self._pending = self._pending, {}
        try:
            records.write(trial, pending, system)
        except Exception:  # e.g. an evaluator's value that is not JSON: the failure record keeps the rest
            self._pending = {k: v for k, v in pending.items() if _json_ok(v)}
            raise

    # -- early stopping at rungs (the ``pareto`` pruner): decided by nas from the study storage
    def _rungs(self) -> tuple[int, ...]:
        """The rung epochs of the ``pareto`` pruner (empty without it) for this trial's epochs (an inheriting
        trial's are ``inherit_epochs``, e.g. rungs 1 and 3 of 9, or 1 of 3)."""
        from nas.rungs import rung_epochs

        pruner = self.config.strategy.pruner
        if pruner is None or pruner.name not in NAS_PRUNERS:
            return ()
        options = pruner.options
        return rung_epochs(int(options["min_epochs"]), int(options["reduction_factor"]), self._epochs)

    def _pruner_options(self) -> dict[str, Any]:
        """The options of nas's pruner, asked for only when there is one (:meth:`_rungs` is not empty)."""
        pruner = self.config.strategy.pruner
        assert pruner is not None
        return pruner.options

    def _calibrate_at(self) -> tuple[int, ...]:
        """The epochs (1-based) after which training measures the calibrated validation accuracy: the rungs,
        when the pruner's ``calibrate`` option is on (studies stored before the option judge plain accuracy)."""
        pruner = self.config.strategy.pruner
        return self._rungs() if pruner is not None and pruner.options.get("calibrate", False) else ()

    @staticmethod
    def _rung_pool(trials: list[Any], rung: str, leave_out: set[int], cost_keys: tuple[str, ...],
                   inherited: bool = False) -> list[tuple[float, tuple[float, ...]]]:
        """(accuracy, costs) at ``rung`` of the trials that reached it, failed ones and ``leave_out`` left out:
        of the trials that started from their parent's weights (``inherited`` recorded) when ``inherited``,
        else of the fresh ones. The two are never compared: after one epoch an inheriting child is within a
        few points of its final accuracy, a fresh one far below its own (bench ``inherit``)."""
        pool = []
        for t in trials:
            if t.number in leave_out or t.state == TrialState.FAIL:
                continue
            a = records.attrs_of(t)
            if ("inherited" in a) != inherited:
                continue
            if rung in (a.get("rungs") or {}) and all(k in a for k in cost_keys):
                pool.append((float(a["rungs"][rung][0]), tuple(float(a[k]) for k in cost_keys)))
        return pool

    def _rung_hook(self, trial: optuna.Trial) -> Any:
        """Checks the trial at each rung: records its accuracy there (calibrated when the pruner says so) and the
        decision (``rungs`` attribute: ``{"<epochs>": [accuracy, kept]}``), from the rung results of the study's
        other trials only; a retry of a trial whose worker died takes the decisions that trial had recorded."""
        options = self._pruner_options()
        eta, rule = int(options["reduction_factor"]), options["rule"]
        rungs = set(self._rungs())
        reached: dict[str, list[Any]] = {}

        def check(epoch: int, val_acc: float) -> None:
            e = epoch + 1
            if e not in rungs:
                return
            val_acc = round(float(self._calibrated.get(epoch, val_acc)), 6)  # as recorded: decided from the record
            trials = self.study.get_trials(deepcopy=False)
            retried = _retried_decision(trials, trial.user_attrs.get("retry_of"), str(e))
            if retried is not None:
                kept = retried
                why = None if kept else _rule_stop(rule, e, eta, f", decision of trial {trial.user_attrs['retry_of']}")
            else:
                why = self._decide(trials, str(e), val_acc, {trial.number}, self._inheriting)
                kept = why is None
            reached[str(e)] = [val_acc, bool(kept)]
            records.write(trial, {"rungs": dict(reached)})
            if not kept:
                raise optuna.TrialPruned(why)
        return check

    def _decide(self, trials: list[Any], rung: str, accuracy: float, leave_out: set[int],
                inherited: bool) -> str | None:
        """The pruner's decision for this trial (its accuracy at ``rung``, its costs) from the study's other trials
        (``leave_out`` left out): None to go on, else why it stops. The rule (:func:`nas.rungs.keep`) judges it
        among the trials of its kind at the rung; with the ``reach`` option it also stops when it cannot reach the
        front of the finished trials even with the largest gain after this rung of a finished trial of its kind
        (:func:`nas.rungs.can_reach`)."""
        options = self._pruner_options()
        eta, rule = int(options["reduction_factor"]), options["rule"]
        cost_keys = tuple(o for o in self.objectives if o in ANALYTIC)  # known exactly before training
        mine = (accuracy, tuple(float(self._metrics[k]) for k in cost_keys))
        pool = self._rung_pool(trials, rung, leave_out, cost_keys, inherited)
        if not keep(rule, mine, pool + [mine], eta):
            return _rule_stop(rule, rung, eta)
        if options.get("reach", False):
            gains, finished = self._reach_evidence(trials, rung, leave_out, cost_keys, inherited)
            if not can_reach(mine, gains, finished):
                return (f"cannot reach the front at epoch {rung}: {accuracy:.4f} + the largest gain after it of "
                        f"{len(gains)} finished {'inheriting' if inherited else 'fresh'} trials "
                        f"({max(gains):+.4f}) is below a finished trial at most as costly")
        return None

    def _reach_evidence(self, trials: list[Any], rung: str, leave_out: set[int], cost_keys: tuple[str, ...],
                        inherited: bool) -> tuple[list[float], list[tuple[float, tuple[float, ...]]]]:
        """For :func:`nas.rungs.can_reach`: the gains after ``rung`` (final accuracy minus the accuracy recorded
        at the rung) of the finished trials of this kind (inherited or fresh) that passed it, and (final
        accuracy, costs) of every finished trial within the constraints, ``leave_out`` left out. Finished: trained
        to the end (``ok``); repeats and stopped trials carry no final accuracy of their own."""
        gains, finished = [], []
        limits = self.config.constraints
        for t in trials:
            if t.number in leave_out or t.state != TrialState.COMPLETE or t.user_attrs.get("status") != "ok":
                continue
            a = records.attrs_of(t)
            if "accuracy" not in a or not all(k in a for k in cost_keys):
                continue
            if limits and any(v > 0 for v in records.constraint_values(t, limits).values()):
                continue
            accuracy = float(a["accuracy"])
            finished.append((accuracy, tuple(float(a[k]) for k in cost_keys)))
            at = (a.get("rungs") or {}).get(rung)
            if at is not None and ("inherited" in a) == inherited:
                gains.append(accuracy - float(at[0]))
        return gains, finished

    # -- inherited weights (budget.inherit_epochs): nas.engine.inherit
    def _inheritance(self, trial: optuna.Trial) -> Any:
        """Whether this trial starts from its parent's weights: the function that sets them on the built model,
        or None (from scratch). The decision and the parent are recorded before training starts; a parent that
        cannot give its weights is recorded as ``inherit_skipped`` with the reason."""
        epochs = self.config.budget.inherit_epochs
        if not epochs or self.data is None:
            return None
        frozen = records._frozen(trial)
        trials = self.study.get_trials(deepcopy=False)
        parent = parent_of(frozen.system_attrs, records.attrs_of(frozen), trials)
        if parent is None:
            return None
        try:
            source = records.numbered(trials, parent)
            if source is None:
                raise Unusable(f"trial {parent} is not in the study")
            arrays = parent_arrays(source, parent_weights(source, self.study.study_name, self.config.artifacts))
        except Unusable as exc:
            self._pending["inherit_skipped"] = {"trial": parent, "reason": str(exc)}
            return None
        self._epochs, self._inheriting = epochs, True
        record = {"trial": parent, "epochs": epochs}
        self._pending["inherited"] = record

        def start(model: Any) -> None:
            share = copy_weights(model, arrays)
            self._pending["inherited"] = {**record, "share": round(share, 4)}
        return start

    # -- training
    def _epoch_report(self, trial: optuna.Trial) -> Any:
        """The per-epoch callback: the rung checks (``pareto`` pruner), Optuna's pruner (single-objective
        accuracy), and the backend's hook; it keeps the per-epoch accuracy for a stopped trial's record."""
        hooks: list[Any] = [lambda epoch, val_acc: self._history.append(round(float(val_acc), 6)),
                            self._progress(trial)]
        last = self._epochs - 1
        pruner = self.config.strategy.pruner
        if pruner is not None and pruner.name in NAS_PRUNERS:
            hooks.append(self._rung_hook(trial))  # an inheriting trial is judged among inheriting ones (_rung_pool)
            if len(self.objectives) == 1 and not self._inheriting:
                hooks.append(lambda epoch, val_acc: trial.report(val_acc, epoch))
        elif self._inheriting:
            pass  # reported to no Optuna pruner: its early accuracy is not a fresh training's
        elif self.config.goal.single_accuracy and pruner is not None:
            def prune(epoch: int, val_acc: float) -> None:
                trial.report(val_acc, epoch)
                if epoch < last and trial.should_prune():  # a finished training is a result, not a prune
                    raise optuna.TrialPruned(f"pruned after epoch {epoch + 1} (val accuracy {val_acc:.4f})")
            hooks.append(prune)
        elif self.epoch_hook is not None and len(self.objectives) == 1:
            hooks.append(lambda epoch, val_acc: trial.report(val_acc, epoch))  # Optuna: one objective only
        if self.epoch_hook is not None:
            hooks.append(self.epoch_hook)

        def report(epoch: int, val_acc: float) -> None:
            for hook in hooks:
                hook(epoch, val_acc)
        return report

    def _progress(self, trial: optuna.Trial) -> Any:
        """The per-epoch record of where training is (``progress``: what the driver's progress lines read, see
        :mod:`nas.engine.progress`), one small write per epoch; with ``echo`` the epoch's line is printed too.
        A write the storage refuses for a passing reason costs the line, not the trial (the record is written at
        the end); a trial another process ended stops here."""
        epochs = self._epochs
        accuracy: list[float] = []
        seconds: list[float] = []

        def record(epoch: int, val_acc: float) -> None:
            accuracy.append(float(val_acc))
            seconds.append(time.perf_counter() - self._train_started)
            attrs = progress_attr(epochs, accuracy, seconds)
            try:
                records.write(trial, attrs)
            except optuna.exceptions.UpdateFinishedTrialError:
                raise
            except Exception as exc:
                if _interrupted(exc):
                    raise KeyboardInterrupt from exc
            if self.echo:
                print(epoch_line(trial.number, attrs["progress"], epoch), flush=True)
        return record

    def _train(self, trial: optuna.Trial, spec: ArchSpec, timings: dict[str, float]) -> dict[str, Any]:
        from nas.train import evaluate_latency, train_model

        budget, config = self.config.budget, self.config
        start = self._inheritance(trial)
        if start is not None:
            budget = dataclasses.replace(budget, epochs=self._epochs)  # set by _inheritance
        self._flush(trial)  # what is being trained is on record before training starts
        self._train_started = time.perf_counter()
        log_dir = (os.path.join(config.artifacts, "tensorboard", f"{self.study.study_name}.trial-{trial.number}")
                   if budget.tensorboard else None)
        assert self.data is not None  # loaded unless an evaluator scores the trials instead
        result = train_model(spec, self.data, budget, seed=budget.seed + seed_of(trial), log_dir=log_dir,
                             report=self._epoch_report(trial), timings=timings, device=config.device,
                             calibrate_at=self._calibrate_at(),
                             calibrated=self._calibrated.__setitem__, placed=self._pending, start=start)
        model = result.pop("model")
        if "latency" in self.objectives or "max_latency" in config.constraints:
            t = time.perf_counter()
            result["latency_ms"] = evaluate_latency(model, spec, runs=budget.latency_runs)
            timings["latency_s"] = time.perf_counter() - t
        t = time.perf_counter()
        os.makedirs(config.artifacts, exist_ok=True)
        # keyed by study, trial and architecture: studies sharing an artefact folder never overwrite each other
        path = os.path.join(config.artifacts, weights_name(self.study.study_name, trial.number, spec.key()))
        model.save_weights(path)
        self._weights = path
        result["weights"] = path
        result["weights_sha256"] = records.file_sha256(path)
        timings["save_s"] = time.perf_counter() - t
        t = time.perf_counter()
        import keras

        # Keras's clear_session() with its full garbage collection takes ~0.45 s per trial here; without it a small
        # model's leftovers (~1.6 MB more per trial, measured) wait for Python's own collector, and the worker's
        # recycling bounds them. A large model's weights are worth the full collection.
        keras.backend.clear_session(free_memory=self._metrics.get("params", 0) >= FULL_CLEAR_PARAMS)
        timings["clear_s"] = time.perf_counter() - t
        return result
