"""Trials left RUNNING by a dead worker: detect them, record why, and re-run them from their params."""

from __future__ import annotations

import json
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


def requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial, *, reason: str) -> int | None:
    """Record ``reason`` on a failed trial and enqueue its params again (up to the study's retry limit).
    Returns the number of retries used, or None when the limit is reached."""
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial._trial_id, "error", reason)
        storage.set_trial_user_attr(trial._trial_id, "status", "failed")
    except Exception:  # the trial's row may be read-only in some storages once finished; the state is what counts
        pass
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
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker")
        if not worker or worker.get("host") != HOST or pid_alive(int(worker["pid"])):
            continue
        pid = int(worker["pid"])
        reason = (reason_for or {}).get(pid, f"worker process {pid} died while running the trial")
        try:
            if not study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another process got there first
        requeue(study, t, reason=reason)
        failed.append(t.number)
    optuna.storages.fail_stale_trials(study)
    return failed


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
