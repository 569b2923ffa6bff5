"""Several workers on one study: `nas worker` processes sharing a PostgreSQL study (started by .ci/run, or
set NAS_TEST_POSTGRES_URL), and two local workers on SQLite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest

import nas
from nas.engine.records import attrs_of
from nas.engine.storage import open_storage

pytestmark = pytest.mark.slow

POSTGRES = os.environ.get("NAS_TEST_POSTGRES_URL")
TINY_CONV = {"space": "conv", "options": {"stages": (1, 2), "depth": (1, 1), "widths": (4, 8, 16), "kernels": (3,),
                                          "hidden": (0, 0), "dropouts": (0.0,)}}


def _worker(study: str, storage: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    # the storage URL (with its password) goes through the environment, never the command line
    return subprocess.Popen([sys.executable, "-m", "nas.cli", "worker", "--study", study, *extra],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, "NAS_STORAGE": storage})


def _check_exact(study_name: str, storage: str, n: int) -> list[optuna.trial.FrozenTrial]:
    study = nas.load_study(study_name, storage)
    trials = study.optuna_study.trials
    c = study.counts()
    assert c["done"] == n and c["running"] == 0 and c["waiting"] == 0
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    return trials


@pytest.mark.skipif(POSTGRES is None, reason="NAS_TEST_POSTGRES_URL not set (.ci/run starts PostgreSQL and sets it)")
def test_two_nas_workers_on_postgres_finish_exactly_n(tmp_path: Path) -> None:
    name = f"pg-{uuid.uuid4().hex[:8]}"
    nas.create_study(TINY_CONV, "digits",
                     strategy=nas.Strategy(n_trials=6, sampler="random", seed=0,
                                           budget={"epochs": 1, "batch_size": 128}),
                     run=nas.Run(storage=POSTGRES, study=name, artifacts=tmp_path / "art"), verbose=False)
    workers = [_worker(name, POSTGRES, tmp_path / f"w{i}.log", "--seed", str(i), "--artifacts", str(tmp_path / "art"))
               for i in range(2)]
    for w in workers:
        assert w.wait(timeout=400) == 0, (tmp_path / "w0.log").read_text()[-2000:]
    trials = _check_exact(name, POSTGRES, 6)
    pids = {attrs_of(t)["worker"]["pid"] for t in trials if "worker" in attrs_of(t)}
    assert pids == {w.pid for w in workers}  # both took part


@pytest.mark.skipif(POSTGRES is None, reason="NAS_TEST_POSTGRES_URL not set (.ci/run starts PostgreSQL and sets it)")
def test_two_nas_workers_on_postgres_share_the_rung_decisions(tmp_path: Path) -> None:
    name = f"pgrung-{uuid.uuid4().hex[:8]}"
    nas.create_study(TINY_CONV, "digits", goal=nas.Goal(objectives=("accuracy", "macs")),
                     strategy=nas.Strategy(n_trials=10, sampler="random", seed=5,
                                           budget={"epochs": 4, "batch_size": 128},
                                           pruner={"name": "pareto",
                                                   "options": {"reduction_factor": 2, "reach": False}}),
                     run=nas.Run(storage=POSTGRES, study=name, artifacts=tmp_path / "art"), verbose=False)
    workers = [_worker(name, POSTGRES, tmp_path / f"w{i}.log", "--seed", str(i), "--artifacts", str(tmp_path / "art"))
               for i in range(2)]
    for w in workers:
        assert w.wait(timeout=400) == 0, (tmp_path / "w0.log").read_text()[-2000:]
    trials = _check_exact(name, POSTGRES, 10)
    trained = [t for t in trials
               if attrs_of(t).get("status") in ("ok", "pruned") and "reused_from" not in attrs_of(t)]
    assert {attrs_of(t)["worker"]["pid"] for t in trained} == {w.pid for w in workers}
    for t in trials:  # a repeat of a stopped architecture took that stop: same architecture and epochs
        if "reused_from" in attrs_of(t) and t.state == optuna.trial.TrialState.PRUNED:
            first = trials[attrs_of(t)["reused_from"]]
            assert (first.state, attrs_of(first)["spec_key"], attrs_of(first)["epochs"]) == \
                (t.state, attrs_of(t)["spec_key"], attrs_of(t)["epochs"])
    for t in trained:
        rungs = attrs_of(t)["rungs"]
        assert set(rungs) == ({"1", "2"} if attrs_of(t)["status"] == "ok" else set(rungs)) and "1" in rungs
        for rung, (acc, kept) in rungs.items():
            if not kept:  # stopped: some other trial at most as expensive was at least as accurate at that rung
                assert any(attrs_of(u)["rungs"][rung][0] >= acc and attrs_of(u)["macs"] <= attrs_of(t)["macs"]
                           for u in trained if rung in attrs_of(u)["rungs"] and u.number != t.number)
                assert t.state == optuna.trial.TrialState.PRUNED and attrs_of(t)["epochs"] == int(rung)
                assert attrs_of(t)["pruned_by"] == f"margin rung at epoch {rung} (reduction factor 2)"
    assert any(t.state == optuna.trial.TrialState.PRUNED for t in trials)


@pytest.mark.skipif(POSTGRES is None, reason="NAS_TEST_POSTGRES_URL not set (.ci/run starts PostgreSQL and sets it)")
def test_killed_worker_trial_is_rerun_by_the_other(tmp_path: Path) -> None:
    name = f"pgkill-{uuid.uuid4().hex[:8]}"
    nas.create_study(TINY_CONV, "digits",
                     strategy=nas.Strategy(n_trials=4, sampler="random", seed=1,
                                           budget={"epochs": 4, "batch_size": 32}),
                     run=nas.Run(storage=POSTGRES, study=name, artifacts=tmp_path / "art"), verbose=False)
    victim = _worker(name, POSTGRES, tmp_path / "victim.log", "--seed", "1", "--artifacts", str(tmp_path / "art"))
    storage = open_storage(POSTGRES)
    deadline = time.time() + 120
    running = []
    while time.time() < deadline and not running:
        # a trial whose architecture is fully drawn (its spec recorded), so the kill lands in its training: a kill
        # while it samples leaves no params to re-run, or some (test_throughput checks that case)
        running = [t for t in optuna.load_study(study_name=name, storage=storage).trials
                   if t.state == optuna.trial.TrialState.RUNNING
                   and attrs_of(t).get("worker", {}).get("pid") == victim.pid and "spec_key" in attrs_of(t)]
        time.sleep(0.1)
    assert running, (tmp_path / "victim.log").read_text()[-2000:]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    survivor = _worker(name, POSTGRES, tmp_path / "survivor.log", "--seed", "2", "--artifacts", str(tmp_path / "art"))
    assert survivor.wait(timeout=400) == 0, (tmp_path / "survivor.log").read_text()[-2000:]
    trials = _check_exact(name, POSTGRES, 4)
    killed = trials[running[0].number]
    assert killed.state == optuna.trial.TrialState.FAIL
    assert f"worker process {victim.pid} died" in attrs_of(killed)["error"]
    retry = [t for t in trials if attrs_of(t).get("retry_of") == killed.number]
    assert len(retry) == 1 and retry[0].params == killed.params
    assert attrs_of(retry[0])["worker"]["pid"] == survivor.pid


@pytest.mark.parametrize("file", ["two.db", "two.journal"])
def test_two_local_workers_share_a_study_file(tmp_path: Path, file: str) -> None:
    study = nas.search(TINY_CONV, "digits",
                       strategy=nas.Strategy(n_trials=6, sampler="random", seed=4,
                                             budget={"epochs": 1, "batch_size": 128}),
                       run=nas.Run(storage=tmp_path / file, study="two",
                                   backend=nas.Local(n_workers=2, max_trials_per_worker=3)), verbose=False)
    trials = _check_exact("two", str(tmp_path / file), 6)
    starts = sorted((t.datetime_start, t.datetime_complete) for t in trials if attrs_of(t).get("status") == "ok")
    # two processes really ran at the same time: some trial started before the previous one finished
    assert any(b[0] < a[1] for a, b in zip(starts, starts[1:]))
    assert study.optuna_study.user_attrs["nas_workers_started"] >= 2


def test_sqlite_storage_uses_write_ahead_logging_without_fsync_per_commit(tmp_path):
    import sqlite3

    import optuna
    import sqlalchemy

    from nas.engine.storage import describe_storage, open_storage

    storage = open_storage(describe_storage(tmp_path / "s.db"))
    optuna.create_study(study_name="s", storage=storage)
    with storage.engine.connect() as conn:
        assert conn.execute(sqlalchemy.text("PRAGMA synchronous")).scalar() == 1  # NORMAL (FULL is 2)
    assert sqlite3.connect(tmp_path / "s.db").execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.skipif(POSTGRES is None, reason="NAS_TEST_POSTGRES_URL not set (.ci/run starts PostgreSQL and sets it)")
@pytest.mark.parametrize("form", ["userinfo", "encoded", "query"])
def test_the_storage_password_stays_off_command_lines_and_output(tmp_path: Path, capsys, form: str) -> None:
    """The PostgreSQL URL carries a password, as typed (`user:pass@`), percent-encoded (`user:%6E%61%73@`, a text
    that occurs nowhere else) or in the query (`?password=%6E%61%73`): no worker's command line holds it (as `ps`
    would show), nor the search's output, the study's repr or the workers' logs, which show the URL masked."""
    import threading

    import search_spaces
    from nas.engine.storage import mask_url

    from engine_helpers import evaluator_that_fails_on_wide_first_stages
    from net_helpers import process_tree

    user_password, rest = POSTGRES.split("//", 1)[1].split("@", 1)
    user, password = user_password.split(":", 1)
    assert password  # the CI URL has one
    encoded = "".join(f"%{b:02X}" for b in password.encode())
    url = {"userinfo": POSTGRES, "encoded": f"postgresql://{user}:{encoded}@{rest}",
           "query": f"postgresql://{user}@{rest}{'&' if '?' in rest else '?'}password={encoded}"}[form]
    # what must never show: the password as typed (the CI one, "nas", is a word of every line: with its delimiters)
    secrets = [f":{password}@"] if form == "userinfo" else [encoded[i:i + 4] for i in range(len(encoded) - 3)]
    cmdlines: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.2):
            for pid in process_tree(os.getpid())[1:]:
                try:
                    cmdlines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
                except OSError:
                    pass
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    name = f"pgsecret-{uuid.uuid4().hex[:8]}"
    space = search_spaces.get("conv", input_shape=(8, 8, 1), widths=(8, 16), stages=(1, 2))
    try:
        nas.search(space, strategy=nas.Strategy(n_trials=3, max_failures=20),
                   run=nas.Run(storage=url, study=name, artifacts=tmp_path / "art", backend=nas.Local(n_workers=2)),
                   evaluator=evaluator_that_fails_on_wide_first_stages)
    finally:
        done.set()
        watcher.join()
    workers = [c for c in cmdlines if "nas.backends" in c]
    assert workers and all("postgresql" not in c for c in workers)
    out = capsys.readouterr().out
    assert f"{name!r} in {mask_url(url)}" in out
    logs = list((tmp_path / "art").glob(f"{name}.worker-*.log"))  # keyed by study
    assert len(logs) >= 2
    texts = [*workers, out, repr(nas.load_study(name, url)), *(p.read_text() for p in logs)]
    assert [s for s in secrets for text in texts if s in text] == []


SLOW_EVALUATOR = '''
import socket
import time
from pathlib import Path
from nas import cost, evaluator


@evaluator
def two_seconds(spec):
    with open(Path(__file__).with_name("started.log"), "a") as log:
        log.write(socket.gethostname() + "\\n")
    time.sleep(2)
    return {"accuracy": 1.0 - 1.0 / (1 + cost(spec).params / 1000)}
'''


def _other_host_worker(name: str, storage: str, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """A `nas worker` that believes it runs on another machine (its own UTS namespace, hostname 'frozen-host'), so
    that the others can only learn of its death by its heartbeats, as across machines. None where unshare is not
    allowed."""
    probe = subprocess.run(["unshare", "--uts", "true"], capture_output=True)
    if probe.returncode != 0:
        return None
    return subprocess.Popen(["unshare", "--uts", "--fork", "sh", "-c",
                             f"hostname frozen-host && exec {sys.executable} -m nas.cli worker --study {name}"],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env)


@pytest.mark.skipif(POSTGRES is None, reason="NAS_TEST_POSTGRES_URL not set (.ci/run starts PostgreSQL and sets it)")
def test_a_frozen_worker_is_replaced_and_records_nothing_when_it_wakes(tmp_path: Path) -> None:
    """A worker on 'another machine' frozen (SIGSTOP) in the middle of a trial: past the heartbeat grace period
    another worker fails that trial and re-runs its params; when the frozen one wakes it drops its result (the
    trial is not recorded twice) and exits cleanly, and the study ends with the exact count."""
    (tmp_path / "frozen_helper.py").write_text(SLOW_EVALUATOR)
    env = {**os.environ, "NAS_STORAGE": POSTGRES,
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    name = f"pgfrozen-{uuid.uuid4().hex[:8]}"
    import sys as _sys

    _sys.path.insert(0, str(tmp_path))
    try:
        nas.create_study(TINY_CONV, evaluator="frozen_helper:two_seconds", strategy=nas.Strategy(n_trials=4, seed=0),
                         run=nas.Run(storage=POSTGRES, study=name), verbose=False)
    finally:
        _sys.path.remove(str(tmp_path))
    frozen = _other_host_worker(name, POSTGRES, tmp_path / "frozen.log", env)
    if frozen is None:
        pytest.skip("unshare --uts is not allowed here (needs root or user namespaces)")
    storage = open_storage(POSTGRES)
    study_id = storage.get_study_id_from_name(name)
    deadline, victim = time.time() + 120, None
    started = tmp_path / "started.log"
    while victim is None and time.time() < deadline:
        # frozen inside the evaluator, once every parameter is sampled: the frozen host's trials so far (running or
        # done) all have their evaluator start written
        mine = [t for t in storage.get_all_trials(study_id, deepcopy=False)
                if (attrs_of(t).get("worker") or {}).get("host") == "frozen-host"]
        running = [t for t in mine if t.state == optuna.trial.TrialState.RUNNING]
        begun = started.read_text().split().count("frozen-host") if started.exists() else 0
        if running and begun == len(mine):
            victim = running[0]
        else:
            time.sleep(0.05)
    assert victim is not None, (tmp_path / "frozen.log").read_text()[-2000:]
    pid = attrs_of(victim)["worker"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        with open(tmp_path / "other.log", "wb") as other_log:
            other = subprocess.Popen([sys.executable, "-m", "nas.cli", "worker", "--study", name],
                                     stdout=other_log, stderr=subprocess.STDOUT, env=env)
            assert other.wait(timeout=300) == 0, (tmp_path / "other.log").read_text()[-2000:]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert frozen.wait(timeout=120) == 0, (tmp_path / "frozen.log").read_text()[-2000:]
    log = (tmp_path / "frozen.log").read_text()
    assert (f"trial {victim.number} was ended by another process while this worker ran it (no heartbeat for longer "
            f"than the grace period: frozen or cut off); its result is discarded") in log
    trials = _check_exact(name, POSTGRES, 4)
    dead = next(t for t in trials if t.number == victim.number)
    assert dead.state == optuna.trial.TrialState.FAIL and "accuracy" not in attrs_of(dead)
    assert attrs_of(dead)["error"] == (f"worker frozen-host:{pid} stopped sending heartbeats (killed, crashed or "
                                        f"cut off) while running the trial")
    rerun = [t for t in trials if attrs_of(t).get("retry_of") == victim.number]
    assert len(rerun) == 1 and rerun[0].state == optuna.trial.TrialState.COMPLETE
    assert rerun[0].params == dead.params and attrs_of(rerun[0])["worker"]["host"] != "frozen-host"
