"""Real training: nas's samplers (evolution, TPE, NSGA-II) against each other on Fashion-MNIST.

Every run is one ``nas.search`` over bench_fashion.py's ``mbconv`` space options with the same data subset
(3,000 train / 1,000 validation images), training budget (3 epochs, batch 64, the budget's cosine schedule), MACs
limit (3 M), number of trials (16) and one local worker training at a time, on an SQLite file in a temporary folder;
only the strategy's ``sampler`` ("evolution", nas's multi-objective default; "tpe"; "nsga2") and ``seed`` (0, 1, 2;
the run seed is the sampler's and the training budget's) differ. Reported per sampler, median with quartiles over
the seeds and each seed's value: the hypervolume of (validation accuracy, MACs / limit) against (0, 1) with the
final epoch's accuracy (``record.metrics["accuracy"]``, what nas ranks by) and with the best epoch's
(bench_fashion's ``accuracy_of``); the best final accuracy under the limit and under half of it; the distinct
architectures trained (distinct spec keys; a repeated spec is recorded ``reused``, not trained again); the trials
recorded infeasible (over the limit, never built); wall seconds. Then two-sided Mann-Whitney U p-values of
evolution's hypervolume against TPE's and NSGA-II's: with 3 seeds per sampler the smallest possible two-sided p is
0.1, so this benchmark cannot show a significant difference, only the direction and the spread.

Run: `.venv/bin/python benchmarks/bench_sampler_fashion.py [--quick] [--seeds 3] [--trials 16] [--epochs 3]`.
Needs the Debian package `dataset-fashion-mnist` (`benchmarks/get_fashion_mnist.sh` installs it).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_fashion import SPACES, accuracy_of, hypervolume

import nas

SAMPLERS = ("evolution", "tpe", "nsga2")
MAX_MACS = 3e6
DEFAULT_TRIALS = 16  # 9 runs of 16 trials take about 50-60 minutes on 2 cores (one run of 16: about 6 min)


def run(sampler: str, seed: int, args: argparse.Namespace, folder: Path) -> dict:
    data = {"name": "fashion_mnist", "train_samples": args.train, "val_samples": args.val, "seed": 0}
    t = time.perf_counter()
    study = nas.search({"name": "mbconv", "options": SPACES["mbconv"]}, data,
                       goal=nas.Goal(objectives=("accuracy", "macs"), constraints={"max_macs": MAX_MACS}),
                       strategy=nas.Strategy(n_trials=args.trials, sampler=sampler, seed=seed,
                                             budget=nas.Budget(epochs=args.epochs, batch_size=64, seed=seed)),
                       run=nas.Run(study=f"{sampler}-seed{seed}", storage=folder / "bench.db",
                                   backend=nas.Local(max_trials_per_worker=args.trials)),
                       verbose=False)
    wall = time.perf_counter() - t
    trials = study.trials
    done = [r for r in trials if r.status in ("ok", "reused") and "accuracy" in r.metrics]
    final = [(float(r.metrics["accuracy"]), float(r.metrics["macs"])) for r in done]
    best_epoch = [(accuracy_of(r), float(r.metrics["macs"])) for r in done]
    within = [(a, m) for a, m in final if m <= MAX_MACS]
    return {"sampler": sampler, "seed": seed, "wall": wall,
            "hv": hypervolume(final, MAX_MACS), "hv_best_epoch": hypervolume(best_epoch, MAX_MACS),
            "best": max((a for a, _ in within), default=0.0),
            "best_half": max((a for a, m in within if m <= MAX_MACS / 2), default=0.0),
            "distinct": len({r.key for r in trials if r.status == "ok" and r.key is not None}),
            "ok": sum(r.status == "ok" for r in trials), "reused": sum(r.status == "reused" for r in trials),
            "infeasible": sum(r.status == "infeasible" for r in trials),
            "over": sum(r.status in ("ok", "reused") and r.metrics.get("macs", 0) > MAX_MACS for r in trials),
            "failed": sum(r.status == "failed" for r in trials), "n": len(trials)}


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4)  # exclusive method: for 3 values the quartiles are the min and the max
    return q[0], statistics.median(xs), q[2]


def p_value(a: list[float], b: list[float]) -> str:
    if len(a) < 2 or len(b) < 2:
        return "n/a (needs 2+ seeds each)"
    if len(set(a) | set(b)) == 1:
        return "1"
    from scipy.stats import mannwhitneyu

    return f"{mannwhitneyu(a, b, alternative='two-sided').pvalue:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 trials, 1 epoch, 1000/300 images")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3; quick 1)")
    parser.add_argument("--trials", type=int, default=None, help=f"trials per run (default {DEFAULT_TRIALS})")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial (default 3)")
    args = parser.parse_args()
    seeds, trials, epochs, args.train, args.val = (1, 3, 1, 1000, 300) if args.quick else (3, DEFAULT_TRIALS, 3,
                                                                                           3000, 1000)
    seeds = args.seeds or seeds
    args.trials, args.epochs = args.trials or trials, args.epochs or epochs
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            for sampler in SAMPLERS:
                rows.append(run(sampler, seed, args, Path(tmp)))
                r = rows[-1]
                print(f"  {sampler} seed {seed}: HV {r['hv']:.4f}, {r['wall']:.0f} s", file=sys.stderr, flush=True)
    plural = "s" if seeds > 1 else ""
    print(f"# Fashion-MNIST ({args.train} train / {args.val} validation images, 28x28), mbconv space, "
          f"{args.trials} trials per run, {args.epochs} epoch{'s' if args.epochs > 1 else ''}, batch 64, "
          f"MACs <= {MAX_MACS:,.0f}, one local worker, {seeds} seed{plural} per sampler")
    keys = [("hv", "HV final", 4), ("hv_best_epoch", "HV best-ep", 4), ("best", "best acc", 4),
            ("best_half", "best<=lim/2", 4), ("distinct", "distinct", 0), ("infeasible", "infeasible", 0),
            ("wall", "wall s", 0)]
    print(f"\nmedian [q1, q3] over seeds{' (3 seeds: q1 and q3 are the min and the max)' if seeds == 3 else ''}")
    print(f"{'sampler':<10} " + " ".join(f"{h:>22}" for _, h, _ in keys))
    for s in SAMPLERS:
        rs = [r for r in rows if r["sampler"] == s]
        cells = []
        for k, _, d in keys:
            lo, mid, hi = quartiles([float(r[k]) for r in rs])
            cells.append(f"{mid:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]")
        print(f"{s:<10} " + " ".join(f"{c:>22}" for c in cells))
    print("\neach seed")
    print(f"{'sampler':<10} {'seed':>4} {'HV final':>9} {'HV best-ep':>10} {'best acc':>9} {'best<=lim/2':>11} "
          f"{'trials':>6} {'trained':>7} {'reused':>6} {'distinct':>8} {'infeas.':>7} {'over':>4} {'failed':>6} "
          f"{'wall s':>7}")
    for s in SAMPLERS:
        for r in (r for r in rows if r["sampler"] == s):
            print(f"{s:<10} {r['seed']:>4} {r['hv']:>9.4f} {r['hv_best_epoch']:>10.4f} {r['best']:>9.4f} "
                  f"{r['best_half']:>11.4f} {r['n']:>6} {r['ok']:>7} {r['reused']:>6} {r['distinct']:>8} "
                  f"{r['infeasible']:>7} {r['over']:>4} {r['failed']:>6} {r['wall']:>7.1f}")
    print("\nTwo-sided Mann-Whitney U p-values of evolution's hypervolume (final accuracy; best-epoch accuracy):")
    ev = {k: [r[k] for r in rows if r["sampler"] == "evolution"] for k in ("hv", "hv_best_epoch")}
    for other in ("tpe", "nsga2"):
        ot = {k: [r[k] for r in rows if r["sampler"] == other] for k in ("hv", "hv_best_epoch")}
        print(f"  evolution vs {other}: p = {p_value(ev['hv'], ot['hv'])}; "
              f"{p_value(ev['hv_best_epoch'], ot['hv_best_epoch'])}")
    floor = 2 / math.comb(2 * seeds, seeds)  # every run of one sampler above every run of the other
    if floor > 0.05:
        print(f"With {seeds} seed{plural} per sampler these tests cannot show a significant difference: the smallest "
              f"two-sided p possible with {seeds} against {seeds} seeds is {floor:.3g} (every run of one sampler "
              f"above every run of the other), so read the medians and the per-seed values as direction and "
              f"spread only.")
    else:
        print(f"With {seeds} seeds per sampler the smallest two-sided p possible is {floor:.2g}.")
    print("HV final: hypervolume of (final-epoch validation accuracy, as nas records and ranks it; MACs / limit) "
          "against (0, 1), in [0, 1]; HV best-ep: the same with each trial's best epoch's accuracy. best acc, "
          "best<=lim/2: best final accuracy under the limit and under half of it. trained: trials trained; reused: "
          "a spec already trained in the run, its result copied; distinct: distinct spec keys trained; infeas.: "
          "recorded infeasible (over the MACs limit, never built); over: recorded results over the limit "
          "(should be 0); wall s: the whole nas.search call, data loading and worker start-up included.")


if __name__ == "__main__":
    main()
