"""The engine's parts on their own, without TensorFlow: the stored configuration, components stored as data
(never code), claiming and counting, dead-trial recovery, the record writer and reader, secrets in URLs."""

from __future__ import annotations

import base64
import datetime
import json
import multiprocessing
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import nas
import search_spaces
from nas.engine import claims, records
from nas.engine.components import RUN_CODE_ENV, make_evaluator, make_pruner, make_sampler, sampler_component
from nas.engine.runner import Runner
from nas.engine.schema import CONFIG_VERSION, Component, StudyConfig, read_config, write_config
from nas.engine.storage import describe_storage, lock_path, mask_url, open_storage

from engine_helpers import store_record, stored_record

DATA = Path(__file__).resolve().parent / "data"
SPACE = search_spaces.get("conv", input_shape=(8, 8, 1), widths=(8, 16, 32, 64), stages=(1, 2))
EVALUATOR_PATH = "engine_helpers:evaluator_that_fails_on_wide_first_stages"


_GROUP = {"objectives": "goal", "constraints": "goal", "artifacts": "run", "backend": "run", "device": "run",
          **{k: "strategy" for k in ("n_trials", "sampler", "pruner", "budget", "seed", "warm_start",
                                     "sample_within_limits", "max_retries", "max_failures")}}


def _config(**changes) -> StudyConfig:
    """A record made from flat settings (each put in its group)."""
    flat = {**dict(objectives=("accuracy", "params"), n_trials=4, artifacts="/tmp/nas-unit",
                   sampler=Component(name="random"), seed=3,
                   evaluator=Component(name="engine_helpers:evaluator_that_fails_on_wide_first_stages")), **changes}
    groups: dict = {"goal": {}, "strategy": {}, "run": {}}
    top = {"space": SPACE.config(), "data": {"kind": "evaluator"}}
    for k, v in flat.items():
        if k in _GROUP:
            groups[_GROUP[k]][k] = v
        else:
            top[k] = v
    return StudyConfig(**top, goal=groups["goal"], strategy=groups["strategy"], run=groups["run"])


def _study(tmp_path: Path, config: StudyConfig, name: str = "u") -> tuple[optuna.Study, str]:
    url = describe_storage(tmp_path / "u.db")
    study = optuna.create_study(study_name=name, storage=open_storage(url),
                                directions=["maximize", "minimize"][:len(config.objectives)])
    write_config(study, config)
    return study, url


# ------------------------------------------------------------------ the stored configuration

def test_config_round_trips_exactly_and_states_its_defaults() -> None:
    config = _config(constraints={"max_params": 5e4}, budget=nas.Budget(epochs=2), device=nas.Device(kind="cpu"),
                     pruner=None, warm_start=("a",), backend={"kind": "local", "n_workers": 2,
                                                               "max_trials_per_worker": 3})
    again = StudyConfig.from_json(config.to_json())
    assert again == config and again.to_json() == config.to_json()
    assert again.run.backend == nas.Local(n_workers=2, max_trials_per_worker=3)
    stored = json.loads(config.to_json())
    assert stored["version"] == CONFIG_VERSION == 3 and "storage" not in stored["run"]
    assert sorted(stored) == ["created", "data", "description", "evaluator", "goal", "run", "space", "strategy",
                              "version"]
    assert sorted(stored["strategy"]) == ["budget", "max_failures", "max_retries", "n_trials", "pruner",
                                          "sample_within_limits", "sampler", "seed", "warm_start"]
    assert (config.strategy.max_retries, config.strategy.failure_cap, config.strategy.infeasible_cap) == (2, 5, 1000)
    assert _config(n_trials=40, max_failures=7).strategy.failure_cap == 7
    assert _config(n_trials=40).strategy.failure_cap == 40


@pytest.mark.parametrize("change, message", [
    ({"version": 4}, "study config: `version` must be 3 (older ones are read by StudyConfig.from_dict), but got "
                     "version=4"),
    ({"colour": "red"}, "study config: unknown field 'colour'"),
    ({"strategy": {"n_trials": 0}}, "`n_trials` must be an integer in [1, 1,000,000], but got n_trials=0"),
    ({"strategy": {"max_retries": -1}}, "`max_retries` must be an integer in [0, 100], but got max_retries=-1"),
    ({"strategy": {"seeds": 1}}, "strategy: unknown field 'seeds'; known fields: n_trials, sampler"),
    ({"goal": {"objectives": ["accuracy", "speed"]}}, "`objectives` must be chosen from"),
    ({"strategy": {"sampler": 3}}, "`sampler` must be a name or {'name': ..., 'options': {...}}, but got 3"),
    ({"run": {"device": {"kind": "npu"}}}, "device: `kind` must be one of auto, cpu, gpu, tpu"),
    ({"run": {"backend": {"n_workers": 2}}}, "`backend` must be one of 'local', 'ray', 'keras_tuner' or a backend "
                                             "object"),
    ({"run": {"study": "a\nb"}}, "`study` must be a non-blank string"),
])
def test_bad_stored_configs_are_refused_with_the_field(change: dict, message: str) -> None:
    data = {**json.loads(_config().to_json()), **change}
    with pytest.raises(ValueError) as err:
        StudyConfig.from_json(json.dumps(data))
    assert message in str(err.value)
    for text, what in ((None, "must be JSON text, but got NoneType"), ("{", "is not valid JSON"),
                       ("[1]", "study config must be a mapping, but got list")):
        with pytest.raises(ValueError, match=what):
            StudyConfig.from_json(text)


def test_studies_written_by_version_1_load_as_typed_configs(tmp_path: Path) -> None:
    for name in ("v1-evaluator", "v1-trained"):
        shutil.copy(DATA / f"{name}.db", tmp_path / f"{name}.db")
    ev = nas.load_study("v1-evaluator", tmp_path / "v1-evaluator.db")
    assert ev.config.evaluator.name == "pickle" and ev.config.strategy.sampler == Component(name="tpe")
    assert ev.config.strategy.seed == 3 and ev.config.objectives == ("accuracy", "params")
    assert ev.backend == nas.Local(n_workers=1, max_trials_per_worker=20)
    assert ev.counts() == {"done": 4, "running": 0, "waiting": 0, "infeasible": 0, "failed": 0, "pruned": 0,
                           "complete": 4}
    trained = nas.load_study("v1-trained", tmp_path / "v1-trained.db")
    assert trained.config.strategy.sampler == Component(name="nsga2")
    assert trained.config.constraints == {"max_macs": 60000.0}
    assert trained.config.device == nas.Device() and trained.config.data["name"] == "digits"
    assert [r.status for r in trained.trials] == ["ok", "ok"] and trained.best().metrics["accuracy"] > 0
    # reading never rewrote it: the stored text is still version 1
    assert json.loads(trained.optuna_study.user_attrs["nas"])["version"] == 1


def test_a_version_1_pickle_runs_only_with_the_explicit_opt_in(tmp_path: Path, monkeypatch) -> None:
    shutil.copy(DATA / "v1-evaluator.db", tmp_path / "v1.db")
    study = nas.load_study("v1-evaluator", tmp_path / "v1.db")
    monkeypatch.delenv(RUN_CODE_ENV, raising=False)
    with pytest.raises(ValueError, match=f"stores its evaluator as a pickle .* set {RUN_CODE_ENV}=1"):
        study.resume(6, verbose=False)
    assert study.counts()["done"] == 4 and read_config(study.optuna_study).n_trials == 4  # nothing changed
    monkeypatch.setenv(RUN_CODE_ENV, "1")
    study.resume(6, verbose=False, artifacts="/tmp/v1/art-e")  # its stored folder, outside the default: confirmed
    assert study.counts()["done"] == 6 and study.n_trials == 6


# ------------------------------------------------------------------ components: names and JSON, never code

def test_samplers_and_pruners_are_stored_by_name_and_json_options() -> None:
    grid = optuna.samplers.GridSampler({"n_stages": [1, 2], "s1_width": [8, 16]}, seed=0)
    stored = sampler_component(grid, ("accuracy",), SPACE)
    assert stored == Component(name="GridSampler", options={"search_space": {"n_stages": [1, 2], "s1_width": [8, 16]}})
    rebuilt = make_sampler(stored, n_trials=4, space=SPACE, seed=5)
    assert isinstance(rebuilt, optuna.samplers.GridSampler) and rebuilt._search_space == grid._search_space
    assert sampler_component("tpe", ("accuracy",), SPACE) == Component(name="tpe")
    assert sampler_component(None, ("accuracy", "macs"), SPACE) == Component(name="evolution",
                                                                      options={"init": "spread"})
    nsga = make_sampler(Component(name="nsga2", options={"population_size": 6}), n_trials=100, space=SPACE, seed=1)
    assert nsga._population_size == 6
    with pytest.raises(ValueError,
                       match="the TPESampler object cannot be stored as data .its argument 'consider_prior'"):
        sampler_component(optuna.samplers.TPESampler(gamma=lambda n: 3), ("accuracy",), SPACE)
    pruner = make_pruner(Component(name="PercentilePruner", options={"percentile": 25.0}), epochs=3)
    assert isinstance(pruner, optuna.pruners.PercentilePruner) and pruner._percentile == 25.0
    for name in ("os.system", "optuna.samplers._base", "__builtins__", "BaseSampler.__subclasses__"):
        with pytest.raises(ValueError, match="`sampler` must be one of evolution, nsga2, tpe, random, grid or the name "
                                             "of a class"):
            make_sampler(Component(name=name), n_trials=1, space=SPACE, seed=None)


def test_evaluators_are_import_paths_of_marked_functions(tmp_path: Path) -> None:
    from engine_helpers import evaluator_that_fails_on_wide_first_stages as marked

    assert make_evaluator(Component(name="engine_helpers:evaluator_that_fails_on_wide_first_stages")) is marked
    table = make_evaluator(Component(name="nasbench201", options={"dataset": "cifar100", "seed": None,
                                                                  "metric": "valid"}))
    assert isinstance(table, search_spaces.nasbench201.Table) and table.dataset == "cifar100"
    assert search_spaces.nasbench201.Table("imagenet").evaluator_ref() == (
        "nasbench201", {"dataset": "imagenet", "seed": None, "metric": "valid"})
    for name, message in (("os:system", "names the standard library"), ("subprocess:run", "names the standard library"),
                          ("json:loads", "names the standard library"),
                          ("engine_helpers:cost", "is not marked with @nas.evaluator"),
                          ("optuna.samplers:RandomSampler", "is not marked with @nas.evaluator"),
                          ("nas.cost", "must be a registered name (nasbench201) or an import path"),
                          ("no_such_module_x:f", "cannot be imported here: no module named 'no_such_module_x'")):
        with pytest.raises(ValueError, match=re.escape(message)):
            make_evaluator(Component(name=name))

    def local(spec):
        return {"accuracy": 1.0}
    with pytest.raises(ValueError, match="is not marked as an evaluator: decorate it with @nas.evaluator"):
        nas.search(SPACE, run=nas.Run(storage=tmp_path / "x.db"), evaluator=local, verbose=False)
    with pytest.raises(ValueError, match="define it at the top level of an importable module"):
        nas.search(SPACE, run=nas.Run(storage=tmp_path / "x.db"), evaluator=nas.evaluator(local), verbose=False)
    assert not (tmp_path / "x.db").exists()


def _crafted_study(tmp_path: Path, marker: Path, what: str) -> str:
    """A study whose stored configuration was rewritten by someone with write access to the storage, to run
    ``touch marker`` in whatever process reads it."""
    study = nas.create_study(SPACE, strategy=nas.Strategy(n_trials=2),
                             run=nas.Run(storage=tmp_path / "c.db", study="c"),
                             evaluator="engine_helpers:evaluator_that_fails_on_wide_first_stages", verbose=False)

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    data = stored_record(study.optuna_study)
    if what == "pickle":
        data["strategy"]["sampler"] = {"name": "pickle",
                                       "options": {"pickle": base64.b64encode(pickle.dumps(Payload())).decode()}}
    elif what == "path":
        data["evaluator"] = {"name": "os:system", "options": {"command": f"touch {marker}"}}
    else:
        data["evaluator"] = {"name": "subprocess:run", "options": {"args": f"touch {marker}", "shell": True}}
    store_record(study.optuna_study, data)
    return describe_storage(tmp_path / "c.db")


@pytest.mark.parametrize("what", ["pickle", "path", "subprocess"])
def test_a_crafted_study_config_cannot_run_code(tmp_path: Path, what: str, monkeypatch) -> None:
    monkeypatch.delenv(RUN_CODE_ENV, raising=False)
    marker = tmp_path / "pwned"
    url = _crafted_study(tmp_path, marker, what)
    study = nas.load_study("c", url)  # load_study and status read it without running anything
    assert study.counts()["done"] == 0
    status = subprocess.run([sys.executable, "-m", "nas.cli", "status", "--study", "c", "--storage", url],
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and "progress 0/2" in status.stdout
    with pytest.raises(ValueError, match="pickle|names the standard library"):
        study.resume(verbose=False)
    worker = subprocess.run([sys.executable, "-m", "nas.cli", "worker", "--study", "c"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "NAS_STORAGE": url},
                            cwd=Path(__file__).resolve().parent)
    assert worker.returncode == 2 and ("pickle" in worker.stderr or "standard library" in worker.stderr)
    assert not marker.exists()
    assert study.counts() == {"done": 0, "running": 0, "waiting": 0, "infeasible": 0, "failed": 0, "pruned": 0,
                              "complete": 0}
    if what == "pickle":  # the opt-in is what stands between the pickle and the code: with it, the code runs
        monkeypatch.setenv(RUN_CODE_ENV, "1")
        make_sampler(read_config(study.optuna_study).strategy.sampler, n_trials=2, space=SPACE, seed=None)
        assert marker.exists()


# ------------------------------------------------------------------ counting, claiming, recovering

def _trial(state: TrialState, **attrs) -> optuna.trial.FrozenTrial:
    values = [0.5, 100.0] if state == TrialState.COMPLETE else None
    return optuna.trial.create_trial(state=state, values=values, user_attrs=attrs)


def test_counts_by_outcome() -> None:
    trials = [_trial(TrialState.COMPLETE, status="ok"), _trial(TrialState.COMPLETE, status="reused"),
              _trial(TrialState.COMPLETE, status="infeasible"), _trial(TrialState.PRUNED),
              _trial(TrialState.FAIL), _trial(TrialState.FAIL), _trial(TrialState.WAITING)]
    assert claims.counts(trials) == {"done": 3, "running": 0, "waiting": 1, "infeasible": 1, "failed": 2, "pruned": 1,
                                     "complete": 2}
    assert claims.stop_reason({"infeasible": 1000, "failed": 0, "done": 0}, _config()).startswith(
        "the constraints {} rejected 1000 candidates")
    assert claims.stop_reason({"infeasible": 0, "failed": 5, "done": 0}, _config()) == \
        "5 trials failed (limit max_failures=5)"
    assert claims.stop_reason({"infeasible": 999, "failed": 4, "done": 0}, _config()) is None


def test_claim_stops_at_the_target_and_writes_the_owner(tmp_path: Path) -> None:
    config = _config(n_trials=2)
    study, url = _study(tmp_path, config)
    first = claims.claim(study, config, lock_path(url))
    second = claims.claim(study, config, lock_path(url))
    assert study.trials[0].system_attrs["nas:worker"] == {"host": claims.HOST, "pid": os.getpid()}
    for t in (first, second):
        study.tell(t, [0.5, 10.0])
    assert claims.claim(study, config, lock_path(url)) is None
    assert claims.counts(study.trials)["done"] == 2 and len(study.trials) == 2


def test_ctrl_c_inside_a_claim_waits_until_the_owner_is_written(tmp_path: Path, monkeypatch) -> None:
    # Python's own Ctrl-C handler, whatever an earlier test in this process left installed
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _ctrl_c_inside_a_claim(tmp_path, monkeypatch)
    finally:
        signal.signal(signal.SIGINT, previous)


def _ctrl_c_inside_a_claim(tmp_path: Path, monkeypatch) -> None:
    config = _config()
    study, url = _study(tmp_path, config)
    ask = study.ask

    def ask_then_interrupted():
        trial = ask()
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C between the ask and the owner
        return trial
    monkeypatch.setattr(study, "ask", ask_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        claims.claim(study, config, lock_path(url))
    (trial,) = study.trials  # owned, then given back: failed with the reason, never left RUNNING
    assert trial.system_attrs["nas:worker"]["pid"] == os.getpid() and trial.state == TrialState.FAIL
    assert trial.user_attrs["error"] == "interrupted (Ctrl-C) while claiming"


def test_dead_and_ownerless_trials_are_failed_and_requeued(tmp_path: Path) -> None:
    config = _config(max_retries=1)
    study, url = _study(tmp_path, config)
    dead_pid = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # never a live process
    t1 = study.ask({"n_stages": optuna.distributions.IntDistribution(1, 2)})
    t1.set_user_attr("worker", {"host": claims.HOST, "pid": dead_pid})
    t2 = study.ask({"n_stages": optuna.distributions.IntDistribution(1, 2)})  # killed inside its claim: no owner
    alive = study.ask()
    alive.set_user_attr("worker", {"host": claims.HOST, "pid": os.getpid()})
    assert claims.fail_dead_trials(study) == [t1.number]  # the ownerless one is still within its grace period
    old = datetime.datetime.now() - datetime.timedelta(seconds=claims.GRACE_PERIOD + 5)
    with open_storage(url).engine.begin() as conn:
        import sqlalchemy

        conn.execute(sqlalchemy.text("UPDATE trials SET datetime_start = :t WHERE number = :n"),
                     {"t": old, "n": t2.number})
    assert claims.fail_dead_trials(study) == [t2.number]
    trials = {t.number: t for t in study.get_trials()}
    assert f"worker process {dead_pid} died" in trials[t1.number].user_attrs["error"]
    assert "no worker recorded owning the trial" in trials[t2.number].user_attrs["error"]
    retries = [t for t in trials.values() if t.state == TrialState.WAITING]
    assert sorted(t.user_attrs["retry_of"] for t in retries) == [t1.number, t2.number]
    assert trials[alive.number].state == TrialState.RUNNING
    # a retry that dies again is not re-enqueued past max_retries=1
    retry = study.ask()
    retry.set_user_attr("worker", {"host": claims.HOST, "pid": dead_pid})
    assert claims.requeue(study, study.get_trials()[retry.number], max_retries=1) is None


def _numbers(url: str, n: int, queue: multiprocessing.Queue) -> None:
    study = optuna.load_study(study_name="u", storage=open_storage(url))
    queue.put([claims.next_worker_number(study, lock_path(url)) for _ in range(n)])


def test_worker_numbers_and_seeds_never_repeat_across_processes(tmp_path: Path) -> None:
    study, url = _study(tmp_path, _config())
    queue: multiprocessing.Queue = multiprocessing.Queue()
    procs = [multiprocessing.get_context("fork").Process(target=_numbers, args=(url, 10, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    got = sorted(n for _ in procs for n in queue.get(timeout=60))
    for p in procs:
        p.join()
    assert got == list(range(30))
    seeds = {claims.worker_seed(3, n) for n in got}
    assert len(seeds) == 30 and claims.worker_seed(None, 4) is None


def _create(path: str, queue: multiprocessing.Queue) -> None:
    try:
        nas.create_study(SPACE, strategy=nas.Strategy(n_trials=2), run=nas.Run(storage=path, study="race"),
                         evaluator="engine_helpers:evaluator_that_fails_on_wide_first_stages", verbose=False)
        queue.put("created")
    except ValueError as exc:
        queue.put(str(exc))


def test_two_processes_creating_one_new_study_at_once(tmp_path: Path) -> None:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    procs = [multiprocessing.get_context("fork").Process(target=_create, args=(str(tmp_path / "race.db"), queue))
             for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join()
    assert results.count("created") == 1
    assert all(r.startswith("study 'race' already exists in sqlite:///") for r in results if r != "created")
    assert optuna.get_all_study_names(describe_storage(tmp_path / "race.db")) == ["race"]


# ------------------------------------------------------------------ the trial pipeline and its record

def _params(want) -> dict:
    """The labels of the first seeded random point of SPACE whose spec satisfies ``want``."""
    for seed in range(10_000):
        trial = nas.RandomTrial(seed=seed)
        spec = SPACE.sample(trial)
        if want(spec):
            return dict(trial.params)
    raise AssertionError("no such point")


def test_the_pipeline_records_ok_infeasible_reused_and_failed_trials(tmp_path: Path) -> None:
    config = _config(constraints={"max_params": 60_000}, n_trials=10)
    study, url = _study(tmp_path, config)
    runner = Runner(study, config)
    fits = _params(lambda s: s.stages[0].filters < 32 and nas.cost(s).params <= 60_000)
    wide = _params(lambda s: s.stages[0].filters >= 32 and nas.cost(s).params <= 60_000)
    big = _params(lambda s: nas.cost(s).params > 60_000)
    for params in (fits, fits, wide, big):
        study.enqueue_trial(params)
    for _ in range(4):
        runner.run(claims.claim(study, config, lock_path(url)))
    ok, reused, failed, infeasible = (records.read(t) for t in study.get_trials())
    spec = SPACE.sample(nas.FixedTrial(fits))
    assert ok.status == "ok" and ok.spec == spec and ok.key == spec.key() and ok.spec_str == str(spec)
    assert ok.metrics["params"] == nas.cost(spec).params and ok.metrics["macs"] == nas.cost(spec).macs
    assert ok.metrics["accuracy"] == pytest.approx(1.0 - 1.0 / (1 + nas.cost(spec).params / 1000))
    assert study.get_trials()[0].values == [ok.metrics["accuracy"], ok.metrics["params"]]
    assert set(ok.timings) == {"sample_s", "evaluate_s", "total_s"} and ok.user_attrs["worker_memory"]["rss_mb"] > 0
    assert reused.status == "reused" and reused.user_attrs["reused_from"] == 0
    assert reused.metrics["accuracy"] == ok.metrics["accuracy"] and "evaluate_s" not in reused.timings
    assert failed.status == "failed" and failed.state == "FAIL"
    assert failed.error == f"RuntimeError: refusing first stage of {failed.spec.stages[0].filters} filters"
    assert "Traceback" in failed.user_attrs["traceback"]
    over = nas.cost(SPACE.sample(nas.FixedTrial(big))).params
    assert infeasible.status == "infeasible" and "evaluate_s" not in infeasible.timings
    assert infeasible.error == f"over budget: params {over:,} > 60,000"
    assert study.get_trials()[3].system_attrs["constraints"] == [(over - 60_000) / 60_000]
    assert study.get_trials()[0].system_attrs["constraints"][0] <= 0


def test_constraint_values_are_one_list_in_name_order_that_optuna_and_its_samplers_read(tmp_path: Path) -> None:
    """A trial's constraint values are stored as Optuna's list form (``constraints``, sorted names: max_latency,
    max_macs), written once at its end: the analytic one before anything is evaluated, the measured one after
    (1.0 for an over-budget candidate, which is never measured; a repeat copies the original's). Optuna's
    readers, its TPE and NSGA-II samplers and nas's evolution sampler take the over-budget and the too-slow
    candidates as infeasible, and ``study.best_trials`` leaves them out."""
    from optuna.samplers._tpe.sampler import _get_infeasible_trial_score
    from optuna.samplers.nsgaii._constraints_evaluation import _constrained_dominates

    from nas.engine.evolution import ParetoEvolutionSampler

    config = _config(objectives=("accuracy", "macs"), constraints={"max_macs": 100_000, "max_latency": 20.0},
                     evaluator=Component(name="engine_helpers:score_with_latency"), n_trials=10)
    study, url = _study(tmp_path, config)
    runner = Runner(study, config)
    fits = _params(lambda s: nas.cost(s).macs <= 100_000 and nas.cost(s).params <= 20_000)
    slow = _params(lambda s: nas.cost(s).macs <= 100_000 and nas.cost(s).params > 20_000)
    big = _params(lambda s: nas.cost(s).macs > 100_000)
    for params in (fits, fits, slow, big):
        study.enqueue_trial(params)
    for _ in range(4):
        runner.run(claims.claim(study, config, lock_path(url)))
    trials = study.get_trials()
    assert [records.read(t).status for t in trials] == ["ok", "reused", "ok", "infeasible"]

    def values(params: dict) -> list[float]:
        c = nas.cost(SPACE.sample(nas.FixedTrial(params)))
        return [(c.params / 1000 - 20.0) / 20.0, (c.macs - 100_000) / 100_000]
    assert [t.system_attrs["constraints"] for t in trials] == [values(fits), values(fits), values(slow),
                                                               [1.0, values(big)[1]]]
    assert [k for t in trials for k in t.system_attrs if k.startswith("constraints:")] == []
    assert trials[3].constraints == {"0": 1.0, "1": values(big)[1]}
    assert records.constraint_values(trials[2], config.constraints) == dict(zip(("max_latency", "max_macs"),
                                                                               values(slow)))
    infeasible = [False, False, True, True]
    assert [not all(v <= 0 for v in t.constraints.values()) for t in trials] == infeasible
    assert sorted(t.number for t in study.best_trials) == [0, 1]
    assert [_get_infeasible_trial_score(t) > 0 for t in trials] == infeasible
    assert _constrained_dominates(trials[0], trials[2], study.directions)
    assert not _constrained_dominates(trials[2], trials[0], study.directions)
    evolution = ParetoEvolutionSampler(SPACE, seed=0)
    assert [not evolution._member(t, study.directions, ["accuracy", "macs"]).feasible for t in trials] == infeasible


def test_constraint_values_of_studies_stored_before_are_read_from_optuna_s_per_name_keys() -> None:
    """Trials stored by nas before the list form (and by ``Trial.set_constraint``) hold ``constraints:<name>``;
    :func:`records.constraint_values` reads them, so a repeat in a resumed old study copies them right."""
    old = optuna.trial.create_trial(values=[0.5, 10.0], system_attrs={"constraints:max_latency": 0.25,
                                                                      "constraints:max_macs": -0.5})
    assert records.constraint_values(old, {"max_macs": 1.0, "max_latency": 2.0}) == {"max_latency": 0.25,
                                                                                    "max_macs": -0.5}
    assert records.constraints_attr({"max_macs": 1.0, "max_latency": 2.0}, {"max_macs": -0.5}) == {}


def test_objective_values_are_the_worst_when_missing() -> None:
    assert records.objective_values(("accuracy", "macs", "latency"), {"macs": 5, "latency_ms": 2.5}) == [0.0, 5.0, 2.5]
    assert records.objective_values(("accuracy", "params"), {"accuracy": 0.9}) == [0.9, float("inf")]


# ------------------------------------------------------------------ secrets

def test_passwords_never_show_in_urls_or_errors() -> None:
    assert mask_url("postgresql://nas:s3cret@db.example:5432/nas") == "postgresql://nas:***@db.example:5432/nas"
    assert mask_url("postgresql+psycopg://u:p%40ss@h/d") == "postgresql+psycopg://u:***@h/d"
    assert mask_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert mask_url("postgresql://db/nas?user=nas&password=hunter2&sslmode=require") == \
        "postgresql://db/nas?user=nas&password=***"  # to the end: an unescaped '&' may belong to the password
    with pytest.raises(ValueError) as err:
        open_storage("postgresql://nas:s3cret@127.0.0.1:1/nas")
    assert "s3cret" not in str(err.value) and "postgresql://nas:***@127.0.0.1:1/nas" in str(err.value)


# ------------------------------------------------------------------ backends as objects

def test_backends_check_their_options_and_round_trip() -> None:
    from nas.engine.where import backend_of

    for backend in (nas.Local(n_workers=3, max_trials_per_worker=0), nas.Ray(address="ray://10.0.0.1:10001",
                    resources={"cpu": 2, "gpu": 0.5}, max_concurrent=4, scheduler="asha"),
                    nas.KerasTuner(tuner="hyperband", options={"factor": 3})):
        assert backend_of(json.loads(json.dumps(backend.to_dict()))) == backend
    assert backend_of("ray") == nas.Ray() and backend_of("local") == nas.Local(n_workers=None, max_trials_per_worker=20)
    for make, message in ((lambda: nas.Local(n_workers=0), "`n_workers` must be an integer in [1, 256]"),
                          (lambda: nas.Ray(resources={"gpu": -1}),
                           "Ray: `resources['gpu']` must be a finite number >= 0, but got gpu=-1"),
                          (lambda: nas.Ray(scheduler="pbt"), "Ray: `scheduler` must be None, 'asha' or 'hyperband'"),
                          (lambda: backend_of({"kind": "local", "workers": 2}),
                           "backend 'local': unknown option 'workers'")):
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
            make()
    message = "`pruner` 'median' .Optuna's. works with the local backend; with the Ray backend use pruner='pareto'"
    with pytest.raises(ValueError, match=message):
        nas.Ray().check(_config(objectives=("accuracy",), pruner=Component(name="median")))


def test_flat_configs_of_earlier_versions_are_read_into_the_groups() -> None:
    """A flat YAML config (nas <= 0.1.x) still loads, with a deprecation warning that shows its grouped form."""
    def read(**flat):
        with pytest.warns(FutureWarning, match="flat settings .* are deprecated since nas 0.2; write them in the "
                                               "groups goal, strategy and run"):
            return StudyConfig.from_dict({"space": "conv", "study": "x", **flat})
    config = read(n_workers=2, max_trials_per_worker=5, n_trials=7, objectives=["accuracy"])
    assert config.run == nas.Run(study="x", backend=nas.Local(n_workers=2, max_trials_per_worker=5))
    assert config.strategy.n_trials == 7 and config.goal.objectives == ("accuracy",)
    config = read(backend="ray", resources_per_trial={"cpu": 2}, max_concurrent=3, device="cpu", jit_compile=False)
    assert config.run.backend == nas.Ray(resources={"cpu": 2}, max_concurrent=3)
    assert config.run.device == nas.Device(kind="cpu", jit_compile=False)
    assert read(backend={"kind": "ray", "scheduler": "asha"}).run.backend == nas.Ray(scheduler="asha")
    for extra, message in (({"scheduler": "asha"}, "`scheduler` is an option of the ray backend, but the config "
                                                   "chooses backend='local'"),
                           ({"backend": "ray", "n_workers": 4}, "`n_workers` is an option of the local backend"),
                           ({"backend": "spark"}, "config: `backend` must be one of local, ray, keras_tuner"),
                           ({"colour": 1}, "config: unknown setting 'colour'")):
        with pytest.raises(ValueError, match=message), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            StudyConfig.from_dict({"space": "conv", "study": "x", **extra}, where="config")


# ------------------------------------------------------------------ the layering

def _imports() -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    import ast

    root = Path(nas.__file__).resolve().parent.parent
    files = {}
    for package in ("nas", "search_spaces"):
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def owner(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None
    edges: dict[str, set[str]] = {m: set() for m in files}
    private = []
    for module, path in files.items():
        for node in ast.walk(ast.parse(path.read_text())):  # deferred imports inside functions included
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module
                         for a in node.names]
                private += [(module, node.module, a.name) for a in node.names if a.name.startswith("_")
                            and not a.name.startswith("__") and node.module.split(".")[0] in ("nas", "search_spaces")]
            for name in names:
                target = owner(name)
                if target is not None and target != module:
                    edges[module].add(target)
    return edges, private


LAYERS = [  # each layer may import only itself and the layers before it (the README's layout section)
    ("core", ("nas.validate", "nas._ops", "nas.blocks", "nas.spec", "nas.cost", "nas.build", "nas.scaling", "nas.trial",
              "nas.budget", "nas.ranking", "nas.rungs")),
    ("spaces", ("search_spaces",)),
    ("one trial", ("nas.data", "nas.devices", "nas.train", "nas._quiet", "nas._files")),
    ("engine", ("nas.engine",)),
    ("backends and record readers", ("nas.backends", "nas.keras_tuner", "nas.export", "nas.plot")),
    ("facade", ("nas.study",)),
    ("entry points", ("nas.config", "nas.cli", "nas.demo", "nas")),
]


def _layer(module: str) -> int:
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    assert best is not None, f"{module} has no layer"
    return best[0]


def test_dependencies_point_one_way_without_cycles_or_private_names() -> None:
    edges, private = _imports()
    assert private == []
    upward = [(m, t) for m, targets in edges.items() for t in targets
              if t != "nas" and _layer(t) > _layer(m) and not (m == "nas" and t.startswith("nas."))]
    assert upward == []
    # no cycle at all (the package facade `nas` only re-exports lazily, so it is left out)
    graph = {m: {t for t in ts if t != "nas"} for m, ts in edges.items() if m != "nas"}
    seen: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        seen[m] = 1
        for t in graph.get(m, ()):
            assert seen.get(t) != 1, f"import cycle: {' -> '.join(path + [m, t])}"
            if t not in seen:
                visit(t, path + [m])
        seen[m] = 2
    for m in sorted(graph):
        if m not in seen:
            visit(m, [])


def test_a_stored_ray_address_is_not_followed_without_confirmation(tmp_path: Path) -> None:
    """Whoever can write to the storage could point `address` at their own cluster, which would receive the
    storage URL and send objects this process unpickles: resume asks for the address again."""
    study = nas.create_study(SPACE,
                             run=nas.Run(storage=tmp_path / "r.db", study="r",
                                         backend=nas.Ray(address="ray://10.9.9.9:10001")), evaluator=EVALUATOR_PATH,
                             verbose=False)
    for backend in (None, "ray"):
        with pytest.raises(ValueError, match=r"ran on the Ray cluster at 'ray://10.9.9.9:10001': resume it with "
                                             r"backend=nas.Ray\(address=...\)"):
            study.resume(backend=backend, verbose=False)
    out = subprocess.run([sys.executable, "-m", "nas.cli", "resume", "--study", "r", "--storage",
                          str(tmp_path / "r.db")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "give --ray-address to confirm it" in out.stderr


def test_resume_with_a_bare_backend_name_keeps_the_stored_options(tmp_path: Path) -> None:
    # seeded: the evaluator fails on first stages of 32 or more filters, and before failed places counted as taken
    # the spread first population met 20 such failures before one success on seed 5, which stopped the search
    study = nas.create_study(SPACE, strategy=nas.Strategy(n_trials=1, max_failures=20, seed=0),
                             run=nas.Run(storage=tmp_path / "k.db", study="k",
                                         backend=nas.Local(n_workers=2, max_trials_per_worker=4)),
                             evaluator=EVALUATOR_PATH, verbose=False)
    study.resume(backend="local", verbose=False)
    assert nas.load_study("k", tmp_path / "k.db").backend == nas.Local(n_workers=2, max_trials_per_worker=4)
    assert study.counts()["done"] == 1


def test_evaluator_modules_are_read_before_they_are_imported(tmp_path: Path, monkeypatch) -> None:
    """A stored import path names a module; importing it runs its top-level code, so its source is read first
    and the named function must carry @nas.evaluator there. Private parts (`__main__`) and inherited marks do
    not count."""
    marker = tmp_path / "imported"
    (tmp_path / "side_effects.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "import nas\n\n"
        "def plain(spec):\n    return {'accuracy': 1.0}\n\n"
        "@nas.evaluator\nclass Marked:\n    def __call__(self, spec):\n        return {'accuracy': 1.0}\n\n"
        "class Child(Marked):\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, message in (("side_effects:plain", "is not marked with @nas.evaluator"),
                          ("side_effects:Child", "is not marked with @nas.evaluator"),
                          ("side_effects:_hidden", "of public names"), ("nas.__main__:x", "of public names")):
        with pytest.raises(ValueError, match=message):
            make_evaluator(Component(name=name))
    assert not marker.exists()  # refused before the module ran
    assert callable(make_evaluator(Component(name="side_effects:Marked"))) and marker.exists()


def test_sampler_options_hold_no_seed_and_old_values_are_clamped() -> None:
    with pytest.raises(ValueError, match="`sampler` options must not hold a seed"):
        sampler_component({"name": "RandomSampler", "options": {"seed": 1}}, ("accuracy",), SPACE)
    a = make_sampler(Component(name="RandomSampler"), n_trials=1, space=SPACE, seed=11)
    b = make_sampler(Component(name="RandomSampler"), n_trials=1, space=SPACE, seed=22)
    assert a._rng.rng.random() != b._rng.rng.random()
    old = json.loads(json.dumps({"version": 1, "space": SPACE.config(), "objectives": ["accuracy"], "n_trials": 10**9,
                                 "max_retries": 500, "n_workers": 4096, "artifacts": "/tmp/a",
                                 "data": {"kind": "evaluator"},
                                 "sampler": {"name": "tpe", "seed": 2**40}, "budget": {}, "constraints": {}}))
    config = StudyConfig.from_json(json.dumps(old))
    assert (config.n_trials, config.strategy.max_retries, config.run.backend.n_workers) == (1_000_000, 100, 256)
    assert config.strategy.seed == 2**40 % (2**31 - 1)


def test_a_ctrl_c_wrapped_by_a_library_interrupts_instead_of_failing_the_trial(tmp_path: Path) -> None:
    """Ctrl-C inside a storage commit reaches the trial as Optuna's StorageInternalError (seen in the fault-
    injection run): it must stop the worker, which gives the trial back, not record it as an ordinary failure."""
    config = _config()
    study, url = _study(tmp_path, config)
    runner = Runner(study, config)

    def commit_interrupted(spec):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from exc
    runner.evaluator = commit_interrupted
    trial = claims.claim(study, config, lock_path(url))
    with pytest.raises(KeyboardInterrupt):
        runner.run(trial)
    assert study.get_trials()[0].state == TrialState.RUNNING  # worker_main fails and requeues it (not "failed")
    runner.evaluator = lambda spec: 1 / 0
    runner.run(claims.claim(study, config, lock_path(url)))
    assert study.get_trials()[1].user_attrs["error"] == "ZeroDivisionError: division by zero"


def test_only_short_attributes_are_user_attributes_and_old_studies_still_read(tmp_path: Path) -> None:
    spec = SPACE.sample(nas.RandomTrial(seed=0))
    attrs = {**records.spec_attrs(spec, nas.cost(spec)), "timings": {"total_s": 1.5}, "status": "ok",
             "accuracy": 0.5, "history": [0.25, 0.5], "worker": {"host": "h", "pid": 1}, "retry_of": 3, "seed_of": 3}
    user, system = records.split(attrs)
    c = nas.cost(spec)
    assert user == {"status": "ok", "accuracy": 0.5, "macs": c.macs, "params": c.params, "retry_of": 3}
    assert set(system) == {"nas:spec", "nas:spec_key", "nas:spec_str", "nas:flops", "nas:timings", "nas:history",
                           "nas:worker", "nas:seed_of"}
    # a long error: cut in the user attribute (what `optuna trials` lists), whole in the system attribute
    long = "RuntimeError: " + "x" * 200
    assert records.split({"error": long}) == ({"error": long[:57] + "..."}, {"nas:error": long})
    assert records.split({"error": "short"}) == ({"error": "short"}, {})
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'a.db'}")
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"])
    live = study.ask()
    records.write(live, attrs)
    study.tell(live, [0.5, 1.0])
    new = records.read(study.trials[0])
    assert new.spec == spec and new.timings == {"total_s": 1.5} and study.trials[0].user_attrs == user
    assert new.key == spec.key() and records.attr(study.trials[0], "worker") == {"host": "h", "pid": 1}
    # a study written before: everything in the user attributes
    study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, values=[0.5, 1.0], user_attrs=attrs))
    old = records.read(study.trials[1])
    assert old.spec == spec and old.timings == new.timings and old.metrics == new.metrics and old.key == new.key
    assert records.attr(study.trials[1], "history") == [0.25, 0.5] == records.attr(study.trials[0], "history")
