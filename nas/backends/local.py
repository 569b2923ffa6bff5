"""The local backend: worker processes on this machine, placed on its devices, recycled, supervised.

``Local(n_workers=2, max_trials_per_worker=20)`` (options in :mod:`nas.engine.where`) keeps its worker slots busy
until the study reaches its target. Each slot's devices are decided by :func:`nas.devices.place_workers`; a worker
is a separate process (``python -m nas.backends``, the engine's worker loop) started with its slot's placement in
its environment, and recycled after ``max_trials_per_worker`` trials: TensorFlow/Keras keep about 10 MB per
built-and-trained model even after ``clear_session()``, so only a process exit gives the memory back. A worker
that dies (SIGKILL, out of memory, crash) leaves its trial RUNNING; the supervisor fails that trial with the
reason and enqueues its params again. The supervisor only reads the storage and prints progress; it never
imports TensorFlow.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

from nas.devices import Placement
from nas.engine import records
from nas.engine.claims import (
    SearchStopped,
    counts,
    fail_dead_trials,
    next_worker_number,
    stop_reason,
    stopped,
    worker_seed,
)
from nas.engine.progress import FINISHED, Live, listened, starting
from nas.engine.schema import StudyConfig
from nas.engine.storage import claim_lock, lock_path, mask_url
from nas.engine.where import Local
from nas.engine.worker import STORAGE_ENV, open_worker_study, wait_exit, work

__all__ = ["in_process", "supervise"]


class _Workers:
    """The worker processes of one supervisor: start, reap (with the reason a worker died), stop."""

    def __init__(self, study: optuna.Study, url: str, config: StudyConfig, backend: Local) -> None:
        self.study, self.url, self.config, self.backend = study, url, config, backend
        self.lock = lock_path(url)
        self.procs: dict[int, tuple[subprocess.Popen[bytes], Any, Path]] = {}
        # what each worker slot sees (an evaluator search trains nothing: no accelerator to place)
        self.placements = (backend.placements(config.device) if config.evaluator is None
                           else tuple(Placement(kind="cpu") for _ in range(backend.n_workers or 1)))
        self.slot_of: dict[int, int] = {}  # worker pid -> its slot (a warm spare takes its predecessor's)
        self.reasons: dict[int, str] = {}
        self.crashes = 0
        self.spared: set[int] = set()  # workers a warm spare was started for

    def free_slots(self) -> list[int]:
        busy = {self.slot_of[pid] for pid in self.procs}
        return [i for i in range(len(self.placements)) if i not in busy]

    def start(self, slot: int, wait_for: int | None = None) -> int:
        """Start a worker on ``slot`` (its devices: the slot's placement, set in its environment before it starts);
        with ``wait_for`` a warm spare that loads everything, then waits for that worker (on its last trial before
        recycling) to exit before it claims a trial."""
        number = next_worker_number(self.study, self.lock)
        artifacts = Path(self.config.artifacts)
        log_path = artifacts / f"{self.study.study_name}.worker-{number}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - the worker's stdout; kept in self.procs, closed when it exits
        cmd = [sys.executable, "-m", "nas.backends", "--study", self.study.study_name,
               "--max-trials", str(self.backend.max_trials_per_worker),
               "--artifacts", self.config.artifacts]  # the folder the resume confirmed
        seed = worker_seed(self.config.strategy.seed, number)
        if seed is not None:
            cmd += ["--seed", str(seed)]
        if wait_for is not None:
            cmd += ["--wait-for", str(wait_for)]
        env = {**os.environ, STORAGE_ENV: self.url, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
        if self.config.evaluator is None:
            env.update(self.placements[slot].env())
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_dies_with(os.getpid()))
        self.procs[proc.pid] = (proc, log, log_path)
        self.slot_of[proc.pid] = slot
        return proc.pid

    def spare_for_last_trials(self, trials: list[optuna.trial.FrozenTrial], c: dict[str, int]) -> None:
        """A warm spare for each worker that is running its last trial before recycling, so that the next
        trial does not wait for a new process to import TensorFlow and load the data."""
        limit = self.backend.max_trials_per_worker
        if limit <= 1 or c["done"] + c["running"] >= self.config.n_trials:
            return
        finished: dict[int, list[float]] = {}
        startup: dict[int, float] = {}
        running: set[int] = set()
        for t in trials:
            pid = (records.attr(t, "worker") or {}).get("pid")
            if pid in self.procs:
                timings = records.attrs_of(t).get("timings") or {}
                if "startup_s" in timings:
                    startup[pid] = float(timings["startup_s"])
                if t.state == optuna.trial.TrialState.RUNNING:
                    running.add(pid)
                elif t.state in FINISHED:
                    finished.setdefault(pid, []).append(float(timings.get("total_s", 0.0)))
        for pid in sorted(running - self.spared):
            done = finished.get(pid, [])
            left = limit - len(done)  # the running trial included
            # start it while the old worker runs its last trial, or earlier when its trials are shorter than
            # a worker's start-up (e.g. a few seconds of training against seconds of importing TensorFlow)
            mean = sum(done) / len(done) if done else float("inf")
            if self.placements[self.slot_of[pid]].share > 1:
                continue  # workers sharing a GPU hold their memory limit from start-up: no second one on the slot
            if left == 1 or (left > 1 and (left - 1) * mean < startup.get(pid, 0.0)):
                self.spared.add(pid)
                self.start(self.slot_of[pid], wait_for=pid)

    def wait(self, timeout: float) -> None:
        """Sleep until a worker exits or ``timeout`` passes (no fixed polling delay)."""
        wait_exit(list(self.procs), timeout)

    def reap(self) -> None:
        """Collect exited workers; three crashes in a row without a finished trial stop the search."""
        for pid, (proc, log, log_path) in list(self.procs.items()):
            rc = proc.poll()
            if rc is None:
                continue
            del self.procs[pid]
            log.close()
            if rc != 0:
                self.reasons[pid] = (f"worker process {pid} killed by signal {-rc}" if rc < 0
                                     else f"worker process {pid} exited with code {rc}")
                self.crashes += 1
                if self.crashes >= 3:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise SearchStopped(f"3 worker processes in a row died before finishing a trial; the last one "
                                        f"({self.reasons[pid]}) wrote to {log_path}:\n{tail}")

    def stop(self) -> None:
        for proc, _, _ in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.time() + 10
        for proc, log, _ in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        with claim_lock(self.lock):
            fail_dead_trials(self.study, reason_for={pid: "interrupted: the search was stopped" for pid in self.procs})


def in_process(study: optuna.Study, url: str, config: StudyConfig, *, verbose: bool = True) -> None:
    """One worker in this process: an evaluator search with ``n_workers=1`` (no TensorFlow, so nothing to
    recycle) runs without a worker process to start, import and poll. The worker is numbered and seeded as a
    worker process would be, so the search is the same."""
    lock = lock_path(url)
    seed = worker_seed(config.strategy.seed, next_worker_number(study, lock))
    own, config = open_worker_study(study.study_name, url, seed, artifacts=config.artifacts)
    live = Live(own.get_trials(deepcopy=False), config.n_trials, verbose)

    def after(trial: optuna.Trial) -> None:
        if verbose or listened():
            live.update(own.get_trials(deepcopy=False))
    try:
        with warnings.catch_warnings():  # Optuna's note that heartbeats are meant for Study.optimize
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            code = work(own, config, lock, after=after, startup=False)
        if code == 130:
            raise KeyboardInterrupt
    except BaseException:
        if verbose:
            print(f"nas: stopped; continue with `nas resume --study {study.study_name} --storage {mask_url(url)}`",
                  flush=True)
        raise
    trials = own.get_trials(deepcopy=False)
    c = counts(trials)
    reason = stop_reason(c, config)
    if reason is not None:
        raise stopped(reason, c, config, study.study_name)
    if verbose:
        print(live.summary(trials), flush=True)


def supervise(study: optuna.Study, url: str, config: StudyConfig, *, verbose: bool = True, poll: float = 0.5) -> None:
    """Keep the worker slots of the study's ``Local`` backend busy until it has ``config.n_trials`` finished trials."""
    backend = config.run.backend
    assert isinstance(backend, Local)
    target = config.n_trials
    Path(config.artifacts).mkdir(parents=True, exist_ok=True)
    if (backend.n_workers or 1) == 1 and config.evaluator is not None:
        if verbose:
            c = counts(study.get_trials(deepcopy=False))
            print(f"nas: {c['done']}/{target} trials finished; evaluating in this process", flush=True)
        in_process(study, url, config, verbose=verbose)
        return
    workers = _Workers(study, url, config, backend)
    live = Live(study.get_trials(deepcopy=False), target, verbose)
    if verbose:
        c = counts(study.get_trials(deepcopy=False))
        where = ", ".join(sorted({p.describe() for p in workers.placements}))
        n, loads = starting(len(workers.placements), c["done"], target, config.evaluator is not None)
        print(f"nas: {c['done']}/{target} trials finished; starting {n} worker process{'es' if n > 1 else ''} on "
              f"{where} ({loads}); their logs in {config.artifacts}", flush=True)
    try:
        while True:
            workers.reap()
            with claim_lock(workers.lock):
                fail_dead_trials(study, reason_for=workers.reasons)
            trials = study.get_trials(deepcopy=False)
            c = counts(trials)
            for t in live.update(trials):
                if t.user_attrs.get("status") != "failed" or "worker process" not in str(records.attr(t, "error")):
                    workers.crashes = 0
            reason = stop_reason(c, config)
            if reason is not None:
                errors = [str(records.attr(t, "error")) for t in trials if t.state == optuna.trial.TrialState.FAIL]
                raise stopped(reason + ("; the last errors: " + " | ".join(errors[-3:]) if c["failed"] else ""), c,
                              config, study.study_name)
            if c["done"] >= target and not workers.procs:
                break
            if c["done"] >= target and c["running"] == 0:
                workers.stop()  # the idle workers: a TensorFlow process takes seconds to exit on its own
                break
            for slot in workers.free_slots()[:max(0, target - c["done"] - len(workers.procs))]:
                workers.start(slot)
            workers.spare_for_last_trials(trials, c)
            workers.wait(poll)
    except BaseException as exc:
        workers.stop()
        if verbose and not isinstance(exc, SearchStopped):  # its message says how to go on
            print(f"nas: stopped; continue with `nas resume --study {study.study_name} --storage {mask_url(url)}`",
                  flush=True)
        raise
    if verbose:
        print(live.summary(study.get_trials(deepcopy=False)), flush=True)


# ------------------------------------------------------------------ the worker process

def _prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # looked up once: a child between fork and exec only calls it
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def _dies_with(parent: int) -> Any:
    """What a worker process runs between fork and exec (``Popen(preexec_fn=...)``), so that it dies with the
    process that started it from its first instruction on: Linux's parent-death signal (SIGKILL), armed before
    the worker's Python starts, then a check that its parent is still ``parent`` (had the parent died before the
    signal was armed, the child would already belong to another process: it exits at once). So a driver killed a
    millisecond after starting a worker leaves no orphan to claim trials. The signal follows the *thread* that
    started the child; the supervisor starts its workers from the thread that runs the search, which outlives
    them. None where ``prctl`` does not exist (not Linux)."""
    prctl = _PRCTL
    if prctl is None:
        return None

    def arm() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)
    return arm
