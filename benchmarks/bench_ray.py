"""Ray backend against the local backend: per-trial dispatch overhead (trials that do no training) and the
throughput of 2 concurrent trials against 1 (tiny real training on digits), measured in one run.

Dispatch is measured twice per backend, with ``--trials`` and with 4x as many no-training trials: the
difference divided by the extra trials is the marginal cost of a trial (claim, records, Ray's scheduling),
without the fixed start-up (``ray.init``, the first actor's imports) that the per-trial figure of one run
includes.

Run: `.venv/bin/python benchmarks/bench_ray.py [--trials 8]` (part of `make bench`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent),
                                                        os.environ.get("PYTHONPATH")]))

from bench_helpers import params_as_accuracy

import nas
import search_spaces

TINY = {"name": "conv", "options": {"stages": [1, 2], "depth": [1, 1], "widths": [8, 16], "kernels": [3],
                                    "hidden": [0, 0], "dropouts": [0.0]}}


def timed(space: Any, data: Any = "digits", *, strategy: nas.Strategy, run: nas.Run, evaluator: Any = None) -> float:
    """Wall seconds of one ``nas.search`` (accuracy and MACs, the default goal)."""
    t = time.perf_counter()
    # Ray Tune prints a line per finished trial even at verbose=0: keep stdout for the table
    with contextlib.redirect_stdout(sys.stderr):
        nas.search(space, data, strategy=strategy, run=run, evaluator=evaluator, verbose=False)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    n = args.trials
    space = search_spaces.get("conv", input_shape=(8, 8, 1), widths=(8, 16, 32))
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "b.db"
        rows = []
        marginal: dict[str, float] = {}
        tiny = nas.Budget(epochs=2, batch_size=128)
        for backend in ("local", "ray"):
            alone = nas.Ray(max_concurrent=1) if backend == "ray" else nas.Local(n_workers=1)
            two_at_once = nas.Ray(max_concurrent=2) if backend == "ray" else nas.Local(n_workers=2)
            dispatch = timed(space, evaluator=params_as_accuracy, strategy=nas.Strategy(n_trials=n, sampler="random"),
                             run=nas.Run(study=f"d-{backend}", storage=db, backend=alone))
            many = timed(space, evaluator=params_as_accuracy, strategy=nas.Strategy(n_trials=4 * n, sampler="random"),
                         run=nas.Run(study=f"d4-{backend}", storage=db, backend=alone))
            marginal[backend] = (many - dispatch) / (3 * n)
            one = timed(TINY, "digits", strategy=nas.Strategy(n_trials=n, sampler="random", seed=0, budget=tiny),
                        run=nas.Run(study=f"t1-{backend}", storage=db, backend=alone))
            two = timed(TINY, "digits", strategy=nas.Strategy(n_trials=n, sampler="random", seed=0, budget=tiny),
                        run=nas.Run(study=f"t2-{backend}", storage=db, backend=two_at_once))
            rows.append((backend, dispatch, one, two))
    print(f"# {n} trials per run, 2 cores; wall seconds including start-up (Ray: ray.init + shutdown)")
    print(f"{'backend':<8} {'no-training trials':>20} {'per trial':>10} {'tiny training, 1':>17} {'2 at once':>10} "
          f"{'2 vs 1':>7}")
    for backend, dispatch, one, two in rows:
        print(f"{backend:<8} {dispatch:>19.1f}s {dispatch / n:>9.2f}s {one:>16.1f}s {two:>9.1f}s {one / two:>6.2f}x")
    local, ray_ = rows
    print(f"Ray dispatch overhead per trial in a {n}-trial run, start-up included: {(ray_[1] - local[1]) / n:+.2f} s "
          f"against the local backend")
    print(f"marginal cost of one more no-training trial ({n} -> {4 * n} trials): local {marginal['local']:.3f} s, "
          f"Ray {marginal['ray']:.3f} s; Ray's dispatch overhead {marginal['ray'] - marginal['local']:+.3f} s "
          f"per trial "
          f"(both recycle a worker every 20 trials; a Ray actor imports TensorFlow once for all of them)")


if __name__ == "__main__":
    main()
