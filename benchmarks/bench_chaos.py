"""Fault injection: a real multi-worker search on digits, killed again and again, resumed after each kill.

    .venv/bin/python benchmarks/bench_chaos.py [--kills 30] [--trials 24] [--postgres URL] [--seed 0]

Part 1 (SQLite, local backend, 2 worker processes recycled every 3 trials): a driver process resumes the study;
after a random wait it is hit by one of: SIGKILL of the driver's whole process group (driver and workers),
SIGINT of the group (a Ctrl-C in a terminal), SIGKILL of one worker only (the driver goes on), SIGINT of one
worker. Then the next driver resumes. Part 2 (PostgreSQL, when a URL is given): two `nas worker` processes on
the study; one of them is SIGKILLed or SIGINTed at a random moment and replaced.

Half the kills land at a random moment; the others wait (polling the storage every 10 ms) until a victim's
trial is in a chosen phase: claimed (owner written, no spec yet), training, saving weights (file being written,
not yet recorded), recording (result written, trial not finished). After every kill it checks that no trial
finished before was lost or changed (state, values, spec key, weights file checksum), and at the end that the
study has exactly its target of finished trials, none running or queued, and that no architecture was trained
twice to completion. Each kill is counted by the phase its victim was in.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import optuna

import nas
from nas.engine.records import file_sha256

SPACE = {"space": "conv", "options": {"stages": [1, 3], "depth": [1, 2], "widths": [4, 8, 12, 16, 24, 32],
                                      "kernels": [3, 5], "hidden": [0, 1], "dropouts": [0.0, 0.1]}}
BUDGET = {"epochs": 4, "batch_size": 32}
PHASES = ("claimed", "training", "saving weights", "recording")


def finished(study: optuna.Study) -> dict[int, tuple]:
    """Finished trials: number -> (state, values, spec key, weights checksum if any)."""
    out = {}
    for t in study.get_trials(deepcopy=False):
        if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
            w = t.user_attrs.get("weights")
            sha = file_sha256(w) if w and Path(w).exists() else None
            out[t.number] = (t.state.name, tuple(t.values or ()), t.user_attrs.get("spec_key"), sha,
                             t.user_attrs.get("weights_sha256"))
    return out


def phase(study: optuna.Study, pids: set[int], artifacts: Path) -> str:
    """What the victim processes' trials are doing: claimed (owner written, no spec yet), training, saving
    weights (the file is being written, not yet recorded), recording (result written, trial not finished), or
    between trials (starting, importing TensorFlow, exiting)."""
    found = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if t.user_attrs.get("worker", {}).get("pid") not in pids:
            continue
        a = t.user_attrs
        if "spec" not in a:
            found.append("claimed")
        elif "status" in a:
            found.append("recording")
        elif list(artifacts.glob(f"*.trial-{t.number}.*.weights.h5")):
            found.append("saving weights")
        else:
            found.append("training")
    return min(found, key=lambda p: (p == "training", p)) if found else "between trials"


def aim(study: optuna.Study, pids, artifacts: Path, rng: random.Random, alive) -> str:
    """Wait for a moment to strike: half the time a random one, else until a victim's trial is in a chosen
    narrow phase (polled every 10 ms, for up to 20 s). Returns the phase found at the moment of the kill."""
    if rng.random() < 0.5:
        deadline = time.time() + moment(rng)
        while time.time() < deadline and alive():
            time.sleep(0.05)
        return phase(study, pids(), artifacts)
    wanted = rng.choice(PHASES)
    deadline = time.time() + 20
    while time.time() < deadline and alive():
        now = phase(study, pids(), artifacts)
        if now == wanted:
            return now
        time.sleep(0.01)
    return phase(study, pids(), artifacts)


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.add(c)
            todo.append(c)
    return out


def check_kept(before: dict[int, tuple], study: optuna.Study) -> int:
    """Finished trials lost or changed since ``before``."""
    now = finished(study)
    return sum(1 for n, v in before.items() if now.get(n) != v)


def moment(rng: random.Random) -> float:
    """A random wait: often short (the kill lands while processes start or claim), often long (while training,
    saving or recording)."""
    return rng.uniform(0.3, 3.0) if rng.random() < 0.4 else rng.uniform(3.0, 15.0)


def raise_target(url: str, name: str, by: int) -> int:
    """More trials to run (the study finished before all kills were made); returns the new target."""
    from nas.engine.config import read_config, write_config

    study = optuna.load_study(study_name=name, storage=url)
    config = read_config(study)
    write_config(study, config.replace(n_trials=config.n_trials + by))
    return config.n_trials + by


def local_part(url: str, args: argparse.Namespace, rng: random.Random) -> dict:
    code = (f"import nas; nas.load_study('chaos', {url!r}).resume(verbose=False)")
    study = optuna.load_study(study_name="chaos", storage=url)
    artifacts = Path(nas.load_study("chaos", url).config.artifacts)
    target = args.trials
    kills: Counter[str] = Counter()
    phases: Counter[str] = Counter()
    lost = 0
    drivers = 0
    t0 = time.perf_counter()
    while sum(kills.values()) < args.kills:
        before = finished(study)
        drivers += 1
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        while proc.poll() is None and sum(kills.values()) < args.kills:
            how = rng.choice(["SIGKILL group", "SIGINT group", "SIGKILL worker", "SIGINT worker"])
            found = aim(study, lambda: descendants(proc.pid), artifacts, rng, lambda: proc.poll() is None)
            if proc.poll() is not None:
                break
            workers = descendants(proc.pid)
            if how.endswith("worker") and workers:
                busy = [p for p in sorted(workers) if phase(study, {p}, artifacts) == found]
                victim = (busy or sorted(workers))[0]
                phases[phase(study, {victim}, artifacts)] += 1
                os.kill(victim, signal.SIGKILL if how.startswith("SIGKILL") else signal.SIGINT)
                kills[how] += 1
                continue  # the driver goes on and replaces the worker
            phases[found] += 1
            os.killpg(proc.pid, signal.SIGKILL if how.startswith("SIGKILL") else signal.SIGINT)
            kills[how.replace("worker", "group")] += 1
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        time.sleep(0.5)
        lost += check_kept(before, study)
        if nas.load_study("chaos", url).counts()["done"] >= target and sum(kills.values()) < args.kills:
            target = raise_target(url, "chaos", max(4, args.trials // 3))
    before = finished(study)
    final = nas.load_study("chaos", url)
    final.resume(verbose=False)  # no more kills: it must end with exactly n_trials
    lost += check_kept(before, study)
    return {"part": "SQLite, local backend, 2 workers", "kills": kills, "phases": phases, "lost": lost,
            "drivers": drivers, "wall": time.perf_counter() - t0, **tally(final, target)}


def postgres_part(url: str, args: argparse.Namespace, rng: random.Random, folder: Path) -> dict:
    name = f"chaos-{os.getpid()}"
    nas.create_study(SPACE, "digits", n_trials=args.trials, sampler="random", seed=args.seed, budget=BUDGET,
                     storage=url, study_name=name, artifacts=folder / "pg-art", max_retries=50, max_failures=500,
                     verbose=False)
    study = optuna.load_study(study_name=name, storage=url)
    artifacts = folder / "pg-art"
    target = args.trials
    env = {**os.environ, "NAS_STORAGE": url, "NAS_ARTIFACTS": str(artifacts)}  # the folder given at creation
    workers: list[subprocess.Popen] = []
    kills: Counter[str] = Counter()
    phases: Counter[str] = Counter()
    lost = 0
    t0 = time.perf_counter()

    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "nas.cli", "worker", "--study", name], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while sum(kills.values()) < args.kills:
        if nas.load_study(name, url).counts()["done"] >= target:
            target = raise_target(url, name, max(4, args.trials // 3))
        workers = [w for w in workers if w.poll() is None] + [start() for _ in range(2 - len(
            [w for w in workers if w.poll() is None]))]
        before = finished(study)
        found = aim(study, lambda: {w.pid for w in workers if w.poll() is None}, artifacts, rng,
                    lambda: any(w.poll() is None for w in workers))
        alive = [w for w in workers if w.poll() is None]
        if not alive:
            continue
        busy = [w for w in alive if phase(study, {w.pid}, artifacts) == found]
        victim = (busy or alive)[0]
        how = rng.choice(["SIGKILL worker", "SIGINT worker"])
        phases[phase(study, {victim.pid}, artifacts)] += 1
        victim.send_signal(signal.SIGKILL if how.startswith("SIGKILL") else signal.SIGINT)
        victim.wait()
        kills[how] += 1
        lost += check_kept(before, study)
    before = finished(study)
    workers = [w for w in workers if w.poll() is None] + [start() for _ in range(2)]
    for w in workers:
        w.wait()
    lost += check_kept(before, study)
    return {"part": "PostgreSQL, two `nas worker` processes", "kills": kills, "phases": phases, "lost": lost,
            "drivers": None, "wall": time.perf_counter() - t0, **tally(nas.load_study(name, url), target)}


def tally(study: nas.Study, target: int) -> dict:
    c = study.counts()
    ok_keys = Counter(r.key for r in study.trials if r.status == "ok")
    failed = [r for r in study.trials if r.status == "failed"]
    return {"done": c["done"], "target": target, "running": c["running"], "waiting": c["waiting"],
            "failed": len(failed), "twice": sum(n - 1 for n in ok_keys.values() if n > 1),
            "reasons": Counter(("interrupted" if "interrupted" in (r.error or "") else
                                "died" if "died" in (r.error or "") or "killed" in (r.error or "") else
                                "no owner" if "no worker recorded" in (r.error or "") else
                                "heartbeat" if "heartbeats" in (r.error or "") else "other") for r in failed)}


def report(rows: list[dict]) -> None:
    for r in rows:
        ok = r["lost"] == 0 and r["twice"] == 0 and r["done"] == r["target"] and r["running"] == r["waiting"] == 0
        print(f"### {r['part']}: {'held' if ok else 'DID NOT HOLD'}\n")
        print(f"- kills: {sum(r['kills'].values())} ({', '.join(f'{k} {v}' for k, v in sorted(r['kills'].items()))})")
        print(f"- what the victim's trial was doing: {', '.join(f'{k} {v}' for k, v in sorted(r['phases'].items()))}")
        if r["drivers"] is not None:
            print(f"- drivers started (each a resume): {r['drivers']}, then one last resume without kills")
        print(f"- finished trials lost or changed by a kill: **{r['lost']}**")
        print(f"- architectures trained to completion twice: **{r['twice']}**")
        print(f"- final count: **{r['done']}/{r['target']}** finished, {r['running']} running, {r['waiting']} queued")
        print(f"- trials failed by kills (each re-run from its params): {r['failed']} "
              f"({', '.join(f'{k} {v}' for k, v in sorted(r['reasons'].items()))})")
        print(f"- wall time: {r['wall']:.0f} s\n")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--postgres", default=os.environ.get("NAS_TEST_POSTGRES_URL"),
                        help="a PostgreSQL URL for part 2 (default: NAS_TEST_POSTGRES_URL)")
    parser.add_argument("--quick", action="store_true", help="6 kills, 8 trials")
    args = parser.parse_args()
    if args.quick:
        args.kills, args.trials = 6, 8
    rng = random.Random(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/chaos.db"
        nas.create_study(SPACE, "digits", n_trials=args.trials, sampler="random", seed=args.seed, budget=BUDGET,
                         storage=url, study_name="chaos", max_retries=50, max_failures=500,
                         backend=nas.Local(n_workers=2, max_trials_per_worker=3), verbose=False)
        rows.append(local_part(url, args, rng))
        if args.postgres:
            rows.append(postgres_part(args.postgres, args, rng, Path(tmp)))
    print(f"Settings: {args.kills} kills per part; a study of {args.trials} trials (conv space on digits, "
          f"{BUDGET['epochs']} epochs each, random sampler, seed {args.seed}), its target raised by a third whenever "
          f"it finished before the kills were all made.\n")
    report(rows)
    if not args.postgres:
        print("PostgreSQL part not run: give --postgres URL or set NAS_TEST_POSTGRES_URL.")
    held = all(r["lost"] == 0 and r["twice"] == 0 and r["done"] == r["target"] for r in rows)
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
