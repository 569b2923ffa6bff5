"""Engine overhead per trial in evaluator mode, against plain Optuna in the same run.

    .venv/bin/python benchmarks/bench_throughput.py [--trials 300] [--seed 0]

Every method searches the NAS-Bench-201 space with its CIFAR-10 table as the evaluation (a lookup of about
0.2 ms), TPE multivariate, one process:

* plain Optuna, in memory: ``optuna.create_study()`` + ``study.optimize(objective)``, the objective sampling the
  space through the trial and looking the cell up in the table (what a user would write instead of nas);
* plain Optuna on an SQLite file (``sqlite:///...``, Optuna's defaults);
* nas: ``nas.search(space, evaluator=table, strategy=nas.Strategy(sampler="tpe"))`` (one worker, which for an
  evaluator search runs in the calling process) on an SQLite file, and on a journal file
  (``run=nas.Run(storage="runs/x.journal")``): the whole engine (claims under the lock, records, recovery checks,
  reuse lookups).

Milliseconds per trial are wall time over the trials (nas: from the start of ``search`` to its return, process
start included) and the ratios are against the plain Optuna runs of this same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import optuna

import nas
import search_spaces
from search_spaces.nasbench201 import Table


def plain(storage: str | None, trials: int, seed: int, space, table) -> float:
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        spec = space.sample(trial)
        return table(spec)["accuracy"], float(nas.cost(spec).params)
    t = time.perf_counter()
    study = optuna.create_study(storage=storage, directions=["maximize", "minimize"],
                                sampler=optuna.samplers.TPESampler(seed=seed, multivariate=True))
    study.optimize(objective, n_trials=trials)
    return time.perf_counter() - t


def engine(path: Path, trials: int, seed: int, space, table) -> float:
    t = time.perf_counter()
    nas.search(space, evaluator=table, goal=nas.Goal(objectives=("accuracy", "params")),
               strategy=nas.Strategy(n_trials=trials, sampler="tpe", seed=seed),
               run=nas.Run(study="throughput", storage=path), verbose=False)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="60 trials")
    args = parser.parse_args()
    trials = 60 if args.quick else args.trials
    space, table = search_spaces.get("nasbench201"), Table("cifar10")
    table(space.sample(nas.RandomTrial(seed=0)))  # load the table once, outside the timings
    with tempfile.TemporaryDirectory() as tmp:
        memory = plain(None, trials, args.seed, space, table)
        sqlite = plain(f"sqlite:///{tmp}/plain.db", trials, args.seed, space, table)
        ours = engine(Path(tmp) / "nas.db", trials, args.seed, space, table)
        journal = engine(Path(tmp) / "nas.journal", trials, args.seed, space, table)
    ms = {k: 1000 * v / trials for k, v in (("memory", memory), ("sqlite", sqlite), ("nas", ours),
                                             ("journal", journal))}
    print(f"{trials} trials, TPE (multivariate), NAS-Bench-201 CIFAR-10 table lookups, one process, "
          f"seed {args.seed}:\n")
    print(f"| {'method':<33} | {'ms/trial':>9} | {'x in-memory Optuna':>19} | {'x SQLite Optuna':>16} |")
    print(f"| {'-' * 33} | {'-' * 8}: | {'-' * 18}: | {'-' * 15}: |")
    for name, key in (("plain Optuna, in memory", "memory"), ("plain Optuna, SQLite file", "sqlite"),
                      ("nas, SQLite file", "nas"), ("nas, journal file", "journal")):
        print(f"| {name:<33} | {ms[key]:>9.1f} | {ms[key] / ms['memory']:>19.2f} | {ms[key] / ms['sqlite']:>16.2f} |")


if __name__ == "__main__":
    main()
