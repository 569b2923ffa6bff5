"""Trials without Optuna: a seeded random trial and a strict fixed trial.

A search space asks a *trial* for values through Optuna's three calls (``suggest_int``, ``suggest_float``,
``suggest_categorical``). Anything with those calls works: an Optuna trial, ``optuna.trial.FixedTrial``,
or the two here, which import nothing heavy:

* ``RandomTrial(seed=...)`` draws uniformly (log-uniformly for ``log=True``) from a seeded generator: for
  tests and plain random search.
* ``FixedTrial(params)`` replays a parameter dict and checks every value against the distribution the space
  asks with, so a value outside a space's ranges is an error, not a silent out-of-space architecture.

``evaluator`` marks the functions that a study may name as its evaluator (a stand-in for training, e.g. a
tabular benchmark).

Both trials record what was asked: ``trial.params`` (label -> value) and ``trial.distributions`` (label -> a tuple
describing the distribution), and both insist that a label keeps one distribution within a trial.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

__all__ = ["FixedTrial", "RandomTrial", "Distribution", "cat_dist", "evaluator", "float_dist", "int_dist"]

Distribution = tuple  # ("int", low, high, step, log) | ("float", low, high, step, log) | ("categorical", choices)

PLAIN = (int, float, str, bool, type(None))


EVALUATOR_MARK = "__nas_evaluator__"


def evaluator(obj: Any) -> Any:
    """Mark a function ``f(spec) -> metrics dict`` (or a class whose instances are such functions) as an
    evaluator that a study may name in its stored configuration.

    A study stores its evaluator as an import path plus JSON arguments, never as a pickle; a worker that
    resumes the study imports that path and calls it only if it carries this mark. So whoever can write to a
    shared study storage can choose among the evaluators their authors marked, not run any function they like
    (``os.system``, ``subprocess.run``).
    """
    if not callable(obj):
        raise ValueError(f"@nas.evaluator marks a function or a class, but got {obj!r}")
    setattr(obj, EVALUATOR_MARK, True)
    return obj


def _check_label(name: Any) -> None:
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"a parameter label must be a non-empty string without '/', but got {name!r}")


class _Recording:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, Distribution] = {}

    def _record(self, name: str, dist: Distribution) -> None:
        _check_label(name)
        known = self.distributions.get(name)
        if known is not None and known != dist:
            raise ValueError(f"label {name!r} was asked with two distributions in one trial: {known} and {dist}")
        self.distributions[name] = dist


def int_dist(low: int, high: int, step: int, log: bool) -> Distribution:
    if low > high:
        raise ValueError(f"suggest_int needs low <= high, but got low={low}, high={high}")
    return ("int", int(low), int(high), int(step), bool(log))


def float_dist(low: float, high: float, step: float | None, log: bool) -> Distribution:
    if low > high:
        raise ValueError(f"suggest_float needs low <= high, but got low={low}, high={high}")
    return ("float", float(low), float(high), None if step is None else float(step), bool(log))


def cat_dist(choices: Sequence[Any]) -> Distribution:
    choices = tuple(choices)
    if not choices:
        raise ValueError("suggest_categorical needs at least one choice")
    for c in choices:
        if not isinstance(c, PLAIN):
            raise ValueError(f"categorical choices must be int, float, str, bool or None, but got {c!r}")
    return ("categorical", choices)


class RandomTrial(_Recording):
    """A trial that draws every value at random from a seeded generator."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__()
        self.seed = seed
        self._rng = random.Random(seed)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        dist = int_dist(low, high, step, log)
        self._record(name, dist)
        if name in self.params:
            return self.params[name]
        if log:
            value = int(round(math.exp(self._rng.uniform(math.log(low), math.log(high)))))
            value = min(high, max(low, value))
        else:
            value = low + step * self._rng.randint(0, (high - low) // step)
        self.params[name] = value
        return value

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        dist = float_dist(low, high, step, log)
        self._record(name, dist)
        if name in self.params:
            return self.params[name]
        if step is not None:
            n = int(math.floor((high - low) / step + 1e-9))
            value = round(low + step * self._rng.randint(0, n), 10)
        elif log:
            value = math.exp(self._rng.uniform(math.log(low), math.log(high)))
        else:
            value = self._rng.uniform(low, high)
        self.params[name] = value
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        dist = cat_dist(choices)
        self._record(name, dist)
        if name not in self.params:
            self.params[name] = self._rng.choice(dist[1])
        return self.params[name]


class FixedTrial(_Recording):
    """Replays ``params``; every value must lie in the distribution it is asked with."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__()
        if not isinstance(params, dict):
            raise ValueError(f"FixedTrial needs a dict of label -> value, but got {params!r}")
        self._given = dict(params)

    def _value(self, name: str) -> Any:
        if name not in self._given:
            raise ValueError(f"FixedTrial has no value for label {name!r} (given: {', '.join(sorted(self._given))})")
        return self._given[name]

    def unused(self) -> list[str]:
        """Labels that were given but never asked."""
        return sorted(set(self._given) - set(self.params))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        self._record(name, int_dist(low, high, step, log))
        value = self._value(name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high \
                or (value - low) % step:
            raise ValueError(f"label {name!r} must be an integer in [{low}, {high}] (step {step}), "
                             f"but got {name}={value!r}")
        self.params[name] = value
        return value

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        self._record(name, float_dist(low, high, step, log))
        value = self._value(name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low - 1e-12 <= value <= high + 1e-12
        if ok and step is not None:
            k = (value - low) / step
            ok = abs(k - round(k)) < 1e-6
        if not ok:
            grid = f" on a grid of step {step}" if step is not None else ""
            raise ValueError(f"label {name!r} must be a number in [{low}, {high}]{grid}, but got {name}={value!r}")
        self.params[name] = float(value)
        return float(value)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        dist = cat_dist(choices)
        self._record(name, dist)
        value = self._value(name)
        if not any(value == c and type(value) is type(c) for c in dist[1]):
            raise ValueError(f"label {name!r} must be one of {list(dist[1])}, but got {name}={value!r}")
        self.params[name] = value
        return value
