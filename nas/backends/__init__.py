"""Backends run a study's trials; each is a small frozen object with its own options, stored with the study.

* :class:`Local` - worker processes on this machine (``n_workers``, ``max_trials_per_worker``);
* :class:`Ray` - Ray Tune on a local instance or a cluster (``address``, ``resources``, ``max_concurrent``,
  ``scheduler``);
* :class:`KerasTuner` - keras-tuner's own tuners (``tuner``, ``options``).

Every backend runs the same trial pipeline (``nas.engine.runner``) and writes the same records, so a study can
be inspected with any of them and resumed on the one it was made with (or another Optuna one: local <-> Ray).
The names ``"local"``, ``"ray"`` and ``"keras_tuner"`` stand for the backends with their default options.
"""

from __future__ import annotations

from typing import Any

from nas.backends.base import Backend
from nas.backends.keras_tuner import KerasTuner
from nas.backends.local import Local
from nas.backends.ray import Ray

__all__ = ["BACKENDS", "Backend", "KerasTuner", "Local", "Ray", "backend_of"]

BACKENDS: dict[str, type[Backend]] = {cls.kind: cls for cls in (Local, Ray, KerasTuner)}


def backend_of(value: Any) -> Backend:
    """A backend from itself, its name (default options) or its stored dict ``{"kind": ..., **options}``."""
    if isinstance(value, Backend):
        return value
    if isinstance(value, str):
        value = {"kind": value}
    if isinstance(value, dict) and value.get("kind") in BACKENDS:
        return BACKENDS[value["kind"]].from_dict(value)
    raise ValueError(f"`backend` must be one of {', '.join(repr(k) for k in BACKENDS)} or a backend object "
                     f"(nas.Local(...), nas.Ray(...), nas.KerasTuner(...)), but got backend={value!r}")
