"""What a trial's first epoch costs: nas's training with the optimizer's and metrics' variables created before the
first step (``nas.train.build_training_state``, now), without it (``PREBUILD = False``, before 2026-12-06), and
plain ``model.fit`` on numpy arrays as a user would write it (same model, optimizer, schedule and batch size;
bench_fit.py's two trainings, timed from the call).

Without a distribution strategy (TensorFlow's default one, which a worker with ``device="auto"`` uses on a machine
without GPUs) Keras 3 creates those variables inside the first trace of the training step, and TensorFlow traces a
function that creates variables twice; plain ``model.fit`` pays the same. For ``--archs`` random architectures of
bench_fashion.py's ``families`` space (28x28x1, 10 classes, within ``--max-macs``, as bench_plain_tpe.py searches
it) on ``--train``/``--val`` Fashion-MNIST images, batch 64, each way trains the same architecture for 3 epochs,
the three ways alternating, ``--repeats`` times, one TensorFlow thread (the benchmark pins itself to one core). Per
architecture: the median seconds from the call to the end of the first epoch (building, compiling, tracing, the
epoch and its validation) and of a later epoch; the first epoch's excess over a later one in later epochs; and the
share of a 9-epoch trial (first epoch + 8 later ones) that the pre-build saves. Then the medians.

Run: `.venv/bin/python benchmarks/bench_first_epoch.py [--quick] [--archs 6] [--repeats 2]` (needs the Debian
package `dataset-fashion-mnist`; about 5 minutes).
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

WAYS = ("model.fit", "nas before", "nas now")


def main(argv: list[str] | None = None) -> None:
    if hasattr(os, "sched_setaffinity"):  # one core, before TensorFlow starts its threads
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from bench_fashion import architecture_bench_args, draws_within, families_space

    args = architecture_bench_args(__doc__.splitlines()[0], argv, repeats=2)
    archs, repeats, n_train, n_val = args.archs, args.repeats, args.train, args.val

    from bench_fit import nas_fit, plain_fit

    from nas import train as T
    from nas.budget import Budget
    from nas.data import load_data

    space = families_space()
    data = load_data("fashion_mnist", train_samples=n_train, val_samples=n_val)
    budget = Budget(epochs=3, batch_size=64, seed=0)

    def run(way: str, spec: object) -> tuple[float, float]:
        """(first epoch s from the call, median later epoch s)"""
        if way == "model.fit":
            ends, _ = plain_fit(spec, data, budget)
        else:
            T.PREBUILD = way == "nas now"
            try:
                ends, _ = nas_fit(spec, data, budget)
            finally:
                T.PREBUILD = True
        return ends[0], statistics.median(b - a for a, b in zip(ends, ends[1:]))

    print(f"# Fashion-MNIST {n_train}/{n_val} images, families space within {args.max_macs:,.0f} MACs, batch 64, "
          f"3 epochs per run, {repeats} repeat(s) alternating, one core, one TensorFlow thread; seconds")
    print("| architecture | MACs | " + " | ".join(f"{w}: first, later" for w in WAYS) +
          " | first epoch's excess in later epochs (fit, before, now) | 9-epoch trial saved |")
    print("| --- | ---: | " + " | ".join("---" for _ in WAYS) + " | --- | ---: |")
    rows = []
    for seed, spec, macs in draws_within(space, archs, args.max_macs):
        got: dict[str, list[tuple[float, float]]] = {w: [] for w in WAYS}
        for _ in range(repeats):
            for way in WAYS:
                got[way].append(run(way, spec))
        first = {w: statistics.median(f for f, _ in got[w]) for w in WAYS}
        later = {w: statistics.median(s for _, s in got[w]) for w in WAYS}
        excess = {w: (first[w] - later[w]) / later[w] for w in WAYS}
        trial = first["nas before"] + 8 * later["nas before"]
        saved = (first["nas before"] - first["nas now"]) / trial
        rows.append((first, later, excess, saved))
        print(f"| {seed} | {macs:,} | " + " | ".join(f"{first[w]:.2f}, {later[w]:.2f}" for w in WAYS) +
              f" | {', '.join(f'{excess[w]:.1f}' for w in WAYS)} | {saved:.2f} |", flush=True)
    med = statistics.median
    print(f"Median first epoch: model.fit {med(r[0]['model.fit'] for r in rows):.2f} s, nas before "
          f"{med(r[0]['nas before'] for r in rows):.2f} s, nas now {med(r[0]['nas now'] for r in rows):.2f} s "
          f"(now / before {med(r[0]['nas now'] / r[0]['nas before'] for r in rows):.2f}); its excess over a later "
          f"epoch {med(r[2]['model.fit'] for r in rows):.1f}, {med(r[2]['nas before'] for r in rows):.1f}, "
          f"{med(r[2]['nas now'] for r in rows):.1f} later epochs; a 9-epoch trial "
          f"{med(r[3] for r in rows):.2f} shorter")


if __name__ == "__main__":
    main()
