"""Where nas writes files: nothing beside a storage a search could not open, and never into a folder chosen by
whoever can write the storage (the stored artefact folder is written only when it is the default or the user
gives it again)."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import nas
from nas.engine.storage import ARTIFACTS_ENV, claim_lock, describe_storage, lock_path

from engine_helpers import score_by_macs

TINY_CONV = {"space": "conv", "options": {"stages": (1, 1), "depth": (1, 1), "widths": (4, 8), "kernels": (3,),
                                          "hidden": (0, 0), "dropouts": (0.0,)}}


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, check=False, env={**os.environ, **(env or {})})


def _files(folder: Path) -> list[str]:
    """Every file and folder under ``folder`` (SQLite's write-ahead files, there while a connection is open, left
    out)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.name.endswith(("-wal", "-shm")))


# ------------------------------------------------------------------ a search that fails before it starts

@pytest.mark.parametrize("name, kind, error", [
    ("x.db", "sqlite", "DatabaseError: (sqlite3.DatabaseError) file is not a database"),
    ("x.journal", "journal", "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xcd in position 0"),
])
def test_a_search_on_a_corrupt_storage_leaves_nothing_behind(tmp_path: Path, name: str, kind: str,
                                                             error: str) -> None:
    """`nas search` on a file of random bytes exits 2 naming the storage, and leaves the folder as it was: no
    lock file (it was created, then removed while held), the storage's bytes unchanged; a lock file that was
    there before stays."""
    (tmp_path / "runs").mkdir()
    storage = tmp_path / "runs" / name
    garbage = random.Random(0).randbytes(4096)
    storage.write_bytes(garbage)
    (tmp_path / "c.yaml").write_text("space: conv\nstrategy: {n_trials: 1}\nrun: {study: t}\n"
                                     "evaluator: engine_helpers:score_by_macs\n")
    before = _files(tmp_path)
    out = _cli("search", "c.yaml", "--storage", f"runs/{name}", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith(f"nas: error: `storage` could not be opened: storage='{kind}:///{storage}': {error}")
    assert _files(tmp_path) == before == ["c.yaml", "runs", f"runs/{name}"]
    assert storage.read_bytes() == garbage
    (tmp_path / "runs" / "x.lock").write_text("")  # e.g. left by an earlier search: not this process's to remove
    assert _cli("search", "c.yaml", "--storage", f"runs/{name}", cwd=tmp_path).returncode == 2
    assert _files(tmp_path) == ["c.yaml", "runs", f"runs/{name}", "runs/x.lock"]


def _waiting_for(path: Path) -> int:
    """Processes (threads) blocked on the flock of the file now at ``path`` (the `->` lines of /proc/locks)."""
    inode = os.stat(path).st_ino
    return sum(1 for line in Path("/proc/locks").read_text().splitlines()
               if "->" in line.split() and line.split()[6].split(":")[-1] == str(inode))


def _wait(condition, what: str) -> None:
    deadline = time.time() + 30
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_removing_the_lock_file_while_holding_it_keeps_the_lock_exclusive(tmp_path: Path) -> None:
    """The holder that created the lock file removes it (a failed search); a process that was already waiting on
    the removed file must not count as holding the lock: it locks the new file at the path, and a third one
    then waits for it there."""
    path = tmp_path / "s.lock"
    held: list[tuple[str, bool, int]] = []
    release = {"b": threading.Event(), "c": threading.Event()}

    def take(name: str) -> None:
        with claim_lock(path) as created:
            held.append((name, created, os.stat(path).st_ino))
            release[name].wait(30)

    with claim_lock(path) as created:
        assert created
        b = threading.Thread(target=take, args=("b",))
        b.start()
        _wait(lambda: _waiting_for(path) == 1, "b to wait on the lock")
        path.unlink()  # as a search that failed before it started does, while it holds the lock
    _wait(lambda: len(held) == 1, "b to take the lock")
    assert held[0][:2] == ("b", True) and held[0][2] == os.stat(path).st_ino  # a new file, at the path
    c = threading.Thread(target=take, args=("c",))
    c.start()
    _wait(lambda: _waiting_for(path) == 1, "c to wait for b")  # b holds it: c waits
    assert len(held) == 1
    release["b"].set()
    b.join()
    _wait(lambda: len(held) == 2, "c to take the lock")
    release["c"].set()
    c.join()
    assert held[1] == ("c", False, held[0][2]) and os.stat(path).st_ino == held[0][2]


# ------------------------------------------------------------------ the stored artefact folder

def _craft(db: Path, study: str, **changes: object) -> None:
    """Change the `run` group of the study's stored record in its SQLite file, as anyone who can write the storage
    can."""
    with sqlite3.connect(db) as con:
        (study_id,) = con.execute("SELECT study_id FROM studies WHERE study_name = ?", (study,)).fetchone()
        query = "study_system_attributes WHERE study_id = ? AND key = 'nas:config'"
        (value,) = con.execute(f"SELECT value_json FROM {query}", (study_id,)).fetchone()
        config = json.loads(json.loads(value))
        config["run"] = {**config["run"], **changes}
        con.execute(f"UPDATE {query.replace(' WHERE', ' SET value_json = ? WHERE')}",
                    (json.dumps(json.dumps(config)), study_id))


def _refusal(study: str, stored: Path, default: Path) -> str:
    return (f"`artifacts`: study {study!r} keeps its weights and logs in {str(stored)!r} (as its storage says), "
            f"outside {str(default)!r}, the default for this storage and study; nas writes to a folder read from a "
            f"storage only once you give it: resume(artifacts={str(stored)!r}), `nas resume --artifacts {stored}`, "
            f"`nas worker --artifacts {stored}` or {ARTIFACTS_ENV}={stored}")


@pytest.mark.slow
def test_a_stored_artifacts_folder_elsewhere_is_refused_until_the_user_gives_it(tmp_path: Path,
                                                                                monkeypatch) -> None:
    """Someone who can write the storage points a study's artefact folder elsewhere: `resume` (API, CLI, on any
    backend) and `nas worker` refuse it before anything runs, naming the folder and how to confirm it, and
    nothing appears there; once the user gives it (`nas resume --artifacts`), the weights and logs go there."""
    monkeypatch.delenv(ARTIFACTS_ENV, raising=False)
    db, target = tmp_path / "s.db", tmp_path / "elsewhere"
    nas.create_study(TINY_CONV, "digits",
                     strategy=nas.Strategy(n_trials=2, sampler="random", seed=0,
                                           budget={"epochs": 1, "batch_size": 128}),
                     run=nas.Run(storage=db, study="x"), verbose=False)
    default = tmp_path / "s-artifacts" / "x"
    _craft(db, "x", artifacts=str(target))
    message = _refusal("x", target, default)
    study = nas.load_study("x", db)
    for backend in (None, "ray"):
        with pytest.raises(ValueError) as err:
            study.resume(backend=backend, verbose=False)
        assert str(err.value) == message
    for command in (("resume",), ("worker",)):
        out = _cli(*command, "--study", "x", "--storage", str(db), cwd=tmp_path)
        assert (out.returncode, out.stdout, out.stderr) == (2, "", f"nas: error: {message}\n")
    with pytest.raises(ValueError, match=r"but got artifacts='/tmp/other'; give the study's own folder"):
        study.resume(verbose=False, artifacts="/tmp/other")
    # nothing ran, nothing was written: not the folder, not the default one, and the study is as it was
    assert _files(tmp_path) == ["s.db", "s.lock"]
    assert study.counts()["done"] == 0 and nas.load_study("x", db).config.artifacts == str(target)

    out = _cli("resume", "--study", "x", "--storage", str(db), "--artifacts", str(target), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    study = nas.load_study("x", db)
    assert study.counts()["done"] == 2
    weights = sorted(Path(r.user_attrs["weights"]).name for r in study.trials)
    assert _files(target) == sorted([*weights, "x.worker-0.log"])
    assert _files(tmp_path) == sorted(["s.db", "s.lock", "elsewhere", *(f"elsewhere/{n}" for n in _files(target))])


@pytest.mark.slow
def test_a_worker_keeps_the_folder_it_confirmed_when_the_storage_changes(tmp_path: Path) -> None:
    """The worker loop reads the configuration again before each trial (a resume may raise the target); a
    folder changed in the storage meanwhile is not followed: every trial's weights go to the confirmed one."""
    from nas.backends.local import open_worker_study, work

    db, evil = tmp_path / "s.db", tmp_path / "evil"
    nas.create_study(TINY_CONV, "digits",
                     strategy=nas.Strategy(n_trials=2, sampler="random", seed=0,
                                           budget={"epochs": 1, "batch_size": 128}),
                     run=nas.Run(storage=db, study="x"), verbose=False)
    url = describe_storage(db)
    study, config = open_worker_study("x", url, 0)
    assert config.artifacts == str(tmp_path / "s-artifacts" / "x")  # the default: no confirmation needed

    def after(trial) -> None:
        _craft(db, "x", artifacts=str(evil))
    assert work(study, config, lock_path(url), max_trials=2, after=after) == 0
    assert nas.load_study("x", db).config.artifacts == str(evil)  # changed before the second trial's claim
    trials = nas.load_study("x", db).trials
    assert [r.status for r in trials] == ["ok", "ok"]
    assert [Path(r.user_attrs["weights"]).parent for r in trials] == [Path(config.artifacts)] * 2
    assert not evil.exists()


def test_a_keras_tuner_folder_outside_the_study_folder_is_refused(tmp_path: Path) -> None:
    """The keras-tuner backend keeps the tuner's folder (stored with the backend) inside the study's artefact
    folder: one pointed elsewhere in the storage is refused before the tuner starts."""
    db = tmp_path / "k.db"
    nas.create_study(TINY_CONV, strategy=nas.Strategy(n_trials=2),
                     run=nas.Run(backend=nas.KerasTuner(tuner="random"), storage=db, study="k"),
                     evaluator=score_by_macs, verbose=False)
    stored = nas.load_study("k", db).config.run.backend.to_dict()
    assert stored["directory"] == str(tmp_path / "k-artifacts" / "k" / "keras_tuner")
    _craft(db, "k", backend={**stored, "project_name": "../../../../evil"})
    with pytest.raises(ValueError) as err:
        nas.load_study("k", db).resume(verbose=False)
    assert str(err.value) == (f"`backend`: the keras-tuner folder {str(tmp_path.parent / 'evil')!r} is not inside "
                              f"the study's artefact folder {str(tmp_path / 'k-artifacts' / 'k')!r}, where nas "
                              f"keeps it; a folder read from the storage is not written to")
    assert not (tmp_path.parent / "evil").exists() and _files(tmp_path) == ["k.db", "k.lock"]


def test_the_artifacts_confirmation_by_environment(tmp_path: Path, monkeypatch) -> None:
    """NAS_ARTIFACTS confirms the folder it names, for any study storing it; naming another folder it confirms
    nothing (it may be set for other studies), and a study in its default folder needs none."""
    db = tmp_path / "e.db"
    shared = tmp_path / "shared"
    nas.create_study(TINY_CONV, strategy=nas.Strategy(n_trials=2), run=nas.Run(storage=db, study="e", artifacts=shared),
                     evaluator=score_by_macs, verbose=False)
    monkeypatch.setenv(ARTIFACTS_ENV, str(tmp_path / "another"))
    with pytest.raises(ValueError) as err:
        nas.load_study("e", db).resume(verbose=False)
    assert str(err.value) == _refusal("e", shared, tmp_path / "e-artifacts" / "e")
    monkeypatch.setenv(ARTIFACTS_ENV, str(shared))
    assert nas.load_study("e", db).resume(verbose=False).counts()["done"] == 2
    # the same study made in this process: its folder was given, so resume() is confirmed
    study = nas.create_study(TINY_CONV, strategy=nas.Strategy(n_trials=1),
                             run=nas.Run(storage=db, study="f", artifacts=tmp_path / "own"), evaluator=score_by_macs,
                             verbose=False)
    monkeypatch.delenv(ARTIFACTS_ENV)
    assert study.resume(verbose=False).counts()["done"] == 1
