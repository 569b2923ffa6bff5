"""Workers die with their driver, from their first instruction: a driver SIGKILLed within a millisecond of
starting a worker (or a replacement, or a warm spare) leaves no worker behind to claim trials."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

DRIVER = textwrap.dedent("""
    import sys
    import nas, search_spaces
    space = search_spaces.get("conv", input_shape=(8, 8, 1), num_classes=10, stages=(1, 3), depth=(1, 2),
                              widths=(8, 16, 24, 32))
    nas.search(space, evaluator="engine_helpers:slow_evaluator", goal=nas.Goal(objectives=("accuracy", "params")),
               strategy=nas.Strategy(n_trials=500, sampler="random", seed=0),
               run=nas.Run(storage=sys.argv[1], study=sys.argv[2],
                           backend=nas.Local(n_workers=2, max_trials_per_worker=int(sys.argv[3]))), verbose=False)
""")


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.add(int(entry))
    return out


def workers_of(study: str) -> list[int]:
    """Live (not zombie) worker processes of ``study``, whoever their parent is now."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"nas.backends" in argv and study.encode() in argv and state != "Z":
            pids.append(int(entry))
    return pids


def kill_at_spawn(tmp_path: Path, study: str, nth: int, per_worker: int) -> tuple[int, int]:
    """Start a driver whose workers exit after ``per_worker`` trials, SIGKILL it as soon as its ``nth`` worker
    process exists (polling /proc every millisecond), and return how many workers of the study are alive 3 s
    later and how many trials were claimed after the kill (by a worker that outlived it)."""
    import optuna

    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path / "s.db"), study, str(per_worker)],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: set[int] = set()
    deadline = time.time() + 120
    try:
        while len(seen) < nth and time.time() < deadline and driver.poll() is None:
            seen |= _children(driver.pid)
            time.sleep(0.001)
        assert len(seen) >= nth, "the driver started too few workers"
        driver.send_signal(signal.SIGKILL)
        killed = datetime.datetime.now()
    finally:
        driver.kill()
        driver.wait()
    time.sleep(3)
    alive = workers_of(study)
    for pid in alive:  # do not leave them to the rest of the suite
        os.kill(pid, signal.SIGKILL)
    trials = optuna.load_study(study_name=study, storage=f"sqlite:///{tmp_path / 's.db'}").get_trials(deepcopy=False)
    late = [t for t in trials if t.datetime_start is not None
            and t.datetime_start > killed + datetime.timedelta(seconds=0.05)]
    return len(alive), len(late)


@pytest.mark.slow
@pytest.mark.parametrize("nth, per_worker", [(1, 100), (2, 100), (4, 2)])
def test_a_driver_killed_as_it_spawns_a_worker_leaves_no_orphan(tmp_path: Path, nth: int, per_worker: int) -> None:
    """nth=1: the first worker; 2: the second, started right after; 4: a replacement or warm spare, started while
    the first workers run their last trials (each exits after 2)."""
    study = f"orphan-{nth}-{os.getpid()}"
    alive, late = kill_at_spawn(tmp_path, study, nth, per_worker)
    assert (alive, late) == (0, 0)
