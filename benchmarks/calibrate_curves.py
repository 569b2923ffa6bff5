"""Adds calibrated rung accuracies to a learning-curve table made by ``make_curves.py``.

For every architecture of the table this trains it again exactly as ``make_curves.py`` did (same data subset,
``nas.Budget`` and training seed ``seed + draw``, cosine schedule over the table's epochs) up to the last of
``--rungs`` and records, after each rung's epoch, the validation accuracy with batch-norm statistics recomputed
on training images (``nas.train.calibrated_accuracy``: what the ``pareto`` pruner's rung check measures). The
plain validation accuracies of these epochs are compared with the table's (the check leaves training unchanged,
so on this machine, one thread, they are equal): the count of mismatches is printed and stored.

Rows go to ``<table>.calibrated.jsonl`` as they finish (a restart skips the draws done; ``--shard k/n`` splits
the work between processes); after the last one the table gets ``calibrated_accuracy`` (``{"<epoch>": acc}``)
on every architecture and a ``calibration`` header naming the command, the rungs and the mismatches.
The table's values (2026-12-02) were measured on the first 1,024 images of the training subset, itself a random
draw; since then ``train_model`` draws the 1,024 images at random with the training seed (the same distribution,
and safe for arrays sorted by class), so a run of this script now gives slightly different values.

Run (one core per process): `TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1
.venv/bin/python benchmarks/calibrate_curves.py [--rungs 1,3] [--shard 0/2] [--table
benchmarks/data/curves-fashion.json]` (266 architectures x 3 epochs: about an hour on one core).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import sys
import time
from pathlib import Path

for _var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_curves import DEFAULT_OUT, write_json

import nas


class _Enough(Exception):
    """Raised by the report callback after the last rung: the rest of the training is not needed."""


def calibrate_one(arch: dict, data, budget, seed: int, rungs: tuple[int, ...]) -> dict:
    import keras

    from nas.train import train_model

    plain: list[float] = []
    calibrated: dict[str, float] = {}

    def report(epoch: int, acc: float) -> None:
        plain.append(round(float(acc), 6))
        if epoch + 1 >= rungs[-1]:
            raise _Enough

    def tell(epoch: int, acc: float) -> None:
        calibrated[str(epoch + 1)] = round(float(acc), 6)

    t = time.perf_counter()
    try:
        train_model(nas.ArchSpec.from_dict(arch["spec"]), data, budget, seed=seed, report=report,
                    calibrate_at=rungs, calibrated=tell)
    except _Enough:
        pass
    keras.backend.clear_session()
    gc.collect()
    mismatches = sum(a != b for a, b in zip(plain, arch["val_accuracy"]))
    return {"draw": arch["draw"], "calibrated_accuracy": calibrated, "plain": plain, "mismatches": mismatches,
            "seconds": round(time.perf_counter() - t, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--rungs", default="1,3", help="epochs (1-based) to calibrate at, comma-separated")
    parser.add_argument("--shard", default="0/1", help="k/n: this process does the architectures i with i %% n == k")
    args = parser.parse_args(argv)
    rungs = tuple(sorted(int(x) for x in args.rungs.split(",")))
    k, n = (int(x) for x in args.shard.split("/"))
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(int(os.environ["TF_NUM_INTRAOP_THREADS"]))
    tf.config.threading.set_inter_op_parallelism_threads(int(os.environ["TF_NUM_INTEROP_THREADS"]))
    doc = json.loads(args.table.read_text())
    archs = doc["architectures"]
    if rungs[-1] > doc["budget"]["epochs"]:
        raise SystemExit(f"--rungs {args.rungs}: the table's architectures have {doc['budget']['epochs']} epochs")
    jsonl = args.table.with_suffix(".calibrated.jsonl")
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()] if jsonl.exists() else []
    done = {r["draw"] for r in rows}
    data_opts = doc["data"]
    data = nas.load_data(data_opts["name"], train_samples=data_opts["train_samples"],
                         val_samples=data_opts["val_samples"], seed=data_opts["subset_seed"])
    budget = nas.Budget.from_dict(doc["budget"]) if hasattr(nas.Budget, "from_dict") else nas.Budget(**doc["budget"])
    t0 = time.perf_counter()
    mine = [a for i, a in enumerate(archs) if i % n == k and a["draw"] not in done]
    for j, arch in enumerate(mine):
        row = calibrate_one(arch, data, budget, doc["seed"] + arch["draw"], rungs)
        with jsonl.open("a") as f:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
        rows.append(row)
        print(f"{j + 1:4d}/{len(mine)} draw {arch['draw']:4d} plain {arch['val_accuracy'][:rungs[-1]]} "
              f"calibrated {row['calibrated_accuracy']} mismatches {row['mismatches']} {row['seconds']:.1f}s "
              f"elapsed {(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    by_draw = {r["draw"]: r for r in (json.loads(line) for line in jsonl.read_text().splitlines())}
    if all(a["draw"] in by_draw for a in archs):
        for a in archs:
            a["calibrated_accuracy"] = by_draw[a["draw"]]["calibrated_accuracy"]
        header = {key: v for key, v in doc.items() if key not in ("architectures", "updated", "n", "n_per_space",
                                                                   "train_seconds")}
        header["calibration"] = {
            "command": "python benchmarks/calibrate_curves.py --rungs " + args.rungs, "rungs": list(rungs),
            "images": __import__("nas.train", fromlist=["CALIBRATION_IMAGES"]).CALIBRATION_IMAGES,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "mismatched_plain_accuracies": sum(r["mismatches"] for r in by_draw.values()),
            "seconds": round(sum(r["seconds"] for r in by_draw.values()), 1)}
        write_json(args.table, header, archs)
        print(f"# table updated: {args.table} ({header['calibration']['mismatched_plain_accuracies']} plain "
              f"accuracies differ from the table's)", flush=True)
    else:
        print(f"# {len(by_draw)}/{len(archs)} calibrated so far", flush=True)


if __name__ == "__main__":
    main()
