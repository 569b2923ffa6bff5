"""The search engine end to end: real Optuna SQLite storage, real worker processes, real Keras training on
the embedded digits (tiny budgets)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

import nas
import search_spaces
from nas import ArchSpec
from nas.engine.records import attrs_of

pytestmark = pytest.mark.slow

TINY_CONV = {"space": "conv", "options": {"stages": (1, 2), "depth": (1, 1), "widths": (4, 8, 16), "kernels": (3,),
                                          "hidden": (0, 0), "dropouts": (0.0,)}}
TINY = {"epochs": 1, "batch_size": 128}


def test_multi_objective_search_records_everything(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path}/s.db"
    study = nas.search(TINY_CONV, "digits",
                       goal=nas.Goal(objectives=("accuracy", "macs"), constraints={"max_macs": 60_000}),
                       strategy=nas.Strategy(n_trials=5, budget=TINY, seed=0, sample_within_limits=False,
                                             sampler="nsga2"),
                       run=nas.Run(storage=storage, study="mo",
                                   backend=nas.Local(n_workers=2, max_trials_per_worker=2)), verbose=False)
    counts = study.counts()
    assert counts["done"] == 5 and counts["running"] == 0 and counts["failed"] == 0
    records = study.trials
    ok = [r for r in records if r.status in ("ok", "reused")]
    infeasible = [r for r in records if r.status == "infeasible"]
    assert len(ok) == 5
    for r in ok:
        assert r.spec is not None and r.spec.key() == r.key
        assert r.metrics["macs"] == nas.cost(r.spec).macs <= 60_000
        assert r.metrics["params"] == nas.cost(r.spec).params
        assert 0.0 < r.metrics["accuracy"] <= 1.0
        if r.status == "ok":
            assert Path(r.user_attrs["weights"]).exists()
            assert r.timings["train_s"] > 0 and r.timings["total_s"] >= r.timings["train_s"]
            assert r.user_attrs["worker"]["pid"] != os.getpid()
    for r in infeasible:  # never built: no weights, no training time, a reason naming the budget
        assert r.metrics["macs"] > 60_000 and "weights" not in r.user_attrs and "train_s" not in r.timings
        assert r.error.startswith("over budget: macs")
    # recycled workers: every trial by a worker of at most 2 trials -> at least ceil(trials / 2) processes
    claimed = [r.user_attrs["worker"]["pid"] for r in records if "worker" in r.user_attrs]
    assert len(claimed) == len(records)  # every trial has its owner
    assert max(claimed.count(p) for p in set(claimed)) <= 2  # no worker ran more than max_trials_per_worker
    assert len(set(claimed)) >= -(-len(claimed) // 2)
    # the ranking
    ranked = study.ranked()
    assert [rank for rank, _ in ranked] == sorted(rank for rank, _ in ranked)
    front = study.pareto_front()

    def dominates(a, b) -> bool:
        ge = a.metrics["accuracy"] >= b.metrics["accuracy"] and a.metrics["macs"] <= b.metrics["macs"]
        return ge and (a.metrics["accuracy"], a.metrics["macs"]) != (b.metrics["accuracy"], b.metrics["macs"])
    evaluated = study.evaluated()
    assert front and not any(dominates(a, b) for a in front for b in front)
    assert all(any(dominates(f, r) for f in front) for r in evaluated if r not in front)
    assert {r.number for r in front} == {r.number for r in evaluated if not any(dominates(o, r) for o in evaluated)}
    accs = [r.metrics["accuracy"] for r in front]
    macs = [r.metrics["macs"] for r in front]
    assert accs == sorted(accs, reverse=True) and macs == sorted(macs, reverse=True)
    assert 0.0 < study.hypervolume() <= 1.0
    assert study.reference_point() == {"accuracy": 0.0, "macs": 60_000.0}
    best = study.best()
    assert best.metrics["accuracy"] == max(r.metrics["accuracy"] for r in ok)
    cheap = study.best(max_macs=min(r.metrics["macs"] for r in ok))
    assert cheap.metrics["macs"] == min(r.metrics["macs"] for r in ok)
    assert study.best(max_macs=1) is None
    # plain Optuna reads a nas study: the architecture is in the trial's attributes
    plain = optuna.load_study(study_name="mo", storage=storage)
    t = next(t for t in plain.trials if attrs_of(t).get("status") == "ok")
    assert ArchSpec.from_json(t.system_attrs["nas:spec"]).key() == attrs_of(t)["spec_key"]
    # only short values are user attributes (`optuna trials` and the dashboard list them), the rest "nas:" ones
    assert set(t.user_attrs) == {"status", "accuracy", "macs", "params", "epochs"} and "nas:timings" in t.system_attrs
    assert len(json.dumps(t.user_attrs)) < 100, t.user_attrs
    assert plain.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert any(k.startswith("constraints") for k in t.system_attrs)
    # Optuna's own tools see a trained trial's learning curve and never rank an over-budget candidate
    assert [t.intermediate_values[i] for i in sorted(t.intermediate_values)] == attrs_of(t)["history"]
    infeasible = {t.number for t in plain.trials if attrs_of(t).get("status") == "infeasible"}
    assert infeasible and infeasible.isdisjoint(b.number for b in plain.best_trials)
    assert all(plain.trials[n].system_attrs["constraints"][0] > 0 for n in infeasible)  # the one limit: max_macs
    # export: best and the whole front, reloaded with plain Keras
    import keras

    out = study.export("front", tmp_path / "exp")
    assert len(out) == len(front)
    for folder, record in zip(out, front):
        model = keras.saving.load_model(folder / "model.keras")
        spec = ArchSpec.from_json((folder / "spec.json").read_text())
        assert spec == record.spec and model.count_params() == nas.cost(spec).params
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["accuracy"] == record.metrics["accuracy"] and metrics["trial"] == record.number
    # the exported weights are the trained ones, behind the input scaling: raw digits pixels (0-16, as
    # scikit-learn gives them) reach the recorded validation accuracy
    data = nas.load_data("digits")
    raw = data.x_val * 16
    assert np.array_equal(raw, np.round(raw)) and raw.max() == 16
    model = keras.saving.load_model(out[0] / "model.keras")
    acc = float(np.mean(model.predict(raw, verbose=0).argmax(axis=1) == data.y_val))
    assert acc == pytest.approx(front[0].metrics["accuracy"], abs=1e-6)
    assert json.loads((out[0] / "metrics.json").read_text())["input"] == {
        "shape": [8, 8, 1], "rescaling": 0.0625, "raw": "pixel values 0-16 (scikit-learn digits)", "resized_to": None}
    retrained = study.export("best", tmp_path / "retrained", retrain_epochs=1)
    assert json.loads((retrained[0] / "metrics.json").read_text())["retrained"]["epochs"] == 1
    # load_study gives the same study
    again = nas.load_study("mo", storage)
    assert [r.number for r in again.trials] == [r.number for r in records]


def test_studies_sharing_an_artefact_folder_keep_their_own_weights(tmp_path: Path) -> None:
    """Two studies run with one `artifacts` folder (a config re-run under another --study name): each trial's
    weights file is keyed by study, trial and architecture, and export checks the recorded SHA-256, so a
    weights file that is not the trial's own is refused instead of exported as the wrong network."""
    strategy = nas.Strategy(n_trials=1, budget=TINY, seed=0, sampler="random")
    run = nas.Run(storage=tmp_path / "w.db", artifacts=tmp_path / "shared")
    a = nas.search(TINY_CONV, "digits", strategy=strategy, run=run.replace(study="a"), verbose=False)
    b = nas.search(TINY_CONV, "digits", strategy=strategy.replace(budget={**TINY, "seed": 1}),  # other initial weights
                   run=run.replace(study="b"), verbose=False)
    wa, wb = (s.trials[0].user_attrs["weights"] for s in (a, b))
    assert a.trials[0].key == b.trials[0].key  # the same architecture, trial 0 of both studies
    assert wa != wb and Path(wa).name.startswith("a.trial-0.") and Path(wb).name.startswith("b.trial-0.")
    assert Path(wa).exists() and Path(wb).exists()
    assert a.export("best", tmp_path / "ea")[0].joinpath("model.keras").exists()
    assert Path(wa).read_bytes() != Path(wb).read_bytes()
    Path(wa).write_bytes(Path(wb).read_bytes())  # what a shared, unkeyed file name used to do
    with pytest.raises(ValueError, match=r"trial 0: the weights at .* are not the ones it saved \(SHA-256 differs"):
        a.export("best", tmp_path / "ea2")
    assert not (tmp_path / "ea2").exists()  # refused before anything was written


def test_failures_are_recorded_and_the_search_goes_on(tmp_path: Path) -> None:
    from engine_helpers import evaluator_that_fails_on_wide_first_stages

    space = search_spaces.get("conv", input_shape=(8, 8, 1), widths=(8, 16, 32, 64), stages=(1, 2))
    study = nas.search(space, goal=nas.Goal(objectives=("accuracy", "params")),
                       strategy=nas.Strategy(n_trials=8, sampler="random", seed=1, max_failures=40),
                       run=nas.Run(storage=tmp_path / "f.db", study="fail"),
                       evaluator=evaluator_that_fails_on_wide_first_stages, verbose=False)
    failed = [r for r in study.trials if r.status == "failed"]
    assert study.counts()["done"] == 8 and failed
    for r in failed:
        assert r.state == "FAIL" and r.error.startswith("RuntimeError: refusing first stage of")
        assert r.spec.stages[0].filters >= 32
    assert all(r.spec.stages[0].filters < 32 for r in study.evaluated())


def test_all_failing_search_stops_with_the_errors(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"3 trials failed \(limit max_failures=3\).*timeout: training exceeded"):
        nas.search(TINY_CONV, "digits",
                   strategy=nas.Strategy(n_trials=2, budget={"epochs": 1, "timeout": 1e-6}, max_failures=3),
                   run=nas.Run(storage=tmp_path / "t.db", study="t"), verbose=False)


def _wait_for(predicate, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("timed out")


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_sigkill_mid_search_then_resume_to_the_exact_count(tmp_path: Path, kind: str) -> None:
    from nas.engine.storage import open_storage

    storage = f"sqlite:///{tmp_path}/k.db" if kind == "sqlite" else f"journal:///{tmp_path}/k.journal"
    script = tmp_path / "run.py"
    script.write_text(
        "import nas\n"
        f"nas.search({TINY_CONV!r}, 'digits', run=nas.Run(storage={storage!r}, study='k'),\n"
        "           strategy=nas.Strategy(n_trials=4, seed=3, budget={'epochs': 3, 'batch_size': 32},\n"
        "                                 warm_start=[{'n_stages': 1, 'bn': True, 'activation': 'relu',"
        " 'head_pool': 'avg', 's1_width': 8, 's1_pool': 'max'}]))\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ost = lambda: optuna.load_study(study_name="k", storage=open_storage(storage))  # noqa: E731

    def one_done_one_running() -> bool:
        try:
            trials = ost().trials
        except Exception:
            return False
        states = [t.state for t in trials]
        return states.count(optuna.trial.TrialState.COMPLETE) >= 1 and optuna.trial.TrialState.RUNNING in states

    _wait_for(one_done_one_running, 240)
    before = {t.number: (t.values, attrs_of(t).get("spec_key")) for t in ost().trials
              if t.state == optuna.trial.TrialState.COMPLETE}
    running = [t for t in ost().trials if t.state == optuna.trial.TrialState.RUNNING]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    worker_pid = attrs_of(running[0])["worker"]["pid"]
    _wait_for(lambda: not os.path.exists(f"/proc/{worker_pid}") or
              Path(f"/proc/{worker_pid}/stat").read_text().split(")")[-1].split()[0] == "Z", 30)
    study = nas.load_study("k", storage)
    assert study.counts()["running"] == 1  # left behind by the dead search
    study.resume(verbose=False)
    trials = study.optuna_study.trials
    c = study.counts()
    assert c["done"] == 4 and c["running"] == 0
    killed = next(t for t in trials if t.number == running[0].number)
    assert killed.state == optuna.trial.TrialState.FAIL
    assert f"worker process {worker_pid} died" in attrs_of(killed)["error"]
    retry = [t for t in trials if attrs_of(t).get("retry_of") == killed.number]
    assert len(retry) == 1 and retry[0].params == killed.params and retry[0].state == optuna.trial.TrialState.COMPLETE
    # nothing completed before the kill was lost or retrained
    for number, (values, key) in before.items():
        assert trials[number].values == values and attrs_of(trials[number])["spec_key"] == key
    assert len({t.number for t in trials}) == len(trials)
    # the warm start was enqueued once, not again on resume
    assert len([t for t in trials if attrs_of(t).get("warm_start") and "retry_of" not in attrs_of(t)]) == 1
    # resume with a higher target continues
    study.resume(n_trials=5, verbose=False)
    assert study.counts()["done"] == 5 and study.n_trials == 5


def test_single_objective_with_pruner(tmp_path: Path) -> None:
    study = nas.search(TINY_CONV, "digits", goal=nas.Goal(objectives=("accuracy",)),
                       strategy=nas.Strategy(n_trials=6, budget={"epochs": 4, "batch_size": 64, "learning_rate": 0.01},
                                             pruner="median", seed=0),
                       run=nas.Run(storage=tmp_path / "p.db", study="p"), verbose=False)
    trials = study.optuna_study.trials
    assert study.counts()["done"] == 6
    assert study.optuna_study.direction == optuna.study.StudyDirection.MAXIMIZE
    for t in trials:
        if t.state == optuna.trial.TrialState.PRUNED:
            assert len(t.intermediate_values) < 4 and attrs_of(t)["status"] == "pruned"
        elif t.state == optuna.trial.TrialState.COMPLETE and attrs_of(t)["status"] == "ok":
            assert sorted(t.intermediate_values) == [0, 1, 2, 3]
            assert t.values[0] == pytest.approx(attrs_of(t)["accuracy"])


def test_latency_objective_and_tpe(tmp_path: Path) -> None:
    study = nas.search(TINY_CONV, "digits", goal=nas.Goal(objectives=("accuracy", "latency")),
                       strategy=nas.Strategy(n_trials=2, sampler="tpe", budget={"epochs": 1, "latency_runs": 5}),
                       run=nas.Run(storage=tmp_path / "l.db", study="lat"), verbose=False)
    for r in study.evaluated():
        assert r.metrics["latency_ms"] > 0
        assert r.metrics["latency"] == r.metrics["latency_ms"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(space="resnet"), "`space` must be one of conv, residual"),
    (dict(objectives=("accuracy", "speed")),
     "`objectives` must be chosen from accuracy, macs, flops, params, latency, but got 'speed'"),
    (dict(storage="postgresql://nobody@127.0.0.1:1/none"), "`storage` could not be opened"),
    (dict(budget={"epochs": 0}), "budget: `epochs` must be an integer in [1, 10000], but got epochs=0"),
    (dict(budget={"epoch": 3}), "budget: unknown field 'epoch'"),
    (dict(space=search_spaces.get("conv", input_shape=(28, 28, 3))),
     "`space` input_shape (28, 28, 3) has 3 channels, but the data has 1"),
    (dict(space=search_spaces.get("conv", input_shape=(8, 8, 1), num_classes=5)),
     "`space` num_classes=5, but the data has 10 classes"),
    (dict(data=(np.zeros((10, 8, 8)), np.zeros(9))), "must have one label per image (10), but got 9 labels"),
    (dict(n_trials=0), "`n_trials` must be an integer in [1, 1,000,000], but got n_trials=0"),
    (dict(n_trials=10**9), "`n_trials` must be an integer in [1, 1,000,000], but got n_trials=1000000000"),
    (dict(max_failures=10**9),
     "`max_failures` must be an integer in [1, 1,000,000] or None, but got max_failures=1000000000"),
    (dict(constraints={"max_macs": -5}), "constraint `max_macs` must be a positive number"),
    (dict(constraints={"min_acc": 1}), "`constraints` keys must be chosen from"),
    (dict(sampler="cmaes"), "`sampler` must be one of evolution, nsga2, tpe, random, grid or the name of a class of "
                            "optuna.samplers (e.g. GridSampler), but got sampler='cmaes'"),
    (dict(sampler={"name": "nsga2", "options": {"population": 8}}), "`sampler` 'nsga2': unknown option 'population'; "
                                                                    "known options: population_size"),
    (dict(sampler={"name": "TPESampler", "options": {"n_startup": 3}}), "`sampler` TPESampler with options"),
    (dict(pruner="foo", objectives=("accuracy", "macs")),
     "`pruner` must be one of pareto, median, successive_halving, asha, hyperband or the name of a class of "
     "optuna.pruners"),
    (dict(backend=nas.Ray(scheduler="asha")), "Ray: `scheduler` (asha) stops trials on one metric"),
    (dict(backend="spark"), "`backend` must be one of 'local', 'ray', 'keras_tuner' or a backend object"),
    (dict(sampler="grid"), "grid sampling needs a space with a fixed set of labels"),
    (dict(pruner="median"), "`pruner` works on per-epoch validation accuracy: it needs objectives=('accuracy',)"),
    (dict(warm_start=["resnet18"]), "`name` must be a classic network of the 'conv' space"),
    (dict(warm_start=[{"n_stages": 9}]), "label 'n_stages' must be an integer in [1, 2]"),
])
def test_bad_configuration_fails_before_any_training(tmp_path: Path, kwargs: dict, message: str) -> None:
    storage = kwargs.pop("storage", f"sqlite:///{tmp_path}/bad.db")
    space, data = kwargs.pop("space", TINY_CONV), kwargs.pop("data", "digits")
    groups: dict = {"goal": {}, "strategy": {"n_trials": 2, "budget": TINY},
                    "run": {"storage": storage, "study": "bad"}}
    for k, v in kwargs.items():
        groups["goal" if k in ("objectives", "constraints") else "run" if k in ("backend", "device", "artifacts")
               else "strategy"][k] = v
    with pytest.raises(ValueError) as err:
        nas.search(space, data, **groups, verbose=False)
    assert message in str(err.value)
    if storage.startswith("sqlite"):
        assert optuna.get_all_study_names(storage) == []  # nothing was created
    assert not list(tmp_path.glob("**/*.weights.h5"))


def test_existing_study_is_not_overwritten(tmp_path: Path) -> None:
    from engine_helpers import evaluator_that_fails_on_wide_first_stages

    space = search_spaces.get("conv", input_shape=(8, 8, 1), widths=(8, 16))
    kwargs = dict(evaluator=evaluator_that_fails_on_wide_first_stages, strategy=nas.Strategy(n_trials=2),
                  run=nas.Run(storage=tmp_path / "e.db", study="e"), verbose=False)
    nas.search(space, **kwargs)
    with pytest.raises(ValueError, match="study 'e' already exists .* continue it with nas.load_study"):
        nas.search(space, **kwargs)
    assert nas.load_study("e", tmp_path / "e.db").counts()["done"] == 2
