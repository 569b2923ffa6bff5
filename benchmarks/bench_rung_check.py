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

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 architectures, 1 repeat, 600/300 images")
    parser.add_argument("--archs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--train", type=int, default=None)
    parser.add_argument("--val", type=int, default=None)
    parser.add_argument("--max-macs", type=float, default=1.5e6)
    args = parser.parse_args(argv)
    archs = args.archs or (2 if args.quick else 6)
    repeats = args.repeats or (1 if args.quick else 3)
    n_train = args.train or (600 if args.quick else 2000)
    n_val = args.val or (300 if args.quick else 1000)

    from bench_fashion import SPACES

    import search_spaces
    from nas import train as T
    from nas.budget import Budget
    from nas.cost import cost
    from nas.data import load_data
    from nas.trial import RandomTrial

    space = search_spaces.from_config({"name": "families", "options": {**SPACES["families"],
                                                                        "input_shape": (28, 28, 1),
                                                                        "num_classes": 10}})
    data = load_data("fashion_mnist", train_samples=n_train, val_samples=n_val)
    batch = 64
    print(f"# Fashion-MNIST {n_train}/{n_val} images, families space within {args.max_macs:,.0f} MACs, batch {batch}, "
          f"{T.CALIBRATION_IMAGES} calibration images; old: batches of {batch}, new: batches of "
          f"{T.CALIBRATION_BATCHES * batch}; {repeats} repeats, alternating")
    print("| architecture | MACs | steady epoch s | check s, old | check s, new | new / old | same accuracy |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    rows = []
    seed = 0
    while len(rows) < archs:
        spec = space.sample(RandomTrial(seed))
        seed += 1
        macs = cost(spec).macs
        if macs > args.max_macs:
            continue
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
        print(f"| {seed - 1} | {macs:,} | {steady:.2f} | {old:.2f} | {new:.2f} | {new / old:.2f} | {agree} |",
              flush=True)
    print(f"Median: steady epoch {statistics.median(r[2] for r in rows):.2f} s; check old "
          f"{statistics.median(r[0] for r in rows):.2f} s ({statistics.median(r[0] / r[2] for r in rows):.2f} of an "
          f"epoch), new {statistics.median(r[1] for r in rows):.2f} s "
          f"({statistics.median(r[1] / r[2] for r in rows):.2f} of an epoch); new / old "
          f"{statistics.median(r[1] / r[0] for r in rows):.2f}")


if __name__ == "__main__":
    main()
