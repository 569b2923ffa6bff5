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
    study = nas.search(TINY_CONV, "digits", strategy=nas.Strategy(n_trials=4, seed=0, budget={"epochs": 2, "batch_size": 128}), run=nas.Run(storage=tmp_path / "r.db", study="r", backend=nas.Ray(resources={"cpu": 1}, max_concurrent=2)), verbose=False)
    trials = study.optuna_study.trials
    c = study.counts()
    assert c["done"] == 4 and c["running"] == 0 and c["failed"] == 0
    ok = [t for t in trials if t.user_attrs.get("status") == "ok"]
    assert len(ok) == 4 and all("ray" in t.user_attrs and t.user_attrs["epochs"] == 2 for t in ok)
    # two long-lived Ray actors ran the four trials (one process each, TensorFlow imported once per actor)
    assert len({t.user_attrs["worker"]["pid"] for t in ok}) == 2
    assert len({t.user_attrs["ray"]["actor_id"] for t in ok}) == 2
    spans = sorted((t.datetime_start, t.datetime_complete) for t in ok)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:]))  # two ran at once
    assert study.backend == nas.Ray(resources={"cpu": 1}, max_concurrent=2)  # stored with the study
    # the same study continues on the local backend, which is then stored
    study.resume(n_trials=5, backend="local", verbose=False)
    assert study.counts()["done"] == 5 and nas.load_study("r", tmp_path / "r.db").backend == nas.Local()
    last = max(study.optuna_study.trials, key=lambda t: t.number)
    assert last.user_attrs["status"] in ("ok", "reused") and "ray" not in last.user_attrs


def test_ray_asha_records_pruned_trials_as_pruned(tmp_path: Path) -> None:
    study = nas.search(TINY_CONV, "digits", goal=nas.Goal(objectives=("accuracy",)), strategy=nas.Strategy(n_trials=8, sampler="random", seed=5, budget={"epochs": 4, "batch_size": 64}), run=nas.Run(storage=tmp_path / "a.db", study="a", backend=nas.Ray(scheduler="asha", max_concurrent=2)), verbose=False)
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
                      "           budget={'epochs': 6, 'batch_size': 32}, backend=nas.Ray(max_concurrent=2))\n")
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
    study.resume(verbose=False)  # continues on the stored backend: Ray
    c = study.counts()
    assert c["done"] == 4 and c["running"] == 0
    trials = study.optuna_study.trials
    assert len({t.number for t in trials}) == len(trials)
    for t in trials:
        if t.state == optuna.trial.TrialState.FAIL:
            assert "died" in t.user_attrs["error"] or "heartbeats" in t.user_attrs["error"]
            retries = [r for r in trials if r.user_attrs.get("retry_of") == t.number]
            assert retries and all("ray" in r.user_attrs for r in retries if r.state == optuna.trial.TrialState.COMPLETE)


def test_ray_workers_are_recycled_after_max_trials_per_worker(tmp_path: Path) -> None:
    from engine_helpers import evaluator_that_fails_on_wide_first_stages

    import search_spaces

    space = search_spaces.get("conv", input_shape=(8, 8, 1), widths=(4, 8, 16), stages=(1, 2))
    study = nas.search(space, strategy=nas.Strategy(n_trials=7, sampler="random", seed=2, max_failures=50), run=nas.Run(storage=tmp_path / "p.db", study="p", backend=nas.Ray(max_concurrent=1, max_trials_per_worker=3)), evaluator=evaluator_that_fails_on_wide_first_stages, verbose=False)
    trials = sorted(study.optuna_study.trials, key=lambda t: t.number)
    assert study.counts()["done"] == 7
    # one actor at a time, each replaced after 3 trials: trials 0-2, 3-5 and 6 in three processes
    ran = [t for t in trials if "ray" in t.user_attrs]
    actors = [t.user_attrs["ray"]["actor_id"] for t in ran]
    assert len(set(actors)) == len({t.user_attrs["worker"]["pid"] for t in ran}) == -(-len(ran) // 3)
    assert all(actors.count(a) <= 3 for a in set(actors))
    assert [t.system_attrs["nas:worker_memory"]["trial_in_worker"] for t in ran] == \
        [i % 3 + 1 for i in range(len(ran))]


def test_ray_pool_applies_the_pareto_pruner_from_stored_data(tmp_path: Path) -> None:
    from test_early_stopping import _recompute

    study = nas.search(TINY_CONV, "digits", goal=nas.Goal(objectives=("accuracy", "params")), strategy=nas.Strategy(n_trials=8, sampler="random", seed=4, budget={"epochs": 4, "batch_size": 128, "learning_rate": 0.01}, pruner={"name": "pareto", "options": {"reduction_factor": 2}}), run=nas.Run(storage=tmp_path / "e.db", study="e", backend=nas.Ray(max_concurrent=1)), verbose=False)
    trials = sorted(study.optuna_study.trials, key=lambda t: t.number)
    trained = [t for t in trials if t.user_attrs.get("status") in ("ok", "pruned")]
    assert study.counts()["done"] == 8 and all("ray" in t.user_attrs for t in trained)
    # the same decisions as the rule gives over the stored rung results (one actor: trials in number order)
    assert _recompute(trained, 2, "margin", ("params",)) >= len(trained)
    for t in trials:
        if t.state == optuna.trial.TrialState.PRUNED:
            assert t.user_attrs["pruned_by"].startswith("margin rung at epoch") and t.user_attrs["epochs"] < 4


def test_ray_scheduler_with_trials_that_report_nothing(tmp_path: Path) -> None:
    """One-epoch trials never report to Tune (the final epoch is never reported): with a scheduler, Tune must
    not abort on the missing metric (a regression: strict metric checking stopped the whole run)."""
    study = nas.search(TINY_CONV, "digits", goal=nas.Goal(objectives=("accuracy",)), strategy=nas.Strategy(n_trials=3, budget={"epochs": 1, "batch_size": 128}), run=nas.Run(storage=tmp_path / "h.db", study="h", backend=nas.Ray(scheduler="hyperband", max_concurrent=2)), verbose=False)
    c = study.counts()
    assert c["done"] == 3 and c["complete"] == 3 and c["failed"] == 0


def test_ray_honours_the_seed(tmp_path: Path) -> None:
    """Each Tune trial samples with the seed of its worker number (handed out under the claim lock), so two Ray
    searches with one seed evaluate the same architectures (they used SystemRandom before)."""
    from engine_helpers import evaluator_that_fails_on_wide_first_stages

    import search_spaces

    space = search_spaces.get("conv", input_shape=(8, 8, 1), widths=(8, 16), stages=(1, 2))
    runs = []
    for name in ("s1", "s2"):
        study = nas.search(space, strategy=nas.Strategy(n_trials=3, sampler="random", seed=7, max_failures=20), run=nas.Run(storage=tmp_path / f"{name}.db", study=name, backend=nas.Ray(max_concurrent=1)), evaluator=evaluator_that_fails_on_wide_first_stages, verbose=False)
        runs.append([t.params for t in sorted(study.optuna_study.trials, key=lambda t: t.number)])
    assert len(runs[0]) == 3 and runs[0] == runs[1]
    assert len({str(p) for p in runs[0]}) == 3


def test_a_local_ray_instance_listens_on_loopback_only_with_authentication_on(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Every listening socket of every Ray process (GCS, raylet, agents, workers, the driver) is on 127.0.0.1
    while a search runs; Ray's token authentication stays on with its token in a private folder (not ~/.ray),
    and that folder is removed afterwards."""
    import tempfile
    import threading

    import nas.backends.ray as ray_backend

    from engine_helpers import evaluator_that_fails_on_wide_first_stages
    from net_helpers import is_loopback, listening_sockets

    import search_spaces

    token = Path.home() / ".ray" / "auth_token"
    had_token = token.exists()
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    made: list[str] = []  # the private folders this search makes (other tests' Ray folders may come and go)

    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(*args, **kwargs):
        folder = real_mkdtemp(*args, **kwargs)
        if Path(folder).name.startswith("nasray-"):
            made.append(folder)
        return folder
    monkeypatch.setattr(ray_backend.tempfile, "mkdtemp", mkdtemp)
    seen: set[tuple[str, str]] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            seen.update((name, address) for _, name, address in listening_sockets())
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    space = search_spaces.get("conv", input_shape=(8, 8, 1), widths=(8, 16), stages=(1, 2))
    try:
        study = nas.search(space, strategy=nas.Strategy(n_trials=4, sampler="random", seed=1, max_failures=20), run=nas.Run(storage=tmp_path / "net.db", study="net", backend=nas.Ray(max_concurrent=2)), evaluator=evaluator_that_fails_on_wide_first_stages, verbose=False)
    finally:
        done.set()
        watcher.join()
    assert study.counts()["done"] == 4
    names = {name for name, _ in seen}
    assert {"gcs_server", "raylet"} <= names, names
    assert [s for s in seen if not is_loopback(s[1])] == []
    assert token.exists() == had_token  # the token lived in the private folder
    assert len(made) == 1
    assert not Path(made[0]).exists()  # and that folder is gone
    # the driver's signal handlers are set back (ray.init installs its own SIGTERM handler)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert "RAY_AUTH_TOKEN_PATH" not in os.environ and os.environ.get("RAY_AUTH_MODE") != "token"
