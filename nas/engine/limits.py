"""Sampling inside the analytic cost limits, instead of drawing candidates and rejecting them.

nas knows a candidate's MACs, FLOPs and params before it builds anything, and a space asks its labels one at a
time. So when a study has analytic limits (``max_macs``, ``max_flops``, ``max_params``), its sampler is wrapped
(:func:`within_limits`) in :class:`WithinLimits`, which keeps each label's value to those for which the candidate
can still be finished within the limits - unless the sampler follows a fixed grid (``GridSampler``) or keeps to
the limits itself (a ``samples_within_limits = True`` attribute, as nas's evolution sampler has):

* a *completion* of a partly sampled candidate answers every label not yet chosen with that label's cheapest
  value (numbers: their low end; categorical labels: the choice that gives the cheapest network when the rest
  is at its low end, found once per label and remembered). It is replayed through ``nas.trial.ReplayTrial``,
  so a chosen value that does not fit the question the space asks (strictly: ``True`` is not ``1``, an integer
  off its step grid) counts as not chosen. A value is *allowed* if the candidate with it and the cheap
  completion is within every limit (``nas.cost``, exact);
* the wrapped sampler (TPE, NSGA-II, random, ...) proposes as usual. An independent draw that is not allowed is
  replaced by a uniform draw among the allowed values of the label's grid (``nas.trial.grid``: the choices of a
  categorical label, the values of an integer or stepped float label of at most ``GRID`` = 256 values; for
  the random sampler that is exactly uniform over the allowed values), or by the low end for a wider range or
  a continuous float; a relative (joint) proposal is kept up to the first label, in the order the space asks
  them, whose value is not allowed, and the labels from there on are drawn independently as above.

By induction every candidate then fits: the cheap completion that made a value allowed stays allowed at every
later label, so some value is always left. When even the cheapest candidate is over a limit, nothing is
allowed, the sampler's own value is used and the engine records the candidate ``infeasible`` as before.
Enqueued (warm-start) trials are never changed. The cost is one ``space.sample`` plus ``nas.cost`` per value of
each label (about 0.4 ms each: tens of milliseconds per trial), paid only by studies with analytic limits.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution

from nas.budget import ANALYTIC, CONSTRAINTS
from nas.cost import cost
from nas.engine.distributions import from_optuna
from nas.trial import ReplayTrial, grid

__all__ = ["WithinLimits", "analytic_limits", "check_reachable", "cheapest_candidate", "within_limits"]

GRID = 256  # a label with at most this many values has its allowed values listed; wider ranges try the low end


def analytic_limits(constraints: dict[str, float]) -> dict[str, float]:
    """``{"macs": 2e6, ...}``: the limits of ``constraints`` that are known before training."""
    return {CONSTRAINTS[n]: float(v) for n, v in constraints.items() if CONSTRAINTS.get(n) in ANALYTIC}


def _guess(name: str, choices: Sequence[Any]) -> Any:
    """A categorical label's cheap value before calibration: the smallest number (the largest for a stride,
    which shrinks what follows), else the first choice."""
    numbers = [c for c in choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
    if len(numbers) == len(choices):
        return max(numbers) if "stride" in name else min(numbers)
    return choices[0]


def _probe(given: dict[str, Any], cheap: Callable[[str, tuple[Any, ...]], Any]) -> ReplayTrial:
    """The stand-in trial of a partial candidate: answers from ``given`` where the value fits the question, and
    every other label with its cheap value (categorical: ``cheap(name, choices)``; numbers: the low end). The
    labels it asked, in order, are the keys of its ``distributions``."""
    return ReplayTrial(given, lambda name, dist: cheap(name, dist[1]) if dist[0] == "categorical" else dist[1])


class _Fit:
    """How far over its limits the candidate with given labels and the cheap completion is."""

    def __init__(self, space: Any, limits: dict[str, float]) -> None:
        self.space, self.limits = space, limits
        self._cheap: dict[tuple[str, tuple[Any, ...]], Any] = {}

    def excess(self, given: dict[str, Any], cheap: Callable[[str, tuple[Any, ...]], Any] | None = None) -> float:
        """max over limits of cost / limit (<= 1: fits); inf when the space refuses the answers."""
        try:
            spec = self.space.sample(_probe(given, cheap or self.cheap))
        except (ValueError, TypeError, KeyError):
            return float("inf")
        values = cost(spec).as_dict()
        return max(values[k] / v for k, v in self.limits.items())

    def cheap(self, name: str, choices: tuple[Any, ...]) -> Any:
        """The label's choice that gives the cheapest network with everything else at its guessed cheap value
        (found once per label and choices)."""
        key = (name, choices)
        if key not in self._cheap:
            guess = _guess(name, choices)
            scores = {c: self.excess({name: c}, _guess) for c in choices}
            best = min(scores.values())
            self._cheap[key] = guess if scores[guess] <= best else min(choices, key=lambda c: scores[c])
        return self._cheap[key]

    def fits(self, given: dict[str, Any]) -> bool:
        return self.excess(given) <= 1.0


def cheapest_candidate(space: Any, constraints: dict[str, float]) -> float:
    """max over the analytic limits of cost / limit of the cheapest candidate nas finds in ``space`` (> 1: no
    candidate it can build fits; 0 without analytic limits)."""
    limits = analytic_limits(constraints)
    return _Fit(space, limits).excess({}) if limits else 0.0


def check_reachable(space: Any, constraints: dict[str, float]) -> None:
    """Refuse limits that even the cheapest candidate of ``space`` breaks, naming the limit and that cost."""
    limits = analytic_limits(constraints)
    if not limits:
        return
    values = cost(space.sample(_probe({}, _Fit(space, limits).cheap))).as_dict()
    over = [f"{n}={v:,.0f} (its {CONSTRAINTS[n]}: {values[CONSTRAINTS[n]]:,})" for n, v in constraints.items()
            if CONSTRAINTS.get(n) in limits and values[CONSTRAINTS[n]] > v]
    if not over:
        return
    raise ValueError(f"`constraints`: no candidate of the {getattr(space, 'name', 'given')!r} space fits; the "
                     f"cheapest nas can build breaks {', '.join(over)}: raise the limit or shrink the space's "
                     f"ranges (or pass sample_within_limits=False to record every draw as infeasible)")


def within_limits(sampler: optuna.samplers.BaseSampler, space: Any, constraints: dict[str, float],
                  seed: int | None = None) -> optuna.samplers.BaseSampler:
    """``sampler`` wrapped in :class:`WithinLimits` when ``constraints`` has analytic limits, unless it follows a
    fixed grid or keeps to the limits itself (``samples_within_limits``)."""
    if not analytic_limits(constraints) or isinstance(sampler, optuna.samplers.GridSampler) or \
            getattr(sampler, "samples_within_limits", False):
        return sampler
    return WithinLimits(sampler, space, constraints, seed=seed)


class WithinLimits(optuna.samplers.BaseSampler):
    """``base``, keeping every candidate of ``space`` inside the analytic ``constraints`` (module docstring)."""

    def __init__(self, base: optuna.samplers.BaseSampler, space: Any, constraints: dict[str, float],
                 seed: int | None = None) -> None:
        self.base = base
        self._fit = _Fit(space, analytic_limits(constraints))
        self._rng = random.Random(seed)
        self._kept: dict[int, dict[str, Any]] = {}  # trial number -> the relative values kept

    def __repr__(self) -> str:
        return f"WithinLimits({self.base!r}, limits={self._fit.limits})"

    def reseed_rng(self) -> None:
        self.base.reseed_rng()
        self._rng = random.Random()

    def infer_relative_search_space(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        return self.base.infer_relative_search_space(study, trial)

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial, state: Any,
                    values: Sequence[float] | None) -> None:
        self._kept.pop(trial.number, None)
        self.base.after_trial(study, trial, state, values)

    @staticmethod
    def _fixed(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        return dict(trial.system_attrs.get("fixed_params") or {})

    def sample_relative(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        proposal = self.base.sample_relative(study, trial, search_space)
        if not proposal:
            return proposal
        fixed = self._fixed(trial)
        probe = _probe({**proposal, **fixed}, self._fit.cheap)
        try:
            self._fit.space.sample(probe)
        except (ValueError, TypeError, KeyError):
            return {}
        kept: dict[str, Any] = {}
        for label in probe.distributions:
            if label in fixed:
                continue
            if label not in proposal:
                continue  # drawn independently, inside the limits
            if not self._fit.fits({**fixed, **kept, label: proposal[label]}):
                break
            kept[label] = proposal[label]
        self._kept[trial.number] = kept
        return kept

    def sample_independent(self, study: optuna.Study, trial: optuna.trial.FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        value = self.base.sample_independent(study, trial, param_name, param_distribution)
        given = {**self._kept.get(trial.number, {}), **self._fixed(trial), **trial.params}
        if self._fit.fits({**given, param_name: value}):
            return value
        values = grid(from_optuna(param_distribution), most=GRID)
        if values is None:
            low = param_distribution.low if isinstance(param_distribution, (IntDistribution, FloatDistribution)) \
                else value
            return low if self._fit.fits({**given, param_name: low}) else value
        allowed = [v for v in values if self._fit.fits({**given, param_name: v})]
        return self._rng.choice(allowed) if allowed else value
