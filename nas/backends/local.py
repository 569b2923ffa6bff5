"""The local backend: worker processes on this machine, recycled, supervised; and the worker process itself.

``Local(n_workers=2, max_trials_per_worker=20)`` keeps ``n_workers`` worker processes busy until the study
reaches its target. Workers are separate processes (``python -m nas.backends``), recycled after
``max_trials_per_worker`` trials: TensorFlow/Keras keep about 10 MB per built-and-trained model even after
``clear_session()``, so only a process exit gives the memory back. A worker that dies (SIGKILL, out of
memory, crash) leaves its trial RUNNING; the supervisor fails that trial with the reason and enqueues its
params again. The supervisor only reads the storage and prints progress; it never imports TensorFlow.

The same worker runs as ``nas worker`` on any machine that reaches the storage. It takes the storage URL from
the ``NAS_STORAGE`` environment variable (or ``--storage``), so that a password in it never shows in ``ps``.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import os
import select
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

from nas.backends.base import Backend
from nas.devices import Device, Found, Placement, check_placement, find_devices, place_workers
from nas.engine import records
from nas.engine.claims import (SearchStopped, claim, counts, fail_dead_trials, give_back, next_worker_number,
                               stop_reason, stopped, worker_seed)
from nas.engine.config import StudyConfig, check_int, make_pruner, make_sampler, read_config
from nas.engine.limits import within_limits
from nas.engine.progress import FINISHED, listened, report_finished
from nas.engine.storage import artifacts_folder, claim_lock, lock_path, mask_url, open_storage

__all__ = ["Local", "STORAGE_ENV", "supervise", "worker_main"]

STORAGE_ENV = "NAS_STORAGE"  # how workers get the storage URL (never on their command line)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Local(Backend):
    """Worker processes on this machine: ``n_workers`` at a time (None: one per GPU slot when the device asks for
    GPUs, else 1), each recycled after ``max_trials_per_worker`` trials (0: never). With GPUs each worker sees
    ``gpus_per_worker`` of its own (a fraction ``1/k``: ``k`` workers share a GPU, each with a memory limit of
    ``gpu_memory_mb``, default the GPU's memory / k); see :func:`nas.devices.place_workers`."""

    kind = "local"
    n_workers: int | None = None
    max_trials_per_worker: int = 20
    gpus_per_worker: float = 1
    gpu_memory_mb: int | None = None

    def __post_init__(self) -> None:
        if self.n_workers is not None:
            check_int("n_workers", self.n_workers, 1, 256)
        check_int("max_trials_per_worker", self.max_trials_per_worker, 0)
        check_placement(self.n_workers, self.gpus_per_worker, self.gpu_memory_mb)

    def placements(self, device: Device, found: Found | None = None) -> tuple[Placement, ...]:
        """What each worker slot sees on this machine (``found``: the devices found; default: looked for now)."""
        return place_workers(find_devices(device) if found is None else found, device, n_workers=self.n_workers,
                             gpus_per_worker=self.gpus_per_worker, gpu_memory_mb=self.gpu_memory_mb)

    def run(self, study: optuna.Study, url: str, config: StudyConfig, *, verbose: bool) -> None:
        supervise(study, url, config, self, verbose=verbose)


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
        log = open(log_path, "ab")
        cmd = [sys.executable, "-m", "nas.backends", "--study", self.study.study_name,
               "--max-trials", str(self.backend.max_trials_per_worker),
               "--artifacts", self.config.artifacts]  # the folder the resume confirmed
        seed = worker_seed(self.config.seed, number)
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
            pid = (t.user_attrs.get("worker") or {}).get("pid")
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
        _wait_exit(list(self.procs), timeout)

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
    seed = worker_seed(config.seed, next_worker_number(study, lock))
    own, config = open_worker_study(study.study_name, url, seed, artifacts=config.artifacts)
    reported = {t.number for t in own.get_trials(deepcopy=False, states=FINISHED)}

    def after(trial: optuna.Trial) -> None:
        if verbose or listened():
            report_finished(own.get_trials(deepcopy=False), reported, config.n_trials, verbose)
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
    c = counts(own.get_trials(deepcopy=False))
    reason = stop_reason(c, config)
    if reason is not None:
        raise stopped(reason, c, config, study.study_name)


def supervise(study: optuna.Study, url: str, config: StudyConfig, backend: Local, *, verbose: bool = True,
              poll: float = 0.5) -> None:
    """Keep ``backend.n_workers`` workers busy until the study has ``config.n_trials`` finished trials."""
    target = config.n_trials
    Path(config.artifacts).mkdir(parents=True, exist_ok=True)
    if (backend.n_workers or 1) == 1 and config.evaluator is not None:
        t_start = time.perf_counter()
        in_process(study, url, config, verbose=verbose)
        if verbose:
            _summary(study, target, t_start)
        return
    workers = _Workers(study, url, config, backend)
    reported = {t.number for t in study.get_trials(deepcopy=False, states=FINISHED)}
    t_start = time.perf_counter()
    if verbose:
        c = counts(study.get_trials(deepcopy=False))
        where = ", ".join(sorted({p.describe() for p in workers.placements}))
        print(f"nas: {c['done']}/{target} trials finished; running up to {len(workers.placements)} worker "
              f"process(es) ({where}); logs in {config.artifacts}", flush=True)
    try:
        while True:
            workers.reap()
            with claim_lock(workers.lock):
                fail_dead_trials(study, reason_for=workers.reasons)
            trials = study.get_trials(deepcopy=False)
            c = counts(trials)
            for t in report_finished(trials, reported, target, verbose):
                if t.user_attrs.get("status") != "failed" or "worker process" not in str(t.user_attrs.get("error")):
                    workers.crashes = 0
            reason = stop_reason(c, config)
            if reason is not None:
                errors = [str(t.user_attrs.get("error")) for t in trials if t.state == optuna.trial.TrialState.FAIL]
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
        _summary(study, target, t_start)


def _summary(study: optuna.Study, target: int, t_start: float) -> None:
    c = counts(study.get_trials(deepcopy=False))
    print(f"nas: {c['done']}/{target} finished ({c['complete']} complete, {c['pruned']} pruned), "
          f"{c['infeasible']} over budget, {c['failed']} failed, in {time.perf_counter() - t_start:.1f} s",
          flush=True)


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


def open_worker_study(study_name: str, url: str, seed: int | None, *, numbered: bool = False,
                      artifacts: str | None = None) -> tuple[optuna.Study, StudyConfig]:
    """The study with the sampler and pruner its stored configuration names, seeded with ``seed``, or with
    ``numbered=True`` by a worker number handed out under the study's lock (Ray trials); the configuration's
    artefact folder is the stored one once confirmed (``artifacts``, the ``NAS_ARTIFACTS`` environment variable
    or the default location: :func:`nas.engine.storage.artifacts_folder`)."""
    storage = open_storage(url, create=False)
    if study_name not in optuna.get_all_study_names(storage):
        raise ValueError(f"no study {study_name!r} in {mask_url(url)}")
    plain = optuna.load_study(study_name=study_name, storage=storage)
    config = read_config(plain)
    config = config.replace(artifacts=artifacts_folder(config.artifacts, url, study_name, artifacts))
    if numbered:
        seed = worker_seed(config.seed, next_worker_number(plain, lock_path(url)))
    import search_spaces

    space = search_spaces.from_config(config.space)
    sampler = make_sampler(config.sampler, n_trials=config.n_trials, space=space, seed=seed)
    if config.sample_within_limits:
        sampler = within_limits(sampler, space, config.constraints, seed=seed)
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler,
                              pruner=make_pruner(config.pruner, epochs=config.budget.epochs))
    return study, config


def worker_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nas.backends")
    parser.add_argument("--study", required=True)
    parser.add_argument("--storage", default=None, help=f"default: the {STORAGE_ENV} environment variable")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-trials", type=int, default=0, help="exit after this many trials (0: until done)")
    parser.add_argument("--wait-for", type=int, default=None,
                        help="load everything, then wait for this worker process to exit before claiming")
    parser.add_argument("--artifacts", default=None, help="the study's artefact folder, confirmed")
    args = parser.parse_args(argv)
    check_int("--max-trials", args.max_trials, 0)
    if args.seed is not None:
        check_int("--seed", args.seed, 0, 2**31 - 1)  # the range of study seeds and the streams derived from them
    url = args.storage or os.environ.get(STORAGE_ENV)
    if not url:
        raise ValueError(f"`storage`: give --storage or set {STORAGE_ENV}")
    warnings.filterwarnings("ignore")
    study, config = open_worker_study(args.study, url, args.seed, artifacts=args.artifacts)
    if config.evaluator is None:
        from nas._quiet import import_keras
        from nas.data import check_data

        check_data(config.data)  # moved or deleted data: one clear error before a trial is claimed
        import_keras()
    ready = None if args.wait_for is None else (lambda: _wait_exit([args.wait_for]))
    return work(study, config, lock_path(url), args.max_trials, ready=ready)


def _wait_exit(pids: list[int], timeout: float | None = None) -> None:
    """Return when one of ``pids`` has exited (a pidfd each) or after ``timeout`` seconds (None: no limit)."""
    fds = []
    try:
        for pid in pids:
            try:
                fds.append(os.pidfd_open(pid))
            except OSError:  # gone already
                return
        select.select(fds, [], [], timeout)
    finally:
        for fd in fds:
            os.close(fd)


def _process_age() -> float:
    """Seconds since this process started (Linux /proc; 0 elsewhere): a worker's start-up is in its first
    trial's timings."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def work(study: optuna.Study, config: StudyConfig, lock: Any, max_trials: int = 0,
         after: Any = None, tags: dict[str, Any] | None = None, ready: Any = None, startup: bool = True) -> int:
    """The worker loop: claim a trial, run it, until the target is met (or ``max_trials`` are done); 130 after a
    Ctrl-C (the trial is given back). ``ready()`` is called once everything is loaded, before the first claim;
    ``after(trial)`` after each trial; ``tags`` are recorded on every trial. The first trial's timings include
    ``startup_s`` (process start to loaded; ``startup=False`` when the loop runs in a process that was not
    started for it, e.g. the caller's), every trial's ``claim_s`` (the claim, waits included). The configuration
    is read again before each claim (a resume may raise the target), except its artefact folder: the one
    ``config`` holds, confirmed when the worker started, is kept."""
    from nas.engine.runner import Runner

    runner = Runner(study, config)
    runner.tags = dict(tags or {})
    before = {"startup_s": round(_process_age(), 3)} if startup else {}
    if ready is not None:
        t = time.perf_counter()
        ready()
        before["spare_wait_s"] = round(time.perf_counter() - t, 3)
        if startup:
            before["startup_s"] = round(before["startup_s"] - before["spare_wait_s"], 3)
    done = 0
    seen: list[Any] = []
    artifacts = config.artifacts
    while max_trials == 0 or done < max_trials:
        config = read_config(study)  # the target may have been raised by a resume
        if config.artifacts != artifacts:
            config = config.replace(artifacts=artifacts)
        runner.config = config
        t = time.perf_counter()
        trial = claim(study, config, lock, seen=seen)
        if trial is None:
            break
        before["claim_s"] = round(time.perf_counter() - t, 4)
        try:
            runner.run(trial, seen, before)
            before = {}
        except KeyboardInterrupt:
            give_back(study, trial._trial_id, "interrupted (Ctrl-C)", config.max_retries)
            return 130
        done += 1
        if after is not None:
            after(trial)
    return 0
