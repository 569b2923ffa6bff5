"""The accelerator check: everything a GPU or TPU machine should confirm, in one run, ready before the hardware.

    make accelerator-check            # or: .venv/bin/python benchmarks/accelerator_check.py [--trials 4]

1. Finds the accelerators (nas.devices.find_devices; a TPU through TPU_NAME) and says what it found.
2. Runs the device tests (tests/test_devices.py: placement of workers on given device lists, strategies, mirrored
   training over logical devices, bfloat16, XLA, the records).
3. Runs short real searches (digits, ``--trials`` trials of 2 epochs, families space) on every set-up that the
   machine has and prints a table per set-up: epoch seconds (median of the trials' training time per epoch), its
   ratio to the same search on the CPU, peak accelerator memory and peak worker RSS, and the devices each trial
   recorded. With GPUs: one worker per GPU, two workers per GPU (``gpus_per_worker=0.5``), mixed_float16 with
   XLA; with a TPU: one worker with mixed_bfloat16. Without an accelerator it says so and runs the CPU set-ups
   that stand in for them: one worker, a worker mirrored over two logical CPU devices (``NAS_CPU_DEVICES=2``),
   and mixed_bfloat16. Then the first accelerator set-up (or its stand-in) again with ``pruner="pareto"``: the
   rung checks (batch-norm recalibration in batches of four training batches, a validation pass) on the device;
   and with the ``evolution`` sampler and its default inherited weights: children built under the set-up's
   strategy and precision take their parent's weights from its saved file (the ``inherited`` column counts them;
   a child that should inherit and does not fails the check).
4. Runs the training-time comparison with plain ``model.fit`` (benchmarks/bench_fit.py --quick) on the device.

On a machine without accelerators it takes 4-6 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nas  # noqa: E402
from nas.devices import Device, find_devices  # noqa: E402

SPACE = {"name": "families", "options": {"stages": [1, 2], "depth": [1, 1], "widths": [16, 32], "head_widths": [0]}}


def search(folder: Path, name: str, trials: int, device: Device, backend: Any, env: dict[str, str],
           pruner: str | None = None, sampler: Any = "random") -> dict[str, Any]:
    """A short real search in its own process group of workers; the per-trial records that matter here."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        t = time.perf_counter()
        study = nas.search(SPACE, "digits", goal=nas.Goal(objectives=("accuracy", "macs")),
                           strategy=nas.Strategy(n_trials=trials, sampler=sampler, seed=0, pruner=pruner,
                                                 budget=nas.Budget(epochs=2, batch_size=64)),
                           run=nas.Run(study=name, storage=folder / "check.db", backend=backend, device=device),
                           verbose=False)
        wall = time.perf_counter() - t
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    trained = [r for r in study.trials if r.status == "ok"]
    epoch_s = [r.timings["train_s"] / max(1, int(r.metrics.get("epochs") or 2)) for r in trained]
    peaks = [max((r.user_attrs.get("devices") or {}).get("peak_mb", {}).values(), default=0.0) for r in trained]
    rss = [(r.user_attrs.get("worker_memory") or {}).get("rss_mb", 0.0) for r in trained]
    plans = {t.number: t.system_attrs.get("nas_evolution") or {} for t in study.optuna_study.get_trials(deepcopy=False)}
    children = [r for r in trained if plans[r.number].get("origin") in ("mutation", "neighbour", "exploit")]
    inherited = [r for r in trained if "inherited" in r.user_attrs and r.user_attrs["inherited"].get("share", 0) > 0]
    return {"name": name, "trained": len(trained), "wall": wall, "stopped": study.counts()["pruned"],
            "children": len(children), "inherited": len(inherited),
            "epoch_s": statistics.median(epoch_s) if epoch_s else float("nan"),
            "peak_mb": max(peaks, default=0.0), "rss_mb": max(rss, default=0.0),
            "devices": sorted(study.devices().items()), "accuracy": max((r.metrics["accuracy"] for r in trained),
                                                                       default=float("nan"))}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=4, help="trials per search")
    parser.add_argument("--skip-tests", action="store_true", help="leave out the device tests")
    args = parser.parse_args()
    found = find_devices(Device(kind="auto"))
    tpu = os.environ.get("TPU_NAME")
    print("# accelerator check\n")
    if found.gpus:
        memory = ", ".join(f"GPU {g}: {m or '?'} MB" for g, m in zip(found.gpus, found.gpu_memory_mb))
        print(f"Found {len(found.gpus)} GPU(s): {memory}.")
    if tpu:
        print(f"TPU_NAME={tpu}: a TPU is expected.")
    if not found.gpus and not tpu:
        print("**No accelerator was found on this machine** (no NVIDIA driver or GPU visible to TensorFlow, no "
              "TPU_NAME). The checks below ran on the CPU: the device tests (placement on given device lists, "
              "MirroredStrategy over two logical CPU devices, bfloat16, XLA) and real searches on CPU set-ups "
              "that stand in for the accelerator ones. Run this again on a GPU or TPU machine.")
    print()
    status = 0
    if not args.skip_tests:
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_devices.py"],
                             cwd=ROOT, capture_output=True, text=True)
        last = (out.stdout.strip().splitlines() or ["(no output)"])[-1]
        print(f"device tests (tests/test_devices.py): {last} [{time.perf_counter() - t:.0f} s]\n")
        status |= out.returncode != 0
    setups: list[tuple[str, Device, Any, dict[str, str]]] = [
        ("cpu, 1 worker", Device(kind="cpu"), nas.Local(n_workers=1), {}),
    ]
    if found.gpus:
        setups += [
            ("gpu, 1 worker per GPU", Device(kind="gpu"), nas.Local(), {}),
            ("gpu, 2 workers per GPU", Device(kind="gpu"), nas.Local(gpus_per_worker=0.5), {}),
            ("gpu, mixed_float16 + XLA", Device(kind="gpu", mixed_precision="mixed_float16", jit_compile=True),
             nas.Local(), {}),
        ]
        if len(found.gpus) > 1:
            setups.append(("gpu, all GPUs mirrored in 1 worker", Device(kind="gpu"),
                           nas.Local(gpus_per_worker=len(found.gpus)), {}))
    elif tpu:
        setups.append(("tpu, mixed_bfloat16", Device(kind="tpu", tpu_address=tpu, mixed_precision="mixed_bfloat16"),
                       nas.Local(n_workers=1), {}))
    else:
        setups += [
            ("cpu, mirrored over 2 logical devices", Device(kind="cpu"), nas.Local(n_workers=1),
             {"NAS_CPU_DEVICES": "2"}),
            ("cpu, mixed_bfloat16", Device(kind="cpu", mixed_precision="mixed_bfloat16"), nas.Local(n_workers=1), {}),
        ]
    # early stopping's rung checks on the machine's first set-up's device: the calibration forward passes (four
    # training batches at a time) and the validation pass run there, under its strategy and precision
    first = setups[1] if len(setups) > 1 else setups[0]
    runs: list[tuple[str, Device, Any, dict[str, str], str | None, Any]] = [(*s, None, "random") for s in setups]
    runs.append((f"{first[0]}, pruner='pareto' (rung checks)", first[1], first[2], first[3], "pareto", "random"))
    # inherited weights (the evolution sampler's default): the copy into a child built under the strategy's scope
    evolution = {"name": "evolution", "options": {"population_size": 2}}
    runs.append((f"{first[0]}, evolution (inherited weights)", first[1], first[2], first[3], None, evolution))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, device, backend, env, pruner, sampler) in enumerate(runs):
            trials = args.trials if sampler == "random" else max(args.trials, 5)
            try:
                row = search(Path(tmp), f"check-{i}", trials, device, backend, env, pruner, sampler)
                rows.append((label, row))
                if row["inherited"] < row["children"]:
                    print(f"{label}: FAILED: {row['children'] - row['inherited']} of {row['children']} children "
                          f"did not inherit their parent's weights")
                    status = 1
            except Exception as exc:  # a set-up that fails is a finding: report it, go on with the others
                print(f"{label}: FAILED: {type(exc).__name__}: {str(exc)[:500]}")
                status = 1
    if rows:
        base = rows[0][1]["epoch_s"]
        print(f"real searches: digits, families space, {args.trials} trials (the evolution search "
              f"{max(args.trials, 5)}) of 2 epochs each, batch size 64\n")
        print("| set-up | trained | inherited | epoch s (median) | vs CPU | peak accelerator MB | peak worker RSS MB | "
              "best acc | trained on |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for label, r in rows:
            where = "; ".join(f"{w}: {n}" for w, n in r["devices"])
            done = f"{r['trained']}" + (f" ({r['stopped']} stopped)" if r["stopped"] else "")
            print(f"| {label} | {done} | {r['inherited']}/{r['children']} | {r['epoch_s']:.3f} | "
                  f"{r['epoch_s'] / base:.2f}x | {r['peak_mb']:.0f} | {r['rss_mb']:.0f} | {r['accuracy']:.4f} | "
                  f"{where} |")
        print()
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_fit.py"), "--quick"], cwd=ROOT,
                         capture_output=True, text=True)
    print("training against plain model.fit (benchmarks/bench_fit.py --quick, on the device TensorFlow picks):\n")
    print("```")
    print(out.stdout.strip())
    print("```")
    status |= out.returncode != 0
    return status


if __name__ == "__main__":
    sys.exit(main())
