"""Analytic cost counting against building the Keras model and profiling it with TensorFlow.

Prints time per candidate for each method and their ratio, measured in this run, and the agreement of the
counts. Run: `make bench` (or `.venv/bin/python benchmarks/bench_cost.py [--quick]`).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import nas
import search_spaces

from random_specs import random_spec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_small = 50 if args.quick else 200
    small = [random_spec(seed) for seed in range(n_small)]
    names = ["mobilenet_v2", "resnet50", "efficientnet_b0"] if args.quick else \
        ["mobilenet_v2", "resnet50", "efficientnet_b0", "googlenet", "vgg16"]
    big = [search_spaces.baseline(n) for n in names]

    def analytic(specs, repeat):
        t = time.perf_counter()
        for _ in range(repeat):
            for s in specs:
                # a fresh spec each time: validation + cost, nothing cached across repeats
                nas.cost(nas.ArchSpec.from_json(s.to_json()))
        return (time.perf_counter() - t) / (repeat * len(specs))

    t_small = analytic(small, 20)
    t_big = analytic(big, 20)

    import keras
    import tensorflow as tf

    def profile(spec):
        model = nas.build_model(spec)
        fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
            tf.TensorSpec([1, *spec.input_shape], tf.float32))
        opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        opts["output"] = "none"
        flops = tf.compat.v1.profiler.profile(graph=fn.graph, options=opts).total_float_ops
        keras.backend.clear_session()
        return flops

    def measured(specs):
        t = time.perf_counter()
        ratios = [profile(s) / max(1, nas.cost(s).flops) for s in specs]
        return (time.perf_counter() - t) / len(specs), ratios

    profile(small[0])  # warm-up: TensorFlow's first graph
    p_small, r_small = measured(small[: min(40, n_small)])
    p_big, r_big = measured(big)
    print(f"# cost counting speed ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, tensorflow {tf.__version__})")
    print(f"{'candidates':<34} {'analytic':>12} {'build+profile':>14} {'ratio':>9} {'profiled/2*MACs':>18}")
    print(f"{f'{n_small} random small specs':<34} {t_small * 1e3:>10.3f}ms {p_small * 1e3:>12.1f}ms "
          f"{p_small / t_small:>8.0f}x {min(r_small):>8.3f}-{max(r_small):.3f}")
    print(f"{f'{len(names)} ImageNet baselines':<34} {t_big * 1e3:>10.3f}ms {p_big * 1e3:>12.1f}ms "
          f"{p_big / t_big:>8.0f}x {min(r_big):>8.3f}-{max(r_big):.3f}")
    print(f"analytic throughput: {1 / t_small:,.0f} small specs/s, {1 / t_big:,.0f} ImageNet-size specs/s"
          f" (baselines: {', '.join(names)})")


if __name__ == "__main__":
    main()
