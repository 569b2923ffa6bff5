"""``make demo``: a real small search on the embedded digits data, with embedded SQLite storage; prints the
ranked Pareto front and exports the best model to Keras (then reloads it to prove the file is plain Keras)."""

from __future__ import annotations

import datetime
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEMO = Path(__file__).resolve().parent.parent / "experiments" / "digits_quick.yaml"


def banner(description: str) -> str:
    """The demo's first line: its config's description, on one line."""
    return f"nas demo: {' '.join(description.split())}"


def main(argv: list[str] | None = None) -> int:
    from nas.config import load_config, resolve_base
    from nas.study import search

    path = Path(argv[0]) if argv else DEMO
    loaded = load_config(path)
    config = resolve_base(loaded.config)
    run = config.run.replace(study=f"{config.run.study}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}")
    print(banner(config.description) + "\n", flush=True)
    t = time.perf_counter()
    study = search(config.space, config.data, goal=config.goal, strategy=config.strategy, run=run,
                   evaluator=config.evaluator)
    print("\nranked architectures (rank 0 = Pareto front of accuracy vs MACs; * = knee):")
    print(study.table())
    ref = study.reference_point()
    print(f"hypervolume {study.hypervolume():.4f} (accuracy x MACs / {ref['macs']:,.0f})")
    folders = study.export("best", (loaded.export or {}).get("path", "exports"))  # <path>/<study>/trial-N-<key>/
    import keras

    model = keras.saving.load_model(folders[0] / "model.keras")
    best = study.best()
    assert best is not None  # the export above found it
    print(f"\nbest: trial {best.number}, validation accuracy {best.metrics['accuracy']:.4f}, "
          f"{best.metrics['macs']:,} MACs, {best.metrics['params']:,} params")
    print(f"exported to {folders[0]}/model.keras: reloaded with keras.saving.load_model, "
          f"{model.count_params():,} params")
    print(f"\ndemo finished in {time.perf_counter() - t:.0f} s "
          f"(study {study.name!r} in {run.storage or 'runs/nas.db'}). "
          f"Inspect it with (the latest study of the default storage):\n"
          f"  .venv/bin/nas status\n"
          f"  .venv/bin/nas front --plot front.png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
