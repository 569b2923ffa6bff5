"""What a rung check costs: the calibrated accuracy (``nas.train.calibrated_accuracy``) in batches of the training
batch (as before 2026-12-06) and of ``CALIBRATION_BATCHES`` training batches (now), against an epoch of training.

For ``--archs`` random architectures of bench_fashion.py's ``families`` space (28x28x1, 10 classes, within
``--max-macs``) on ``--train``/``--val`` Fashion-MNIST images, batch 64: one model is trained for 2 epochs (the
first epoch traces the training and validation functions; the second is a steady epoch: its seconds are the
reference), then the check runs ``--repeats`` times each way, alternating, on the same model (it sets every
statistic back, so each run sees the same model). Per architecture: MACs, the second epoch's seconds, the median
seconds of a check each way, the ratio new / old, and whether both give the same accuracy; then the medians.

Run: `.venv/bin/python benchmarks/bench_rung_check.py [--quick] [--archs 6] [--repeats 3]` (needs the Debian
package `dataset-fashion-mnist`; about 3 minutes on 2 cores).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> None:
    from bench_fashion import architecture_bench_args, draws_within, families_space

    args = architecture_bench_args(__doc__.splitlines()[0], argv, repeats=3)
    archs, repeats, n_train, n_val = args.archs, args.repeats, args.train, args.val

    from nas import train as T
    from nas.budget import Budget
    from nas.data import load_data

    space = families_space()
    data = load_data("fashion_mnist", train_samples=n_train, val_samples=n_val)
    batch = 64
    print(f"# Fashion-MNIST {n_train}/{n_val} images, families space within {args.max_macs:,.0f} MACs, batch {batch}, "
          f"{T.CALIBRATION_IMAGES} calibration images; old: batches of {batch}, new: batches of "
          f"{T.CALIBRATION_BATCHES * batch}; {repeats} repeats, alternating")
    print("| architecture | MACs | steady epoch s | check s, old | check s, new | new / old | same accuracy |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    rows = []
    for seed, spec, macs in draws_within(space, archs, args.max_macs):
        ends: list[float] = []
        t0 = time.perf_counter()
        out = T.train_model(spec, data, Budget(epochs=2, batch_size=batch, seed=0), seed=0,
                            report=lambda e, a, ends=ends, t0=t0: ends.append(time.perf_counter() - t0))
        model = out["model"]
        x_cal = data.x_train[T.calibration_sample(len(data.x_train), 0)]
        val = T._dataset(data.x_val, data.y_val, Budget(epochs=2, batch_size=batch, seed=0), 0, train=False, replicas=1)
        times: dict[str, list[float]] = {"old": [], "new": []}
        accs: dict[str, set[float | None]] = {"old": set(), "new": set()}
        for _ in range(repeats):
            for name, chunk in (("old", batch), ("new", T.CALIBRATION_BATCHES * batch)):
                t = time.perf_counter()
                accs[name].add(T.calibrated_accuracy(model, x_cal, val, chunk))
                times[name].append(time.perf_counter() - t)
        old, new = statistics.median(times["old"]), statistics.median(times["new"])
        steady = ends[1] - ends[0]
        same = accs["old"] == accs["new"]
        rows.append((old, new, steady))
        agree = "yes" if same else f"no ({sorted(accs['old'])} vs {sorted(accs['new'])})"
        print(f"| {seed} | {macs:,} | {steady:.2f} | {old:.2f} | {new:.2f} | {new / old:.2f} | {agree} |",
              flush=True)
    print(f"Median: steady epoch {statistics.median(r[2] for r in rows):.2f} s; check old "
          f"{statistics.median(r[0] for r in rows):.2f} s ({statistics.median(r[0] / r[2] for r in rows):.2f} of an "
          f"epoch), new {statistics.median(r[1] for r in rows):.2f} s "
          f"({statistics.median(r[1] / r[2] for r in rows):.2f} of an epoch); new / old "
          f"{statistics.median(r[1] / r[0] for r in rows):.2f}")


if __name__ == "__main__":
    main()
