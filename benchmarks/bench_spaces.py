"""Sampling speed of every search space: time per sampled (and validated) spec, and per spec + analytic cost;
then how well the default ranges fit small inputs and what sampling inside the cost limits gives.

Second table: the README's first search (`mbconv` on 8x8 digits, ``max_macs=2_000_000``) and the other spaces
with per-stage strides at 8x8x1 and 28x28x1: median params and MACs of 400 random candidates
(``nas.RandomTrial(0..399)``) with the ranges sized for 32 pixels and up (the defaults given explicitly) and
with the defaults fitted to the input (see the README's *Defaults fit the data*), and the fraction of them
within the limit (the limit is 2 M MACs at 8x8 and 20 M at 28x28). Third: 100 trials of Optuna's random
sampler and TPE (seed 0, fitted defaults), plain (draw and reject) and wrapped by
``nas.engine.limits.WithinLimits`` (sample inside the limit): candidates within the limit and milliseconds of
sampling per candidate.

Run: `.venv/bin/python benchmarks/bench_spaces.py` (part of `make bench`).
"""

from __future__ import annotations

import time

import nas
import search_spaces
from nas.trial import RandomTrial


def main() -> None:
    w = max(10, *(len(name) for name in search_spaces.names()))
    print(f"{'space':<{w}} {'input':>10} {'sample':>10} {'sample+cost':>12} {'labels/sample':>14}")
    for name in search_spaces.names():
        for shape in ((32, 32, 3), (224, 224, 3)):
            space = search_spaces.get(name) if name == "compound" and shape[0] == 224 else \
                search_spaces.get("compound", base=search_spaces.get("mbconv", input_shape=shape).sample(
                    RandomTrial(0))) if name == "compound" else search_spaces.get(name, input_shape=shape)
            n = 300
            t = time.perf_counter()
            labels = 0
            for seed in range(n):
                trial = RandomTrial(seed)
                space.sample(trial)
                labels += len(trial.params)
            dt = (time.perf_counter() - t) / n
            t = time.perf_counter()
            for seed in range(n):
                nas.cost(space.sample(RandomTrial(seed)))
            dc = (time.perf_counter() - t) / n
            print(f"{name:<{w}} {'x'.join(map(str, shape)):>10} {dt * 1e3:>8.3f}ms {dc * 1e3:>10.3f}ms "
                  f"{labels / n:>14.1f}")


def _unfitted(name: str) -> dict:
    """The space's defaults given explicitly: the ranges sized for 32 pixels and up."""
    import importlib

    module = importlib.import_module(f"search_spaces._{name}")
    keys = ("stages", "depth", "widths", "head_widths")
    return {"max_downsampling": None, **{k: module.DEFAULTS[k] for k in keys if k in module.DEFAULTS}}


def fitted_defaults() -> None:
    print()
    print(f"{'space':<9} {'input':>8} {'limit':>6} {'32px ranges: params':>20} {'MACs':>8} {'within':>7} "
          f"{'fitted: params':>15} {'MACs':>8} {'within':>7}")
    for name in ("mbconv", "residual", "families"):
        for shape, limit in (((8, 8, 1), 2e6), ((28, 28, 1), 2e7)):
            row = []
            for options in (_unfitted(name), {}):
                space = search_spaces.get(name, input_shape=shape, **options)
                costs = [nas.cost(space.sample(RandomTrial(seed))) for seed in range(400)]
                params = sorted(c.params for c in costs)[200]
                macs = sorted(c.macs for c in costs)[200]
                row.append(f"{params / 1e6:>{20 if not row else 15}.2f}M {macs / 1e6:>7.1f}M "
                           f"{sum(c.macs <= limit for c in costs) / 4:>6.1f}%")
            print(f"{name:<9} {'x'.join(map(str, shape)):>8} {limit / 1e6:>5.0f}M " + " ".join(row))


def within_limits() -> None:
    import optuna

    from nas.engine.limits import WithinLimits

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print()
    print(f"{'space':<9} {'input':>8} {'limit':>6} {'sampler':<8} {'plain: within':>14} {'ms/cand.':>9} "
          f"{'inside limits: within':>22} {'ms/cand.':>9}")
    for name, shape, limit in (("mbconv", (8, 8, 1), 2e6), ("residual", (8, 8, 1), 2e6),
                               ("mbconv", (28, 28, 1), 2e7)):
        space = search_spaces.get(name, input_shape=shape)
        for kind in ("random", "tpe"):
            row = []
            for wrap in (False, True):
                if kind == "random":
                    sampler = optuna.samplers.RandomSampler(seed=0)
                else:
                    sampler = optuna.samplers.TPESampler(seed=0, multivariate=True, group=True, n_startup_trials=10)
                if wrap:
                    sampler = WithinLimits(sampler, space, {"max_macs": limit}, seed=0)
                study = optuna.create_study(sampler=sampler, directions=["maximize", "minimize"])
                within, spent = 0, 0.0
                for _ in range(100):
                    t = time.perf_counter()
                    trial = study.ask()
                    spec = space.sample(trial)
                    spent += time.perf_counter() - t
                    macs = nas.cost(spec).macs
                    within += macs <= limit
                    study.tell(trial, [1.0 - 1.0 / (1 + macs / 1e5) if macs <= limit else 0.0, macs])
                row.append(f"{within:>{14 if not row else 22}d}% {spent * 10:>8.1f}")
            print(f"{name:<9} {'x'.join(map(str, shape)):>8} {limit / 1e6:>5.0f}M {kind:<8} " + " ".join(row))


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore", category=Warning, module="optuna")
    main()
    fitted_defaults()
    within_limits()
