"""Trials left RUNNING by a dead worker: detect them, record why, and re-run them from their params."""

from __future__ import annotations

import os
from typing import Any

import optuna
from optuna.trial import TrialState

from nas._storage import HOST, read_config


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
        storage.set_trial_user_attr(trial._trial_id, "error", reason)
        storage.set_trial_user_attr(trial._trial_id, "status", "failed")
        return bool(storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL))
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


def requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial, *, reason: str = "") -> int | None:
    """Enqueue a failed trial's params again (up to the study's retry limit). Returns the number of retries
    used, or None when the limit is reached."""
    try:
        max_retries = int(read_config(study).get("max_retries", 2))
    except ValueError:
        max_retries = 2
    retries = int(trial.user_attrs.get("retries", 0))
    if not trial.params or retries >= max_retries:
        return None
    attrs: dict[str, Any] = {"retry_of": trial.number, "retries": retries + 1}
    if "warm_start" in trial.user_attrs:
        attrs["warm_start"] = trial.user_attrs["warm_start"]
    study.enqueue_trial(dict(trial.params), user_attrs=attrs, skip_if_exists=False)
    return retries + 1


def fail_dead_trials(study: optuna.Study, *, reason_for: dict[int, str] | None = None) -> list[int]:
    """Fail (and re-enqueue) RUNNING trials whose worker process on this host is gone, and, through
    heartbeats, those of workers on other hosts. Returns the numbers of the trials failed here."""
    failed = []
    stale: set[int] = set()
    storage = getattr(study._storage, "_backend", study._storage)
    if getattr(storage, "get_heartbeat_interval", lambda: None)() is not None:
        try:  # RDB storages: RUNNING trials whose heartbeat is older than the grace period
            stale = set(storage._get_stale_trial_ids(study._study_id))
        except Exception:
            stale = set()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker") or {}
        pid = int(worker.get("pid", -1))
        if worker.get("host") == HOST and not pid_alive(pid):
            reason = (reason_for or {}).get(pid, f"worker process {pid} died while running the trial")
        elif t._trial_id in stale:
            reason = (f"worker {worker.get('host', '?')}:{pid} stopped sending heartbeats (killed, crashed or "
                      f"cut off) while running the trial")
        else:
            continue
        if fail_running(study, t, reason=reason):
            requeue(study, t)
            failed.append(t.number)
    return failed
