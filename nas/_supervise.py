"""The local supervisor: keeps ``n_workers`` worker processes busy until the study reaches its target.

Workers are separate processes (``python -m nas._worker``), recycled after ``max_trials_per_worker`` trials:
TensorFlow/Keras keep about 10 MB per built-and-trained model even after ``clear_session()``, so only a
process exit gives the memory back. A worker that dies (SIGKILL, out of memory, crash) leaves its trial
RUNNING; the supervisor fails that trial with the reason and enqueues its params again. The supervisor
itself only reads the storage and prints progress; it never imports TensorFlow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optuna.trial import TrialState

from nas._recovery import fail_dead_trials
from nas._storage import claim_lock, lock_path, read_config
from nas._worker import counts, failure_cap, infeasible_cap

if TYPE_CHECKING:
    from nas.study import Study

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def _worker_seed(seed: int | None, sequence: int) -> int | None:
    # every worker process samples with its own stream: a recycled worker must not replay its predecessor's
    return None if seed is None else (seed * 1_000_003 + sequence) % (2**31 - 1)


def _line(t: Any, done: int, target: int) -> str:
    a = t.user_attrs
    status = a.get("status") or t.state.name.lower()
    acc = a.get("accuracy")
    if acc is None and t.intermediate_values:
        acc = t.intermediate_values[max(t.intermediate_values)]
    parts = [f"[{done:>3}/{target}] trial {t.number:>3} {status:<10}"]
    parts.append(f"acc {acc:.4f}" if acc is not None else " " * 10)
    if "macs" in a:
        parts.append(f"MACs {a['macs']:>12,}  params {a['params']:>10,}")
    if "latency_ms" in a:
        parts.append(f"{a['latency_ms']:.2f} ms")
    if "timings" in a and "total_s" in a["timings"]:
        parts.append(f"{a['timings']['total_s']:6.1f}s")
    if status in ("failed", "infeasible") and a.get("error"):
        parts.append(str(a["error"])[:100])
    elif "spec_str" in a:
        text = a["spec_str"]
        parts.append(text if len(text) <= 100 else text[:97] + "...")
    return "  ".join(parts)


def report_finished(trials: list[Any], reported: set[int], target: int, verbose: bool) -> list[Any]:
    """Print one line per trial finished since the last call (in trial order); returns those trials."""
    done = counts([t for t in trials if t.number in reported])["done"]
    new = []
    for t in trials:
        if t.state in FINISHED and t.number not in reported:
            reported.add(t.number)
            new.append(t)
            if t.state == TrialState.PRUNED or (t.state == TrialState.COMPLETE
                                                and t.user_attrs.get("status") != "infeasible"):
                done += 1
            if verbose:
                print(_line(t, done, target), flush=True)
    return new


def supervise(study: Study, *, n_workers: int, verbose: bool = True, poll: float = 0.5) -> None:
    ost = study.optuna_study
    config = read_config(ost)
    if "max_failures" not in config or config.get("max_failures") is None:
        config["max_failures"] = max(5, int(config["n_trials"]))
    target = int(config["n_trials"])
    artifacts = Path(config["artifacts"])
    artifacts.mkdir(parents=True, exist_ok=True)
    lock = lock_path(study.storage_url)
    seed = config["sampler"].get("seed")
    max_per_worker = int(config.get("max_trials_per_worker", 20))
    started = int(ost.user_attrs.get("nas_workers_started", 0))
    procs: dict[int, tuple[subprocess.Popen[bytes], Any, Path]] = {}
    reasons: dict[int, str] = {}
    reported = {t.number for t in ost.get_trials(deepcopy=False, states=FINISHED)}
    crashes = 0
    t_start = time.perf_counter()
    if verbose:
        c = counts(ost.get_trials(deepcopy=False))
        print(f"nas: {c['done']}/{target} trials finished; running up to {n_workers} worker process(es); "
              f"logs in {artifacts}", flush=True)

    def start_worker() -> None:
        nonlocal started
        log_path = artifacts / f"worker-{started}.log"
        log = open(log_path, "ab")
        cmd = [sys.executable, "-m", "nas._worker", "--study", study.name, "--storage", study.storage_url,
               "--max-trials", str(max_per_worker), "--with-parent"]
        s = _worker_seed(seed, started)
        if s is not None:
            cmd += ["--seed", str(s)]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        procs[proc.pid] = (proc, log, log_path)
        started += 1
        ost.set_user_attr("nas_workers_started", started)

    try:
        while True:
            for pid, (proc, log, log_path) in list(procs.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                del procs[pid]
                log.close()
                if rc != 0:
                    reasons[pid] = (f"worker process {pid} killed by signal {-rc}" if rc < 0
                                    else f"worker process {pid} exited with code {rc}")
                    crashes += 1
                    if crashes >= 3:
                        tail = log_path.read_text(errors="replace")[-3000:]
                        raise RuntimeError(f"3 worker processes in a row died before finishing a trial; the last "
                                           f"one ({reasons[pid]}) wrote to {log_path}:\n{tail}")
            with claim_lock(lock):
                fail_dead_trials(ost, reason_for=reasons)
            trials = ost.get_trials(deepcopy=False)
            c = counts(trials)
            for t in report_finished(trials, reported, target, verbose):
                if t.user_attrs.get("status") != "failed" or "worker process" not in str(t.user_attrs.get("error")):
                    crashes = 0
            if c["infeasible"] >= infeasible_cap(target):
                raise RuntimeError(f"the constraints {config.get('constraints')} rejected {c['infeasible']} "
                                   f"candidates and only {c['done']} were trained: loosen the constraints or "
                                   f"narrow the space")
            if c["failed"] >= failure_cap(config):
                errors = [str(t.user_attrs.get("error")) for t in trials if t.state == TrialState.FAIL][-3:]
                raise RuntimeError(f"{c['failed']} trials failed (limit max_failures={failure_cap(config)}); the last "
                                   f"errors: " + " | ".join(errors))
            if c["done"] >= target and not procs:
                break
            while len(procs) < n_workers and len(procs) < target - c["done"]:
                start_worker()
            time.sleep(poll)
    except BaseException:
        for proc, log, _ in procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.time() + 10
        for proc, log, _ in procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        with claim_lock(lock):
            fail_dead_trials(ost, reason_for={pid: "interrupted: the search was stopped" for pid in procs})
        if verbose:
            print(f"nas: stopped; continue with `nas resume --study {study.name} --storage {study.storage_url}`",
                  flush=True)
        raise
    if verbose:
        c = counts(ost.get_trials(deepcopy=False))
        print(f"nas: {c['done']}/{target} finished ({c['complete']} complete, {c['pruned']} pruned), "
              f"{c['infeasible']} over budget, {c['failed']} failed, in {time.perf_counter() - t_start:.1f} s",
              flush=True)
