"""Search quality on NAS-Bench-201 (CIFAR-10 table): nas's samplers against keras-tuner's on the same space.

Every method searches ``search_spaces.get("nasbench201")`` with the tabular evaluator
``search_spaces.nasbench201.Table("cifar10")`` (the mean validation accuracy over NAS-Bench-201's training
runs), so nothing is trained and the whole comparison is about the search strategy:

* nas ``nsga2``, ``tpe`` and ``random``: ``nas.search(space, evaluator=table, goal=nas.Goal(objectives=(
  "accuracy", "params")), strategy=nas.Strategy(n_trials=N, sampler=..., seed=s))``, the real engine (worker
  process, SQLite storage);
* keras-tuner ``RandomSearch`` and ``BayesianOptimization`` through the bridge
  (``nas.keras_tuner.make_tuner(..., evaluator=table)``), which optimise validation accuracy only:
  keras-tuner has no multi-objective search.

For each budget N (50, 100, 300 trials) and seed: the hypervolume of (validation accuracy, params) of the
networks evaluated in the first N trials, with params from the table (divided by the largest network's) and
the reference point (accuracy 0, params 1); the best accuracy found; the distinct networks evaluated. The
ceiling is the table's own: its true front's hypervolume and its best network. ``nsga2`` is run once per
budget (its population size follows ``n_trials``); the other methods do not depend on the budget, so one run of
the largest budget is read at each prefix.

Run: `.venv/bin/python benchmarks/bench_nb201.py [--quick] [--seeds 10] [--budgets 50,100,300]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

NAS_SAMPLERS = ("nsga2", "tpe", "random")
KT_TUNERS = ("random", "bayesian")
METHODS = [f"nas {s}" for s in NAS_SAMPLERS] + [f"keras-tuner {k}" for k in KT_TUNERS]


def hypervolume(points: list[tuple[float, float]], max_params: float) -> float:
    """Area dominated by (accuracy up, params down) points, params divided by ``max_params``: in [0, 1]."""
    area, best = 0.0, 0.0
    for params, acc in sorted((p / max_params, a) for a, p in points):
        if acc > best:
            area += (acc - best) * (1.0 - params)
            best = acc
    return area


def front_size(points: list[tuple[float, float]]) -> int:
    """How many distinct (accuracy, params) points are on the Pareto front."""
    count, best = 0, -1.0
    for _params, acc in sorted({(p, -a) for a, p in points}):
        if -acc > best:
            count, best = count + 1, -acc
    return count


def arch_sequence(method: str, budget: int, seed: int, folder: str) -> tuple[list[str], float]:
    """The NAS-Bench-201 arch strings evaluated, in trial order, and the wall time of the run."""
    import search_spaces
    from search_spaces.nasbench201 import Table, nb201_arch_string

    space = search_spaces.get("nasbench201")
    table = Table("cifar10")
    t = time.perf_counter()
    if method.startswith("nas "):
        import nas

        study = nas.search(space, evaluator=table, goal=nas.Goal(objectives=("accuracy", "params")),
                           strategy=nas.Strategy(n_trials=budget, sampler=method.split()[1], seed=seed),
                           run=nas.Run(study="nb201", storage=Path(folder) / f"{method}-{budget}-{seed}.db",
                                       backend=nas.Local(max_trials_per_worker=0)),
                           verbose=False)
        archs = [nb201_arch_string(r.spec) for r in sorted(study.trials, key=lambda r: r.number)
                 if r.status in ("ok", "reused")]
    else:
        from nas.keras_tuner import HyperModel, make_tuner, spec_of

        tuner = make_tuner(method.split()[1], HyperModel(space), directory=folder,
                           project_name=f"kt-{method.split()[1]}-{budget}-{seed}", max_trials=budget, seed=seed,
                           evaluator=table, max_consecutive_failed_trials=budget)
        tuner.search(verbose=0)
        trials = sorted(tuner.oracle.trials.values(), key=lambda t: int(t.trial_id))
        archs = [nb201_arch_string(spec_of(space, t.hyperparameters.values)) for t in trials
                 if t.status == "COMPLETED"]
    return archs, time.perf_counter() - t


def _job(args: tuple[str, int, int, str]) -> tuple[str, int, int, list[str], float]:
    method, budget, seed, folder = args
    archs, wall = arch_sequence(method, budget, seed, folder)
    return method, budget, seed, archs, wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3 seeds, budgets 50 and 100, no keras-tuner Bayesian")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--budgets", default=None)
    parser.add_argument("--jobs", type=int, default=2, help="searches run at once (each is one process)")
    parser.add_argument("--bayes-seeds", type=int, default=None, help="seeds for keras-tuner's Bayesian (slow)")
    args = parser.parse_args()
    seeds = args.seeds or (3 if args.quick else 10)
    budgets = [int(b) for b in (args.budgets or ("50,100" if args.quick else "50,100,300")).split(",")]
    top = max(budgets)
    # keras-tuner's BayesianOptimization restarts L-BFGS-B 50 times on its GP per trial: seconds per trial,
    # growing with the trials (3.2 s per trial over 50 trials here), so it gets 3 seeds and budgets up to 100,
    # and the quick run leaves it out
    bayes_seeds = min(seeds, args.bayes_seeds if args.bayes_seeds is not None else (0 if args.quick else 3))
    bayes_budgets = [b for b in budgets if b <= 100] or [min(budgets)]
    bayes_note = ("seconds per trial (full run: 3 seeds, budgets up to 100)" if not bayes_seeds else
                  "seconds per trial, growing with the trials (run up to 100)")

    from search_spaces.nasbench201 import Table

    table = Table("cifar10")
    records = {r["arch"]: r for r in table.records()}
    max_params = max(r["table_params"] for r in records.values())
    # the true front on the table's params (Table.front ranks on the analytic params a search records)
    everything = [(r["accuracy"], r["table_params"]) for r in records.values()]
    true_hv = hypervolume(everything, max_params)
    true_front = front_size(everything)
    optimum = max(r["accuracy"] for r in records.values())

    jobs = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(bayes_seeds):  # the slowest first, so that the pool ends evenly
            jobs.append(("keras-tuner bayesian", max(bayes_budgets), seed, folder))
        for seed in range(seeds):
            for method in METHODS:
                if method == "keras-tuner bayesian":
                    continue
                for budget in (budgets if method == "nas nsga2" else [top]):
                    jobs.append((method, budget, seed, folder))
        t = time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(_job, jobs))
        total = time.perf_counter() - t

    def metrics(archs: list[str], n: int) -> tuple[float, float, int]:
        seen = archs[:n]
        points = [(records[a]["accuracy"], records[a]["table_params"]) for a in seen]
        return hypervolume(points, max_params), max(a for a, _ in points), len(set(seen))

    print(f"# NAS-Bench-201 CIFAR-10 table (mean validation accuracy over its runs; params from the table), "
          f"{seeds} seeds per method and budget (keras-tuner bayesian: {bayes_seeds}, budgets "
          f"{', '.join(map(str, bayes_budgets))})")
    print(f"ceiling: true front ({true_front} networks) hypervolume {true_hv:.4f}; "
          f"best network {optimum:.4f}")
    print(f"{'budget':>6} {'method':<22} {'HV median':>9} {'HV IQR':>15} {'HV gap':>7} {'best acc':>9} "
          f"{'best IQR':>15} {'regret':>7} {'distinct':>8} {'s/run':>6} {'ms/trial':>8}")
    for budget in budgets:
        for method in METHODS:
            if method == "keras-tuner bayesian" and (budget not in bayes_budgets or not bayes_seeds):
                print(f"{budget:>6} {method:<22}   not run: {bayes_note}")
                continue
            runs = [r for r in results if r[0] == method and (r[1] == budget if method == "nas nsga2" else True)]
            values = [metrics(r[3], budget) for r in runs]
            hv = sorted(v[0] for v in values)
            best = sorted(v[1] for v in values)
            distinct = statistics.median(v[2] for v in values)
            wall = statistics.median(r[4] for r in runs)

            def iqr(xs: list[float]) -> str:
                q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0], xs[0], xs[0]]
                return f"{q[0]:.4f}-{q[2]:.4f}"
            print(f"{budget:>6} {method:<22} {statistics.median(hv):>9.4f} {iqr(hv):>15} "
                  f"{true_hv - statistics.median(hv):>7.4f} {statistics.median(best):>9.4f} {iqr(best):>15} "
                  f"{optimum - statistics.median(best):>7.4f} {distinct:>8.0f} {wall:>6.1f} "
                  f"{1000 * wall / max(r[1] for r in runs):>8.0f}")
    print("HV: hypervolume of (validation accuracy, table params / largest) against (0, 1); gap: true front's HV "
          "minus the median; regret: best network's accuracy minus the median best found; distinct: networks "
          "evaluated (nas counts a repeated architecture as a trial, reusing its result; keras-tuner avoids "
          "repeats); s/run: median wall time of one run (nsga2: of this budget, others: of the largest), "
          "ms/trial: that divided by the run's trials (sampling, lookup, storage; nas runs include a worker "
          "process start). "
          f"All {len(jobs)} runs took {total:.0f} s with {args.jobs} at once.")


if __name__ == "__main__":
    main()
