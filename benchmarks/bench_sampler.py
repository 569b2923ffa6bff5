"""nas's evolution sampler against Optuna's TPE and NSGA-II, regularized evolution and random search on the
NAS-Bench-201 tables (CIFAR-10, CIFAR-100, ImageNet16-120), objectives accuracy and params.

Every method searches ``search_spaces.get("nasbench201")`` (at the table's input size and classes) scored by
``search_spaces.nasbench201.Table(dataset)`` (the mean validation accuracy over the benchmark's runs), so
nothing is trained. To run 20 seeds of every method in minutes, the samplers run in-process on an in-memory
Optuna study over the same space (``space.sample(trial)``, objectives (accuracy, analytic params), no engine):

* ``evolution``: nas's sampler (``nas.engine.components.make_sampler({"name": "evolution"}, ...)``, as a search
  makes it), with its defaults; tuned on CIFAR-10 only, CIFAR-100 and ImageNet16-120 run with the same settings;
* ``optuna tpe``: ``optuna.samplers.TPESampler(multivariate=True, seed=s)``, plain;
* ``optuna nsga2``: ``optuna.samplers.NSGAIISampler(seed=s)`` with nas's population rule (a quarter of the
  budget, 4-50), run once per budget;
* ``rea``: regularized evolution written here (Real et al. 2019): 20 random networks, then each step samples 5
  of the population, mutates one edge of the most accurate of them, adds the child and removes the oldest;
  accuracy only, repeats allowed;
* ``nas random``: the sampler nas makes for ``nas.Strategy(sampler="random")``.

Per budget (50, 100, 300 trials; the samplers that do not depend on the budget are read at each prefix of one
300-trial run) and seed: the hypervolume of (validation accuracy, table params / largest) of the networks
evaluated in the first N trials against (0, 1), as in bench_nb201.py, its gap to the true front's; the regret
(best network's accuracy minus the best found); the distinct networks evaluated. Medians with quartiles, and
two-sided Mann-Whitney U p-values of the gap and the regret of each method against plain TPE and against REA
(and of the gap against NSGA-II, nas's former multi-objective default).
A last line per budget runs ``nas.search(..., strategy=nas.Strategy(sampler="evolution"))`` end to end (worker
in-process, journal storage) for a few seeds of CIFAR-10, to confirm the engine gives the same kind of result.

Run: `.venv/bin/python benchmarks/bench_sampler.py [--quick] [--seeds 20] [--budgets 50,100,300]
[--datasets cifar10,cifar100,imagenet] [--nas-seeds 3] [--jobs 2] [--first-seed 0] [--methods evolution,rea]
[--exploit 0.35] [--init random]`: ``--first-seed`` shifts the seeds (the sampler was tuned on seeds 100-149,
reported on 0-49), ``--methods`` runs a subset (the p-value columns need ``optuna tpe``, ``rea`` and
``optuna nsga2`` among them), ``--exploit`` and ``--init`` set the evolution sampler's options of those names
(default: the sampler's).
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_nb201 import hypervolume

METHODS = ("evolution", "optuna tpe", "optuna nsga2", "rea", "nas random")
PER_BUDGET = ("optuna nsga2",)  # methods whose settings follow the budget: one run per budget
NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet": "ImageNet16-120"}
REA_POPULATION, REA_SAMPLE = 20, 5


@functools.cache
def _space(dataset: str):
    import search_spaces
    from search_spaces.nasbench201 import Table

    table = Table(dataset)
    return search_spaces.get("nasbench201", input_shape=table.input_shape, num_classes=table.num_classes), table


@functools.cache
def _records(dataset: str) -> dict[str, dict]:
    _, table = _space(dataset)
    return {r["arch"]: r for r in table.records()}


OPTIONS: dict = {}  # options of the evolution sampler (``exploit``, ``init``; absent: its defaults), from the command


def _sampler(method: str, space, budget: int, seed: int):
    import optuna

    from nas.engine.components import make_sampler, sampler_component
    from nas.engine.schema import Component

    if method == "evolution":  # as a search stores it (sampler_component: the defaults resolved)
        component = sampler_component({"name": "evolution", "options": dict(OPTIONS)}, ("accuracy", "params"), space)
        return make_sampler(component, n_trials=budget, space=space, seed=seed)
    if method == "nas random":
        return make_sampler(Component(name="random"), n_trials=budget, space=space, seed=seed)
    if method == "optuna tpe":
        return optuna.samplers.TPESampler(multivariate=True, seed=seed)
    if method == "optuna nsga2":
        return optuna.samplers.NSGAIISampler(population_size=max(4, min(50, budget // 4)), seed=seed)
    raise ValueError(method)


def optuna_run(method: str, dataset: str, budget: int, seed: int) -> list[str]:
    """The arch strings a sampler evaluates, in trial order, on an in-memory study."""
    import optuna

    from search_spaces.nasbench201 import nb201_arch_string

    space, _ = _space(dataset)
    records = _records(dataset)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=_sampler(method, space, budget, seed))
    study.set_metric_names(["accuracy", "params"])  # as nas names a study's objectives
    archs: list[str] = []

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        arch = nb201_arch_string(space.sample(trial))
        archs.append(arch)
        return records[arch]["accuracy"], float(records[arch]["params"])

    study.optimize(objective, n_trials=budget)
    return archs


def rea_run(dataset: str, budget: int, seed: int) -> list[str]:
    """Regularized evolution (accuracy only): population 20, sample 5, mutate one edge, age out the oldest."""
    from search_spaces.nasbench201 import OPS

    records = _records(dataset)
    rng = random.Random(seed)
    population: list[tuple[tuple[str, ...], float]] = []
    archs: list[str] = []

    def evaluate(ops: tuple[str, ...]) -> None:
        arch = _arch_string(ops)
        archs.append(arch)
        population.append((ops, records[arch]["accuracy"]))

    while len(archs) < min(budget, REA_POPULATION):
        evaluate(tuple(rng.choice(OPS) for _ in range(6)))
    while len(archs) < budget:
        parent = max(rng.sample(population, REA_SAMPLE), key=lambda p: p[1])[0]
        edge = rng.randrange(6)
        child = list(parent)
        child[edge] = rng.choice([op for op in OPS if op != parent[edge]])
        evaluate(tuple(child))
        population.pop(0)
    return archs


def _arch_string(ops: tuple[str, ...]) -> str:
    """NAS-Bench-201's arch string of the 6 edge operations (in the space's label order)."""
    it = iter(ops)
    return "+".join("|" + "|".join(f"{next(it)}~{i}" for i in range(j)) + "|" for j in (1, 2, 3))


def nas_run(dataset: str, budget: int, seed: int, folder: str) -> list[str]:
    """``nas.search(..., strategy=nas.Strategy(sampler="evolution"))`` end to end: the real engine, worker in this
    process."""
    import nas
    from search_spaces.nasbench201 import nb201_arch_string

    space, table = _space(dataset)
    sampler = {"name": "evolution", "options": dict(OPTIONS)} if OPTIONS else "evolution"
    study = nas.search(space, evaluator=table, goal=nas.Goal(objectives=("accuracy", "params")),
                       strategy=nas.Strategy(n_trials=budget, sampler=sampler, seed=seed),
                       run=nas.Run(study="evolution", storage=Path(folder) / f"nas-{dataset}-{budget}-{seed}.journal",
                                   backend=nas.Local(max_trials_per_worker=0)),
                       verbose=False)
    return [nb201_arch_string(r.spec) for r in sorted(study.trials, key=lambda r: r.number)
            if r.status in ("ok", "reused")]


def _job(args: tuple[str, str, int, int, str, dict]) -> tuple[str, str, int, int, list[str], float]:
    global OPTIONS
    method, dataset, budget, seed, folder, OPTIONS = args
    warnings.filterwarnings("ignore")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _records(dataset)  # loaded once per process, outside the timing
    t = time.perf_counter()
    if method == "rea":
        archs = rea_run(dataset, budget, seed)
    elif method == "nas evolution":
        archs = nas_run(dataset, budget, seed, folder)
    else:
        archs = optuna_run(method, dataset, budget, seed)
    return method, dataset, budget, seed, archs, time.perf_counter() - t


def _quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4)
    return q[0], statistics.median(xs), q[2]


def _p(a: list[float], b: list[float]) -> str:
    from scipy.stats import mannwhitneyu

    if a == b or (len(set(a)) == 1 and set(a) == set(b)):
        return "1"
    p = mannwhitneyu(a, b, alternative="two-sided").pvalue
    return f"{p:.0e}" if p < 0.001 else f"{p:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5 seeds, budgets 50 and 100, CIFAR-10 only, 1 nas seed")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--budgets", default=None)
    parser.add_argument("--datasets", default=None)
    parser.add_argument("--nas-seeds", type=int, default=None, help="seeds of the nas.search confirmation runs")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (processes)")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (seeds first .. first + seeds - 1)")
    parser.add_argument("--methods", default=None, help=f"a comma-separated subset of: {', '.join(METHODS)}")
    parser.add_argument("--exploit", type=float, default=None, help="the evolution sampler's exploit option")
    parser.add_argument("--init", default=None, help="the evolution sampler's init option (random, spread)")
    args = parser.parse_args()
    methods = tuple(args.methods.split(",")) if args.methods else METHODS
    if set(methods) - set(METHODS):
        parser.error(f"--methods: unknown {sorted(set(methods) - set(METHODS))}; known: {', '.join(METHODS)}")
    seed_range = range(args.first_seed, args.first_seed + (args.seeds or (5 if args.quick else 20)))
    seeds = args.seeds or (5 if args.quick else 20)
    budgets = [int(b) for b in (args.budgets or ("50,100" if args.quick else "50,100,300")).split(",")]
    datasets = (args.datasets or ("cifar10" if args.quick else "cifar10,cifar100,imagenet")).split(",")
    nas_seeds = args.nas_seeds if args.nas_seeds is not None else (1 if args.quick else 3)
    top = max(budgets)

    options = {k: v for k, v in (("exploit", args.exploit), ("init", args.init)) if v is not None}
    jobs = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in seed_range[:nas_seeds]:  # the slowest first, so that the pool ends evenly
            for budget in budgets:
                jobs.append(("nas evolution", datasets[0], budget, seed, folder, options))
        for dataset in datasets:
            for seed in seed_range:
                for method in methods:
                    for budget in (budgets if method in PER_BUDGET else [top]):
                        jobs.append((method, dataset, budget, seed, folder, options))
        t = time.perf_counter()
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(_job, jobs))
        total = time.perf_counter() - t

    print(f"# NAS-Bench-201 tables (mean validation accuracy over their runs), objectives accuracy and params; "
          f"{seeds} seeds per method; samplers in-process on an in-memory Optuna study"
          + (f"; seeds {seed_range[0]}-{seed_range[-1]}" if args.first_seed else "")
          + "".join(f"; evolution {k}={v}" for k, v in options.items()))
    for dataset in datasets:
        records = _records(dataset)
        max_params = max(r["table_params"] for r in records.values())
        true_hv = hypervolume([(r["accuracy"], r["table_params"]) for r in records.values()], max_params)
        optimum = max(r["accuracy"] for r in records.values())

        def measure(archs: list[str], n: int, *, records: dict = records, true_hv: float = true_hv,
                    max_params: float = max_params, optimum: float = optimum) -> tuple[float, float, int]:
            seen = archs[:n]
            points = [(records[a]["accuracy"], records[a]["table_params"]) for a in seen]
            return true_hv - hypervolume(points, max_params), optimum - max(a for a, _ in points), len(set(seen))

        print()
        print(f"# {NAMES[dataset]} (table '{dataset}'): true front hypervolume {true_hv:.4f}, best network "
              f"{optimum:.4f}")
        print(f"{'budget':>6} {'method':<14} {'HV gap':>7} {'gap IQR':>13} {'regret':>7} {'regret IQR':>13} "
              f"{'distinct':>8} {'p gap TPE':>9} {'p gap REA':>9} {'p gap NSGA':>10} {'p reg TPE':>9} "
              f"{'p reg REA':>9} {'ms/trial':>8}")
        for budget in budgets:
            per: dict[str, list[tuple[float, float, int]]] = {}
            walls: dict[str, float] = {}
            for method in methods:
                runs = [r for r in results if r[0] == method and r[1] == dataset
                        and (r[2] == budget if method in PER_BUDGET else r[2] == top)]
                per[method] = [measure(r[4], budget) for r in runs]
                walls[method] = statistics.median(1000 * r[5] / r[2] for r in runs)
            for method in methods:
                gaps = [v[0] for v in per[method]]
                regrets = [v[1] for v in per[method]]
                g, r_ = _quartiles(gaps), _quartiles(regrets)
                ps = [_p(gaps, [v[0] for v in per[o]]) if o != method and o in per else "-"
                      for o in ("optuna tpe", "rea", "optuna nsga2")]
                ps += [_p(regrets, [v[1] for v in per[o]]) if o != method and o in per else "-"
                       for o in ("optuna tpe", "rea")]
                print(f"{budget:>6} {method:<14} {g[1]:>7.4f} {g[0]:.4f}-{g[2]:.4f} {r_[1]:>7.4f} "
                      f"{r_[0]:.4f}-{r_[2]:.4f} {statistics.median(v[2] for v in per[method]):>8.0f} "
                      f"{ps[0]:>9} {ps[1]:>9} {ps[2]:>10} {ps[3]:>9} {ps[4]:>9} {walls[method]:>8.1f}")
            if dataset == datasets[0] and nas_seeds:
                runs = [r for r in results if r[0] == "nas evolution" and r[2] == budget]
                values = [measure(r[4], budget) for r in runs]
                wall = statistics.median(1000 * r[5] / r[2] for r in runs)
                print(f"{budget:>6} {'nas.search':<14} {statistics.median(v[0] for v in values):>7.4f} "
                      f"{'':>13} {statistics.median(v[1] for v in values):>7.4f} {'':>13} "
                      f"{statistics.median(v[2] for v in values):>8.0f} {'':>9} {'':>9} {'':>10} {'':>9} {'':>9} "
                      f"{wall:>8.1f}  ({len(runs)} seeds, sampler='evolution' through the engine)")
    print()
    print("HV gap: the true front's hypervolume of (validation accuracy, table params / largest) against (0, 1) "
          "minus that of the networks evaluated in the first N trials; regret: the best network's accuracy minus the "
          "best found; both medians, with quartiles. distinct: median networks evaluated (a repeated architecture "
          "counts as a trial: nas answers it from the stored result, without training). p: two-sided Mann-Whitney "
          "U against plain TPE, REA and NSGA-II (gap) over the seeds. ms/trial: median wall time per trial of a run "
          "(sampling and table lookup; nas.search: the whole engine, journal storage). "
          f"All {len(jobs)} runs took {total:.0f} s with {args.jobs} at once.")


if __name__ == "__main__":
    main()
