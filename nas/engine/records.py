"""The trial record: what is stored on each Optuna trial, written by every backend and read by ``nas.Study``.

One trial's record is a set of attributes, readable by plain Optuna tools:

* the architecture: ``spec`` (ArchSpec JSON), ``spec_key``, ``spec_str``, and its analytic ``macs``, ``flops``,
  ``params``;
* the result: ``accuracy``, ``latency_ms``, ``train_accuracy``, ``loss``, ``epochs``, ``history`` (validation
  accuracy per epoch), ``rungs`` (accuracy and decision at each rung of nas's early stopping), ``weights`` (file)
  and ``weights_sha256`` (its checksum, checked by export);
* the outcome: ``status`` (ok / reused / infeasible / pruned / failed), ``error``, ``traceback``,
  ``reused_from`` (the trial whose result a repeated architecture took: a complete one, or a stopped one for a
  ``pruned`` repeat), ``pruned_by``; ``inherited`` (the parent whose weights it started from, the epochs it
  trained and the share of its parameters inherited) or ``inherit_skipped`` (the parent and why not:
  :mod:`nas.engine.inherit`); and how it ran: ``worker`` (host and pid), ``timings``, ``worker_memory``,
  ``retry_of``, ``retries`` and ``seed_of`` (a re-run of a trial whose worker died), ``warm_start`` (the label of
  an enqueued starting point), ``devices`` (what it trained on: the devices seen and used, strategy, replicas,
  precision, XLA; :func:`nas.devices.where`), ``progress`` (the epoch a running trial is at:
  :mod:`nas.engine.progress`).

The short values (``USER_KEYS``: status, accuracy, macs, params, latency, epochs, a short error, the trial a
re-run or a repeat stands for) are Optuna user attributes, which ``optuna trials``, ``trials_dataframe()`` and
optuna-dashboard list: a row of ``optuna trials`` stays readable. Every other key is the trial system attribute
``nas:<key>``
(an error longer than ``ERROR_CHARS`` is cut in the user attribute and whole in ``nas:error``). :func:`read` and
:func:`attr` merge both, so studies stored before, which kept more keys as user attributes, read the same.

A finished trial of a study with constraints also holds their values (<= 0: within the limit) as the Optuna
system attribute ``constraints``, a list in the order of :func:`constraint_names`: Optuna's older list form,
which every Optuna tool reads (``trial.constraints``, samplers, ``study.best_trials``, ``optuna.visualization``)
and which optuna-dashboard (0.21) reads too, where it ignores the per-constraint keys ``constraints:<name>`` that
``Trial.set_constraint`` writes (nas wrote those before; :func:`constraint_values` reads both).

The functions here build those attribute dicts (:func:`spec_attrs`, :func:`result_attrs`, ...); the trial
pipeline writes them with :func:`write` on a live trial, the keras-tuner bridge passes them to
``optuna.trial.create_trial``, and :func:`read` turns a stored trial back into a :class:`TrialRecord`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.budget import ANALYTIC, CONSTRAINTS, OBJECTIVES
from nas.cost import Cost
from nas.spec import ArchSpec

__all__ = ["CONSTRAINTS_ATTR", "ERROR_CHARS", "RESULT_KEYS", "STATUSES", "SYSTEM_PREFIX", "TrialRecord", "USER_KEYS",
           "analytic_violations", "attr", "attrs_of", "constraint_names", "constraint_values", "constraints_attr",
           "enqueue", "failure_attrs", "file_sha256", "infeasible_attrs", "objective_values", "read", "result_attrs",
           "same_spec_result", "same_spec_stopped", "set_attrs", "spec_attrs", "split", "stopped_at", "write"]

STATUSES = ("ok", "reused", "infeasible", "pruned", "failed", "running", "waiting")
# the short values kept as Optuna user attributes (listed by `optuna trials` and optuna-dashboard); every other key
# is the trial system attribute "nas:<key>" (see the module docstring)
USER_KEYS = ("status", "accuracy", "macs", "params", "latency_ms", "epochs", "error", "reused_from", "retry_of",
             "kt_trial_id", "kt_rejection")
ERROR_CHARS = 60  # an error longer than this is cut in the user attribute (whole in "nas:error")
SYSTEM_PREFIX = "nas:"
# what a trained (or evaluated) trial adds to its record; a reused trial copies these from the original
RESULT_KEYS = ("accuracy", "latency_ms", "train_accuracy", "loss", "epochs", "history", "weights", "weights_sha256",
               "inherited")
# the system attribute of a trial's constraint values (Optuna's list form: see the module docstring)
CONSTRAINTS_ATTR = "constraints"
METRIC_KEYS = ("accuracy", "macs", "flops", "params", "latency_ms", "train_accuracy", "loss", "epochs")


@dataclass(frozen=True)
class TrialRecord:
    """One trial as stored: what was sampled, what it cost, how it did, and why it failed if it did.

    ``status``: ``ok`` (trained), ``reused`` (same spec as an earlier trial: its result), ``infeasible`` (over a
    constraint: never built), ``pruned``, ``failed``, ``running`` or ``waiting``.
    """

    number: int
    state: str
    status: str
    spec: ArchSpec | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    timings: dict[str, float]
    error: str | None
    user_attrs: dict[str, Any] = field(repr=False)

    @property
    def key(self) -> str | None:
        return self.user_attrs.get("spec_key")

    @property
    def spec_str(self) -> str:
        return self.user_attrs.get("spec_str", "")

    @property
    def trained_epochs(self) -> int | None:
        """The epochs this trial trained (a stopped one up to its stop, a failed one what it recorded), or None
        for a trial that trained nothing: a reused one (``reused_from``: a repeated architecture taking an earlier
        result or stop), an over-budget one, or one still running or waiting."""
        if self.status not in ("ok", "pruned", "failed") or "reused_from" in self.user_attrs:
            return None
        epochs = self.user_attrs.get("epochs")
        return int(epochs if epochs is not None else len(self.user_attrs.get("history") or []))


_STATE_STATUS = {TrialState.RUNNING: "running", TrialState.WAITING: "waiting", TrialState.FAIL: "failed",
                 TrialState.PRUNED: "pruned"}


def split(attrs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``attrs`` as (Optuna user attributes, Optuna system attributes): the ``USER_KEYS`` go to the first, the
    others to the second, named ``nas:<key>``; an ``error`` longer than ``ERROR_CHARS`` is cut in the first and
    whole in the second."""
    user = {k: v for k, v in attrs.items() if k in USER_KEYS}
    system = {SYSTEM_PREFIX + k: v for k, v in attrs.items() if k not in USER_KEYS}
    error = user.get("error")
    if isinstance(error, str) and len(error) > ERROR_CHARS:
        user["error"] = error[:ERROR_CHARS - 3] + "..."
        system[SYSTEM_PREFIX + "error"] = error
    return user, system


def _frozen(t: Any) -> Any:
    """``t`` as a ``FrozenTrial``: a live ``optuna.Trial`` has no system attributes of its own, but keeps the
    trial as claimed (with those written since through :func:`write`)."""
    return getattr(t, "_cached_frozen_trial", t)


def numbered(trials: list[Any], number: Any) -> Any:
    """The trial of ``trials`` with the number ``number``, or None (also for a ``number`` that is None)."""
    return None if number is None else next((t for t in trials if t.number == number), None)


def attr(t: Any, key: str, default: Any = None) -> Any:
    """One value of a trial's record (``t`` a ``FrozenTrial`` or a live trial), wherever it is stored: the
    ``nas:`` system attribute, else the user attribute (studies stored before kept most values there)."""
    t = _frozen(t)
    system = getattr(t, "system_attrs", None) or {}
    if SYSTEM_PREFIX + key in system:
        return system[SYSTEM_PREFIX + key]
    return t.user_attrs.get(key, default)


def attrs_of(t: Any) -> dict[str, Any]:
    """Every nas attribute of a trial: its user attributes and its ``nas:`` system attributes."""
    t = _frozen(t)
    system = getattr(t, "system_attrs", None) or {}
    return {**t.user_attrs, **{k[len(SYSTEM_PREFIX):]: v for k, v in system.items() if k.startswith(SYSTEM_PREFIX)}}


def read(t: optuna.trial.FrozenTrial) -> TrialRecord:
    """The :class:`TrialRecord` of a stored trial."""
    a = attrs_of(t)
    spec = ArchSpec.from_json(a["spec"]) if "spec" in a else None
    status = a.get("status") or _STATE_STATUS.get(t.state, "ok")
    metrics = {k: a[k] for k in METRIC_KEYS if k in a}
    if "latency_ms" in metrics:
        metrics["latency"] = metrics["latency_ms"]
    if t.state == TrialState.PRUNED and "accuracy" not in metrics and t.intermediate_values:
        metrics["accuracy"] = t.intermediate_values[max(t.intermediate_values)]
    return TrialRecord(number=t.number, state=t.state.name, status=status, spec=spec, params=dict(t.params),
                       metrics=metrics, timings=dict(a.get("timings", {})), error=a.get("error"), user_attrs=dict(a))


# ------------------------------------------------------------------ the writer's parts

def spec_attrs(spec: ArchSpec, c: Cost) -> dict[str, Any]:
    """The architecture and its analytic cost."""
    return {"spec": spec.to_json(), "spec_key": spec.key(), "spec_str": str(spec), **c.as_dict()}


def result_attrs(metrics: dict[str, Any]) -> dict[str, Any]:
    """The result keys present in ``metrics``."""
    return {k: metrics[k] for k in RESULT_KEYS if metrics.get(k) is not None}


def infeasible_attrs(reason: str) -> dict[str, Any]:
    return {"status": "infeasible", "error": f"over budget: {reason}"}


def failure_attrs(reason: str, traceback: str | None = None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"status": "failed", "error": reason[:2000]}
    if traceback:
        attrs["traceback"] = traceback[-4000:]
    return attrs


def objective_values(objectives: tuple[str, ...] | list[str], metrics: dict[str, Any]) -> list[float]:
    """The values told to Optuna, in objective order; a missing value is the worst one (0 accuracy, inf cost)."""
    out = []
    for o in objectives:
        v = metrics.get("latency_ms" if o == "latency" else o)
        out.append(float(v) if v is not None else (0.0 if OBJECTIVES[o] == "maximize" else math.inf))
    return out


def constraint_names(constraints: dict[str, float]) -> tuple[str, ...]:
    """The order of a study's constraints in each trial's ``constraints`` list: by name, the order of the stored
    record (its JSON is written with sorted keys), whatever order the caller gave them in."""
    return tuple(sorted(constraints))


def analytic_violations(constraints: dict[str, float], metrics: dict[str, Any]) -> dict[str, float]:
    """The values of the analytic constraints (``max_macs``, ``max_flops``, ``max_params``) for ``metrics``: the
    relative excess over the limit, ``(value - limit) / limit``, <= 0 within it (Optuna's convention)."""
    return {n: (metrics[CONSTRAINTS[n]] - v) / v for n, v in constraints.items() if CONSTRAINTS[n] in ANALYTIC}


def constraints_attr(constraints: dict[str, float], values: dict[str, float]) -> dict[str, list[float]]:
    """The system attribute holding a trial's constraint ``values`` (by name) as the list Optuna and
    optuna-dashboard read, or nothing when a value is unknown (a trial stopped before its latency was measured:
    Optuna takes a trial without values as feasible, as one whose list held only what is known would be)."""
    names = constraint_names(constraints)
    if not names or any(n not in values for n in names):
        return {}
    return {CONSTRAINTS_ATTR: [float(values[n]) for n in names]}


def constraint_values(t: Any, constraints: dict[str, float]) -> dict[str, float]:
    """A stored trial's constraint values by name: from the ``constraints`` list, or from the per-constraint
    ``constraints:<name>`` keys of studies stored before (and of trials made with ``Trial.set_constraint``)."""
    system = getattr(t, "system_attrs", None) or {}
    listed = system.get(CONSTRAINTS_ATTR)
    names = constraint_names(constraints)
    out = {n: float(v) for n, v in zip(names, listed)} if isinstance(listed, list) and len(listed) == len(names) else {}
    for n in names:
        if f"{CONSTRAINTS_ATTR}:{n}" in system:
            out[n] = float(system[f"{CONSTRAINTS_ATTR}:{n}"])
    return out


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def enqueue(study: optuna.Study, params: dict[str, Any], attrs: dict[str, Any]) -> None:
    """Enqueue a trial with fixed ``params``, as ``Study.enqueue_trial`` does (a WAITING trial whose system
    attribute ``fixed_params`` holds them), with the record values ``attrs`` each where :func:`split` puts it
    (``enqueue_trial`` takes user attributes only)."""
    user, system = split(attrs)
    study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, system_attrs={"fixed_params": params, **system},
                                              user_attrs=user))


def set_attrs(storage: Any, trial_id: int, attrs: dict[str, Any]) -> None:
    """Write ``attrs`` on a RUNNING trial known by its id (not a live ``optuna.Trial``: a trial another process
    runs, or one claimed this instant), each where :func:`split` puts it."""
    user, system = split(attrs)
    for k, v in user.items():
        storage.set_trial_user_attr(trial_id, k, v)
    for k, v in system.items():
        storage.set_trial_system_attr(trial_id, k, v)


def write(trial: optuna.Trial, attrs: dict[str, Any], system_attrs: dict[str, Any] | None = None) -> None:
    """Write ``attrs`` (and ``system_attrs``, Optuna system attributes by their own names, e.g.
    :func:`constraints_attr`) on a live (RUNNING) trial: on an RDB storage (SQLite, PostgreSQL) in one
    transaction, on others one attribute at a time (a journal append each, which is cheap)."""
    user, system = split(attrs)
    system.update(system_attrs or {})
    if not user and not system:
        return
    storage = trial.study._storage
    rdb = _rdb_of(storage)
    if rdb is None or len(user) + len(system) == 1:
        for k, v in user.items():
            storage.set_trial_user_attr(trial._trial_id, k, v)
        for k, v in system.items():
            storage.set_trial_system_attr(trial._trial_id, k, v)
    else:
        _write_rdb(rdb, trial._trial_id, user, system)
    cached = getattr(trial, "_cached_frozen_trial", None)
    if cached is not None:  # what ``trial.user_attrs`` shows, as Trial.set_user_attr keeps it
        cached.user_attrs.update(user)
        cached.system_attrs.update(system)


def _write_rdb(rdb: optuna.storages.RDBStorage, trial_id: int, user: dict[str, Any], system: dict[str, Any]) -> None:
    """User and system attributes of a trial in one transaction."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    for v in (*user.values(), *system.values()):
        json.dumps(v)  # not JSON: the error Optuna's own writer gives, before anything is written
    with _create_scoped_session(rdb.scoped_session, True) as session:
        for model, part in ((models.TrialUserAttributeModel, user), (models.TrialSystemAttributeModel, system)):
            for k, v in part.items():
                rdb._set_trial_attr_without_commit(session, model, trial_id, k, v)


def _rdb_of(storage: Any) -> optuna.storages.RDBStorage | None:
    """The RDBStorage behind ``storage`` (Optuna wraps it in a cache), when it has the internal method the
    one-transaction writer uses (checked, so that another Optuna version falls back to the public API)."""
    rdb = getattr(storage, "_backend", storage)
    if isinstance(rdb, optuna.storages.RDBStorage) and hasattr(rdb, "_set_trial_attr_without_commit"):
        return rdb
    return None


def stopped_at(t: optuna.trial.FrozenTrial) -> tuple[str, float] | None:
    """The rung (epochs, as stored) where nas's pruner stopped ``t`` and the accuracy it judged there, or None
    (not stopped at a rung: complete, or stopped by another pruner)."""
    for rung, (accuracy, kept) in (attr(t, "rungs") or {}).items():
        if not kept:
            return rung, float(accuracy)
    return None


def same_spec_stopped(trials: list[optuna.trial.FrozenTrial], key: str,
                      number: int) -> optuna.trial.FrozenTrial | None:
    """An earlier trial of the same architecture that trained until nas's pruner stopped it at a rung (not
    itself a repeat), among ``trials``."""
    for t in trials:
        if (t.state == TrialState.PRUNED and t.number != number and attr(t, "spec_key") == key
                and t.user_attrs.get("status") == "pruned" and "reused_from" not in t.user_attrs
                and stopped_at(t) is not None):
            return t
    return None


def same_spec_result(study: optuna.Study, key: str, number: int,
                     trials: list[optuna.trial.FrozenTrial] | None = None) -> optuna.trial.FrozenTrial | None:
    """An earlier trained trial of the same architecture (its result is reused instead of training again),
    among ``trials`` (the study as read when the trial was claimed) or the study's trials."""
    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    for t in trials:
        if (t.state == TrialState.COMPLETE and t.number != number and attr(t, "spec_key") == key
                and t.user_attrs.get("status") == "ok"):
            return t
    return None
