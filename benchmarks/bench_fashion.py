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
import search_spaces

SPACES = {
    "mbconv": {"stem_widths": [16], "stages": [2, 4], "depth": [1, 2], "kernels": [3, 5], "expansions": [1, 3, 6],
               "widths": [16, 24, 32, 48, 64], "head_widths": [0, 128], "dropouts": [0.0]},
    "families": {"stem_widths": [16], "stages": [2, 4], "depth": [1, 2], "widths": [16, 24, 32, 48, 64],
                 "head_widths": [0, 128], "dropouts": [0.0]},
}


def architecture_bench_args(description: str, argv: list[str] | None, *, repeats: int) -> argparse.Namespace:
    """The options of the per-architecture benchmarks on this space (bench_rung_check.py, bench_first_epoch.py):
    ``--quick`` (2 architectures, 1 repeat, 600/300 images), ``--archs`` (6), ``--repeats`` (``repeats``),
    ``--train``/``--val`` (2,000/1,000 Fashion-MNIST images) and ``--max-macs`` (1.5 M, as bench_plain_tpe.py
    searches), the defaults filled in."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="2 architectures, 1 repeat, 600/300 images")
    parser.add_argument("--archs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--train", type=int, default=None)
    parser.add_argument("--val", type=int, default=None)
    parser.add_argument("--max-macs", type=float, default=1.5e6)
    args = parser.parse_args(argv)
    args.archs = args.archs or (2 if args.quick else 6)
    args.repeats = args.repeats or (1 if args.quick else repeats)
    args.train = args.train or (600 if args.quick else 2000)
    args.val = args.val or (300 if args.quick else 1000)
    return args


def families_space() -> search_spaces.Space:
    """The families space of these benchmarks at Fashion-MNIST's shape (28x28x1, 10 classes)."""
    return search_spaces.get("families", input_shape=(28, 28, 1), num_classes=10, **SPACES["families"])


def draws_within(space: search_spaces.Space, n: int, max_macs: float) -> list[tuple[int, nas.ArchSpec, int]]:
    """(seed, spec, MACs) of the first ``n`` seeded random draws of ``space`` (seeds 0, 1, ...) within ``max_macs``."""
    out: list[tuple[int, nas.ArchSpec, int]] = []
    seed = 0
    while len(out) < n:
        spec = space.sample(nas.RandomTrial(seed=seed))
        if nas.cost(spec).macs <= max_macs:
            out.append((seed, spec, nas.cost(spec).macs))
        seed += 1
    return out


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
