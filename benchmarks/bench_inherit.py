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
    parser.add_argument("--short-lr", default="1", help="learning-rate factors of the short trainings")
    parser.add_argument("--copies", default="leading,centred",
                        help="how the parent's weights are copied (nas.engine.inherit.COPIES), each measured")
    parser.add_argument("--pairs-from", type=int, default=0, help="skip the first K pairs of the sequence")
    parser.add_argument("--core", type=int, default=None, help="the core to run on (default the first)")
    parser.add_argument("--rows", help="write each pair's figures to this JSON file")
    parser.add_argument("--report", nargs="+", help="print the tables of these --rows files together, train nothing")
    args = parser.parse_args(argv)
    pairs = args.pairs or (2 if args.quick else 16)
    epochs = args.epochs or (3 if args.quick else 9)
    n_train, n_val = args.train or (600 if args.quick else 2000), args.val or (300 if args.quick else 1000)
    factors = [float(f) for f in args.short_lr.split(",")] if args.short else []
    copies = args.copies.split(",")
    if args.report:
        rows = [r for f in args.report for r in json.loads(Path(f).read_text())]
        report(rows, epochs, n_train, n_val, args.max_macs, max((r.get("short", 0) for r in rows), default=0),
               sorted({float(k[len("short@"):].split(":")[0]) for r in rows for k in r if k.startswith("short@")},
                      reverse=True))
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
        row = {"seed": seed, "label": label, "value": value, "parent": parent["accuracy"],
               **{f"fresh{k}": fresh["history"][k - 1] for k in marks}, "short": args.short, "copies": copies}
        for copy in copies:
            share: list[float] = []
            before: list[float] = []

            def inherited_build(spec, source=parent["model"], share=share, before=before, copy=copy, **kwargs):
                model = original(spec, **kwargs)
                share.append(copy_weights(model, model_arrays(source), copy))
                model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
                before.append(float(model.evaluate(data.x_val, data.y_val, batch_size=256, verbose=0)[1]))
                return model

            nas.build.build_model = inherited_build
            try:
                warm = train_model(child, data, budget, seed=1)
                for f in factors:
                    row[f"short@{f:g}:{copy}"] = train_model(child, data, dataclasses.replace(
                        budget, epochs=args.short, learning_rate=budget.learning_rate * f), seed=1)["accuracy"]
            finally:
                nas.build.build_model = original
            row.update({f"share:{copy}": share[0], f"before:{copy}": before[0],
                        **{f"warm{k}:{copy}": warm["history"][k - 1] for k in marks}})
        rows.append(row)
        keras.backend.clear_session()
        print(f"pair {len(rows):2d} (parent seed {row['seed']}, {label} -> {value!r}): parent {row['parent']:.3f}; "
              f"child fresh " + ", ".join(f"@{k} {row[f'fresh{k}']:.3f}" for k in marks)
              + "".join(f"; {c} copy ({row[f'share:{c}']:.0%} of the weights) @0 {row[f'before:{c}']:.3f}, "
                        + ", ".join(f"@{k} {row[f'warm{k}:{c}']:.3f}" for k in marks)
                        + "".join(f", {args.short} epochs at lr x{f:g} {row[f'short@{f:g}:{c}']:.3f}"
                                  for f in factors) for c in copies)
              + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    if args.rows:
        Path(args.rows).write_text(json.dumps(rows))
    report(rows, epochs, n_train, n_val, args.max_macs, args.short, factors)


def report(rows: list[dict], epochs: int, n_train: int, n_val: int, max_macs: float, short: int,
           factors: list[float]) -> None:
    import numpy as np
    from scipy.stats import spearmanr, wilcoxon

    marks = sorted({1, min(3, epochs), epochs})
    copies = rows[0]["copies"]
    plural = "s" if short > 1 else ""

    def q(v):
        a = np.percentile(v, [25, 50, 75])
        return f"{a[1]:+.3f} [{a[0]:+.3f}, {a[2]:+.3f}]"

    def p_of(d):
        return wilcoxon(d).pvalue if np.count_nonzero(d) else 1.0

    final = np.array([r[f"fresh{epochs}"] for r in rows])
    print(f"\n# {len(rows)} parent-child pairs of the families space within {max_macs:,.0f} MACs, Fashion-MNIST "
          f"{n_train}/{n_val}, {epochs} epochs, batch 64, one core; inherited = by layer name, whole or as the copy "
          f"says ({', '.join(copies)}: nas.engine.inherit)")
    for c in copies:
        print(f"{c} copy: share of the child's parameters inherited: median "
              f"{statistics.median(r[f'share:{c}'] for r in rows):.0%} (range {min(r[f'share:{c}'] for r in rows):.0%}"
              f"-{max(r[f'share:{c}'] for r in rows):.0%})")
    print(f"fresh child's final accuracy median {np.median(final):.3f}")
    print("| | accuracy - the fresh child's final, median [quartiles] | at least the fresh child's final | "
          "rank correlation with the fresh child's final |")
    print("| --- | --- | ---: | ---: |")
    cols = [(f"fresh after {k} epoch{'s' if k > 1 else ''}", [r[f"fresh{k}"] for r in rows]) for k in marks]
    for c in copies:
        cols.append((f"inherited ({c}), before training", [r[f"before:{c}"] for r in rows]))
        cols += [(f"inherited ({c}) after {k} epoch{'s' if k > 1 else ''}", [r[f"warm{k}:{c}"] for r in rows])
                 for k in marks]
        cols += [(f"inherited ({c}), trained {short} epoch{plural} at the learning rate x {f:g}",
                  [r[f"short@{f:g}:{c}"] for r in rows]) for f in factors]
    for name, v in cols:
        v = np.array(v)
        rho = spearmanr(v, final).statistic
        print(f"| {name} | {q(v - final)} | {np.mean(v >= final):.0%} | {rho:+.2f} |")
    for c in copies:
        if not factors:
            break
        warm = np.array([r[f"warm{epochs}:{c}"] for r in rows])
        print(f"\nThe short trainings ({c} copy) against the inherited child trained all {epochs} epochs "
              f"(budget.inherit_epochs {epochs}), paired (Wilcoxon, two-sided):")
        print(f"| inherited, {short} epoch{plural} | accuracy - {epochs} epochs', median [quartiles] | p |")
        print("| --- | --- | ---: |")
        for f in factors:
            d = np.array([r[f"short@{f:g}:{c}"] for r in rows]) - warm
            print(f"| learning rate x {f:g} | {q(d)} | {p_of(d):.3g} |")
    for c in copies[1:]:
        first = copies[0]
        print(f"\nThe {c} copy against the {first} one, same pairs (Wilcoxon, two-sided):")
        print(f"| inherited | accuracy, {c} - {first}, median [quartiles] | {c} higher | p |")
        print("| --- | --- | ---: | ---: |")
        keys = [("before training", "before:{}")] + [(f"after {k} epoch{'s' if k > 1 else ''}", f"warm{k}:{{}}")
                                                      for k in marks]
        keys += [(f"trained {short} epoch{plural} at the learning rate x {f:g}", f"short@{f:g}:{{}}") for f in factors]
        for name, key in keys:
            d = np.array([r[key.format(c)] - r[key.format(first)] for r in rows])
            print(f"| {name} | {q(d)} | {np.mean(d > 0):.0%} | {p_of(d):.3g} |")


if __name__ == "__main__":
    main()
