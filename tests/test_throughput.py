"""The fast paths of the engine: journal files, the one-transaction record writer, the in-process worker of an
evaluator search. Each must keep the guarantees of the slow path (exact counts, recovery, the same search)."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import nas
from nas.engine import records
from nas.engine.claims import worker_seed
from nas.engine.records import attrs_of
from nas.engine.storage import describe_storage, open_storage

SPACE = {"space": "conv", "options": {"stages": (1, 2), "depth": (1, 1), "widths": (4, 8, 16, 32), "kernels": (3, 5),
                                      "hidden": (0, 0), "dropouts": (0.0,)}}
EVALUATOR = "engine_helpers:evaluator_that_fails_on_wide_first_stages"


def _ask_and_tell(url: str, n: int) -> None:
    study = optuna.load_study(study_name="j", storage=open_storage(url))
    for i in range(n):
        trial = study.ask()
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("payload", "x" * 300)
        study.tell(trial, float(i))


def test_journal_appends_from_two_processes_interleave_whole_records(tmp_path: Path) -> None:
    url = describe_storage(tmp_path / "j.journal")
    optuna.create_study(study_name="j", storage=open_storage(url))
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_ask_and_tell, args=(url, 60)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    lines = (tmp_path / "j.journal").read_bytes().split(b"\n")
    assert lines[-1] == b""  # the file ends with a whole record
    for line in lines[:-1]:
        json.loads(line)  # every record is whole: no two appends interleaved
    trials = optuna.load_study(study_name="j", storage=open_storage(url)).trials
    assert len(trials) == 120 and sorted(t.number for t in trials) == list(range(120))
    assert all(t.state == TrialState.COMPLETE and t.user_attrs["payload"] == "x" * 300 for t in trials)
    assert {t.user_attrs["pid"] for t in trials} == {p.pid for p in procs}
    # Optuna's own journal reader sees the same study (the format is Optuna's)
    plain = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.journal")))
    assert len(optuna.load_study(study_name="j", storage=plain).trials) == 120


def test_a_journal_writer_killed_while_appending_does_not_block_the_others(tmp_path: Path) -> None:
    path = tmp_path / "k.journal"
    url = describe_storage(path)
    study = optuna.create_study(study_name="k", storage=open_storage(url))
    holder = subprocess.Popen([sys.executable, "-c",
                               "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(path)!r}, os.O_WRONLY | os.O_APPEND)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(600)\n"],
                              stdout=subprocess.PIPE)
    assert holder.stdout.readline() == b"held\n"
    with open(path, "ab") as f, pytest.raises(BlockingIOError):  # the lock really is held
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    done = threading.Event()
    writer = threading.Thread(target=lambda: (study.set_user_attr("after", 1), done.set()), daemon=True)
    writer.start()
    writer.join(20)  # Optuna's symlink lock would wait out its 30 s grace period here
    assert done.is_set()
    assert optuna.load_study(study_name="k", storage=open_storage(url)).user_attrs == {"after": 1}


def test_record_attributes_are_written_in_one_transaction(tmp_path: Path) -> None:
    storage = open_storage(describe_storage(tmp_path / "r.db"))
    study = optuna.create_study(study_name="r", storage=storage)
    trial = study.ask()
    records.write(trial, {"status": "ok", "b": [1, 2], "c": {"d": "e"}}, {"constraints": [0.5]})
    assert trial.user_attrs == {"status": "ok"}
    stored = storage.get_trial(trial._trial_id)
    assert stored.user_attrs == {"status": "ok"}
    assert stored.system_attrs == {"nas:b": [1, 2], "nas:c": {"d": "e"}, "constraints": [0.5]}
    with pytest.raises(TypeError, match="not JSON serializable"):
        records.write(trial, {"accuracy": 2, "g": object()})
    assert "accuracy" not in storage.get_trial(trial._trial_id).user_attrs  # all or nothing
    study.tell(trial, 1.0)
    with pytest.raises(RuntimeError, match="has already finished"):
        records.write(trial, {"h": 1, "i": 2})  # the storage's own check: no attribute on a finished trial
    assert set(records.attrs_of(storage.get_trial(trial._trial_id))) == {"status", "b", "c"}


def _trials(study: nas.Study) -> list[tuple]:
    return [(t.number, t.params, t.values, t.user_attrs.get("status")) for t in study.optuna_study.trials]


@pytest.mark.parametrize("kind", ["db", "journal"])
def test_in_process_evaluator_search_is_the_search_a_worker_process_makes(tmp_path: Path, kind: str) -> None:
    common = dict(evaluator=EVALUATOR, goal=nas.Goal(objectives=("accuracy", "params")),
                  strategy=nas.Strategy(n_trials=25, sampler="tpe", seed=7), verbose=False)
    ours = nas.search(SPACE, run=nas.Run(storage=tmp_path / f"a.{kind}", study="a"), **common)
    # no worker process: every trial ran in this process, numbered as worker 0
    assert {records.attr(t, "worker")["pid"] for t in ours.optuna_study.trials} == {os.getpid()}
    assert ours.optuna_study.user_attrs["nas_workers_started"] == 1
    other = nas.create_study(SPACE, run=nas.Run(storage=tmp_path / f"b.{kind}", study="a"), **common)
    env = {**os.environ, "NAS_STORAGE": describe_storage(tmp_path / f"b.{kind}")}
    subprocess.run([sys.executable, "-m", "nas.backends", "--study", "a", "--seed", str(worker_seed(7, 0))],
                   env=env, check=True, timeout=300)
    assert _trials(ours) == _trials(other)
    # a worker process's first trial records its start-up; the caller's own process has none to record
    first = [min(st.optuna_study.trials, key=lambda t: t.number).system_attrs["nas:timings"] for st in (ours, other)]
    assert "startup_s" not in first[0] and first[1]["startup_s"] > 0
    c = ours.counts()
    assert c["done"] == 25 and c["failed"] == sum(s == "failed" for *_, s in _trials(ours)) > 0


@pytest.mark.slow
def test_in_process_search_killed_then_resumed_to_the_exact_count(tmp_path: Path) -> None:
    url = describe_storage(tmp_path / "k.journal")
    script = tmp_path / "run.py"
    script.write_text("import nas\n"
                      f"nas.search({SPACE!r}, evaluator='engine_helpers:slow_evaluator', "
                      f"strategy={{'n_trials': 30, 'seed': 3}}, run={{'storage': {url!r}, 'study': 'k'}}, "
                      f"goal={{'objectives': ('accuracy', 'params')}}, verbose=False)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    trials: list = []
    while time.time() < deadline:
        if (tmp_path / "k.journal").exists():
            try:
                trials = optuna.load_study(study_name="k", storage=open_storage(url)).trials
            except KeyError:
                trials = []
            if sum(t.state == TrialState.COMPLETE for t in trials) >= 4 and trials[-1].state == TrialState.RUNNING:
                break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    trials = optuna.load_study(study_name="k", storage=open_storage(url)).trials
    before = {t.number: t.values for t in trials if t.state == TrialState.COMPLETE}
    running = [t for t in trials if t.state == TrialState.RUNNING]
    assert len(before) >= 4 and len(running) == 1 and attrs_of(running[0])["worker"]["pid"] == proc.pid
    study = nas.load_study("k", url)
    study.resume(verbose=False)
    trials = study.optuna_study.trials
    assert study.counts()["done"] == 30 and study.counts()["running"] == 0
    killed = trials[running[0].number]
    assert killed.state == TrialState.FAIL and f"worker process {proc.pid} died" in attrs_of(killed)["error"]
    retry = [t for t in trials if attrs_of(t).get("retry_of") == killed.number]
    # the re-run keeps every label the dead trial had drawn (all of them, unless the kill came while it was still
    # sampling: then the re-run draws the rest)
    assert len(retry) == 1 and retry[0].state == TrialState.COMPLETE and killed.params
    assert {k: retry[0].params.get(k) for k in killed.params} == killed.params
    assert all(trials[n].values == v for n, v in before.items())
