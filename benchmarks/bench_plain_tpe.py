"""nas's default search against plain Optuna TPE without stopping, on real training: training seconds per front.

Three arms per seed, on the same real data, space, limit and epochs, in the same run:

* ``tpe``: plain Optuna TPE as a user would run it instead: ``optuna.samplers.TPESampler(multivariate=True,
  group=True)`` (through ``nas.Strategy(sampler="tpe")``, which is that sampler with ``constant_liar`` and
  ``n_startup_trials = max(3, min(10, trials // 5))``), proposing every label itself
  (``sample_within_limits=False``: nothing of nas's in the draw; a draw over the MACs limit is recorded infeasible
  and trains nothing, which a plain user's objective would have to arrange itself; a repeated architecture is
  answered from the stored result, which a plain objective would train again), no early stopping, and
  ``--tpe-factor`` (3) times as many trials as the other arms;
* ``evolution``: nas's default search: the ``evolution`` sampler, no early stopping (``pruner=None``, the default),
  its children starting from their parents' weights (``budget.inherit_epochs``'s default with this sampler, since
  2026-12-07: ``epochs``), its first population spread over the MACs axis, cheapest first (the sampler's ``init``
  default since 2026-12-07, second stop: ``"spread"``; ``evolution@init=random`` is the arm without it);
* ``pareto``: the same with nas's early stopping, ``pruner="pareto"`` with its default rule.
  (``--arms`` takes further ``pareto:<rule>`` arms: the pruner with another rule of ``nas.rungs.RULES``, and
  ``pareto:reach``/``pareto:noreach`` (also after a rule, ``pareto:margin:reach``): its ``reach`` option on or
  off; and any
  arm but ``tpe`` followed by ``+inherit<N>``, e.g. ``evolution+inherit3``: the same with ``budget.inherit_epochs``
  N, children of trained parents starting from their weights and training N epochs; ``+inherit0``: every trial
  from scratch, the default before 2026-12-07; and, last, options of the ``evolution`` sampler: ``@pop<N>``, its
  ``population_size`` N (its random first trials and parent pool; the default at 15 trials is 4), or
  ``@<option>=<value>``, e.g. ``evolution@init=spread``.)

Each run is one ``nas.search`` over bench_fashion.py's ``families`` space (28x28x1, 10 classes) on
``--train``/``--val`` Fashion-MNIST images, objectives accuracy and MACs with ``max_macs`` ``--max-macs``,
``--epochs`` epochs per trial (batch 64, cosine schedule), one local worker training at a time, on an SQLite file
in a temporary folder. Runs go ``--jobs`` at a time (default 2), each pinned to a core of its own
(``sched_setaffinity``, inherited by its worker process; TensorFlow and OpenMP told to use one thread), so every
arm's trials train on one core with nothing else of the benchmark on it; runs start seed by seed, TPE first.

A trial's *seconds* are its recorded duration (start to end in the storage: sampling, data, build, training,
the rung checks, evaluation), what the user pays for it; a trial over the limit costs its few milliseconds.
Per seed the search's course is (seconds so far, hypervolume so far) after each trial, the hypervolume being that
of (final validation accuracy, MACs / limit) of the feasible completed trials (``bench_fashion.hypervolume``).
Reported per seed and as medians: each arm's final hypervolume, seconds, epochs and wall time; for ``evolution``
and ``pareto``: the seconds (and epochs) after which the arm first reached TPE's final hypervolume, as a share
of TPE's seconds (epochs), and the same for TPE's hypervolume after a third of its seconds; the hypervolume of the
arm minus TPE's at equal seconds (at 1/4, 1/2 and all of the arm's seconds); and ``pareto`` against
``evolution``: seconds ratio and final hypervolume difference, against the spread of ``evolution``'s final
hypervolume over seeds. Per arm also the share of its seconds spent on trials that added no hypervolume when they
ended (``idle_share``): the most any early stopping could have saved in that search, stopping exactly those trials
at no cost. Under each comparison, the per-seed differences paired over seeds: their median, on how many seeds they
are above 0, and the two-sided Wilcoxon signed-rank p-value (with 4 seeds it cannot fall below 0.125: 8 seeds or
more are needed for p < 0.05).

Held out: the hypervolumes above are of validation accuracies, the numbers each search chose on; with 1,000
validation images an accuracy's standard error is about 0.013, as large as many differences between arms, and a
search of more trials keeps more maxima of noise. So each run also values the front it hands its user (the
validation front: validation accuracy against MACs) at its architectures' accuracy on ``--test`` images of
Fashion-MNIST's test file (t10k), which nas never reads, from the weights each trial saved (their SHA-256 checked,
and each one's validation accuracy recomputed from them against the recorded one): the *held-out hypervolume*,
after each trial and at the end, the same comparisons against TPE on it, and the *optimism* of the front (its
members' validation minus held-out accuracy).

Run: `.venv/bin/python benchmarks/bench_plain_tpe.py [--quick] [--seeds 4] [--first-seed 0] [--trials 15]
[--tpe-factor 3] [--epochs 9] [--test 5000] [--jobs 2] [--arms tpe,evolution,pareto]` (needs the Debian package
`dataset-fashion-mnist`; about 100 minutes on the 2 cores of the machine of BENCHMARKS.md with the defaults).
With ``--results FILE`` every run's result (its per-trial course and settings) is also written to FILE;
``--from-results FILE [FILE ...]`` trains nothing and prints the report of such files, their seeds pooled: runs of
seeds 0-3 and of ``--first-seed 4`` read together give the 8-seed report.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BASE_ARMS = ("tpe", "evolution", "pareto")


def arm_strategy(arm: str) -> tuple[object, object, bool, int | None]:
    """(sampler, pruner, sample_within_limits, inherit_epochs: None for the default) of an arm."""
    arm, *extras = arm.split("@")
    options: dict[str, object] = {}
    for extra in extras:  # @pop<N> or @<option>=<value>: options of the evolution sampler
        name, eq, value = extra.partition("=")
        if arm.startswith("tpe") or not (eq or (name.startswith("pop") and name[3:].isdigit())):
            raise SystemExit(f"--arms: {arm}@{extra}: @pop<N> or @<option>=<value> (options of the evolution "
                             f"sampler) end an evolution or pareto arm")
        if not eq:
            name, value = "population_size", name[3:]
        options[name] = int(value) if value.isdigit() else value
    base, _, inherit = arm.partition("+inherit")
    epochs = None
    if _:
        if base == "tpe" or not inherit.isdigit():
            raise SystemExit(f"--arms: {arm!r}: +inherit<N> (N epochs, N >= 0) follows evolution or pareto arms")
        epochs = int(inherit)
    sampler: object = {"name": "evolution", "options": options} if options else "evolution"
    if base == "tpe":
        return "tpe", None, False, None
    if base == "evolution":
        return sampler, None, True, epochs
    if base == "pareto":
        return sampler, "pareto", True, epochs
    if base.startswith("pareto:"):
        pruner_options: dict[str, object] = {}
        for token in base.split(":")[1:]:  # a rule of nas.rungs.RULES, reach or noreach
            if token in ("reach", "noreach"):
                pruner_options["reach"] = token == "reach"
            else:
                pruner_options["rule"] = token
        return sampler, {"name": "pareto", "options": pruner_options}, True, epochs
    raise SystemExit(f"--arms: unknown arm {arm!r} (tpe, evolution, pareto or pareto:<rule>[:reach|:noreach], the "
                     f"last three with an optional +inherit<N>, then @pop<N> or @<option>=<value>)")


def slug(arm: str) -> str:
    """An arm's name as a file name."""
    return arm.replace(":", "-").replace("+", "-").replace("@", "-").replace("=", "-")


def run_one(arm: str, seed: int, args: argparse.Namespace, folder: str) -> dict:
    """One search, in this process (pinned by the caller). Returns its per-trial course."""
    from bench_fashion import SPACES, hypervolume

    import nas

    sampler, pruner, within, inherit = arm_strategy(arm)
    trials = args.trials * (args.tpe_factor if arm == "tpe" else 1)
    space = {"name": "families", "options": SPACES["families"]}
    data = {"name": "fashion_mnist", "train_samples": args.train, "val_samples": args.val}
    t = time.perf_counter()
    study = nas.search(space, data,
                       goal=nas.Goal(objectives=("accuracy", "macs"), constraints={"max_macs": args.max_macs}),
                       strategy=nas.Strategy(n_trials=trials, sampler=sampler, pruner=pruner, seed=seed,
                                             sample_within_limits=within,
                                             budget=nas.Budget(epochs=args.epochs, batch_size=64, seed=seed,
                                                               inherit_epochs=None if inherit is None
                                                               else min(inherit, args.epochs))),
                       run=nas.Run(study="s", storage=Path(folder) / f"{slug(arm)}-{seed}.db",
                                   backend=nas.Local(n_workers=1)),
                       verbose=False)
    wall = time.perf_counter() - t
    records = {r.number: r for r in study.trials}
    held_out, recheck = held_out_accuracy(study, args.test)
    course, seconds, epochs, points = [], 0.0, 0, []
    for ft in sorted(study.optuna_study.trials, key=lambda x: (x.datetime_complete or x.datetime_start, x.number)):
        r = records[ft.number]
        if ft.datetime_start is not None and ft.datetime_complete is not None:
            seconds += (ft.datetime_complete - ft.datetime_start).total_seconds()
        epochs += r.trained_epochs or 0
        if r.status in ("ok", "reused") and "accuracy" in r.metrics:
            points.append((float(r.metrics["accuracy"]), float(r.metrics["macs"]), held_out[r.key]))
        course.append((seconds, epochs, hypervolume([p[:2] for p in points], args.max_macs),
                       held_out_hv(points, args.max_macs)))
    front = val_front(points, args.max_macs)
    counts = study.counts()
    return {"arm": arm, "seed": seed, "trials": trials, "wall": wall, "course": course,
            "hv": course[-1][2] if course else 0.0, "test_hv": course[-1][3] if course else 0.0,
            "optimism": [a - h for a, _, h in front], "recheck": recheck, "seconds": seconds, "epochs": epochs,
            "settings": {"trials": args.trials, "tpe_factor": args.tpe_factor, "epochs": args.epochs,
                         "train": args.train, "val": args.val, "max_macs": args.max_macs, "test": args.test},
            "pruned": counts["pruned"], "infeasible": sum(r.status == "infeasible" for r in study.trials),
            "reused": sum(r.status == "reused" for r in study.trials)}


def held_out_images(n: int) -> tuple:
    """The first ``n`` images of Fashion-MNIST's test file (t10k), scaled as nas scales the training file's: images
    no search of nas ever trains or validates on (``data='fashion_mnist'`` reads the training file only)."""
    import numpy as np

    from nas.data import FASHION_MNIST_DIR, _read_idx

    x = _read_idx(FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz", 2051, 3)[:n, ..., None].astype(np.float32) / 255.0
    y = _read_idx(FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz", 2049, 1)[:n].astype(np.int64)
    return x, y


def held_out_accuracy(study: object, n: int) -> tuple[dict, float]:
    """Each evaluated architecture's accuracy on ``n`` held-out images, from the weights its trial saved (SHA-256
    checked), by spec key (a reused trial is its architecture's), and the largest difference between the recorded
    validation accuracy and the one recomputed from those weights (a check that the weights are the trial's)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from nas.build import build_model
    from nas.data import load_data
    from nas.export import _verified_weights

    tf.get_logger().setLevel("ERROR")  # predict on one model after another: TensorFlow's retracing notes
    x, y = held_out_images(n)
    data = load_data(study.config.data)
    out, recheck = {}, 0.0
    for r in study.trials:
        if r.status != "ok" or "accuracy" not in r.metrics or r.key in out:
            continue
        model = build_model(r.spec, bn_momentum=study.budget.bn_momentum)
        model.load_weights(_verified_weights(r))
        assert tuple(r.spec.input_shape) == tuple(x.shape[1:]), (r.spec.input_shape, x.shape)
        out[r.key] = float(np.mean(np.argmax(model.predict(x, batch_size=256, verbose=0), -1) == y))
        val = float(np.mean(np.argmax(model.predict(data.x_val, batch_size=256, verbose=0), -1) == data.y_val))
        recheck = max(recheck, abs(val - float(r.metrics["accuracy"])))
        keras.backend.clear_session()
    return out, recheck


def val_front(points: list, max_macs: float) -> list:
    """The (validation accuracy, MACs, held-out accuracy) points a user keeps: those within the limit on the front
    of validation accuracy against MACs (``nas.ranking.pareto_mask``)."""
    import numpy as np

    from nas.ranking import pareto_mask

    inside = [p for p in points if p[1] <= max_macs]
    if not inside:
        return []
    on = pareto_mask(np.array([p[:2] for p in inside]), ("maximize", "minimize"))
    return [p for p, keep in zip(inside, on, strict=True) if keep]


def held_out_hv(points: list, max_macs: float) -> float:
    """The hypervolume of the validation front's architectures valued at their held-out accuracy: what the front
    a search hands its user is worth on images it never chose on."""
    from bench_fashion import hypervolume

    return hypervolume([(h, m) for _, m, h in val_front(points, max_macs)], max_macs)


def hv_at(course: list, seconds: float, k: int = 2) -> float:
    """Hypervolume of a search after its last trial that ended within ``seconds`` (0 before any); ``k`` 3: the
    held-out one (which can fall when a new trial displaces a front member)."""
    return next((step[k] for step in reversed(course) if step[0] <= seconds + 1e-9), 0.0)


def reach(course: list, target: float, k: int = 2) -> tuple[float, int] | None:
    """(seconds, epochs) after which a search first reached ``target`` (None: never); ``k`` 3: held-out."""
    return next(((step[0], step[1]) for step in course if step[k] >= target - 1e-12), None)


def idle_share(course: list) -> float:
    """The share of a search's seconds spent on trials that added no hypervolume when they ended: what an oracle
    pruner, stopping exactly those trials at no cost, could have saved at most (stopped, or over the limit, or
    dominated by the finished trials then)."""
    idle, before = 0.0, (0.0, 0, 0.0)
    for step in course:
        if step[2] <= before[2] + 1e-12:
            idle += step[0] - before[0]
        before = step
    return idle / course[-1][0] if course and course[-1][0] > 0 else 0.0


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def quart(xs: list[float], fmt: str = ".3f") -> str:
    if len(xs) < 2:
        return format(med(xs), fmt)
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return f"{format(q[1], fmt)} [{format(q[0], fmt)}, {format(q[2], fmt)}]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 4 trials (TPE 12) of 3 epochs on 600/300 images")
    parser.add_argument("--seeds", type=int, default=None, help="how many seeds (default 4; --quick 1)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=None, help="trials of the nas arms (default 15)")
    parser.add_argument("--tpe-factor", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--train", type=int, default=None)
    parser.add_argument("--val", type=int, default=None)
    parser.add_argument("--max-macs", type=float, default=1.5e6)
    parser.add_argument("--test", type=int, default=None,
                        help="held-out images from Fashion-MNIST's test file (default 5000; --quick 1000)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, each pinned to a core of its own")
    parser.add_argument("--arms", default=",".join(BASE_ARMS))
    parser.add_argument("--results", help="also write every run's result (its per-trial course) to this JSON file")
    parser.add_argument("--from-results", nargs="+", metavar="FILE",
                        help="train nothing: print the report of the runs in these --results files, their seeds "
                             "pooled (e.g. two runs of different --first-seed)")
    parser.add_argument("--one", nargs=3, metavar=("ARM", "SEED", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    seeds = args.seeds or (1 if args.quick else 4)
    args.trials = args.trials or (4 if args.quick else 15)
    args.epochs = args.epochs or (3 if args.quick else 9)
    args.train = args.train or (600 if args.quick else 2000)
    args.val = args.val or (300 if args.quick else 1000)
    args.test = args.test or (1000 if args.quick else 5000)
    if args.from_results:
        results, seeds_run, arms = pooled(args.from_results, args)
        report(results, arms, seeds_run, args, args.jobs)
        return
    if args.one:
        arm, seed, out = args.one
        Path(out).write_text(json.dumps(run_one(arm, int(seed), args, str(Path(out).parent))))
        return
    arms = args.arms.split(",")
    for arm in arms:
        arm_strategy(arm)
    cores = sorted(os.sched_getaffinity(0))
    jobs = max(1, min(args.jobs, len(cores)))
    # seed by seed, TPE (the longest) first: whatever else shares the machine meets every arm alike
    tasks = [(arm, seed) for seed in range(args.first_seed, args.first_seed + seeds)
             for arm in sorted(arms, key=lambda a: a != "tpe")]
    forwarded = ["--trials", str(args.trials), "--tpe-factor", str(args.tpe_factor), "--epochs", str(args.epochs),
                 "--train", str(args.train), "--val", str(args.val), "--max-macs", str(args.max_macs),
                 "--test", str(args.test)]
    results: dict[tuple[str, int], dict] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        running: dict[int, tuple[subprocess.Popen, str, int, Path]] = {}
        while tasks or running:
            for slot in range(jobs):
                if slot not in running and tasks:
                    arm, seed = tasks.pop(0)
                    out = Path(folder) / f"{slug(arm)}-{seed}.json"
                    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
                           "OMP_NUM_THREADS": "1"}
                    cmd = [sys.executable, str(Path(__file__).resolve()), *forwarded, "--one", arm, str(seed),
                           str(out)]
                    proc = subprocess.Popen(cmd, env=env,
                                            preexec_fn=(lambda c=cores[slot]: os.sched_setaffinity(0, {c})))
                    running[slot] = (proc, arm, seed, out)
            time.sleep(1)
            for slot, (proc, arm, seed, out) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[slot]
                if proc.returncode != 0 or not out.exists():
                    raise SystemExit(f"run {arm} seed {seed} failed with exit code {proc.returncode}")
                r = json.loads(out.read_text())
                results[(arm, seed)] = r
                print(f"seed {seed} {arm:<14} trials {r['trials']:>3} HV {r['hv']:.4f} held-out {r['test_hv']:.4f} "
                      f"seconds {r['seconds']:7.0f} "
                      f"epochs {r['epochs']:>4} stopped {r['pruned']:>3} infeasible {r['infeasible']:>3} "
                      f"reused {r['reused']:>2} wall {r['wall']:.0f} s (core {cores[slot]}, "
                      f"{(time.perf_counter() - t0) / 60:.1f} min)", flush=True)
    if args.results:
        Path(args.results).write_text(json.dumps([results[k] for k in sorted(results)]))
    report(results, arms, list(range(args.first_seed, args.first_seed + seeds)), args, jobs)


def pooled(files: list[str], args: argparse.Namespace) -> tuple[dict, list[int], list[str]]:
    """The runs of several ``--results`` files: (results by (arm, seed), seeds, arms in the usual order). Every arm
    must have run every seed, once, under the same settings; ``args`` takes the runs' settings (a file written
    before the settings were recorded is read with the command line's)."""
    results: dict[tuple[str, int], dict] = {}
    settings: dict[str, object] = {}
    for name in files:
        for r in json.loads(Path(name).read_text()):
            key = (r["arm"], r["seed"])
            if key in results:
                raise SystemExit(f"--from-results: {name}: arm {r['arm']} seed {r['seed']} is in an earlier file too")
            for field, value in r.get("settings", {}).items():
                if settings.setdefault(field, value) != value:
                    raise SystemExit(f"--from-results: {name}: {field} {value} where an earlier run had "
                                     f"{settings[field]}: runs of different settings do not pool")
            results[key] = r
    for field, value in settings.items():
        setattr(args, field, value)
    seeds = sorted({s for _, s in results})
    arms = sorted({a for a, _ in results}, key=lambda a: (a not in BASE_ARMS, BASE_ARMS.index(a) if a in BASE_ARMS
                                                          else 0, a))
    missing = [f"{a} seed {s}" for a in arms for s in seeds if (a, s) not in results]
    if missing:
        raise SystemExit(f"--from-results: no run of {', '.join(missing)}: every arm must have run every seed")
    return results, seeds, arms


def paired(diffs: list[float]) -> str:
    """Median of per-seed differences, how many above 0, and the two-sided Wilcoxon signed-rank p-value."""
    from scipy.stats import wilcoxon

    above = sum(d > 0 for d in diffs)
    # one seed, or no difference at all: no test
    p = format(wilcoxon(diffs).pvalue, ".3f") if len(diffs) > 1 and any(d != 0 for d in diffs) else "-"
    return f"median {med(diffs):+.4f}, above 0 on {above} of {len(diffs)}, Wilcoxon signed-rank p = {p}"


def report(results: dict, arms: list[str], seeds: list[int], args: argparse.Namespace, jobs: int) -> None:
    import nas.rungs
    from nas.engine.components import rung_options

    print()
    print(f"# Fashion-MNIST {args.train}/{args.val} images, families space, accuracy vs MACs <= {args.max_macs:,.0f}, "
          f"{args.epochs} epochs per trial, one worker; tpe: {args.trials * args.tpe_factor} trials, the others "
          f"{args.trials}; seeds {seeds[0]}-{seeds[-1]}; {jobs} runs at a time, each on a core of its own; pruner "
          f"rule {rung_options({})['rule']} (rules known: {', '.join(nas.rungs.RULES)}), reach "
          f"{'on' if rung_options({})['reach'] else 'off'} by default")
    print("| arm | trials | HV median [quartiles] | HV per seed | seconds (median) | epochs (median) | "
          "stopped | wall s (median) |")
    print("| --- | ---: | --- | --- | ---: | ---: | ---: | ---: |")
    for arm in arms:
        rs = [results[(arm, s)] for s in seeds]
        print(f"| {arm} | {rs[0]['trials']} | {quart([r['hv'] for r in rs], '.4f')} | "
              f"{', '.join(format(r['hv'], '.4f') for r in rs)} | {med([r['seconds'] for r in rs]):.0f} | "
              f"{med([r['epochs'] for r in rs]):.0f} | {med([r['pruned'] for r in rs]):.0f} | "
              f"{med([r['wall'] for r in rs]):.0f} |")
    print()
    print("Seconds of trials that added no hypervolume when they ended, share of the arm's (what stopping could save "
          "at most, had it stopped exactly those trials at no cost):")
    print("| arm | per seed | median |")
    print("| --- | --- | ---: |")
    for arm in arms:
        shares = [idle_share(results[(arm, s)]["course"]) for s in seeds]
        print(f"| {arm} | {', '.join(f'{x:.2f}' for x in shares)} | {med(shares):.2f} |")
    print()
    print(f"Held out: each arm's final front (validation accuracy against MACs) valued at its architectures' accuracy "
          f"on {args.test} images of Fashion-MNIST's test file, from the weights each trial saved; optimism = "
          f"validation minus held-out accuracy of the front's members (largest |validation accuracy recomputed from "
          f"the saved weights - recorded| over all runs: "
          f"{max(r['recheck'] for r in results.values()):.4f}):")
    print("| arm | held-out HV median [quartiles] | held-out HV per seed | optimism of the front, median per seed |")
    print("| --- | --- | --- | --- |")
    for arm in arms:
        rs = [results[(arm, s)] for s in seeds]
        optimism = [med(r["optimism"]) for r in rs]
        print(f"| {arm} | {quart([r['test_hv'] for r in rs], '.4f')} | "
              f"{', '.join(format(r['test_hv'], '.4f') for r in rs)} | {', '.join(f'{x:+.4f}' for x in optimism)} |")
    if ("tpe", seeds[0]) in results:
        against_tpe(results, [a for a in arms if a != "tpe"], seeds)
        against_tpe(results, [a for a in arms if a != "tpe"], seeds, k=3)
    # the arms against the first evolution arm without early stopping (``evolution``, or e.g. evolution+inherit0)
    base = next((a for a in arms if a == "evolution"), next((a for a in arms if a.startswith("evolution")), None))
    if base is not None and len([a for a in arms if a != "tpe"]) > 1:
        print()
        evo = [results[(base, s)] for s in seeds]
        lo, hi = min(r["hv"] for r in evo), max(r["hv"] for r in evo)
        print(f"Against the {base} arm (no early stopping; budget.inherit_epochs its default unless the arm names "
              f"it), same trials ({base}'s HV {lo:.4f}-{hi:.4f} over seeds):")
        print(f"| arm | seconds / {base}'s per seed | median | HV - {base}'s per seed | median HV within "
              f"{base}'s spread | HV - {base}'s at the arm's seconds per seed | median | held-out HV - {base}'s "
              f"per seed |")
        print("| --- | --- | ---: | --- | --- | --- | ---: | --- |")
        pairs = []
        for arm in [a for a in arms if a not in ("tpe", base)]:
            rs = [results[(arm, s)] for s in seeds]
            ratios = [r["seconds"] / e["seconds"] for r, e in zip(rs, evo)]
            diffs = [r["hv"] - e["hv"] for r, e in zip(rs, evo)]
            equal = [r["hv"] - hv_at(e["course"], r["seconds"]) for r, e in zip(rs, evo)]
            held = [r["test_hv"] - e["test_hv"] for r, e in zip(rs, evo)]
            m = med([r["hv"] for r in rs])
            print(f"| {arm} | {', '.join(f'{x:.2f}' for x in ratios)} | {med(ratios):.2f} | "
                  f"{', '.join(f'{x:+.4f}' for x in diffs)} | {'yes' if m >= lo else 'no'} "
                  f"({m:.4f}) | {', '.join(f'{x:+.4f}' for x in equal)} | {med(equal):+.4f} | "
                  f"{', '.join(f'{x:+.4f}' for x in held)} |")
            pairs.append((arm, diffs, held))
        print()
        for arm, diffs, held in pairs:
            print(f"Paired over seeds, {arm} against {base}: final HV: {paired(diffs)}; held-out HV: {paired(held)}")


def against_tpe(results: dict, arms: list[str], seeds: list[int], k: int = 2) -> None:
    """The table of each arm against the TPE run of the same seed; ``k`` 3: on the held-out hypervolumes."""
    final = "hv" if k == 2 else "test_hv"
    print()
    print(f"Against TPE without stopping{', held out' if k == 3 else ''} (per seed; share = the arm's seconds, or "
          f"epochs, when it first reached TPE's final{' held-out' if k == 3 else ''} hypervolume / TPE's seconds, or "
          f"epochs, in all; 'never' = not reached):")
    print("| arm | seconds share per seed | median | epochs share per seed | to TPE's HV at 1/3 of its seconds: "
          "seconds share per seed | HV - TPE's at equal seconds (1/4, 1/2, all of the arm's) per seed | "
          "ahead at equal seconds |")
    print("| --- | --- | ---: | --- | --- | --- | ---: |")
    finals = []
    for arm in arms:
        shares, eshares, thirds, diffs, ahead = [], [], [], [], 0
        for s in seeds:
            r, t = results[(arm, s)], results[("tpe", s)]
            got = reach(r["course"], t[final], k)
            shares.append(None if got is None else got[0] / t["seconds"])
            early = reach(r["course"], hv_at(t["course"], t["seconds"] / 3, k), k)
            thirds.append(None if early is None else early[0] / t["seconds"])
            eshares.append(None if got is None else got[1] / max(t["epochs"], 1))
            d = [hv_at(r["course"], f * r["seconds"], k) - hv_at(t["course"], f * r["seconds"], k)
                 for f in (0.25, 0.5, 1.0)]
            diffs.append(d)
            ahead += min(d) >= 0 and d[-1] > 0  # never behind, ahead at the end
        # a seed that never reached it counts as infinitely late
        median_share = statistics.median([float("inf") if x is None else x for x in shares])
        never = sum(x is None for x in shares)
        print(f"| {arm} | {', '.join('never' if x is None else f'{x:.3f}' for x in shares)} | "
              f"{f'never on {never} seeds' if median_share == float('inf') else format(median_share, '.3f')} | "
              f"{', '.join('never' if x is None else f'{x:.3f}' for x in eshares)} | "
              f"{', '.join('never' if x is None else f'{x:.3f}' for x in thirds)} | "
              f"{'; '.join(', '.join(f'{x:+.3f}' for x in d) for d in diffs)} | {ahead} of {len(seeds)} |")
        finals.append((arm, [results[(arm, s)][final] - results[("tpe", s)][final] for s in seeds],
                       [d[-1] for d in diffs]))
    print()
    for arm, final_diffs, equal in finals:
        print(f"Paired over seeds{', held out' if k == 3 else ''}, {arm}: final HV - TPE's: {paired(final_diffs)}; "
              f"HV - TPE's at the arm's seconds: {paired(equal)}")


if __name__ == "__main__":
    main()
