"""Progress lines, the same from every backend: one per finished trial (with an estimate of the time the search
has left), and one per epoch of a trial in training.

A worker records where a trial's training is after every epoch as its ``progress`` (the system attribute
``nas:progress``: the epoch budget, and per epoch so far the validation accuracy and the seconds since training
began; one small write per epoch). The driver, which reads the storage to follow the search anyway, prints from it
(:class:`Live`): workers on any machine reach it so. An epoch line is printed once, live while the trial trains or
from the record when the trial finished between two looks (fast epochs), always before the trial's finished line;
the last epoch has no line of its own, the finished line says it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from optuna.trial import TrialState

from nas.engine import records
from nas.engine.claims import counts

__all__ = ["FINISHED", "Live", "duration", "epoch_line", "line", "listened", "listening", "progress_attr", "starting"]

_LISTENERS: list[Callable[[Any], None]] = []  # called with each newly finished trial (callbacks, progress bars)


@contextlib.contextmanager
def listening(fn: Callable[[Any], None]) -> Iterator[None]:
    """While the block runs, ``fn(frozen_trial)`` is called for every trial the backend reports finished."""
    _LISTENERS.append(fn)
    try:
        yield
    finally:
        _LISTENERS.remove(fn)


def listened() -> bool:
    return bool(_LISTENERS)


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def duration(seconds: float) -> str:
    """``45 s``, ``3.5 min``, ``1.2 h``: a time to read at a glance."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def line(t: Any, done: int, target: int, left: str = "") -> str:
    """``[done/target] trial N status acc MACs params latency seconds spec-or-error`` (``left``: the search's
    estimated time left, after the seconds; ``from trial P's weights`` before the seconds when it inherited)."""
    a = records.attrs_of(t)
    status = a.get("status") or t.state.name.lower()
    acc = a.get("accuracy")
    if acc is None and t.intermediate_values:
        acc = t.intermediate_values[max(t.intermediate_values)]
    if acc is None and status == "pruned" and a.get("history"):
        acc = a["history"][-1]
    parts = [f"[{done:>3}/{target}] trial {t.number:>3} {status:<10}"]
    parts.append(f"acc {acc:.4f}" if acc is not None else " " * 10)
    if "macs" in a:
        parts.append(f"MACs {a['macs']:>12,}  params {a['params']:>10,}")
    if "latency_ms" in a:
        parts.append(f"{a['latency_ms']:.2f} ms")
    if status == "pruned" and "epochs" in a:
        parts.append(f"stopped after {a['epochs']} epoch{'s' if a['epochs'] != 1 else ''}")
    if isinstance(a.get("inherited"), dict):  # started from its parent's weights (budget.inherit_epochs)
        parts.append(f"from trial {a['inherited'].get('trial')}'s weights")
    if "timings" in a and "total_s" in a["timings"]:
        parts.append(f"{a['timings']['total_s']:6.1f}s")
    if left:
        parts.append(left)
    if status in ("failed", "infeasible") and a.get("error"):
        parts.append(str(a["error"])[:100])
    elif "spec_str" in a:
        text = a["spec_str"]
        parts.append(text if len(text) <= 100 else text[:97] + "...")
    return "  ".join(parts)


def starting(capacity: int, done: int, target: int, evaluated: bool) -> tuple[int, str]:
    """What a backend says when it starts its workers: how many it starts now (at most ``capacity``, no more than
    the trials left, at least one), and what each loads first (TensorFlow, unless an evaluator stands in for
    training)."""
    loads = "no TensorFlow: an evaluator" if evaluated else "TensorFlow loads in each: 5-60 s"
    return min(capacity, max(1, target - done)), loads


def progress_attr(epochs: int, accuracy: list[float], seconds: list[float]) -> dict[str, Any]:
    """The ``progress`` record of a trial in training: its epoch budget, and per epoch so far the validation
    accuracy and the seconds since training began."""
    return {"progress": {"epochs": int(epochs), "accuracy": [round(float(a), 4) for a in accuracy],
                         "seconds": [round(float(s), 1) for s in seconds]}}


def epoch_line(number: int, progress: dict[str, Any], i: int) -> str:
    """``trial 5: epoch 2/5  val acc 0.8100  (12.0 s/epoch, ~36 s left)`` for epoch ``i`` (0-based) of a
    trial's ``progress`` record: the time of that epoch, and the epochs left at that pace. The first epoch's time
    includes building the model and TensorFlow's tracing, so it gives no pace: its line says so."""
    epochs = int(progress["epochs"])
    seconds = [float(s) for s in progress["seconds"]]
    head = f"      trial {number:>3}: epoch {i + 1}/{epochs}  val acc {float(progress['accuracy'][i]):.4f}  "
    if i == 0:
        return head + f"({seconds[0]:.1f} s with the model's build)"
    per_epoch = seconds[i] - seconds[i - 1]
    return head + f"({per_epoch:.1f} s/epoch, ~{duration(per_epoch * (epochs - i - 1))} left)"


class Live:
    """What the driver of a search prints as it follows the storage (:meth:`update`, called with the study's
    trials each time it reads them): a line when a trial starts training, its epochs, and a line per finished
    trial, with the time the search has left estimated from the trials finished since this driver started."""

    def __init__(self, trials: list[Any], target: int, verbose: bool) -> None:
        self.target, self.verbose = target, verbose
        self.reported = {t.number for t in trials if t.state in FINISHED}
        self.done_at_start = counts(trials)["done"]
        self.started = time.perf_counter()
        self.epochs_shown: dict[int, int] = {}  # trial number -> epoch lines printed
        self.training: set[int] = set()  # trials whose start was printed

    def left(self, done: int) -> str:
        """``~3.5 min left`` from the pace of this run (empty before its first finished trial, and under a
        second)."""
        finished = done - self.done_at_start
        if finished <= 0 or done >= self.target:
            return ""
        left = (time.perf_counter() - self.started) / finished * (self.target - done)
        return f"~{duration(left)} left" if left >= 1 else ""

    def _epochs(self, t: Any, finished: bool) -> None:
        """Print the epoch lines of ``t`` not printed yet (a finished trial's last epoch excepted)."""
        progress = records.attr(t, "progress")
        if not isinstance(progress, dict):
            return
        seen = len(progress.get("accuracy") or [])
        upto = seen - 1 if finished else min(seen, int(progress["epochs"]) - 1)
        for i in range(self.epochs_shown.get(t.number, 0), upto):
            if self.verbose:
                print(epoch_line(t.number, progress, i), flush=True)
        self.epochs_shown[t.number] = max(self.epochs_shown.get(t.number, 0), upto)

    def update(self, trials: list[Any]) -> list[Any]:
        """Print what happened since the last call (in trial order); returns the trials newly finished."""
        done = counts([t for t in trials if t.number in self.reported])["done"]
        new = []
        for t in sorted(trials, key=lambda t: t.number):
            if t.state == TrialState.RUNNING:
                if t.number not in self.training and records.attr(t, "spec_str"):
                    self.training.add(t.number)  # its spec is on record before training starts
                    if records.attr(t, "progress") is None and self.verbose:
                        print(f"      trial {t.number:>3}: training {records.attr(t, 'spec_str')}", flush=True)
                self._epochs(t, finished=False)
            elif t.state in FINISHED and t.number not in self.reported:
                self._epochs(t, finished=True)
                self.reported.add(t.number)
                new.append(t)
                if t.state == TrialState.PRUNED or (t.state == TrialState.COMPLETE
                                                    and t.user_attrs.get("status") != "infeasible"):
                    done += 1
                if self.verbose:
                    print(line(t, done, self.target, self.left(done)), flush=True)
                for fn in list(_LISTENERS):
                    fn(t)
        return new

    def summary(self, trials: list[Any]) -> str:
        """The closing line of a run: trials by outcome and the wall time."""
        c = counts(trials)
        return (f"nas: {c['done']}/{self.target} finished ({c['complete']} complete, {c['pruned']} pruned), "
                f"{c['infeasible']} over budget, {c['failed']} failed, in {time.perf_counter() - self.started:.1f} s")
