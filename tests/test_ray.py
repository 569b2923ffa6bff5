"""The Ray Tune backend on a real local Ray instance: counts and records, ASHA pruning recorded as pruned,
and a killed driver resumed to the exact count."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

import nas

pytestmark = pytest.mark.slow

TINY_CONV = {"space": "conv", "options": {"stages": (1, 2), "depth": (1, 1), "widths": (4, 8, 16), "kernels": (3,),
                                          "hidden": (0, 0), "dropouts": (0.0,)}}


def test_ray_multi_objective_two_concurrent(tmp_path: Path) -> None:
    study = nas.search(TINY_CONV, "digits", n_trials=4, storage=tmp_path / "r.db", study_name="r", seed=0,
                       budget={"epochs": 2, "batch_size": 128}, backend="ray", resources_per_trial={"cpu": 1},
                       max_concurrent=2, verbose=False)
    trials = study.optuna_study.trials
    c = study.counts()
    assert c["done"] == 4 and c["running"] == 0 and c["failed"] == 0
    ok = [t for t in trials if t.user_attrs.get("status") == "ok"]
    assert len(ok) == 4 and all("ray" in t.user_attrs and t.user_attrs["epochs"] == 2 for t in ok)
    assert len({t.user_attrs["worker"]["pid"] for t in ok}) == 4  # one Ray worker process per trial
    spans = sorted((t.datetime_start, t.datetime_complete) for t in ok)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:]))  # two ran at once
    # the same study continues on the local backend
    study.resume(n_trials=5, verbose=False)
    assert study.counts()["done"] == 5


def test_ray_asha_records_pruned_trials_as_pruned(tmp_path: Path) -> None:
    study = nas.search(TINY_CONV, "digits", objectives=("accuracy",), n_trials=8, storage=tmp_path / "a.db",
                       study_name="a", sampler="random", seed=5, budget={"epochs": 4, "batch_size": 64},
                       backend="ray", scheduler="asha", max_concurrent=2, verbose=False)
    trials = study.optuna_study.trials
    assert study.counts()["done"] == 8
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert pruned, "ASHA stopped no trial"
    for t in pruned:
        assert t.user_attrs["status"] == "pruned" and t.user_attrs["pruned_by"].startswith("ray asha after epoch")
        assert 1 <= len(t.intermediate_values) < 4
    for t in complete:  # nothing stopped early is reported as complete
        # a duplicate spec reuses the result of a fully trained one ("reused" only ever copies an "ok" trial)
        assert t.user_attrs["status"] in ("ok", "reused") and t.user_attrs["epochs"] == 4
        if t.user_attrs["status"] == "reused":
            assert trials[t.user_attrs["reused_from"]].user_attrs["status"] == "ok"
        assert t.values[0] == pytest.approx(t.user_attrs["accuracy"])


def test_ray_driver_killed_then_resumed_to_the_exact_count(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/k.db"
    script = tmp_path / "run.py"
    script.write_text("import nas\n"
                      f"nas.search({TINY_CONV!r}, 'digits', n_trials=4, storage={storage!r}, study_name='k', seed=1,\n"
                      "           budget={'epochs': 6, 'batch_size': 32}, backend='ray', max_concurrent=2)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline:
        try:
            states = [t.state for t in optuna.load_study(study_name="k", storage=storage).trials]
        except Exception:
            states = []
        if states.count(optuna.trial.TrialState.COMPLETE) >= 1 and optuna.trial.TrialState.RUNNING in states:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the Ray search did not get going")
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and everything it started
    proc.wait()
    time.sleep(2)
    study = nas.load_study("k", storage)
    study.resume(backend="ray", max_concurrent=2, verbose=False)
    c = study.counts()
    assert c["done"] == 4 and c["running"] == 0
    trials = study.optuna_study.trials
    assert len({t.number for t in trials}) == len(trials)
    for t in trials:
        if t.state == optuna.trial.TrialState.FAIL:
            assert "died" in t.user_attrs["error"] or "heartbeats" in t.user_attrs["error"]
            assert [r for r in trials if r.user_attrs.get("retry_of") == t.number]


def test_ray_scheduler_with_trials_that_report_nothing(tmp_path: Path) -> None:
    """One-epoch trials never report to Tune (the final epoch is never reported): with a scheduler, Tune must
    not abort on the missing metric (a regression: strict metric checking stopped the whole run)."""
    study = nas.search(TINY_CONV, "digits", objectives=("accuracy",), n_trials=3, storage=tmp_path / "h.db",
                       study_name="h", budget={"epochs": 1, "batch_size": 128}, backend="ray", scheduler="hyperband",
                       max_concurrent=2, verbose=False)
    c = study.counts()
    assert c["done"] == 3 and c["complete"] == 3 and c["failed"] == 0
