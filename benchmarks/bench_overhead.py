"""Per-trial overhead outside training on the demo config, local backend against Ray Tune, measured in one run.

Runs the search of `experiments/digits_quick.yaml` (families space on digits, NSGA-II, accuracy vs MACs; 12
trials of 3 epochs, 2 at a time) once per backend into a temporary SQLite storage, then splits the time from
the trials' own records (`timings` user attribute written by the worker, Optuna's start/complete times).

Run: `.venv/bin/python benchmarks/bench_overhead.py [--quick] [--backends local,ray]` (part of `make bench`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from nas.engine.schema import StudyConfig

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "experiments" / "digits_quick.yaml"
# the worker's timing keys, in pipeline order (nas/engine/runner.py, nas/train.py); unknown keys are listed after these
KEY_ORDER = ("sample_s", "data_s", "build_s", "train_s", "latency_s", "save_s", "clear_s")
# timing keys of what came before the trial in its worker (outside total_s): listed after the in-trial keys
OUTSIDE = ("startup_s", "spare_wait_s", "claim_s")
TRAINING = ("train_s",)  # (eval_s, a final model.evaluate, until 2026-12-07)


# ------------------------------------------------------------------ processes started by this run (Ray)

def _proc_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, start time in clock ticks) for every process visible in /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
        table[int(entry)] = (int(rest[1]), rest[0], rest[19])
    return table


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:100]
    except OSError:
        return "?"


class Descendants:
    """Samples this process's descendants every 0.5 s while a search runs: Ray's raylet, GCS and worker
    processes are started from here, so whatever is left of them afterwards is ours (and only ours) to end."""

    def __init__(self) -> None:
        self.seen: dict[int, str] = {}  # pid -> start time (guards against pid reuse)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _sample(self) -> None:
        table = _proc_table()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        todo = [os.getpid()]
        while todo:
            for child in children.get(todo.pop(), []):
                self.seen.setdefault(child, table[child][2])
                todo.append(child)

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def alive(self) -> list[int]:
        table = _proc_table()
        return sorted(pid for pid, start in self.seen.items()
                      if pid in table and table[pid][2] == start and table[pid][1] != "Z")


def end_leftovers(watch: Descendants, wait: float = 20.0) -> list[str]:
    """Wait for the processes this run started to exit; end those still there after ``wait`` seconds (by pid,
    only processes seen as descendants of this one). Returns a description of each one that had to be ended."""
    deadline = time.time() + wait
    while watch.alive() and time.time() < deadline:
        time.sleep(0.5)
    left = watch.alive()
    described = [f"{pid} ({_cmdline(pid)})" for pid in left]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in watch.alive():
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        time.sleep(2.0)
    return described


# ------------------------------------------------------------------ one search and its accounting

def run_backend(backend: str, config: StudyConfig, folder: Path) -> dict[str, Any]:
    """The search of ``config`` (the demo config's record) on ``backend`` (local: the config's own) into a study of
    its own in ``folder``, and its accounting."""
    import nas

    run = config.run.replace(study=f"overhead-{backend}", storage=folder / "bench.db",
                             artifacts=folder / f"artifacts-{backend}")
    if backend == "ray":
        run = run.replace(backend=nas.Ray(max_concurrent=2))
        concurrency = 2
    else:
        concurrency = run.backend.n_workers
    load = os.getloadavg()
    started = datetime.datetime.now()
    t = time.perf_counter()
    with Descendants() as watch:
        try:
            # Ray Tune prints a line per finished trial even at verbose=0: keep stdout for the tables
            with contextlib.redirect_stdout(sys.stderr):
                study = nas.search(config.space, config.data, goal=config.goal, strategy=config.strategy, run=run,
                                   evaluator=config.evaluator, description=config.description, verbose=False)
        finally:
            wall = time.perf_counter() - t
            if backend == "ray":
                import ray

                if ray.is_initialized():  # nas shuts down the instance it started; make sure of it
                    ray.shutdown()
    load_after = os.getloadavg()[0]
    leftovers = end_leftovers(watch)
    frozen = {t.number: t for t in study.optuna_study.get_trials(deepcopy=False)}
    records = [r for r in study.trials if "total_s" in r.timings]
    finished = [r for r in records if r.status in ("ok", "reused", "pruned")]
    trained = [r for r in records if r.status == "ok"]
    total = sum(r.timings["total_s"] for r in records)
    train = sum(r.timings.get(k, 0.0) for r in records for k in TRAINING)
    # Optuna's start (the claim's ask) to complete (the tell), less the timed part: storage work around the timer
    untimed = 0.0
    first_start, last_complete = None, None
    for r in records:
        ft = frozen[r.number]
        if ft.datetime_start is not None and ft.datetime_complete is not None:
            untimed += (ft.datetime_complete - ft.datetime_start).total_seconds() - r.timings["total_s"]
            first_start = min(first_start or ft.datetime_start, ft.datetime_start)
            last_complete = max(last_complete or ft.datetime_complete, ft.datetime_complete)
    ended = started + datetime.timedelta(seconds=wall)
    return {
        "backend": backend, "concurrency": concurrency, "wall": wall, "records": records, "finished": finished,
        "trained": trained, "total": total, "train": train, "untimed": untimed,
        "to_first": (first_start - started).total_seconds() if first_start else float("nan"),
        "after_last": (ended - last_complete).total_seconds() if last_complete else float("nan"),
        "statuses": sorted({r.status for r in study.trials}), "leftovers": leftovers,
        "n_all": len(study.trials), "load": load, "load_after": load_after,
    }


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole > 0 else "-"


def report(results: list[dict[str, Any]], describe: str) -> None:
    print(f"# per-trial overhead outside training: {describe}")
    load = ", ".join(f"{x:.2f}" for x in results[0]["load"])
    busy = f": above {os.cpu_count()}, other processes shared the cores" \
        if results[0]["load"][0] > (os.cpu_count() or 1) else ""
    print(f"# {os.cpu_count()} cores (load average {load} before the first run{busy}); each backend runs the same "
          f"search once, one after the other, in this run")
    print()
    head = (f"{'backend':<7} {'conc':>4} {'trials':>6} {'wall':>7} {'slot-s':>7} {'trial-s':>8} {'train+eval':>10} "
            f"{'in-worker':>9} {'remainder':>9} | {'train+eval':>10} {'in-worker':>9} {'remainder':>9}")
    print(head)
    print(f"{'':<7} {'':>4} {'':>6} {'s':>7} {'s':>7} {'s':>8} {'s':>10} {'s':>9} {'s':>9} | "
          f"{'share of slot-s':^31}")
    for r in results:
        slot = r["wall"] * r["concurrency"]
        inside = r["total"] - r["train"]
        rest = slot - r["total"]
        print(f"{r['backend']:<7} {r['concurrency']:>4} {len(r['records']):>6} {r['wall']:>7.1f} {slot:>7.1f} "
              f"{r['total']:>8.1f} {r['train']:>10.1f} {inside:>9.1f} {rest:>9.1f} | {pct(r['train'], slot):>10} "
              f"{pct(inside, slot):>9} {pct(rest, slot):>9}")
    print()
    print("per finished trial (slot-s divided by finished trials; ratios against the local backend):")
    base = next((r for r in results if r["backend"] == "local"), None)
    for r in results:
        n = max(1, len(r["finished"]))
        slot = r["wall"] * r["concurrency"]
        inside = (r["total"] - r["train"]) / n
        rest = (slot - r["total"]) / n
        line = (f"  {r['backend']:<6} {slot / n:6.1f} s of a slot per trial: train+eval {r['train'] / n:5.1f} s, "
                f"in-worker overhead {inside:5.2f} s, remainder {rest:5.1f} s")
        if base is not None and r is not base:
            bn = max(1, len(base["finished"]))
            b_slot = base["wall"] * base["concurrency"] / bn
            b_rest = (base["wall"] * base["concurrency"] - base["total"]) / bn
            line += f"  (x{(slot / n) / b_slot:.2f} slot time, remainder {rest - b_rest:+.1f} s per trial)"
        print(line)
    print()
    print("remainder split (s): before the first trial was claimed | storage work around the timer inside the "
          "trial's record (claim bookkeeping, tell) | the rest: process/actor start, imports, data load, idle")
    for r in results:
        rest = r["wall"] * r["concurrency"] - r["total"]
        print(f"  {r['backend']:<6} first claim at +{r['to_first']:.1f} s of wall, returned {r['after_last']:.1f} s "
              f"after the last trial finished; untimed inside records {r['untimed']:.1f} s "
              f"({r['untimed'] / max(1, len(r['records'])):.2f} s per trial); the rest {rest - r['untimed']:.1f} s")
    print()
    # mean in-worker time by timing key, over trained trials
    keys = [k for k in KEY_ORDER if any(k in t.timings for r in results for t in r["trained"])]
    seen = {k for r in results for t in r["trained"] for k in t.timings}
    keys += sorted(seen - set(keys) - {"total_s"} - set(OUTSIDE))
    outside = [k for k in OUTSIDE if any(k in t.timings for r in results for t in r["trained"])]
    print("mean in-worker time of a trained trial by timing key (ms, share of total_s; the keys after total_s are "
          "outside it: a worker's start-up on its first trial, a spare's wait, the claim):")
    print(f"  {'key':<32}" + "".join(f" {r['backend'] + ' (' + str(len(r['trained'])) + ')':>18}" for r in results))
    rows = ([(k, k) for k in keys] + [("(no key: cost, attrs, record)", None), ("total_s", "total_s")]
            + [(k, k) for k in outside])
    for label, key in rows:
        cells = []
        for r in results:
            ts = [t.timings for t in r["trained"]]
            if not ts:
                cells.append(f"{'-':>18}")
                continue
            if key is None:
                value = statistics.mean(t["total_s"] - sum(t.get(k, 0.0) for k in keys) for t in ts)
            else:
                value = statistics.mean(t.get(key, 0.0) for t in ts)
            share = pct(value, statistics.mean(t["total_s"] for t in ts))
            cells.append(f"{value * 1000:>11.0f} {share:>6}")
        print(f"  {label:<32}" + "".join(cells))
    print()
    legend = [
        "conc        trials run at once (local: worker processes; Ray: max_concurrent)",
        "trials      trials with a `timings` record (finished, over budget, reused or failed)",
        "wall        the nas.search call, start to return (Ray: with ray.init and ray.shutdown)",
        "slot-s      wall x conc: the time the concurrent slots were available",
        "trial-s     sum of the worker-measured total_s (from just after the claim to just before the tell)",
        "train+eval  sum of train_s (model.fit with its per-epoch validation; the last one is the trial's accuracy)",
        "in-worker   trial-s - train+eval: sampling (sample_s), data preparation (data_s), build and compile",
        "            (build_s), and what has no timing key: analytic cost, attribute writes to the storage,",
        "            save_weights, keras.backend.clear_session",
        "remainder   slot-s - trial-s: worker process / Ray actor start, TensorFlow import, data load, claims",
        "            and tells, Ray start-up and shutdown, idle slots (e.g. one trial left for two slots)",
    ]
    print("NSGA-II with 2 trials at a time samples by timing, so the architectures (and their training time) differ "
          "between the runs:\ncompare the shares and the per-trial overhead, not the training seconds.")
    print()
    print("columns:")
    for line in legend:
        print(f"  {line}")
    other = {r["backend"]: [s for s in r["statuses"] if s != "ok"] for r in results}
    for r in results:
        non_trained = f" (non-trained: {', '.join(other[r['backend']])})" if other[r["backend"]] else ""
        print(f"{r['backend']}: 1-min load {r['load'][0]:.1f} before, {r['load_after']:.1f} after; {r['n_all']} "
              f"trials stored, {len(r['finished'])} finished, {len(r['trained'])} trained; "
              f"statuses {', '.join(r['statuses'])}" + non_trained)
        if r["leftovers"]:
            print(f"WARNING: {len(r['leftovers'])} process(es) started by the {r['backend']} run were still alive "
                  f"20 s after it returned and were ended: {'; '.join(r['leftovers'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 trials of 1 epoch instead of the config's")
    parser.add_argument("--backends", default="local,ray", help="comma-separated: local, ray (default both)")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [b for b in backends if b not in ("local", "ray")]
    if bad or not backends:
        parser.error(f"--backends takes local and/or ray, but got {args.backends!r}")

    from nas.config import load_config

    config = load_config(CONFIG).config
    strategy = config.strategy
    if args.quick:
        strategy = strategy.replace(n_trials=4, budget=dataclasses.replace(strategy.budget, epochs=1))
        config = config.replace(strategy=strategy)
    describe = (f"{CONFIG.relative_to(ROOT)} ({config.space['name']} space on {config.data['name']}, "
                f"{strategy.n_trials} trials, {strategy.budget.epochs} epoch(s) each, {strategy.sampler.name}, "
                f"{config.run.backend.n_workers} local workers{', --quick' if args.quick else ''})")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        for backend in backends:
            results.append(run_backend(backend, config, Path(tmp)))
    report(results, describe)
    return 1 if any(r["leftovers"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
