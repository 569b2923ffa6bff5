"""Claiming, counting and recovering trials: the one place that decides which trials run and which are dead.

* :func:`counts` is the one count of a study's trials by outcome (``done`` = trained or pruned; over-budget
  candidates are not ``done``: they cost nothing and do not count toward ``n_trials``).
* :func:`claim` asks Optuna for a new trial under the claim lock (a lock file next to an SQLite or journal
  file, a PostgreSQL advisory lock), so that a study never runs more trials than its target, and writes the
  trial's owner (host and pid) before the lock is released, with SIGINT/SIGTERM held back meanwhile: a claimed
  trial is never without an owner because of a Ctrl-C.
* :func:`fail_dead_trials` fails the RUNNING trials whose worker is gone (dead pid on this host, a stale
  heartbeat elsewhere, or no owner at all for longer than the grace period, e.g. a worker SIGKILLed inside a
  claim) with the reason, and enqueues their params again up to ``max_retries`` times.
* :func:`next_worker_number` hands out worker numbers under the lock, so that two supervisors of one study
  never give their workers the same seed.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import optuna
from optuna.trial import TrialState

from nas.engine import records
from nas.engine.schema import StudyConfig, read_config
from nas.engine.storage import GRACE_PERIOD, HOST, claim_lock

__all__ = ["SearchStopped", "WORKERS_ATTR", "claim", "counts", "fail_dead_trials", "fail_running", "give_back",
           "next_worker_number", "pid_alive", "requeue", "stopped", "worker_seed"]

WORKERS_ATTR = "nas_workers_started"  # study user attribute: worker processes started so far (for their seeds)


@runtime_checkable
class _Heartbeats(Protocol):
    """A storage that keeps trial heartbeats (Optuna's RDB storage and its cache wrapper), recognised by its
    methods as Optuna itself does."""

    def get_heartbeat_interval(self) -> int | None: ...

    def record_heartbeat(self, trial_id: int) -> None: ...


@runtime_checkable
class _StaleTrials(Protocol):
    """The RDB storage's query for RUNNING trials whose heartbeat is older than the grace period."""

    def get_heartbeat_interval(self) -> int | None: ...

    def _get_stale_trial_ids(self, study_id: int) -> list[int]: ...


def counts(trials: list[optuna.trial.FrozenTrial]) -> dict[str, int]:
    """Trials by outcome: ``done`` (= ``complete`` + ``pruned``), ``running``, ``waiting``, ``infeasible``,
    ``failed``."""
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


def stop_reason(c: dict[str, int], config: StudyConfig) -> str | None:
    """Why the search must stop now although its target is not met (None: it may go on)."""
    if c["infeasible"] >= config.strategy.infeasible_cap:
        return (f"the constraints {config.constraints} rejected {c['infeasible']} candidates and only {c['done']} "
                f"were trained: loosen the constraints or narrow the space")
    if c["failed"] >= config.strategy.failure_cap:
        return f"{c['failed']} trials failed (limit max_failures={config.strategy.failure_cap})"
    return None


class SearchStopped(RuntimeError):
    """A search stopped before its target for a reason of its own (too many failed trials or over-budget
    candidates, workers that keep dying), not a bug: the message says why and how to go on, and the command line
    prints it without a traceback."""


def stopped(reason: str, c: dict[str, int], config: StudyConfig, study_name: str) -> SearchStopped:
    """The error that stops a search for ``reason`` (see :func:`stop_reason`), with how to continue it: the
    failed trials stay failed, so a resume needs a higher ``max_failures``."""
    if c["failed"] >= config.strategy.failure_cap:
        reason += (f"; fix the cause, then continue with `nas resume --study {study_name} --max-failures N` "
                   f"(Python: study.resume(max_failures=N)) with N above the {c['failed']} failed trials")
    return SearchStopped(reason)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM that arrive inside the block take effect when it is done (their handlers are swapped for
    a recorder meanwhile; masking would not do, since the kernel hands a process signal to any thread that
    does not block it). Main thread only: elsewhere Python delivers no signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if signal.SIGINT in pending and old[signal.SIGINT] is signal.default_int_handler:
            raise KeyboardInterrupt  # here, where the caller can still release what it holds
        for signum in pending:
            os.kill(os.getpid(), signum)  # now with the usual handler


def claim(study: optuna.Study, config: StudyConfig, lock: Any, *, poll: float = 1.0,
          seen: list[Any] | None = None, tags: dict[str, Any] | None = None) -> optuna.Trial | None:
    """A new trial owned by this process, or None when the target is met or the search must stop. While
    finished + running trials cover the target, it waits (a running trial may still fail). ``seen`` (a list)
    receives the trials read for the decision: one read of the study per claim, which the trial's reuse step
    looks the architecture up in. ``tags`` are user attributes written with the owner (the Ray pool: which
    actor on which node), so that a trial lost with its worker still says where it ran, and the Ray driver can
    tell which trial a dead actor held."""
    target = config.n_trials
    while True:
        with claim_lock(lock):
            trials = study.get_trials(deepcopy=False)
            if fail_dead_trials(study, trials=trials):
                trials = study.get_trials(deepcopy=False)
            c = counts(trials)
            if c["done"] >= target or stop_reason(c, config) is not None:
                return None
            if c["done"] + c["running"] < target:
                trial = None
                try:
                    with _signals_held():
                        trial = study.ask()
                        records.write(trial, {"worker": {"host": HOST, "pid": os.getpid()}, **(tags or {})})
                        _first_heartbeat(study, trial._trial_id)
                except KeyboardInterrupt:  # a Ctrl-C that came during the claim: give the trial back
                    if trial is not None:
                        give_back(study, trial._trial_id, "interrupted (Ctrl-C) while claiming",
                                  config.strategy.max_retries)
                    raise
                if seen is not None:
                    seen[:] = trials
                return trial
        time.sleep(poll)


def _first_heartbeat(study: optuna.Study, trial_id: int) -> None:
    """A heartbeat at the claim (RDB storages): a worker on another host that dies before its trial's heartbeat
    thread starts still leaves a trial that goes stale and is recovered."""
    storage = study._storage
    if isinstance(storage, _Heartbeats) and storage.get_heartbeat_interval() is not None:
        storage.record_heartbeat(trial_id)


def next_worker_number(study: optuna.Study, lock: Any) -> int:
    """A worker number never handed out before in this study (the count is kept in the study, under the lock)."""
    with claim_lock(lock):
        n = int(study._storage.get_study_user_attrs(study._study_id).get(WORKERS_ATTR, 0))
        study.set_user_attr(WORKERS_ATTR, n + 1)
    return n


def worker_seed(seed: int | None, number: int) -> int | None:
    """Worker ``number``'s sampler seed: every worker process samples with its own stream."""
    return None if seed is None else (seed * 1_000_003 + number) % (2**31 - 1)


# ------------------------------------------------------------------ dead trials

def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is dead for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def fail_running(study: optuna.Study, trial: optuna.trial.FrozenTrial, *, reason: str) -> bool:
    """Record ``reason`` on a RUNNING trial, then mark it FAIL (attributes cannot be written once it is
    finished). False if another process finished it first."""
    storage = study._storage
    try:
        records.set_attrs(storage, trial._trial_id, {"error": reason, "status": "failed"})
        return bool(storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL))
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def give_back(study: optuna.Study, trial_id: int, reason: str, max_retries: int) -> None:
    """Fail a RUNNING trial with ``reason`` and enqueue its params again: this process's own (an interrupted
    worker), or one whose worker the caller knows is dead (a Ray actor that died with its node)."""
    frozen = study._storage.get_trial(trial_id)
    if fail_running(study, frozen, reason=reason):
        requeue(study, frozen, max_retries=max_retries)


def seed_of(trial: Any) -> int:
    """The trial number that sets a trial's training seed: its own, or for a re-run (:func:`requeue`) that of
    the first attempt, so a re-run trains as the interrupted run would have."""
    return int(records.attr(trial, "seed_of", trial.number))


def requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial, *, max_retries: int | None = None) -> int | None:
    """Enqueue a failed trial's params again (up to the study's ``max_retries``). Returns the number of retries
    used, or None when the limit is reached."""
    if max_retries is None:
        max_retries = read_config(study).strategy.max_retries
    retries = int(records.attr(trial, "retries", 0))
    if not trial.params or retries >= max_retries:
        return None
    # the re-run trains with the first attempt's seed, so it trains as that attempt would have
    attrs: dict[str, Any] = {"retry_of": trial.number, "retries": retries + 1, "seed_of": seed_of(trial)}
    warm = records.attr(trial, "warm_start")
    if warm is not None:
        attrs["warm_start"] = warm
    records.enqueue(study, dict(trial.params), attrs)
    return retries + 1


def _stale_ids(study: optuna.Study) -> set[int]:
    storage = getattr(study._storage, "_backend", study._storage)
    if not isinstance(storage, _StaleTrials) or storage.get_heartbeat_interval() is None:
        return set()
    try:  # RDB storages: RUNNING trials whose heartbeat is older than the grace period
        return set(storage._get_stale_trial_ids(study._study_id))
    except Exception:
        return set()


def _death(t: optuna.trial.FrozenTrial, stale: set[int], reason_for: dict[int, str],
           now: datetime.datetime) -> str | None:
    """Why a RUNNING trial is dead, or None if its worker may still be at work."""
    worker = records.attr(t, "worker")
    if not worker:
        started = t.datetime_start
        if started is not None and (now - started).total_seconds() > GRACE_PERIOD:
            return f"no worker recorded owning the trial within {GRACE_PERIOD} s of its claim (killed while claiming)"
        return None
    pid = int(worker.get("pid", -1))
    if worker.get("host") == HOST and not pid_alive(pid):
        return reason_for.get(pid, f"worker process {pid} died while running the trial")
    if t._trial_id in stale:
        return (f"worker {worker.get('host', '?')}:{pid} stopped sending heartbeats (killed, crashed or cut off) "
                f"while running the trial")
    return None


def fail_dead_trials(study: optuna.Study, *, reason_for: dict[int, str] | None = None,
                     trials: list[optuna.trial.FrozenTrial] | None = None) -> list[int]:
    """Fail (and re-enqueue) the RUNNING trials whose worker is gone (among ``trials`` when the caller has just
    read them). Returns the numbers of the trials failed."""
    if trials is None:
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    else:
        running = [t for t in trials if t.state == TrialState.RUNNING]
    if not running:
        return []
    stale = _stale_ids(study)
    now = datetime.datetime.now()
    failed = []
    max_retries = None
    for t in running:
        reason = _death(t, stale, reason_for or {}, now)
        if reason is not None and fail_running(study, t, reason=reason):
            if max_retries is None:
                max_retries = read_config(study).strategy.max_retries
            requeue(study, t, max_retries=max_retries)
            failed.append(t.number)
    return failed
