"""Learning-curve table for replaying early-stopping rules: random architectures of the `mbconv` and `families`
spaces trained for the full budget on a Fashion-MNIST subset, with validation accuracy and seconds per epoch.

Draw i samples the space `mbconv` (i even) or `families` (i odd), configured as in `bench_fashion.py` for
28x28x1 input and 10 classes, with ``nas.RandomTrial(seed * 1_000_003 + i)``. Draws over ``--max-macs`` (by
``nas.cost``, before anything is built) and repeats of an already drawn spec key are skipped without training.
Every accepted architecture is trained by ``nas.train.train_model`` with ``nas.Budget(epochs, batch_size=64,
seed=seed)`` (cosine schedule over all epochs, as an engine trial) and training seed ``seed + i`` (the engine's
``budget.seed + trial.number``); its ``report`` callback records the validation accuracy after every epoch and
the callback's clock the seconds of every epoch (epoch 1 without data preparation and model building).

Rows go to ``<out>.jsonl`` as they finish (a restart with the same settings skips the draws already done), and
after every row ``<out>`` (JSON: settings, machine, date, architectures) is rewritten from it.

Run (one core): `TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 TF_CPP_MIN_LOG_LEVEL=3
taskset -c 1 .venv/bin/python benchmarks/make_curves.py [--train 6000 --val 2000 --epochs 12 --n 200 --seed 0
--max-macs 3e6] [--out benchmarks/data/curves-fashion.json]`. Needs the Debian package `dataset-fashion-mnist`.

The table in `benchmarks/data/curves-fashion.json` was made with `--train 2000 --val 1000 --epochs 12 --n 180
--seed 0 --max-macs 1.5e6`, stopped at 150 architectures (90 min), then continued with `--n 300` (same settings,
so the same draws; the `.jsonl` restart file rebuilt from the table) and stopped at 266 (another 80 min): on
one core shared with other work an architecture took 20-70 s (6000/2000 images and a 3e6 cap: about 80 s,
too slow for this session). Draws alternate between the spaces but `mbconv` draws pass the cap less often, so
it holds 104 `mbconv` and 162 `families` architectures.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

for _var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fashion import SPACES

import nas
from nas.engine.setup import configure_space

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "data" / "curves-fashion.json"
SPACE_ORDER = ("mbconv", "families")
SETTING_KEYS = ("train", "val", "epochs", "seed", "max_macs", "batch_size")


def settings_of(args: argparse.Namespace) -> dict:
    return {"train": args.train, "val": args.val, "epochs": args.epochs, "seed": args.seed,
            "max_macs": args.max_macs, "batch_size": 64}


def draws(spaces: dict, seed: int, max_macs: float):
    """(index, space name, spec, cost) of every draw within the MACs cap, first occurrence of each spec key."""
    seen: set[str] = set()
    i = 0
    while True:
        name = SPACE_ORDER[i % 2]
        spec = spaces[name].sample(nas.RandomTrial(seed * 1_000_003 + i))
        c = nas.cost(spec)
        key = spec.key()
        if c.macs <= max_macs and key not in seen:
            seen.add(key)
            yield i, name, spec, c
        i += 1


def train_one(spec: nas.ArchSpec, data, budget, seed: int) -> dict:
    import keras

    from nas.train import train_model

    accs: list[float] = []
    secs: list[float] = []
    clock = [0.0]

    def report(epoch: int, acc: float) -> None:
        now = time.perf_counter()
        accs.append(round(float(acc), 6))
        secs.append(round(now - clock[0], 4))
        clock[0] = now

    timings: dict[str, float] = {}
    clock[0] = time.perf_counter()
    t = clock[0]
    train_model(spec, data, budget, seed=seed, report=report, timings=timings)
    wall = time.perf_counter() - t
    if secs:  # epoch 1's clock started before data preparation and model building
        secs[0] = round(secs[0] - timings.get("data_s", 0.0) - timings.get("build_s", 0.0), 4)
    keras.backend.clear_session()
    gc.collect()
    return {"val_accuracy": accs, "epoch_seconds": secs, "wall_seconds": round(wall, 3),
            "timings": {k: round(v, 4) for k, v in timings.items()}}


def machine() -> dict:
    import tensorflow as tf

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "cpu_count": os.cpu_count(), "cpus_used": affinity,
            "tensorflow": tf.__version__,
            "threads": {v: os.environ.get(v) for v in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                                                        "OMP_NUM_THREADS")}}


def write_json(out: Path, header: dict, rows: list[dict]) -> None:
    doc = dict(header)
    doc["updated"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    doc["n"] = len(rows)
    doc["n_per_space"] = {s: sum(r["space"] == s for r in rows) for s in SPACE_ORDER}
    doc["train_seconds"] = round(sum(r["wall_seconds"] for r in rows), 1)
    doc["architectures"] = rows
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=None, separators=(",", ":")) + "\n")
    tmp.replace(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=6000, help="training images (seeded subset)")
    parser.add_argument("--val", type=int, default=2000, help="validation images (seeded subset)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--n", type=int, default=200, help="architectures to train in total (both spaces)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-macs", type=float, default=3e6)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["TF_NUM_INTRAOP_THREADS"]))
    tf.config.threading.set_inter_op_parallelism_threads(int(os.environ["TF_NUM_INTEROP_THREADS"]))

    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    jsonl = out.with_suffix(".jsonl")
    settings = settings_of(args)
    rows: list[dict] = []
    if jsonl.exists():
        lines = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
        if lines and lines[0].get("settings") != settings:
            raise SystemExit(f"{jsonl} was made with {lines[0].get('settings')}, not {settings}: use another --out")
        rows = [r for r in lines[1:] if "draw" in r]
        started = lines[0]["date"] if lines else None
    else:
        started = None
    if started is None:
        started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        jsonl.write_text(json.dumps({"settings": settings, "date": started}) + "\n")
    done = {r["draw"] for r in rows}

    data = nas.load_data("fashion_mnist", train_samples=args.train, val_samples=args.val, seed=0)
    spaces = {name: configure_space({"name": name, "options": SPACES[name]}, data.input_shape, data.num_classes)
              for name in SPACE_ORDER}
    budget = nas.Budget(epochs=args.epochs, batch_size=64, seed=args.seed)
    header = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "seed": args.seed,
              "date": started, "machine": machine(),
              "data": {"name": "fashion_mnist", "train_samples": args.train, "val_samples": args.val,
                       "subset_seed": 0, "describe": data.describe()},
              "budget": budget.to_dict(), "max_macs": args.max_macs,
              "spaces": {name: spaces[name].config() for name in SPACE_ORDER},
              "sampling": "draw i: space mbconv (i even) / families (i odd), nas.RandomTrial(seed*1000003+i); "
                          "draws over max_macs or repeating a spec key are skipped; training seed = seed + i",
              "settings": settings}
    header = json.loads(json.dumps(header, default=str))
    print(f"# {data.describe()}; {args.n} architectures, {args.epochs} epochs, MACs <= {args.max_macs:,.0f}; "
          f"{len(rows)} done already", flush=True)
    t_run = time.perf_counter()
    for i, name, spec, c in draws(spaces, args.seed, args.max_macs):
        if len(rows) >= args.n:
            break
        if i in done:
            continue
        trained = train_one(spec, data, budget, args.seed + i)
        row = {"draw": i, "space": name, "key": spec.key(), "spec": spec.to_dict(), "macs": c.macs,
               "params": c.params, **trained}
        rows.append(row)
        with jsonl.open("a") as f:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
        write_json(out, header, rows)
        el = time.perf_counter() - t_run
        print(f"{len(rows):4d}/{args.n} draw {i:4d} {name:<8} macs {c.macs:>9,} params {c.params:>7,} "
              f"acc {trained['val_accuracy'][-1]:.4f} train {trained['wall_seconds']:6.1f}s "
              f"(ep1 {trained['epoch_seconds'][0]:.1f}s, rest {sum(trained['epoch_seconds'][1:]):.1f}s) "
              f"elapsed {el / 60:6.1f} min", flush=True)
    write_json(out, header, rows)
    print(f"# done: {len(rows)} architectures -> {out}", flush=True)


if __name__ == "__main__":
    main()
