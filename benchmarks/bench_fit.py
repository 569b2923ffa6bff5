"""A trial's training against plain ``model.fit`` on the same model, data and batch size.

What a user would write instead of nas's training: build the same Keras model, compile it with the same optimizer
and schedule, and call ``model.fit(x, y, batch_size=..., epochs=..., validation_data=(x_val, y_val))`` on the
numpy arrays. nas's ``nas.train.train_model`` runs the same training through its own input pipeline (tf.data,
shuffled each epoch, prefetched), its per-batch watch (NaN loss, timeout) and per-epoch reports, with the rung
checks off. Both are timed per epoch from the end of one epoch to the end of the next (validation included), the
first epoch left out (graph tracing); the two alternate, one model after the other, repeated ``--repeats`` times;
the median epoch time of each and their ratio are printed per architecture, then the median ratio. The goal is
at most 1.05.

Run: `.venv/bin/python benchmarks/bench_fit.py [--epochs 4] [--repeats 2] [--fashion-train 2000] [--quick]` (part of
`make bench`).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from nas._quiet import import_keras

import_keras()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import nas  # noqa: E402
import search_spaces  # noqa: E402
from nas.budget import Budget  # noqa: E402
from nas.data import load_data  # noqa: E402
from nas.train import make_optimizer, train_model  # noqa: E402


class _EpochEnds(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.ends: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.ends.append(time.perf_counter())


def plain_fit(spec: nas.ArchSpec, data: Any, budget: Budget) -> tuple[list[float], float]:
    """Plain ``model.fit`` of ``spec`` on the numpy arrays: the seconds from the call to the end of each epoch,
    and the last validation accuracy."""
    t0 = time.perf_counter()
    keras.utils.set_random_seed(0)
    model = nas.build_model(spec, bn_momentum=budget.bn_momentum)
    steps = budget.epochs * int(np.ceil(len(data.x_train) / budget.batch_size))
    model.compile(optimizer=make_optimizer(budget, steps), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    ends = _EpochEnds()
    history = model.fit(data.x_train, data.y_train, batch_size=budget.batch_size, epochs=budget.epochs,
                        validation_data=(data.x_val, data.y_val), verbose=0, callbacks=[ends])
    keras.backend.clear_session()
    return [e - t0 for e in ends.ends], float(history.history["val_accuracy"][-1])


def nas_fit(spec: nas.ArchSpec, data: Any, budget: Budget) -> tuple[list[float], float]:
    """nas's ``train_model`` of ``spec``: the seconds from the call to the end of each epoch, and the last
    validation accuracy."""
    t0 = time.perf_counter()
    ends: list[float] = []
    result = train_model(spec, data, budget, seed=0, report=lambda epoch, acc: ends.append(time.perf_counter()))
    keras.backend.clear_session()
    return [e - t0 for e in ends], float(result["history"][-1])


MAX_MACS = 20_000_000  # the limit of the Fashion-MNIST configs in experiments/


def specs(data: Any, n: int) -> list[tuple[str, nas.ArchSpec]]:
    """The first ``n`` seeded random draws of each space within ``MAX_MACS`` (as a search with the experiments'
    limit trains them; unconstrained draws reach 1.3 G MACs at 28x28, 30 minutes per plain fit on 2 cores)."""
    out = []
    for name in ("families", "mbconv"):
        space = search_spaces.get(name, input_shape=data.input_shape, num_classes=data.num_classes)
        seed = 0
        while len([label for label, _ in out if label.startswith(name)]) < n:
            spec = space.sample(nas.RandomTrial(seed=seed))
            if nas.cost(spec).macs <= MAX_MACS:
                out.append((f"{name} #{seed}", spec))
            seed += 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--per-space", type=int, default=2, help="random architectures per space")
    parser.add_argument("--fashion-train", type=int, default=2_000,
                        help="Fashion-MNIST training images (the size of the project's Fashion-MNIST benchmarks; "
                             "a families candidate took 150-220 s per epoch on 10,000 on 2 cores)")
    parser.add_argument("--fashion-val", type=int, default=1_000, help="Fashion-MNIST validation images")
    parser.add_argument("--quick", action="store_true",
                        help="digits only, 1 architecture per space, 3 epochs, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.repeats, args.per_space = 3, 1, 1
    configs = [("digits", load_data("digits"))]
    if not args.quick:
        try:
            configs.append((f"fashion_mnist {args.fashion_train:,}/{args.fashion_val:,}",
                            load_data("fashion_mnist", train_samples=args.fashion_train,
                                      val_samples=args.fashion_val)))
        except ValueError as exc:
            print(f"(Fashion-MNIST left out: {exc})")
    budget = Budget(epochs=args.epochs, batch_size=64)
    print(f"# a trial's training against plain model.fit: epochs {args.epochs}, batch size 64, Adam with cosine "
          f"decay, median seconds per epoch after the first, {args.repeats} repeat(s)\n")
    print(f"{'data':<28} {'architecture':<12} {'MACs':>11} {'params':>9} {'fit s/epoch':>12} {'nas s/epoch':>12} "
          f"{'ratio':>6} {'acc fit':>8} {'acc nas':>8}")
    ratios: dict[str, list[float]] = {}
    for data_name, data in configs:
        for label, spec in specs(data, args.per_space):
            fit_times, nas_times, fit_acc, nas_acc = [], [], 0.0, 0.0
            for _ in range(args.repeats):
                t, fit_acc = plain_fit(spec, data, budget)
                fit_times += list(np.diff(t))  # epochs after the first
                t, nas_acc = nas_fit(spec, data, budget)
                nas_times += list(np.diff(t))
            fit_s, nas_s = statistics.median(fit_times), statistics.median(nas_times)
            ratios.setdefault(data_name, []).append(nas_s / fit_s)
            c = nas.cost(spec)
            print(f"{data_name:<28} {label:<12} {c.macs:>11,} {c.params:>9,} {fit_s:>12.3f} {nas_s:>12.3f} "
                  f"{nas_s / fit_s:>6.3f} {fit_acc:>8.4f} {nas_acc:>8.4f}")
    print()
    for data_name, values in ratios.items():
        print(f"{data_name}: median ratio nas / model.fit {statistics.median(values):.3f} "
              f"(range {min(values):.3f}-{max(values):.3f}; goal <= 1.05)")


if __name__ == "__main__":
    main()
