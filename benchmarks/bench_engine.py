"""Engine benchmark: worker memory over a long search (recycled vs one long-lived worker process) and the
per-trial overhead outside training, measured side by side in one run.

Run: `.venv/bin/python benchmarks/bench_engine.py [--trials 200] [--recycle 20] [--quick]` (part of `make bench`;
`--quick`: 12 trials, recycled every 6).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import nas

SPACE = {"name": "conv", "options": {"stages": [1, 2], "depth": [1, 1], "widths": [8, 16], "kernels": [3],
                                     "hidden": [0, 0], "dropouts": [0.0]}}


def run(trials: int, per_worker: int, folder: Path, name: str, ray: bool = False) -> dict:
    t = time.perf_counter()
    backend = (nas.Ray(max_concurrent=1, max_trials_per_worker=per_worker) if ray
               else nas.Local(max_trials_per_worker=per_worker))
    study = nas.search(SPACE, "digits", goal=nas.Goal(objectives=("accuracy", "macs")),
                       strategy=nas.Strategy(n_trials=trials, sampler="random", seed=0,
                                             budget=nas.Budget(epochs=1, batch_size=256)),
                       run=nas.Run(study=name, storage=folder / "bench.db", backend=backend), verbose=False)
    wall = time.perf_counter() - t
    records = study.trials
    mem = [(r.user_attrs["worker_memory"]["trial_in_worker"], r.user_attrs["worker_memory"]["rss_mb"])
           for r in records if "worker_memory" in r.user_attrs]
    trained = [r for r in records if r.status == "ok"]
    train = sum(r.timings.get("train_s", 0) for r in trained)
    inside = [r.timings["total_s"] - r.timings.get("train_s", 0) for r in trained]
    return {"wall": wall, "mem": mem, "train": train, "inside": inside, "n": len(records), "trained": len(trained)}


def rss_at(mem: list[tuple[int, float]], k: int) -> float | None:
    values = [rss for i, rss in mem if i == k]
    return max(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--recycle", type=int, default=20, help="trials per worker process in the recycled run")
    parser.add_argument("--quick", action="store_true", help="12 trials, recycled every 6")
    parser.add_argument("--no-ray", action="store_true", help="leave out the recycled run on the Ray backend")
    args = parser.parse_args()
    n, every = (12, 6) if args.quick else (args.trials, args.recycle)
    if n <= 10 or not 1 <= every < n:
        parser.error(f"need more than 10 trials and 1 <= --recycle < trials, but got {n} trials, --recycle {every}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        recycled = run(n, every, folder, "recycled")
        single = run(n, 0, folder, "single")
        on_ray = None if args.no_ray else run(n, every, folder, "ray", ray=True)
    print(f"# engine: {n} tiny trials on digits (1 epoch), one worker at a time")
    recycled_label = f"recycled every {every}"
    ray_label = "Ray, recycled" if on_ray else ""
    print(f"{'worker RSS (MB) after trial k of the worker':<46} {recycled_label:>18} {'one worker':>12} "
          f"{ray_label:>14}")
    checkpoints = sorted({1, 5, 10, every, n // 2, n} - {0})
    for k in checkpoints:
        a, b = rss_at(recycled["mem"], min(k, every)), rss_at(single["mem"], k)
        c = rss_at(on_ray["mem"], min(k, every)) if on_ray else None
        label = f"k = {k}" + (f" (recycled: trial {every} of its worker)" if k > every else "")
        print(f"{label:<46} {a if a is not None else '-':>18} {b if b is not None else '-':>12} "
              f"{(c if c is not None else '-') if on_ray else '':>14}")
    if on_ray:
        print(f"peak Ray worker RSS over {n} trials: {max(r for _, r in on_ray['mem']):.0f} MB "
              f"(local recycled: {max(r for _, r in recycled['mem']):.0f} MB)")
    grow_single = rss_at(single["mem"], n) - rss_at(single["mem"], 10)
    peak_recycled = max(r for _, r in recycled["mem"])
    peak_single = max(r for _, r in single["mem"])
    print(f"peak worker RSS: recycled {peak_recycled:.0f} MB, one worker {peak_single:.0f} MB "
          f"(ratio {peak_single / peak_recycled:.2f}); one worker grew {grow_single:.0f} MB from trial 10 to {n} "
          f"({grow_single / (n - 10):.1f} MB per trial)")
    rows = ((recycled_label, recycled), ("one worker", single)) + ((("Ray, recycled", on_ray),) if on_ray else ())
    for label, r in rows:
        overhead = 1 - r["train"] / r["wall"]
        print(f"{label}: {r['n']} trials in {r['wall']:.0f} s ({r['wall'] / r['n']:.2f} s per trial); training + "
              f"evaluation {r['train']:.0f} s = {100 * (1 - overhead):.0f}% of wall time; inside a trial outside "
              f"training (sample, cost, build, storage) median {statistics.median(r['inside']) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
