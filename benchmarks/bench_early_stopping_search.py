"""Early stopping in a real search (not the replay): the same multi-objective search on Fashion-MNIST with
``nas.Strategy(pruner="pareto")`` against without, same sampler, seed and trial count, for several seeds.

Each run is ``nas.search`` over the `families` space configured as in ``bench_fashion.py`` (28x28x1, 10
classes), 2,000/1,000 Fashion-MNIST images, objectives accuracy and MACs (limit ``--max-macs``), TPE, one
worker process training at a time, ``--epochs`` epochs per trial (cosine schedule), on an SQLite file. With
the pruner: rungs at ``min_epochs * 3**k`` epochs (1, 3 for 9 epochs) and its default rule (``margin``); arm
``calibrated`` is the pruner's default (rungs judge the accuracy after recomputing batch-norm statistics),
``plain`` sets ``calibrate=false``. Per run: the hypervolume of the trials that finished
(``Study.hypervolume()``: accuracy x MACs / limit), the best accuracy, the training epochs spent
(``Study.epochs()``) and the wall time; then the medians over seeds and the ratios arm / none.

Also, from each search's course (hypervolume after each trial against epochs so far): the arm's hypervolume
minus no stopping's when that had trained as many epochs as the arm in all (equal epochs), and the epochs
after which the arm reached no stopping's final hypervolume, as a fraction of no stopping's epochs.

Run: `.venv/bin/python benchmarks/bench_early_stopping_search.py [--quick] [--seeds 2] [--first-seed 0] [--trials 12]
[--epochs 9] [--arms none,calibrated]` (needs the Debian package `dataset-fashion-mnist`; about 20 minutes on
2 cores with the defaults).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fashion import SPACES, hypervolume

import nas
from nas.engine.components import rung_options

ARMS = {"none": None, "calibrated": {"calibrate": True}, "plain": {"calibrate": False}}


def run(arm: str, seed: int, args: argparse.Namespace, folder: str) -> dict:
    options = ARMS[arm]
    space = {"name": "families", "options": SPACES["families"]}
    data = {"name": "fashion_mnist", "train_samples": args.train, "val_samples": args.val}
    pruner = None if options is None else {"name": "pareto", "options": {"min_epochs": args.min_epochs, **options}}
    t = time.perf_counter()
    study = nas.search(space, data,
                       goal=nas.Goal(objectives=("accuracy", "macs"), constraints={"max_macs": args.max_macs}),
                       strategy=nas.Strategy(n_trials=args.trials, sampler="tpe", pruner=pruner, seed=seed,
                                             budget=nas.Budget(epochs=args.epochs, batch_size=64, seed=seed)),
                       run=nas.Run(study="es", storage=Path(folder) / f"{arm}-{seed}.db",
                                   backend=nas.Local(n_workers=1)),
                       verbose=False)
    wall = time.perf_counter() - t
    counts = study.counts()
    done = [r for r in study.trials if r.status in ("ok", "reused")]
    # the search as it went: (epochs trained so far, hypervolume so far) after each trial, in trial order
    epochs = {t.number: int(t.user_attrs.get("epochs", 0)) for t in study.optuna_study.trials}
    points = {r.number: (r.metrics["accuracy"], r.metrics["macs"]) for r in study.evaluated()}
    curve, spent = [], 0
    for n in sorted(epochs):
        spent += epochs[n]
        curve.append((spent, hypervolume([p for m, p in points.items() if m <= n], args.max_macs)))
    return {"hv": study.hypervolume(), "best": max(r.metrics["accuracy"] for r in done), "epochs": study.epochs(),
            "wall": wall, "trained": counts["done"] - counts["pruned"], "pruned": counts["pruned"], "curve": curve}


def at(curve: list[tuple[int, float]], epochs: float) -> float:
    """Hypervolume of a search after its last trial that ended within ``epochs`` epochs (0 before any)."""
    return max([hv for e, hv in curve if e <= epochs], default=0.0)


def reach(curve: list[tuple[int, float]], target: float) -> float | None:
    """Epochs after which a search's hypervolume first reached ``target`` (None: never)."""
    return next((e for e, hv in curve if hv >= target - 1e-12), None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 4 trials of 3 epochs")
    parser.add_argument("--seeds", type=int, default=None, help="how many seeds (default 2; --quick 1)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, first-seed + 1, ...")
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--min-epochs", type=int, default=1)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--max-macs", type=float, default=1.5e6)
    parser.add_argument("--arms", default="none,calibrated",
                        help="comma-separated: none (no pruner), calibrated (pruner='pareto', its defaults), plain "
                             "(pruner='pareto' judging plain validation accuracy: calibrate=false)")
    args = parser.parse_args(argv)
    arms = args.arms.split(",")
    if not arms or set(arms) - set(ARMS):
        raise SystemExit(f"--arms must be a comma-separated list of {', '.join(ARMS)}, but got --arms={args.arms}")
    seeds = args.seeds or (1 if args.quick else 2)
    args.trials = args.trials or (4 if args.quick else 12)
    args.epochs = args.epochs or (3 if args.quick else 9)
    rows: dict[str, list[dict]] = {arm: [] for arm in arms}
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.first_seed, args.first_seed + seeds):
            for arm in arms:
                r = run(arm, seed, args, folder)
                rows[arm].append(r)
                print(f"seed {seed} {arm:<10} HV {r['hv']:.4f} best {r['best']:.4f} trained "
                      f"{r['trained']:>3} stopped {r['pruned']:>3} epochs {r['epochs']['trained']:>4} "
                      f"(stopped at {r['epochs']['stopped_at']}) wall {r['wall']:.0f} s", flush=True)
    print()
    print(f"# Fashion-MNIST {args.train}/{args.val} images, families space, TPE, {args.trials} trials of "
          f"{args.epochs} epochs, MACs <= {args.max_macs:,.0f}, seeds {args.first_seed}-{args.first_seed + seeds - 1}"
          f"; pruner pareto: min_epochs "
          f"{args.min_epochs}, reduction factor 3, rule {rung_options({})['rule']}; calibrated: rungs judge the "
          f"accuracy after recomputing batch-norm statistics (the default), plain: the plain validation accuracy")
    print("| arm | HV (median) | HV per seed | best accuracy | epochs trained | wall s |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for name, rs in rows.items():
        print(f"| {name} | {statistics.median(r['hv'] for r in rs):.4f} | "
              f"{', '.join(format(r['hv'], '.4f') for r in rs)} | {statistics.median(r['best'] for r in rs):.4f} | "
              f"{statistics.median(r['epochs']['trained'] for r in rs):.0f} | "
              f"{statistics.median(r['wall'] for r in rs):.0f} |")
    for arm in [a for a in arms if a != "none" and "none" in rows]:
        ratio_e = [p["epochs"]["trained"] / n["epochs"]["trained"] for p, n in zip(rows[arm], rows["none"])]
        ratio_w = [p["wall"] / n["wall"] for p, n in zip(rows[arm], rows["none"])]
        diff = [p["hv"] - n["hv"] for p, n in zip(rows[arm], rows["none"])]
        print(f"{arm} / none per seed: epochs {', '.join(f'{x:.2f}' for x in ratio_e)}; wall "
              f"{', '.join(f'{x:.2f}' for x in ratio_w)}; HV difference {', '.join(f'{x:+.4f}' for x in diff)}")
        # at equal epochs: no stopping's hypervolume when it had trained as many epochs as the arm in all
        # (both sides from the curves, so from the same hypervolume function)
        equal = [p["curve"][-1][1] - at(n["curve"], p["epochs"]["trained"]) for p, n in zip(rows[arm], rows["none"])]
        got = [reach(p["curve"], n["curve"][-1][1]) for p, n in zip(rows[arm], rows["none"])]
        fractions = ["never" if g is None else f"{g / n['epochs']['trained']:.2f}" for g, n in zip(got, rows["none"])]
        print(f"{arm} against none at the arm's epochs, per seed: HV difference "
              f"{', '.join(f'{x:+.4f}' for x in equal)}; epochs to none's final HV / none's epochs "
              f"{', '.join(fractions)}")

if __name__ == "__main__":
    main()
