"""Where nas writes files: nothing beside a storage a search could not open."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nas.engine.storage import claim_lock


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600, env={**os.environ, **(env or {})})


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
    (tmp_path / "c.yaml").write_text("study: t\nspace: conv\nn_trials: 1\nevaluator: engine_helpers:score_by_macs\n")
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
