"""A worker process: claims trials of a study and runs them, then exits (so it is recycled).

Started by the local supervisor (``nas.search`` / ``Study.resume``) as ``python -m nas._worker ...``, or by a
user as ``nas worker`` on any machine that reaches the storage. Everything it needs - space, objectives,
budget, constraints, data - is read from the study's stored configuration.

One trial: sample the spec -> analytic cost -> constraint check (over budget: recorded, never built) ->
reuse the result of an identical spec already evaluated -> build -> train -> evaluate -> latency -> record
everything on the Optuna trial (user attributes, constraints, objective values).
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import math
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import warnings
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

import search_spaces  # noqa: E402
from nas._recovery import fail_dead_trials  # noqa: E402
from nas._storage import HOST, claim_lock, lock_path, open_storage, read_config  # noqa: E402
from nas.budget import ANALYTIC, CONSTRAINTS, OBJECTIVES, Budget  # noqa: E402
from nas.cost import cost  # noqa: E402
from nas.spec import ArchSpec  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


class TrialFailed(Exception):
    """A trial that cannot give a result (NaN loss, timeout, out of memory, bad spec)."""


# ------------------------------------------------------------------ samplers and pruners

def make_sampler(config: dict[str, Any], seed: int | None) -> optuna.samplers.BaseSampler:
    s = config["sampler"]
    name = s["name"]
    if name == "object":
        sampler = pickle.loads(base64.b64decode(s["pickle"]))
        if seed is not None and hasattr(sampler, "reseed_rng"):
            sampler.reseed_rng()
        return sampler
    n_trials = int(config["n_trials"])
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=int(s.get("population_size") or max(4, min(50, n_trials // 4))),
                                             seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True,
                                          n_startup_trials=int(s.get("n_startup_trials") or max(3, min(10, n_trials // 5))))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        space = search_spaces.from_config(config["space"])
        return optuna.samplers.GridSampler(space.grid(), seed=seed)  # type: ignore[attr-defined]
    raise ValueError(f"unknown sampler {name!r}")


def make_pruner(config: dict[str, Any]) -> optuna.pruners.BasePruner | None:
    p = config.get("pruner")
    if p is None:
        return None
    name = p["name"]
    epochs = int(config["budget"]["epochs"])
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=int(p.get("n_startup_trials", 3)), n_warmup_steps=1)
    if name in ("successive_halving", "asha"):
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=int(p.get("reduction_factor", 3)))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs,
                                              reduction_factor=int(p.get("reduction_factor", 3)))
    if name == "object":
        return pickle.loads(base64.b64decode(p["pickle"]))
    raise ValueError(f"unknown pruner {name!r}")


# ------------------------------------------------------------------ counting and claiming

def counts(trials: list[optuna.trial.FrozenTrial]) -> dict[str, int]:
    c = {"done": 0, "running": 0, "waiting": 0, "infeasible": 0, "failed": 0, "pruned": 0, "complete": 0}
    for t in trials:
        if t.state == TrialState.COMPLETE:
            if t.user_attrs.get("status") == "infeasible":
                c["infeasible"] += 1
            else:
                c["complete"] += 1
                c["done"] += 1
        elif t.state == TrialState.PRUNED:
            c["pruned"] += 1
            c["done"] += 1
        elif t.state == TrialState.RUNNING:
            c["running"] += 1
        elif t.state == TrialState.WAITING:
            c["waiting"] += 1
        elif t.state == TrialState.FAIL:
            c["failed"] += 1
    return c


def infeasible_cap(n_trials: int) -> int:
    return max(1000, 50 * n_trials)


def failure_cap(config: dict[str, Any]) -> int:
    return int(config.get("max_failures") or max(5, int(config["n_trials"])))


def claim(study: optuna.Study, config: dict[str, Any], lock: Any, *, poll: float = 1.0) -> optuna.Trial | None:
    """Ask for a new trial unless the target is met (finished + running already cover it: then wait, in case a
    running trial fails). The count and the ask happen under a lock, so the target is never overshot."""
    target = int(config["n_trials"])
    while True:
        with claim_lock(lock):
            fail_dead_trials(study)
            c = counts(study.get_trials(deepcopy=False))
            if c["done"] >= target or c["infeasible"] >= infeasible_cap(target) or c["failed"] >= failure_cap(config):
                return None
            if c["done"] + c["running"] < target:
                trial = study.ask()
                trial.set_user_attr("worker", {"host": HOST, "pid": os.getpid()})
                return trial
        time.sleep(poll)


# ------------------------------------------------------------------ one trial

class Heartbeat:
    def __init__(self, storage: Any, trial_id: int) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
        if interval is not None:

            def beat() -> None:
                while True:
                    try:
                        storage.record_heartbeat(trial_id)
                    except Exception:
                        pass
                    if self._stop.wait(interval):
                        return
            self._thread = threading.Thread(target=beat, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _same_spec_result(study: optuna.Study, key: str, number: int) -> optuna.trial.FrozenTrial | None:
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.number != number and t.user_attrs.get("spec_key") == key and t.user_attrs.get("status") == "ok":
            return t
    return None


def _values(objectives: list[str], metrics: dict[str, Any]) -> list[float]:
    out = []
    for o in objectives:
        v = metrics.get("latency_ms" if o == "latency" else o)
        out.append(float(v) if v is not None else (0.0 if OBJECTIVES[o] == "maximize" else math.inf))
    return out


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


class Runner:
    """Holds what a worker loads once (config, space, data) and runs trials."""

    trials_run = 0
    # called after every epoch with (epoch, validation accuracy): the Ray backend reports to Tune through it
    epoch_hook: Any = None

    def __init__(self, study: optuna.Study, config: dict[str, Any]) -> None:
        from nas.data import load_data

        self.study = study
        self.config = config
        self.space = search_spaces.from_config(config["space"])
        self.objectives = list(config["objectives"])
        self.budget = Budget.of(config["budget"])
        self.constraints = dict(config.get("constraints") or {})
        self.artifacts = config["artifacts"]
        self.evaluator = None
        if config.get("evaluator"):
            self.evaluator = pickle.loads(base64.b64decode(config["evaluator"]))
            self.data = None
        else:
            self.data = load_data(config["data"])
        self.single = len(self.objectives) == 1

    # -- the pipeline
    def run(self, trial: optuna.Trial) -> None:
        """Run ``trial`` to its end and record it (never raises, except SystemExit/KeyboardInterrupt)."""
        study = self.study
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        beat = Heartbeat(study._storage, trial._trial_id)
        try:
            try:
                spec = self.space.sample(trial)
            except ValueError as exc:
                raise TrialFailed(f"the space produced an invalid spec: {exc}") from None
            timings["sample_s"] = time.perf_counter() - t0
            c = cost(spec)
            metrics: dict[str, Any] = {"macs": c.macs, "flops": c.flops, "params": c.params}
            trial.set_user_attr("spec", spec.to_json())
            trial.set_user_attr("spec_key", spec.key())
            trial.set_user_attr("spec_str", str(spec))
            for k in ANALYTIC:
                trial.set_user_attr(k, metrics[k])
            # analytic constraints: checked before anything is built
            violations = {}
            for name, limit in self.constraints.items():
                metric = CONSTRAINTS[name]
                if metric in ANALYTIC:
                    violations[name] = (metrics[metric] - limit) / limit
            if self.constraints:
                for name, v in violations.items():
                    trial.set_constraint(name, v)
            if any(v > 0 for v in violations.values()):
                over = ", ".join(f"{CONSTRAINTS[n]} {metrics[CONSTRAINTS[n]]:,} > {self.constraints[n]:,.0f}"
                                 for n, v in violations.items() if v > 0)
                trial.set_user_attr("status", "infeasible")
                trial.set_user_attr("error", f"over budget: {over}")
                for name in self.constraints:
                    if CONSTRAINTS[name] not in ANALYTIC:
                        trial.set_constraint(name, 1.0)
                self._tell(trial, timings, t0, _values(self.objectives, metrics))
                return
            same = _same_spec_result(study, spec.key(), trial.number)
            if same is not None:
                reused = {k: same.user_attrs.get(k) for k in ("accuracy", "latency_ms", "train_accuracy", "loss",
                                                               "epochs", "history", "weights")}
                metrics.update({k: v for k, v in reused.items() if v is not None})
                for k, v in reused.items():
                    if v is not None:
                        trial.set_user_attr(k, v)
                for name in self.constraints:
                    if CONSTRAINTS[name] not in ANALYTIC:
                        trial.set_constraint(name, same.system_attrs.get(f"constraints:{name}", -1.0))
                trial.set_user_attr("status", "reused")
                trial.set_user_attr("reused_from", same.number)
                self._tell(trial, timings, t0, list(same.values))
                return
            if self.evaluator is not None:
                result = dict(self.evaluator(spec))
                metrics.update(result)
            else:
                metrics.update(self._train(spec, trial, timings))
            for k in ("accuracy", "latency_ms", "train_accuracy", "loss", "epochs", "history", "weights"):
                if k in metrics:
                    trial.set_user_attr(k, metrics[k])
            for name, limit in self.constraints.items():
                metric = CONSTRAINTS[name]
                if metric not in ANALYTIC:
                    trial.set_constraint(name, (metrics.get("latency_ms", math.inf) - limit) / limit)
            trial.set_user_attr("status", "ok")
            self._tell(trial, timings, t0, _values(self.objectives, metrics))
        except optuna.TrialPruned:
            trial.set_user_attr("status", "pruned")
            self._tell(trial, timings, t0, state=TrialState.PRUNED)
        except (TrialFailed, Exception) as exc:
            reason = str(exc) if isinstance(exc, TrialFailed) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, TrialFailed):
                trial.set_user_attr("traceback", traceback.format_exc()[-4000:])
            if "ResourceExhausted" in reason or isinstance(exc, MemoryError):
                reason = f"out of memory: {reason}"
            trial.set_user_attr("status", "failed")
            trial.set_user_attr("error", reason[:2000])
            self._tell(trial, timings, t0, state=TrialState.FAIL)
        finally:
            beat.stop()

    def _tell(self, trial: optuna.Trial, timings: dict[str, float], t0: float, values: list[float] | None = None,
              state: TrialState = TrialState.COMPLETE) -> None:
        """Timings and this worker's memory (recycling shows here) are written before the trial is finished:
        storages refuse attributes on finished trials."""
        self.trials_run += 1
        timings["total_s"] = time.perf_counter() - t0
        trial.set_user_attr("timings", timings)
        trial.set_user_attr("worker_memory", {"rss_mb": rss_mb(), "trial_in_worker": self.trials_run})
        self.study.tell(trial, values, state=state)

    def _train(self, spec: ArchSpec, trial: optuna.Trial, timings: dict[str, float]) -> dict[str, Any]:
        from nas.train import evaluate_latency, train_model

        assert self.data is not None
        t = time.perf_counter()
        hooks = []
        if self.single and self.objectives[0] == "accuracy" and self.config.get("pruner"):
            last = self.budget.epochs - 1

            def prune(epoch: int, val_acc: float) -> None:
                trial.report(val_acc, epoch)
                if epoch < last and trial.should_prune():  # a finished training is a result, not a prune
                    raise optuna.TrialPruned(f"pruned after epoch {epoch + 1} (val accuracy {val_acc:.4f})")
            hooks.append(prune)
        elif self.epoch_hook is not None and self.single:  # Optuna keeps intermediate values for one objective only
            hooks.append(lambda epoch, val_acc: trial.report(val_acc, epoch))
        if self.epoch_hook is not None:
            hooks.append(self.epoch_hook)

        def report(epoch: int, val_acc: float) -> None:
            for hook in hooks:
                hook(epoch, val_acc)
        result = train_model(spec, self.data, self.budget, seed=self.budget.seed + trial.number, report=report,
                             timings=timings, devices=self.config.get("devices"))
        model = result.pop("model")
        if "latency" in self.objectives or "max_latency" in self.constraints:
            t = time.perf_counter()
            result["latency_ms"] = evaluate_latency(model, spec, runs=self.budget.latency_runs)
            timings["latency_s"] = time.perf_counter() - t
        os.makedirs(self.artifacts, exist_ok=True)
        path = os.path.join(self.artifacts, f"trial-{trial.number}.weights.h5")
        model.save_weights(path)
        result["weights"] = path
        import keras

        keras.backend.clear_session()
        return result


# ------------------------------------------------------------------ the process

def _die_with_parent() -> None:
    """Linux: get SIGKILL when the supervising process dies (a killed search leaves no orphans)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nas._worker")
    parser.add_argument("--study", required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-trials", type=int, default=0, help="exit after this many trials (0: until done)")
    parser.add_argument("--with-parent", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.with_parent:
        _die_with_parent()
    storage = open_storage(args.storage)
    study0 = optuna.load_study(study_name=args.study, storage=storage)
    config = read_config(study0)
    study = optuna.load_study(study_name=args.study, storage=storage, sampler=make_sampler(config, args.seed),
                              pruner=make_pruner(config))
    if not config.get("evaluator"):
        from nas._quiet import import_keras

        import_keras()
    runner = Runner(study, config)
    lock = lock_path(args.storage)
    done = 0
    while args.max_trials == 0 or done < args.max_trials:
        config = read_config(study)  # the target may have been raised by a resume
        runner.config["n_trials"] = config["n_trials"]
        trial = claim(study, config, lock)
        if trial is None:
            break
        try:
            runner.run(trial)
        except KeyboardInterrupt:
            from nas._recovery import fail_running, requeue

            frozen = study._storage.get_trial(trial._trial_id)
            if fail_running(study, frozen, reason="interrupted (Ctrl-C)"):
                requeue(study, frozen)
            return 130
        done += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
