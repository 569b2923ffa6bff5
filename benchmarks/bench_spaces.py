"""Sampling speed of every search space: time per sampled (and validated) spec, and per spec + analytic cost.

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


if __name__ == "__main__":
    main()
