"""Real data: nas (NSGA-II) against keras-tuner (RandomSearch, Hyperband) over the same space on Fashion-MNIST.

Every method searches the same configured space with the same data subset, training budget, MACs limit and
number of trials, one process training at a time (batch 64, the budget's cosine schedule). keras-tuner runs
through the bridge (``nas.search(..., run=nas.Run(backend=nas.KerasTuner(...)))``), which replaces over-budget
candidates before building, so both sides only train candidates within the limit. Reported per method:
hypervolume of (validation accuracy, MACs) with the fixed reference (accuracy 0, MACs = the limit), the best
accuracy under the limit and under half of it, trials trained, epochs trained in total, wall time. Accuracy is
the best epoch's validation accuracy for every method (keras-tuner scores a trial by its best epoch and keeps no
other; nas records the final epoch and the per-epoch history).

Run: `.venv/bin/python benchmarks/bench_fashion.py [--quick] [--seeds N]` (part of `make bench`). Needs the
Debian package `dataset-fashion-mnist` (`benchmarks/get_fashion_mnist.sh` installs it).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import nas

SPACES = {
    "mbconv": {"stem_widths": [16], "stages": [2, 4], "depth": [1, 2], "kernels": [3, 5], "expansions": [1, 3, 6],
               "widths": [16, 24, 32, 48, 64], "head_widths": [0, 128], "dropouts": [0.0]},
    "families": {"stem_widths": [16], "stages": [2, 4], "depth": [1, 2], "widths": [16, 24, 32, 48, 64],
                 "head_widths": [0, 128], "dropouts": [0.0]},
}


def accuracy_of(record: nas.TrialRecord) -> float:
    """The best epoch's validation accuracy: what keras-tuner scores a trial by (it keeps no other epoch); for
    nas trials the best of the per-epoch history (nas itself records the final epoch's)."""
    history = record.user_attrs.get("history")
    if isinstance(history, list) and history:
        return float(max(history))
    return float(record.metrics["accuracy"])


def epochs_of(record: nas.TrialRecord, budget_epochs: int) -> int:
    """Epochs this trial trained: a Hyperband trial from its initial epoch, any other trial the budget's
    (pruned nas trials: as many as their history)."""
    a = record.user_attrs
    if "initial_epoch" in a:
        return int(a["epochs"]) - int(a["initial_epoch"])
    if isinstance(a.get("history"), list):
        return len(a["history"])
    return budget_epochs


def hypervolume(points: list[tuple[float, float]], max_macs: float) -> float:
    """Area dominated by (accuracy up, MACs down) points, MACs divided by the limit: in [0, 1]."""
    front = sorted((m / max_macs, a) for a, m in points if m <= max_macs)
    area, best = 0.0, 0.0
    # sweep from the cheapest: each point adds (its accuracy above the best cheaper one) x (1 - its cost)
    for cost, acc in front:
        if acc > best:
            area += (acc - best) * (1.0 - cost)
            best = acc
    return area


def run(method: str, space: str, args: argparse.Namespace, folder: Path, seed: int) -> dict:
    data = {"name": "fashion_mnist", "train_samples": args.train, "val_samples": args.val, "seed": 0}
    goal = nas.Goal(objectives=("accuracy", "macs"), constraints={"max_macs": args.max_macs})
    # keras-tuner's tuner samples on its side: nas's sampler only for the nas method
    strategy = nas.Strategy(n_trials=args.trials, sampler="nsga2" if method == "nas nsga2" else None, seed=seed,
                            budget=nas.Budget(epochs=args.epochs, batch_size=64, seed=seed))
    if method == "nas nsga2":
        backend = nas.Local(max_trials_per_worker=args.trials)
    elif method == "keras-tuner random":
        backend = nas.KerasTuner(tuner="random")
    else:
        backend = nas.KerasTuner(tuner="hyperband", options={"max_epochs": args.epochs, "factor": args.hb_factor,
                                                             "hyperband_iterations": args.hb_iterations})
    t = time.perf_counter()
    study = nas.search({"name": space, "options": SPACES[space]}, data, goal=goal, strategy=strategy,
                       run=nas.Run(study=f"{method}-{space}-{seed}", storage=folder / "bench.db", backend=backend),
                       verbose=False)
    wall = time.perf_counter() - t
    trials = study.trials
    done = [r for r in trials if r.status in ("ok", "reused")]
    trained = [r for r in trials if r.status in ("ok", "pruned")]
    epochs = sum(epochs_of(r, args.epochs) for r in trained)
    points = [(accuracy_of(r), r.metrics["macs"]) for r in done]
    best = max((a for a, _ in points), default=0.0)
    best_half = max((a for a, m in points if m <= args.max_macs / 2), default=0.0)
    return {"method": method, "space": space, "seed": seed, "hv": hypervolume(points, args.max_macs),
            "best": best, "best_half": best_half, "complete": len(done),
            "pruned": sum(r.status == "pruned" for r in trials),
            "infeasible": sum(r.status == "infeasible" for r in trials), "epochs": epochs, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="mbconv only, 2 trials, 2 epochs, 2000/500 images")
    parser.add_argument("--seeds", type=int, default=None)
    args = parser.parse_args()
    if args.quick:
        args.spaces, args.trials, args.epochs, args.train, args.val = ["mbconv"], 2, 2, 2000, 500
        args.hb_iterations, args.hb_factor, args.max_macs, seeds = 1, 2, 3e6, args.seeds or 1
    else:
        args.spaces, args.trials, args.epochs, args.train, args.val = ["mbconv", "families"], 8, 3, 3000, 1000
        args.hb_iterations, args.hb_factor, args.max_macs, seeds = 2, 3, 3e6, args.seeds or 1
    methods = ["nas nsga2", "keras-tuner random", "keras-tuner hyperband"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for space in args.spaces:
            for seed in range(seeds):
                for method in methods:
                    rows.append(run(method, space, args, Path(tmp), seed))
    print(f"# Fashion-MNIST ({args.train} train / {args.val} validation images, 28x28), {args.trials} trials per "
          f"method (Hyperband: as many as max_epochs={args.epochs}, factor={args.hb_factor}, hyperband_iterations="
          f"{args.hb_iterations} make), {args.epochs} epochs, MACs <= {args.max_macs:,.0f}, "
          f"{seeds} seed{'s' if seeds > 1 else ''}")
    print(f"{'space':<9} {'method':<22} {'HV(acc,MACs)':>12} {'best acc':>9} {'best<=lim/2':>11} {'trained':>8} "
          f"{'pruned':>6} {'replaced':>8} {'epochs':>6} {'wall s':>7}")
    for space in args.spaces:
        for method in methods:
            rs = [r for r in rows if r["space"] == space and r["method"] == method]

            def med(key: str, rs: list[dict] = rs) -> float:
                return statistics.median(r[key] for r in rs)
            print(f"{space:<9} {method:<22} {med('hv'):>12.4f} {med('best'):>9.4f} {med('best_half'):>11.4f} "
                  f"{med('complete'):>8.0f} {med('pruned'):>6.0f} {med('infeasible'):>8.0f} {med('epochs'):>6.0f} "
                  f"{med('wall'):>7.1f}")
    print("HV: hypervolume of (best-epoch validation accuracy, MACs / limit) against (0, 1), in [0, 1]. "
          "trained: complete trials; pruned: Hyperband's stopped ones; replaced: candidates over the MACs "
          "limit (nas: recorded infeasible, never built; keras-tuner bridge: replaced before building). "
          f"Medians over {seeds} seed{'s' if seeds > 1 else ''}.")


if __name__ == "__main__":
    main()
