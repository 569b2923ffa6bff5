"""The worker: the loop every backend runs in its workers (local processes, ``nas worker`` on other machines, Ray
actors), and the ``python -m nas.backends`` / ``nas worker`` entry point.

A worker opens the study with the sampler and pruner its stored record names (seeded with the worker's own
stream), loads the space and the data once, then claims trials under the study's lock and runs each through
the trial pipeline (:mod:`nas.engine.runner`) until the target is met, re-reading the record before every claim
(a resume may raise the target). It takes the storage URL from the ``NAS_STORAGE`` environment variable (or
``--storage``), so that a password in it never shows in ``ps``. Backends only start, place and stop workers.
"""

from __future__ import annotations

import argparse
import os
import select
import time
import warnings
from typing import Any

import optuna

from nas.engine.claims import claim, give_back, next_worker_number, worker_seed
from nas.engine.components import make_pruner, make_sampler
from nas.engine.limits import within_limits
from nas.engine.schema import StudyConfig, read_config
from nas.engine.storage import artifacts_folder, lock_path, mask_url, open_storage
from nas.validate import check_int

__all__ = ["STORAGE_ENV", "open_worker_study", "wait_exit", "work", "worker_main"]

STORAGE_ENV = "NAS_STORAGE"  # how workers get the storage URL (never on their command line)


def open_worker_study(study_name: str, url: str, seed: int | None, *, numbered: bool = False,
                      artifacts: str | None = None) -> tuple[optuna.Study, StudyConfig]:
    """The study with the sampler and pruner its stored record names, seeded with ``seed``, or with
    ``numbered=True`` by a worker number handed out under the study's lock (Ray trials); the record's artefact
    folder is the stored one once confirmed (``artifacts``, the ``NAS_ARTIFACTS`` environment variable or the
    default location: :func:`nas.engine.storage.artifacts_folder`)."""
    storage = open_storage(url, create=False)
    if study_name not in optuna.get_all_study_names(storage):
        raise ValueError(f"no study {study_name!r} in {mask_url(url)}")
    plain = optuna.load_study(study_name=study_name, storage=storage)
    config = read_config(plain)
    config = config.with_artifacts(artifacts_folder(config.artifacts, url, study_name, artifacts))
    strategy = config.strategy
    if numbered:
        seed = worker_seed(strategy.seed, next_worker_number(plain, lock_path(url)))
    import search_spaces

    space = search_spaces.from_config(config.space)
    assert strategy.sampler is not None  # chosen when the study was created
    sampler = make_sampler(strategy.sampler, n_trials=strategy.n_trials, space=space, seed=seed)
    if strategy.sample_within_limits:
        sampler = within_limits(sampler, space, config.goal.constraints, seed=seed)
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler,
                              pruner=make_pruner(strategy.pruner, epochs=strategy.budget.epochs))
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
    ready = None if args.wait_for is None else (lambda: wait_exit([args.wait_for]))
    return work(study, config, lock_path(url), args.max_trials, ready=ready, echo=True)


def wait_exit(pids: list[int], timeout: float | None = None) -> None:
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


def work(study: optuna.Study, config: StudyConfig, lock: Any, max_trials: int = 0, after: Any = None,
         tags: dict[str, Any] | None = None, ready: Any = None, startup: bool = True, echo: bool = False) -> int:
    """The worker loop: claim a trial, run it, until the target is met (or ``max_trials`` are done); 130 after a
    Ctrl-C (the trial is given back). ``ready()`` is called once everything is loaded, before the first claim;
    ``after(trial)`` after each trial; ``tags`` are recorded on every trial at its claim; with ``echo`` each
    epoch's progress line is printed (to the worker's log). The first trial's timings include ``startup_s``
    (process start to loaded; ``startup=False`` when the loop runs in a process that was not started for it,
    e.g. the caller's), every trial's ``claim_s`` (the claim, waits included). The
    record is read again before each claim (a resume may raise the target), except its artefact folder: the one
    ``config`` holds, confirmed when the worker started, is kept."""
    from nas.engine.runner import Runner

    runner = Runner(study, config)
    runner.echo = echo
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
        config = read_config(study).with_artifacts(artifacts)  # the target may have been raised by a resume
        runner.config = config
        t = time.perf_counter()
        trial = claim(study, config, lock, seen=seen, tags=tags)
        if trial is None:
            break
        before["claim_s"] = round(time.perf_counter() - t, 4)
        try:
            runner.run(trial, seen, before)
            before = {}
        except KeyboardInterrupt:
            give_back(study, trial._trial_id, "interrupted (Ctrl-C)", config.strategy.max_retries)
            return 130
        done += 1
        if after is not None:
            after(trial)
    return 0
