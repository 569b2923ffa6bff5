"""Inherited weights: a child of the ``evolution`` sampler starts from its trained parent's weights.

With ``budget.inherit_epochs`` > 0, a trial the ``evolution`` sampler made by changing one label of a trained
parent (origin ``mutation``, ``neighbour`` or ``exploit``: the ``parent`` of its ``nas_evolution`` record) builds
its own network, then takes the parent's weights wherever a layer has the same name (nas names layers by their
place in the network): whole where the shapes agree, the overlapping leading slice where they differ (more or
fewer channels or units, another kernel size), batch-norm statistics included; the other weights keep their
fresh initialisation. It then trains ``inherit_epochs`` epochs (the learning-rate schedule spans those) instead
of ``epochs``. This is the plain form of Net2Net's and LEMONADE's warm start (Chen et al. 2016; Elsken et al.
2019), measured before it was built (``benchmarks/bench_inherit.py``): on 16 parent/child pairs of the
``families`` space, a child inheriting its parent's weights was 0.011 below the fresh child's 9-epoch accuracy
after 3 epochs (rank correlation 0.84 with it) and 0.016 above it after 9.

A function-preserving copy was measured against it and not adopted (:func:`_place`'s ``centred``: a kernel in
the middle of a larger one with a zero border, zero weights from input channels the parent did not have, as
Net2Net's widening): on the same 16 pairs it kept the parent's function where a child grew (a widened layer started
at the parent's 0.719 against 0.268) and its 3-epoch trainings were better (0.002 below the fresh 9-epoch accuracy
in the median against 0.012, paired p = 0.017), level after 9 epochs; in whole searches with ``inherit_epochs`` 9
(tuning seeds 100-102) it ended 0.002-0.003 below the leading copy on each seed.

What is recorded, so nothing is mixed unawares and a re-run takes the same decision:

- ``inherited`` (the system attribute ``nas:inherited``) on a trial that inherited: ``{"trial": parent number,
  "epochs": epochs trained, "share": share of its parameters taken from the parent}`` (the share once training
  has started);
- ``inherit_skipped`` on a trial whose parent could not give its weights: ``{"trial": ..., "reason": ...}``; it
  trains from scratch for ``epochs`` like any trial;
- a re-run of a trial whose worker died (``retry_of``) inherits from the parent the original recorded, or from
  none if the original trained from scratch.

An inheriting trial's early accuracy is far above a fresh training's at the same epoch, so the two are never
compared: the ``pareto`` pruner judges an inheriting trial at the rungs of its own ``inherit_epochs`` among the
other inheriting trials only (and a fresh one among fresh ones), and an inheriting trial reports no intermediate
values to Optuna's pruners or samplers. Its objective is its accuracy after this training; a network exported
from it was warm-started (retraining its spec from scratch for ``epochs`` gave 0.016 less in the measurement).

Security: the parent's weights are arrays (a Keras weights file: no code) read from the study's own artefact
folder, under the file name nas gave them (the stored path is never followed: only its file name, which must be
one of this study's weights files), after checking the SHA-256 recorded with the parent. A file that is missing
(a worker on another machine without the shared artefact folder) or differs is a skip with its reason, never an
error or a wrong start.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from nas.engine import records
from nas.engine.evolution import ATTR as PLAN_ATTR  # the sampler's record of what a trial was made from

__all__ = ["ORIGINS", "Unusable", "copy_weights", "model_arrays", "parent_arrays", "parent_of", "parent_weights",
           "weights_name"]

# the evolution sampler's origins whose child is its parent with one label changed
ORIGINS = ("mutation", "neighbour", "exploit")


class Unusable(Exception):
    """The parent cannot give its weights; the message says why (recorded as ``inherit_skipped``)."""


def weights_name(study_name: str, number: int, key: str) -> str:
    """The file name of a trial's saved weights in the study's artefact folder."""
    return f"{study_name}.trial-{number}.{key[:12]}.weights.h5"


def parent_of(system_attrs: dict[str, Any], user_attrs: dict[str, Any], trials: list[FrozenTrial]) -> int | None:
    """The trial whose weights this trial starts from, or None (trains from scratch).

    A re-run of a trial whose worker died takes its original's decision (``inherited``, or none recorded: from
    scratch, also when the original's parent had been skipped); any other trial the parent of its
    ``nas_evolution`` plan when the plan changed one label of it."""
    retry_of = user_attrs.get("retry_of")
    if retry_of is not None:
        done = records.attr(original, "inherited") if (original := records.numbered(trials, retry_of)) else None
        return int(done["trial"]) if isinstance(done, dict) and isinstance(done.get("trial"), int) else None
    plan = system_attrs.get(PLAN_ATTR)
    if isinstance(plan, dict) and plan.get("origin") in ORIGINS and isinstance(plan.get("parent"), int):
        return int(plan["parent"])
    return None


def parent_weights(parent: FrozenTrial, study_name: str, folder: str) -> str:
    """The path of ``parent``'s saved weights in the artefact ``folder``, checked against the SHA-256 recorded
    with it. Raises :class:`Unusable` with the reason when they cannot be used."""
    if parent.state != TrialState.COMPLETE:
        raise Unusable(f"trial {parent.number} is {parent.state.name.lower()}, not complete")
    a = records.attrs_of(parent)
    stored, digest = a.get("weights"), a.get("weights_sha256")
    if not isinstance(stored, str) or not isinstance(digest, str):
        raise Unusable(f"trial {parent.number} saved no weights")
    name = os.path.basename(stored)
    if not (name.startswith(f"{study_name}.trial-") and name.endswith(".weights.h5")):
        raise Unusable(f"trial {parent.number}'s weights file name {name!r} is not one of study {study_name!r}'s")
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise Unusable(f"trial {parent.number}'s weights are not in the artefact folder {folder!r} here")
    if records.file_sha256(path) != digest:
        raise Unusable(f"trial {parent.number}'s weights at {path!r} are not the ones it saved (SHA-256 differs)")
    return path


def parent_arrays(parent: FrozenTrial, path: str) -> dict[str, dict[str, np.ndarray]]:
    """The weights of ``parent`` saved at ``path``, as arrays by layer name (each layer's in Keras's own order):
    the parent's network is built from its stored spec and the file loaded into it (Keras names the layers of a
    weights file by class and position, not by name), then dropped. Raises :class:`Unusable` when that fails."""
    from nas.build import build_model

    spec = records.read(parent).spec
    if spec is None:
        raise Unusable(f"trial {parent.number} has no stored spec")
    try:
        model = build_model(spec)
        model.load_weights(path)
    except Exception as exc:  # a file that does not fit its spec: train from scratch, say why
        raise Unusable(f"trial {parent.number}'s weights do not load into its network: {type(exc).__name__}: "
                       f"{exc}") from None
    return model_arrays(model)


def _own_arrays(layer: Any) -> dict[str, np.ndarray]:
    """A layer's variables as arrays, keyed in Keras's own order (the one ``load_own_variables`` takes)."""
    own: dict[str, Any] = {}
    layer.save_own_variables(own)
    return {k: np.array(v) for k, v in own.items()}


def model_arrays(model: Any) -> dict[str, dict[str, np.ndarray]]:
    """A built model's weights as arrays by layer name (layers without weights left out): what
    :func:`copy_weights` takes."""
    return {layer.name: arrays for layer in model.layers if (arrays := _own_arrays(layer))}


# how a child takes its parent's weights where shapes differ (:func:`_place`); the first is the one nas uses
COPIES = ("leading", "centred")


def _centred(new: int, old: int) -> tuple[slice, slice]:
    """(the child's slice, the parent's slice) of a spatial axis: the parent's kernel centred in the child's."""
    if new <= old:
        start = (old - new) // 2
        return slice(0, new), slice(start, start + new)
    start = (new - old) // 2
    return slice(start, start + old), slice(0, old)


def _place(layer: Any, new: np.ndarray, old: np.ndarray, copy: str) -> int:
    """Copy ``old`` (the parent's array) into ``new`` (the child's, in place); the number of values taken.

    ``leading``: the overlapping leading slice on every axis. ``centred``: a convolution's kernel is centred
    (a 3x3 kernel becomes the middle of a 5x5 one, whose border is zero, and a 5x5 one gives its middle 3x3), the
    other axes take the leading slice, and the weights from input channels or units the parent did not have are
    zero (the widened layer before feeds them; the new units still learn): a kernel grown or a layer widened then
    computes the parent's function (Net2Net's function-preserving widening, Chen et al. 2016), a kernel shrunk or
    a layer narrowed a part of it."""
    if copy == "centred" and new.ndim in (2, 4):
        inputs = None if type(layer).__name__ == "DepthwiseConv2D" else new.ndim - 2  # input channels (units)
        if inputs is not None and new.shape[inputs] > old.shape[inputs]:
            extra = [slice(None)] * new.ndim
            extra[inputs] = slice(old.shape[inputs], None)
            new[tuple(extra)] = 0.0
        if new.ndim == 4:  # a convolution's kernel: (rows, columns, inputs, outputs or multiplier)
            rows, rows_old = _centred(new.shape[0], old.shape[0])
            cols, cols_old = _centred(new.shape[1], old.shape[1])
            c_in, c_out = min(new.shape[2], old.shape[2]), min(new.shape[3], old.shape[3])
            new[:, :, :c_in, :c_out] = 0.0  # the border of a grown kernel
            new[rows, cols, :c_in, :c_out] = old[rows_old, cols_old, :c_in, :c_out]
            return (rows.stop - rows.start) * (cols.stop - cols.start) * c_in * c_out
    overlap = tuple(slice(0, min(a, b)) for a, b in zip(new.shape, old.shape, strict=True))
    new[overlap] = old[overlap]
    return int(np.prod([s.stop for s in overlap]))


def copy_weights(model: Any, arrays: dict[str, dict[str, np.ndarray]], copy: str = "leading") -> float:
    """Copy a parent's ``arrays`` (:func:`parent_arrays`, :func:`model_arrays`) into ``model`` by layer name: whole
    where the shapes agree, else as ``copy`` says (:func:`_place`: ``leading`` or ``centred``); the share of
    ``model``'s parameters (weights and batch-norm statistics) that came from the parent."""
    if copy not in COPIES:
        raise ValueError(f"`copy` must be one of {', '.join(map(repr, COPIES))}, but got copy={copy!r}")
    taken = total = 0
    for layer in model.layers:
        mine = _own_arrays(layer)
        total += sum(a.size for a in mine.values())
        theirs = arrays.get(layer.name)
        if not mine or theirs is None or sorted(theirs) != sorted(mine):
            continue
        for k, new in mine.items():
            old = theirs[k]
            if old.ndim != new.ndim:
                continue
            taken += _place(layer, new, old, copy)
        layer.load_own_variables(mine)
    return taken / total if total else 0.0
