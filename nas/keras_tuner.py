"""keras-tuner bridge: every ``nas`` space as a keras-tuner ``HyperModel``, and keras-tuner runs as ``nas`` studies.

* :class:`HyperModel` asks a space through :class:`HPTrial`, which turns the trial interface the spaces use
  (``suggest_categorical`` / ``suggest_int`` / ``suggest_float``) into keras-tuner's ``hp.Choice`` /
  ``hp.Int`` / ``hp.Float`` under the same flat labels as the Optuna backend. It works with keras-tuner's own
  ``RandomSearch``, ``BayesianOptimization`` and ``Hyperband`` (and ``overwrite=False`` resumes as usual).
* Candidates over ``max_macs`` / ``max_flops`` / ``max_params`` (analytic cost, nothing built) are replaced
  inside ``build`` by a seeded random draw from the space that fits, and the trial's values are rewritten to
  the replacement, so the trial record is what was trained. keras-tuner's own ``max_model_size`` instead
  fails the trial after building it, and three such failures in a row end the whole search.
* :func:`view` (behind ``nas.from_keras_tuner``) reads a tuner's trials back as a nas study: spec, analytic
  MACs / FLOPs / params, accuracy, Pareto front, knee and export (keras-tuner itself only sums objectives and
  counts no FLOPs). ``nas.search(..., backend=nas.KerasTuner(tuner="hyperband"))`` runs keras-tuner and keeps
  the view in the study storage, so ``resume`` continues the tuner.

Importing this module imports keras-tuner (and so TensorFlow).
"""

from __future__ import annotations

import copy
import json
import math
import sys
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import keras_tuner
import optuna
from optuna.trial import TrialState

import search_spaces
from nas.budget import ANALYTIC, CONSTRAINTS, OBJECTIVES, Budget, check_constraints, check_objectives
from nas.cost import cost
from nas.engine import records
from nas.engine.distributions import to_optuna
from nas.engine.schema import Component, Goal, Strategy, StudyConfig, now, read_config, write_config
from nas.engine.storage import describe_storage, open_storage
from nas.engine.where import KerasTuner, Run
from nas.spec import ArchSpec
from nas.trial import RandomTrial, cat_dist, fits, float_dist, int_dist, rule

__all__ = ["HPTrial", "HyperModel", "TUNERS", "make_tuner", "sync", "view"]

TUNERS = {"random": keras_tuner.RandomSearch, "bayesian": keras_tuner.BayesianOptimization,
          "hyperband": keras_tuner.Hyperband}
RESERVED = "tuner/"  # Hyperband's own values (tuner/epochs, tuner/trial_id, ...)
STRICT = (int, float, str)  # the value types a keras-tuner Choice keeps as they are (bool becomes int)


# ------------------------------------------------------------------ the trial interface over `hp`

def _token(value: Any) -> str:
    return json.dumps(value)


def _choice_values(choices: tuple[Any, ...]) -> tuple[list[Any], bool]:
    """keras-tuner's ``Choice`` takes one type of int, float or str (and turns bools into ints): other choice
    lists (bools, ``None``, mixed types) are asked as their JSON strings, e.g. ``["true", "false"]``."""
    types = {type(c) for c in choices}
    if len(types) == 1 and next(iter(types)) in STRICT:
        return list(choices), False
    return [_token(c) for c in choices], True


class HPTrial:
    """The trial interface of ``nas`` spaces over keras-tuner ``HyperParameters``.

    ``trial.params`` and ``trial.distributions`` record what the space asked, as ``nas.RandomTrial`` does. A
    value keras-tuner holds for a label that is outside what the space asks now (a space configured
    differently than the run it resumes) is an error naming the label and the rule: values are checked by
    ``nas.trial.fits``, as strictly as nas's own replay trial, once decoded (JSON-string choices) and tidied
    (keras-tuner's float arithmetic snapped onto a step grid or into the range).
    """

    def __init__(self, hp: keras_tuner.HyperParameters) -> None:
        self.hp = hp
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, tuple] = {}

    def _record(self, name: str, dist: tuple, value: Any) -> Any:
        if name.startswith(RESERVED):
            raise ValueError(f"label {name!r}: labels starting with {RESERVED!r} are keras-tuner's own")
        known = self.distributions.get(name)
        if known is not None and known != dist:
            raise ValueError(f"label {name!r} was asked with two distributions in one trial: {known} and {dist}")
        self.distributions[name] = dist
        self.params[name] = value
        return value

    @staticmethod
    def _bad(name: str, got: Any, dist: tuple) -> ValueError:
        return ValueError(f"keras-tuner holds {name}={got!r}, which is outside what the space asks for {name!r} "
                          f"({rule(dist)}); was the tuner's directory made with a differently configured space?")

    def _checked(self, name: str, dist: tuple, got: Any, value: Any) -> Any:
        """``value`` (``got``, what keras-tuner holds, decoded) recorded if it fits the question strictly
        (``nas.trial.fits``, the check of every nas trial), else an error naming the label."""
        if not fits(dist, value):
            raise self._bad(name, got, dist)
        return self._record(name, dist, float(value) if dist[0] == "float" else value)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        dist = cat_dist(choices)
        values, encoded = _choice_values(dist[1])
        got = self.hp.Choice(name, values, ordered=False if encoded else None)
        if not encoded:
            return self._checked(name, dist, got, got)
        decoded = {_token(c): c for c in dist[1]}
        if not isinstance(got, str) or got not in decoded:
            raise self._bad(name, got, dist)
        return self._checked(name, dist, got, decoded[got])

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        dist = int_dist(low, high, step, log)
        # keras-tuner's `step` multiplies under log sampling; Optuna's log ints have step 1
        got = self.hp.Int(name, int(low), int(high), step=None if log else int(step),
                          sampling="log" if log else "linear")
        return self._checked(name, dist, got, got)

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        dist = float_dist(low, high, step, log)
        got = self.hp.Float(name, float(low), float(high), step=None if log else step,
                            sampling="log" if log else "linear")
        value = got
        if isinstance(got, (int, float)) and not isinstance(got, bool):
            # keras-tuner's arithmetic: quantised from `low` by `step` (snap onto the grid exactly), and a
            # computed end of the range may miss it by rounding (clip what is within 1e-9)
            if step is not None:
                value = round(low + round((got - low) / step) * step, 10)
            elif low - 1e-9 <= got <= high + 1e-9:
                value = min(high, max(low, got))
        return self._checked(name, dist, got, value)

    def write(self, params: dict[str, Any], distributions: dict[str, tuple]) -> None:
        """Register ``distributions`` in ``hp`` and set the values to ``params`` (a replacement candidate)."""
        for name, dist in distributions.items():
            value = params[name]
            if dist[0] == "categorical":
                values, encoded = _choice_values(dist[1])
                self.hp.Choice(name, values, ordered=False if encoded else None)
                self.hp.values[name] = _token(value) if encoded else value
            elif dist[0] == "int":
                _, low, high, step, log = dist
                self.hp.Int(name, low, high, step=None if log else step, sampling="log" if log else "linear")
                self.hp.values[name] = int(value)
            else:
                _, low, high, step, log = dist
                self.hp.Float(name, low, high, step=None if log else step, sampling="log" if log else "linear")
                self.hp.values[name] = float(value)


def spec_of(space: search_spaces.Space, values: dict[str, Any]) -> ArchSpec:
    """The spec a keras-tuner trial's values stand for (keras-tuner's own ``tuner/...`` values are ignored)."""
    return space.sample(HPTrial(_hp(values)))


# ------------------------------------------------------------------ the HyperModel

def _limits(constraints: dict[str, float]) -> dict[str, float]:
    checked = check_constraints(constraints)
    bad = [name for name in checked if CONSTRAINTS[name] not in ANALYTIC]
    if bad:
        analytic = ", ".join(k for k, v in CONSTRAINTS.items() if v in ANALYTIC)
        raise ValueError(f"`constraints`: {bad[0]} is not an analytic cost; the keras-tuner bridge rejects "
                         f"candidates before building, so only {analytic} "
                         f"can be used, but got {bad[0]}={checked[bad[0]]!r}")
    return checked


class HyperModel(keras_tuner.HyperModel):
    """A ``nas`` search space as a keras-tuner ``HyperModel``.

    ``build(hp)`` asks the space (labels as with Optuna), checks the analytic cost against ``max_macs`` /
    ``max_flops`` / ``max_params`` *before* building, builds the spec with ``nas.build_model`` and compiles
    it with the ``budget``'s optimizer. ``fit`` trains with the budget's batch size and learning-rate schedule
    and resizes image arrays when a spec asks for another resolution (the compound space).

    An oversized candidate is replaced by a random draw from the space that fits (seeded by the candidate's
    values, so a rerun replaces it the same way); the trial's ``hp`` values are rewritten to the replacement
    and the rejection is kept in ``rejected`` (and appended to ``rejections_file`` if given). After
    ``max_redraws`` draws without a fitting candidate the trial fails with a ``FailedTrialError`` that names
    the limit.
    """

    def __init__(self, space: search_spaces.Space | str, *, budget: Budget | dict[str, Any] | None = None,
                 max_macs: float | None = None, max_flops: float | None = None, max_params: float | None = None,
                 input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None,
                 max_redraws: int = 200, seed: int = 0, rejections_file: str | Path | None = None,
                 name: str | None = None, tunable: bool = True) -> None:
        super().__init__(name=name, tunable=tunable)
        if isinstance(space, str):
            options: dict[str, Any] = {}
            if input_shape is not None:
                options["input_shape"] = tuple(input_shape)
            if num_classes is not None:
                options["num_classes"] = num_classes
            space = search_spaces.get(space, **options)
        if not isinstance(space, search_spaces.Space):
            raise ValueError(f"`space` must be a space name or a search_spaces.Space, but got {type(space).__name__}")
        self.space = space
        self.budget = Budget.of(budget)
        limits = {k: v for k, v in (("max_macs", max_macs), ("max_flops", max_flops), ("max_params", max_params))
                  if v is not None}
        self.constraints = _limits({**(space.constraints or {}), **limits})
        if isinstance(max_redraws, bool) or not isinstance(max_redraws, int) or max_redraws < 1:
            raise ValueError(f"`max_redraws` must be an integer >= 1, but got max_redraws={max_redraws!r}")
        self.max_redraws = max_redraws
        self.seed = seed
        self.rejections_file = Path(rejections_file) if rejections_file is not None else None
        self.rejected: list[dict[str, Any]] = []
        self._resized: dict[tuple[int, tuple[int, ...]], Any] = {}
        self.spec_only = False

    def rejections(self) -> list[dict[str, Any]]:
        """The oversized candidates replaced so far: from ``rejections_file`` if given (it outlives this process),
        else from this object."""
        if self.rejections_file is None:
            return list(self.rejected)
        if not self.rejections_file.exists():
            return []
        return [json.loads(line) for line in self.rejections_file.read_text().splitlines() if line.strip()]

    def over(self, spec: ArchSpec) -> str | None:
        """Why ``spec`` is over a limit (``"macs 1,234 > 1,000"``), or None if it fits."""
        if not self.constraints:
            return None
        c = cost(spec)
        metrics = c.as_dict()
        over = [f"{CONSTRAINTS[n]} {metrics[CONSTRAINTS[n]]:,} > {limit:,.0f}" for n, limit in self.constraints.items()
                if metrics[CONSTRAINTS[n]] > limit]
        return ", ".join(over) or None

    def spec(self, hp: keras_tuner.HyperParameters) -> ArchSpec:
        """The spec ``hp`` stands for, after replacing an oversized candidate (see the class doc)."""
        trial = HPTrial(hp)
        spec = self.space.sample(trial)
        reason = self.over(spec)
        if reason is None:
            return spec
        values = {k: v for k, v in hp.values.items() if not k.startswith(RESERVED)}
        seed = zlib.crc32(json.dumps(values, sort_keys=True, default=str).encode()) + 1_000_003 * self.seed
        for attempt in range(self.max_redraws):
            draw = RandomTrial(seed=seed + attempt)
            candidate = self.space.sample(draw)
            if self.over(candidate) is None:
                trial.write(draw.params, draw.distributions)
                replayed = self.space.sample(HPTrial(hp))
                if replayed != candidate:  # the rewritten values must stand for the replacement exactly
                    raise RuntimeError(f"rewriting the trial values did not reproduce the replacement {candidate}")
                record = {"rejected": str(spec), "reason": reason, "params": trial.params,
                          "replacement": str(candidate), "draws": attempt + 1, "spec": spec.to_json()}
                self.rejected.append(record)
                if self.rejections_file is not None:
                    self.rejections_file.parent.mkdir(parents=True, exist_ok=True)
                    with open(self.rejections_file, "a") as f:
                        f.write(json.dumps(record) + "\n")
                return candidate
        limits = ", ".join(f"{k}={v:,.0f}" for k, v in self.constraints.items())
        raise keras_tuner.errors.FailedTrialError(
            f"over budget ({reason}) and none of {self.max_redraws} random draws from the {self.space.name} space "
            f"fits {limits}: loosen the limits or narrow the space")

    def build(self, hp: keras_tuner.HyperParameters) -> Any:
        if _in_startup():
            # keras-tuner's tuner constructor builds once with the default values to register the labels and
            # ignores the model: ask the space (that registers them) and build nothing, reject nothing
            self.space.sample(HPTrial(hp))
            return None
        spec = self.spec(hp)
        if self.spec_only:  # trials are looked up, not trained
            return None
        import keras

        from nas.build import build_model
        from nas.train import make_optimizer

        keras.utils.set_random_seed(self.budget.seed)  # the same spec starts from the same weights

        model = build_model(spec, bn_momentum=self.budget.bn_momentum)
        # a constant rate here; `fit` lays the cosine schedule over the epochs it is asked to train
        model.compile(optimizer=make_optimizer(_constant(self.budget), 1), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        model._nas_spec = spec
        model._nas_optimizer = model.optimizer
        return model

    def fit(self, hp: keras_tuner.HyperParameters, model: Any, *args: Any, **kwargs: Any) -> Any:
        """``model.fit`` with the budget's epochs and batch size unless given, images resized to the spec's
        resolution, and the cosine schedule laid over the epochs this call trains."""
        import numpy as np

        from nas.train import make_optimizer

        spec: ArchSpec | None = getattr(model, "_nas_spec", None)
        positional = list(args)
        if spec is not None:
            shape = spec.input_shape
            if positional and isinstance(positional[0], np.ndarray):
                positional[0] = self._resize(positional[0], shape)
            if isinstance(kwargs.get("x"), np.ndarray):
                kwargs["x"] = self._resize(kwargs["x"], shape)
            val = kwargs.get("validation_data")
            if isinstance(val, (tuple, list)) and val and isinstance(val[0], np.ndarray):
                kwargs["validation_data"] = (self._resize(val[0], shape), *val[1:])
        kwargs.setdefault("epochs", self.budget.epochs)
        kwargs.setdefault("verbose", 0)
        if "batch_size" not in kwargs or kwargs["batch_size"] is None:
            kwargs["batch_size"] = self.budget.batch_size
        x: Any = positional[0] if positional else kwargs.get("x")
        if (self.budget.schedule == "cosine" and getattr(model, "_nas_optimizer", None) is model.optimizer
                and hasattr(x, "__len__")):
            steps = math.ceil(len(x) / kwargs["batch_size"]) * max(1, kwargs["epochs"] - kwargs.get("initial_epoch", 0))
            model.compile(optimizer=make_optimizer(self.budget, steps), loss=model.loss, metrics=["accuracy"])
        return model.fit(*positional, **kwargs)

    def _resize(self, x: Any, shape: tuple[int, int, int]) -> Any:
        if tuple(x.shape[1:3]) == tuple(shape[:2]):
            return x
        key = (id(x), tuple(shape))
        if key not in self._resized:
            from nas.train import resize_images

            self._resized[key] = resize_images(x, shape)
        return self._resized[key]


def _in_startup() -> bool:
    """Whether keras-tuner calls ``build`` from its start-up label registration (``_activate_all_conditions``,
    run by the tuner's constructor) rather than for a trial."""
    frame: FrameType | None = sys._getframe(2)
    for _ in range(8):
        if frame is None:
            return False
        if frame.f_code.co_name == "_activate_all_conditions":
            return True
        frame = frame.f_back
    return False


def _constant(budget: Budget) -> Budget:
    import dataclasses

    return dataclasses.replace(budget, schedule="constant")


# ------------------------------------------------------------------ tuners

def make_tuner(kind: str, hypermodel: HyperModel, *, directory: str | Path, project_name: str,
               max_trials: int | None = None, seed: int | None = None, overwrite: bool = False,
               evaluator: Any = None, on_trial_end: Callable[[keras_tuner.Tuner], None] | None = None,
               **options: Any) -> keras_tuner.Tuner:
    """A keras-tuner ``random`` / ``bayesian`` / ``hyperband`` tuner over ``hypermodel`` with objective
    ``val_accuracy``. With ``evaluator`` (a function from spec to a metrics dict with ``accuracy``) trials are
    looked up instead of trained (``random`` and ``bayesian`` only: Hyperband's budget is epochs).
    ``on_trial_end(tuner)`` is called after keras-tuner has ended each trial (its result saved)."""
    if kind not in TUNERS:
        raise ValueError(f"`tuner` must be one of {', '.join(TUNERS)}, but got tuner={kind!r}")
    base = TUNERS[kind]
    # keras-tuner takes a seed of 0 as none (its oracle draws one at random): nas's seed s is keras-tuner's s + 1, so
    # that every seed, 0 included, reproduces its search
    kwargs: dict[str, Any] = {"objective": keras_tuner.Objective("val_accuracy", "max"),
                              "seed": None if seed is None else seed + 1,
                              "directory": str(directory), "project_name": project_name, "overwrite": overwrite,
                              **options}
    if kind != "hyperband":
        kwargs["max_trials"] = max_trials
    if evaluator is not None:
        if kind == "hyperband":
            raise ValueError("`evaluator` with tuner='hyperband': Hyperband's budget is training epochs; use "
                             "tuner='random' or 'bayesian' with a tabular evaluator")
        if not callable(evaluator):
            raise ValueError(f"`evaluator` must be a function from ArchSpec to a metrics dict, but got {evaluator!r}")
        base = type(f"Evaluated{base.__name__}", (base,), {"run_trial": _evaluated_run_trial,
                                                           "_nas_evaluator": staticmethod(evaluator)})
        hypermodel = copy.copy(hypermodel)
        hypermodel.spec_only = True
    if on_trial_end is not None:
        parent = base

        def ended(self: keras_tuner.Tuner, trial: Any) -> None:  # keras-tuner's own end (saves it), then the hook
            parent.on_trial_end(self, trial)
            on_trial_end(self)
        base = type(base.__name__, (base,), {"on_trial_end": ended})
    return base(hypermodel, **kwargs)


def _evaluated_run_trial(self: keras_tuner.Tuner, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
    """``run_trial`` of an evaluated tuner: the evaluator's metrics for the trial's spec, nothing trained."""
    spec = self.hypermodel.spec(trial.hyperparameters)
    result = dict(self._nas_evaluator(spec))
    if "accuracy" not in result:
        raise ValueError(f"the evaluator must return a dict with 'accuracy', but returned {sorted(result)}")
    metrics = {"val_accuracy": float(result["accuracy"])}
    for k, v in result.items():
        if k != "accuracy" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            metrics[k] = float(v)
    return metrics


# ------------------------------------------------------------------ keras-tuner runs as nas studies

def _objective_name(tuner: keras_tuner.Tuner) -> str:
    objective = tuner.oracle.objective
    name, direction = getattr(objective, "name", None), getattr(objective, "direction", None)
    if not isinstance(name, str) or "acc" not in name or direction != "max":
        raise ValueError(f"the tuner's objective must be an accuracy to maximise (e.g. 'val_accuracy'), but got "
                         f"objective={objective!r}")
    return name


def _sort_key(trial_id: str) -> tuple[int, str]:
    return (int(trial_id), trial_id) if trial_id.isdigit() else (1 << 62, trial_id)


def _completed(kt: Any, tuner: keras_tuner.Tuner, values: dict[str, Any], metrics: dict[str, Any],
               attrs: dict[str, Any], objectives: list[str]) -> tuple[TrialState, list[float] | None]:
    """The record of a completed keras-tuner trial (``attrs`` and ``metrics`` are filled in)."""
    # keras-tuner keeps the metrics of the trial's best epoch only (no per-epoch history)
    best_epoch = {m: float(kt.metrics.get_last_value(m)) for m in kt.metrics.metrics
                  if kt.metrics.exists(m) and kt.metrics.get_last_value(m) is not None}
    metrics["accuracy"] = float(kt.score)
    attrs.update(accuracy=float(kt.score), kt_metrics=best_epoch, best_step=kt.best_step)
    for k in ("latency_ms", "train_time_s", "test_accuracy"):
        if kt.metrics.exists(k):
            attrs[k] = metrics[k] = float(kt.metrics.get_last_value(k))
    epochs = values.get("tuner/epochs")
    if epochs is not None:  # Hyperband: trained from tuner/initial_epoch (a promoted trial's weights)
        attrs["epochs"] = int(epochs)
        attrs["initial_epoch"] = int(values.get("tuner/initial_epoch") or 0)
    weights = Path(tuner.get_trial_dir(kt.trial_id)) / "checkpoint.weights.h5"
    if weights.exists():
        attrs["weights"] = str(weights.resolve())
    max_epochs = getattr(tuner.oracle, "max_epochs", None) if isinstance(tuner, keras_tuner.Hyperband) else None
    if max_epochs is not None and epochs is not None and epochs < max_epochs:
        attrs.update(status="pruned", pruned_by=f"keras_tuner.Hyperband: trained {epochs} of {max_epochs} epochs "
                                                f"in its bracket")
        return TrialState.PRUNED, None
    attrs["status"] = "ok"
    return TrialState.COMPLETE, records.objective_values(objectives, metrics)


def _frozen(kt: Any, tuner: keras_tuner.Tuner, space: search_spaces.Space, objectives: list[str],
            constraints: dict[str, float]) -> optuna.trial.FrozenTrial:
    """One finished keras-tuner trial in the nas trial schema (with its constraint values when it completed:
    within the limits, since the hypermodel replaced candidates over them)."""
    values = dict(kt.hyperparameters.values)
    attrs: dict[str, Any] = {"kt_trial_id": kt.trial_id, "kt_values": json.dumps(values, default=str)}
    replay = HPTrial(_hp(values))
    state, objective_values = TrialState.FAIL, None
    violations: dict[str, float] = {}
    try:
        spec = space.sample(replay)
    except ValueError as exc:
        attrs.update(records.failure_attrs(f"the trial's values are not a point of the space: {exc}"))
    else:
        c = cost(spec)
        metrics: dict[str, Any] = c.as_dict()
        attrs.update(records.spec_attrs(spec, c))
        violations = records.analytic_violations(constraints, metrics)
        if kt.status == keras_tuner.engine.trial.TrialStatus.COMPLETED and kt.score is not None and \
                math.isfinite(kt.score):
            state, objective_values = _completed(kt, tuner, values, metrics, attrs, objectives)
        else:
            message = (kt.message or "").strip().splitlines()
            attrs.update(records.failure_attrs(f"keras-tuner {kt.status}: {message[-1] if message else '?'}",
                                               kt.message or None))
    user, system = records.split(attrs)
    if state != TrialState.FAIL:
        system.update(records.constraints_attr(constraints, violations))
    return optuna.trial.create_trial(
        state=state, values=objective_values, params=replay.params,
        distributions={k: to_optuna(d) for k, d in replay.distributions.items()}, user_attrs=user,
        system_attrs=system)


def sync(study: optuna.Study, tuner: keras_tuner.Tuner, space: search_spaces.Space, objectives: list[str],
         constraints: dict[str, float] | None = None) -> int:
    """Add the tuner's finished trials (and the hypermodel's rejected candidates, over the analytic
    ``constraints``: infeasible) that ``study`` does not hold yet; returns how many were added. Trials still
    running in keras-tuner are left for a later sync."""
    constraints = dict(constraints or {})
    status = keras_tuner.engine.trial.TrialStatus
    held = study.get_trials(deepcopy=False)
    done = {t.user_attrs.get("kt_trial_id") for t in held}
    _objective_name(tuner)
    added = 0
    for trial_id in sorted(tuner.oracle.trials, key=_sort_key):
        kt = tuner.oracle.trials[trial_id]
        if kt.status in (status.COMPLETED, status.FAILED, status.INVALID) and trial_id not in done:
            study.add_trial(_frozen(kt, tuner, space, objectives, constraints))
            added += 1
    hypermodel = tuner.hypermodel
    if isinstance(hypermodel, HyperModel):
        seen = {t.user_attrs.get("kt_rejection") for t in held}
        for i, record in enumerate(hypermodel.rejections()):
            if i in seen:
                continue
            spec = ArchSpec.from_json(record["spec"])
            c = cost(spec)
            metrics = c.as_dict()
            user, system = records.split({
                "kt_rejection": i, **records.spec_attrs(spec, c),
                **records.infeasible_attrs(f"{record['reason']} (replaced by {record['replacement']} before "
                                           f"building)")})
            system.update(records.constraints_attr(constraints, records.analytic_violations(constraints, metrics)))
            study.add_trial(optuna.trial.create_trial(
                state=TrialState.COMPLETE, values=records.objective_values(objectives, metrics), user_attrs=user,
                system_attrs=system))
            added += 1
    return added


def _hp(values: dict[str, Any]) -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.values.update({k: v for k, v in values.items() if not k.startswith(RESERVED)})
    return hp


def _view_config(space: search_spaces.Space, objectives: list[str], tuner: keras_tuner.Tuner,
                 budget: Budget, constraints: dict[str, float]) -> StudyConfig:
    oracle = tuner.oracle
    project = Path(tuner.project_dir).resolve()
    return StudyConfig(
        space=space.config(), data={"kind": "keras_tuner"},
        goal=Goal(objectives=tuple(objectives), constraints=constraints),
        strategy=Strategy(n_trials=getattr(oracle, "max_trials", None) or max(1, len(oracle.trials)),
                          sampler=Component(name=f"keras_tuner.{type(tuner).__name__}"),
                          seed=getattr(oracle, "seed", None), budget=budget, max_retries=0),
        run=Run(artifacts=str(project), backend=KerasTuner(tuner=type(tuner).__name__, directory=str(project.parent),
                                                           project_name=project.name, continuable=False)),
        created=now())


def view(tuner: keras_tuner.Tuner, *, objectives: Any = ("accuracy", "macs"), space: search_spaces.Space | None = None,
         storage: Any = None, study_name: str | None = None) -> tuple[optuna.Study, str]:
    """A keras-tuner run as an Optuna study in the nas trial schema, and its storage URL (``"memory"`` without
    ``storage``); see ``nas.from_keras_tuner``."""
    if not isinstance(tuner, keras_tuner.Tuner):
        raise ValueError(f"`tuner` must be a keras_tuner Tuner, but got {type(tuner).__name__}")
    objectives = list(check_objectives(objectives))
    if "latency" in objectives:
        raise ValueError("`objectives`: keras-tuner trials carry no measured latency; use accuracy with macs, "
                         "flops or params")
    hypermodel = tuner.hypermodel
    if space is None:
        if not isinstance(hypermodel, HyperModel):
            raise ValueError("`space`: the tuner's hypermodel is not a nas.keras_tuner.HyperModel, so pass the "
                             "search space its values came from (space=search_spaces.get(...))")
        space = hypermodel.space
    _objective_name(tuner)
    budget = hypermodel.budget if isinstance(hypermodel, HyperModel) else Budget()
    constraints = dict(hypermodel.constraints) if isinstance(hypermodel, HyperModel) else {}
    if storage is None:
        storage_obj: optuna.storages.BaseStorage = optuna.storages.InMemoryStorage()
        url = "memory"
    else:
        url = describe_storage(storage)
        storage_obj = open_storage(url)
    if study_name is None:
        study_name = f"keras-tuner-{Path(tuner.project_dir).name}"
    if study_name in optuna.get_all_study_names(storage_obj):
        study = optuna.load_study(study_name=study_name, storage=storage_obj)
        kept = read_config(study).run.backend
        if not isinstance(kept, KerasTuner) or Path(kept.directory or "", kept.project_name or "").resolve() != Path(
                tuner.project_dir).resolve():
            raise ValueError(f"`study_name`: study {study_name!r} is not a view of the keras-tuner project "
                             f"{tuner.project_dir}; choose another study_name")
    else:
        study = optuna.create_study(study_name=study_name, storage=storage_obj,
                                    directions=[OBJECTIVES[o] for o in objectives])
        write_config(study, _view_config(space, objectives, tuner, budget, constraints))
    stored = read_config(study)
    sync(study, tuner, space, list(stored.objectives), stored.constraints)
    return study, url


def hyperband_trials(tuner: Any) -> int | None:
    """How many trials a keras-tuner Hyperband search runs (None for another tuner): per iteration, in each bracket,
    the models of each round, each round's a trial of its own (keras-tuner's brackets, from its oracle's sizes)."""
    oracle = tuner.oracle
    if not isinstance(oracle, keras_tuner.oracles.HyperbandOracle) or not math.isfinite(oracle.hyperband_iterations):
        return None
    per_iteration = sum(oracle._get_size(bracket, round_num) for bracket in range(oracle._get_num_brackets())
                        for round_num in range(oracle._get_num_rounds(bracket)))
    return int(oracle.hyperband_iterations * per_iteration)


def run_study(study: optuna.Study, config: StudyConfig, *, verbose: bool = True) -> None:
    """Run (or continue) the keras-tuner search a ``backend=nas.KerasTuner(...)`` study stands for, adding each
    trial to the study as keras-tuner ends it (so ``nas status``, the dashboard and the search's callbacks see it
    then), with its progress line."""
    from nas.data import load_data
    from nas.engine.components import make_evaluator
    from nas.engine.progress import Live

    kt = config.run.backend
    assert isinstance(kt, KerasTuner) and kt.directory is not None and kt.project_name is not None
    space, budget, seed = search_spaces.from_config(config.space), config.budget, config.strategy.seed
    evaluator = make_evaluator(config.evaluator)
    directory = Path(kt.directory)
    limits = config.constraints  # analytic ones only (KerasTuner.check refuses the others)
    hypermodel = HyperModel(space, budget=budget, seed=seed or 0,
                            rejections_file=directory / kt.project_name / "nas_rejections.jsonl",
                            max_macs=limits.get("max_macs"), max_flops=limits.get("max_flops"),
                            max_params=limits.get("max_params"))
    options = dict(kt.options)
    if kt.tuner == "hyperband":
        options.setdefault("max_epochs", budget.epochs)
    objectives = list(config.objectives)
    live = Live(study.get_trials(deepcopy=False), config.n_trials, verbose)
    added = 0

    def ended(tuner: keras_tuner.Tuner) -> None:
        nonlocal added
        added += sync(study, tuner, space, objectives, config.constraints)
        live.update(study.get_trials(deepcopy=False))
    tuner = make_tuner(kt.tuner, hypermodel, directory=directory, project_name=kt.project_name,
                       max_trials=config.n_trials, seed=seed, overwrite=False, evaluator=evaluator,
                       on_trial_end=ended, **options)
    planned = hyperband_trials(tuner)
    if planned is not None:  # Hyperband's own count (its brackets), not n_trials: what the progress counts to
        live.target = planned
    if verbose:
        loads = "" if evaluator is not None else ", training in this process"
        print(f"nas: keras-tuner {type(tuner).__name__} in {tuner.project_dir}{loads}; each trial is added to the "
              f"study as it ends", flush=True)
    if evaluator is not None:
        tuner.search(verbose=0)
    else:
        data = load_data(config.data)
        import keras

        keras.utils.set_random_seed(budget.seed)
        with warnings.catch_warnings():
            # Hyperband reloads a trial's best checkpoint into a model whose optimizer has not run yet: Keras warns
            # on each that it skips the optimizer's variables (as intended: only the weights carry over)
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=budget.epochs,
                         batch_size=budget.batch_size, verbose=0)
    ended(tuner)  # what keras-tuner ended without its hook (none, unless it changes how it ends trials)
    if verbose:
        print(f"{live.summary(study.get_trials(deepcopy=False))}; {added} keras-tuner trials added", flush=True)
