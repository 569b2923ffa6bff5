"""Would a child that starts from its parent's trained weights need fewer epochs? Measured before building it.

The evolution sampler's children differ from a trained parent by one label. Net2Net (Chen et al. 2016) and
LEMONADE (Elsken et al. 2019) start such children from the parent's weights (function-preserving widening and
deepening); LEMONADE reports about 40x less compute than NASNet's search. This benchmark measures the plain form a
Keras network of nas allows (its layer names are positional and deterministic): every child layer whose name is the
parent's takes the parent's weights, whole where the shapes agree, the overlapping leading slice where they differ
(more or fewer channels, a larger or smaller kernel), the child's own initialisation elsewhere: the copy
``budget.inherit_epochs`` makes (``nas.engine.inherit.copy_weights``).

For ``--pairs`` random parents of bench_fashion.py's ``families`` space within ``--max-macs`` (as
bench_plain_tpe.py searches it) on ``--train``/``--val`` Fashion-MNIST images: the parent is trained ``--epochs``
epochs; a child changes one of its labels at random (the sampler's mutation: another choice of that label, labels it
newly asks drawn at random), within the MACs cap; the child is trained ``--epochs`` epochs from scratch and, with
the same seed, from the inherited weights (nas.train.train_model both times, one core). Per pair: the share of the
child's parameters inherited; the validation accuracy of the inherited child before training (batch-norm statistics
inherited too) and after 1, 3 and all epochs, against the fresh child's. Then the medians, how often the inherited
child after 1 or 3 epochs is at least the fresh child's final accuracy, and the rank correlation over children of
each short training (fresh or inherited, 1 or 3 epochs) with the fresh child's final accuracy: what a pruner or a
predictor would read.

With ``--short N``, each inherited child is also trained N epochs (the learning-rate schedule spanning those, as
``budget.inherit_epochs`` N does) at the budget's learning rate times each factor of ``--short-lr``: a warm start
keeps what the parent learnt only if the first steps do not throw it away, so a fine-tuning rate may let a short
training reach what a long one does. ``--pairs-from K`` starts at the K-th pair (the pairs are a fixed sequence),
``--core C`` pins the run to core C, ``--rows FILE`` writes each pair's figures, and ``--report FILE...`` prints the
tables of several such runs together.

Run: `.venv/bin/python benchmarks/bench_inherit.py [--quick] [--pairs 16] [--short 3 --short-lr 1,0.3,0.1]` (needs
the Debian package `dataset-fashion-mnist`; about 20 minutes, half as much again with ``--short``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def mutate(space, params: dict, dists: dict, seed: int, max_macs: float):
    """A child of the parent's labels with one changed (evolution's ``_other``), the rest drawn anew; within the cap."""
    import nas
    from nas.engine.distributions import to_optuna
    from nas.engine.evolution import _other
    from nas.trial import ReplayTrial, draw

    rng = random.Random(seed)
    parent_key = space.sample(nas.FixedTrial(params)).key()
    for _ in range(200):
        label = rng.choice(sorted(params))
        value = _other(to_optuna(dists[label]), params[label], rng)
        if value is None:
            continue
        trial = ReplayTrial({**params, label: value}, lambda name, dist: draw(dist, rng))
        spec = space.sample(trial)
        if spec.key() != parent_key and nas.cost(spec).macs <= max_macs:
            return label, value, spec
    raise SystemExit(f"no child within the cap for parent seed {seed}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 pairs, 3 epochs, 600/300 images")
    parser.add_argument("--pairs", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--train", type=int, default=None)
    parser.add_argument("--val", type=int, default=None)
    parser.add_argument("--max-macs", type=float, default=1.5e6)
    parser.add_argument("--short", type=int, default=0, help="also train each inherited child this many epochs")
    parser.add_argument("--short-lr", default="1,0.3,0.1", help="learning-rate factors of the short trainings")
    parser.add_argument("--pairs-from", type=int, default=0, help="skip the first K pairs of the sequence")
    parser.add_argument("--core", type=int, default=None, help="the core to run on (default the first)")
    parser.add_argument("--rows", help="write each pair's figures to this JSON file")
    parser.add_argument("--report", nargs="+", help="print the tables of these --rows files together, train nothing")
    args = parser.parse_args(argv)
    pairs = args.pairs or (2 if args.quick else 16)
    epochs = args.epochs or (3 if args.quick else 9)
    n_train, n_val = args.train or (600 if args.quick else 2000), args.val or (300 if args.quick else 1000)
    factors = [float(f) for f in args.short_lr.split(",")] if args.short else []
    if args.report:
        rows = [r for f in args.report for r in json.loads(Path(f).read_text())]
        report(rows, epochs, n_train, n_val, args.max_macs, max((r.get("short", 0) for r in rows), default=0),
               sorted({float(k[len("short@"):]) for r in rows for k in r if k.startswith("short@")}, reverse=True))
        return
    if hasattr(os, "sched_setaffinity"):  # one core, before TensorFlow starts its threads
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {args.core if args.core is not None else cores[0]})
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from bench_fashion import draws_within, families_space

    import nas
    import nas.build
    from nas.data import load_data
    from nas.engine.inherit import copy_weights, model_arrays
    from nas.train import train_model

    space = families_space()
    data = load_data("fashion_mnist", train_samples=n_train, val_samples=n_val)
    budget = nas.Budget(epochs=epochs, batch_size=64, seed=0)
    original = nas.build.build_model
    marks = sorted({1, min(3, epochs), epochs})
    rows = []
    t0 = time.perf_counter()
    for seed, parent_spec, _ in draws_within(space, args.pairs_from + pairs, args.max_macs)[args.pairs_from:]:
        trial = nas.RandomTrial(seed=seed)
        space.sample(trial)  # the parent's labels, for its child
        label, value, child = mutate(space, trial.params, trial.distributions, seed + 1, args.max_macs)
        parent = train_model(parent_spec, data, budget, seed=1)
        fresh = train_model(child, data, budget, seed=1)
        share: list[float] = []
        before: list[float] = []

        def inherited_build(spec, source=parent["model"], share=share, before=before, **kwargs):
            model = original(spec, **kwargs)
            share.append(copy_weights(model, model_arrays(source)))
            model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            before.append(float(model.evaluate(data.x_val, data.y_val, batch_size=256, verbose=0)[1]))
            return model

        nas.build.build_model = inherited_build
        try:
            warm = train_model(child, data, budget, seed=1)
            short = {f"short@{f:g}": train_model(child, data, dataclasses.replace(
                budget, epochs=args.short, learning_rate=budget.learning_rate * f), seed=1)["accuracy"]
                for f in factors}
        finally:
            nas.build.build_model = original
        row = {"seed": seed, "label": label, "value": value, "share": share[0], "parent": parent["accuracy"],
               "before": before[0], **{f"fresh{k}": fresh["history"][k - 1] for k in marks},
               **{f"warm{k}": warm["history"][k - 1] for k in marks}, "short": args.short, **short}
        rows.append(row)
        keras.backend.clear_session()
        print(f"pair {len(rows):2d} (parent seed {row['seed']}, {label} -> {value!r}): inherited "
              f"{row['share']:.0%} of the weights; parent {row['parent']:.3f}; child fresh "
              + ", ".join(f"@{k} {row[f'fresh{k}']:.3f}" for k in marks) + "; inherited @0 "
              + f"{row['before']:.3f}, " + ", ".join(f"@{k} {row[f'warm{k}']:.3f}" for k in marks)
              + "".join(f"; {args.short} epochs at lr x{f:g} {row[f'short@{f:g}']:.3f}" for f in factors)
              + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    if args.rows:
        Path(args.rows).write_text(json.dumps(rows))
    report(rows, epochs, n_train, n_val, args.max_macs, args.short, factors)


def report(rows: list[dict], epochs: int, n_train: int, n_val: int, max_macs: float, short: int,
           factors: list[float]) -> None:
    import numpy as np
    from scipy.stats import spearmanr

    marks = sorted({1, min(3, epochs), epochs})

    def q(v):
        a = np.percentile(v, [25, 50, 75])
        return f"{a[1]:+.3f} [{a[0]:+.3f}, {a[2]:+.3f}]"

    final = np.array([r[f"fresh{epochs}"] for r in rows])
    print(f"\n# {len(rows)} parent-child pairs of the families space within {max_macs:,.0f} MACs, Fashion-MNIST "
          f"{n_train}/{n_val}, {epochs} epochs, batch 64, one core; inherited = by layer name, whole or the "
          "overlapping slice")
    print(f"share of the child's parameters inherited: median {statistics.median(r['share'] for r in rows):.0%} "
          f"(range {min(r['share'] for r in rows):.0%}-{max(r['share'] for r in rows):.0%}); fresh child's final "
          f"accuracy median {np.median(final):.3f}")
    print("| | accuracy - the fresh child's final, median [quartiles] | at least the fresh child's final | "
          "rank correlation with the fresh child's final |")
    print("| --- | --- | ---: | ---: |")
    cols = [("inherited, before training", [r["before"] for r in rows])]
    for k in marks:
        cols.append((f"fresh after {k} epoch{'s' if k > 1 else ''}", [r[f"fresh{k}"] for r in rows]))
        cols.append((f"inherited after {k} epoch{'s' if k > 1 else ''}", [r[f"warm{k}"] for r in rows]))
    for f in factors:
        cols.append((f"inherited, trained {short} epoch{'s' if short > 1 else ''} at the learning rate x {f:g}",
                     [r[f"short@{f:g}"] for r in rows]))
    for name, v in cols:
        v = np.array(v)
        rho = spearmanr(v, final).statistic
        print(f"| {name} | {q(v - final)} | {np.mean(v >= final):.0%} | {rho:+.2f} |")
    if factors:
        from scipy.stats import wilcoxon

        warm = np.array([r[f"warm{epochs}"] for r in rows])
        print(f"\nThe short trainings against the inherited child trained all {epochs} epochs (budget.inherit_epochs "
              f"{epochs}), paired (Wilcoxon, two-sided):")
        print(f"| inherited, {short} epoch{'s' if short > 1 else ''} | accuracy - {epochs} epochs', median "
              f"[quartiles] | p |")
        print("| --- | --- | ---: |")
        for f in factors:
            d = np.array([r[f"short@{f:g}"] for r in rows]) - warm
            p = wilcoxon(d).pvalue if np.any(d != 0) else 1.0
            print(f"| learning rate x {f:g} | {q(d)} | {p:.3g} |")


if __name__ == "__main__":
    main()
