"""Progress lines: one per finished trial, the same from every backend."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from optuna.trial import TrialState

from nas.engine import records
from nas.engine.claims import counts

__all__ = ["FINISHED", "line", "listened", "listening", "report_finished"]

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


def line(t: Any, done: int, target: int) -> str:
    """``[done/target] trial N status acc MACs params latency seconds spec-or-error``."""
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
    if "timings" in a and "total_s" in a["timings"]:
        parts.append(f"{a['timings']['total_s']:6.1f}s")
    if status in ("failed", "infeasible") and a.get("error"):
        parts.append(str(a["error"])[:100])
    elif "spec_str" in a:
        text = a["spec_str"]
        parts.append(text if len(text) <= 100 else text[:97] + "...")
    return "  ".join(parts)


def report_finished(trials: list[Any], reported: set[int], target: int, verbose: bool) -> list[Any]:
    """Print one line per trial finished since the last call (in trial order); returns those trials."""
    done = counts([t for t in trials if t.number in reported])["done"]
    new = []
    for t in trials:
        if t.state in FINISHED and t.number not in reported:
            reported.add(t.number)
            new.append(t)
            if t.state == TrialState.PRUNED or (t.state == TrialState.COMPLETE
                                                and t.user_attrs.get("status") != "infeasible"):
                done += 1
            if verbose:
                print(line(t, done, target), flush=True)
            for fn in list(_LISTENERS):
                fn(t)
    return new
