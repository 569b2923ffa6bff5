"""``make demo``: until the search engine lands, show the analytic cost of the classic networks and build one."""

from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    import nas
    import search_spaces

    print("nas demo: the search engine is not built yet; this shows the spec -> cost -> Keras model path.\n")
    t = time.perf_counter()
    for name in search_spaces.baselines():
        spec = search_spaces.baseline(name)
        c = nas.cost(spec)
        print(f"{name:<18} {c.macs / 1e6:>10.1f} MMACs {c.params:>13,} params")
    print(f"(analytic cost of {len(search_spaces.baselines())} networks in {time.perf_counter() - t:.3f} s)\n")
    spec = search_spaces.baseline("mobilenet_v2", input_shape=(32, 32, 3), num_classes=10)
    nas.summary(spec)
    model = nas.build_model(spec)
    print(f"\nbuilt Keras model {model.name}: {model.count_params():,} params "
          f"(analytic: {nas.cost(spec).params:,})")


if __name__ == "__main__":
    main()
