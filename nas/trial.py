"""Trials without Optuna: the one replay trial, and the seeded random trial.

A search space asks a *trial* for values through Optuna's three calls (``suggest_int``, ``suggest_float``,
``suggest_categorical``). Anything with those calls works: an Optuna trial, ``optuna.trial.FixedTrial``,
or the trials here, which import nothing heavy. Every stand-in trial nas uses is one of them:

* ``ReplayTrial(given, fill=None)`` answers each label from ``given`` when the value *fits* the question the
  space asks (:func:`fits`), strictly: ``True`` is not ``1``, an integer label's value must be an ``int`` on
  its step grid, a float label's a number (not a bool) in its range and on its step grid if it has one, a
  categorical value one of the choices by type and value. Without ``fill`` a label that is missing or does
  not fit is an error naming the label, the rule and the value; with ``fill(label, distribution)`` such a label
  is answered by ``fill`` instead (and listed in ``trial.filled``). nas replays stored and warm-start
  parameters strictly, arch strings of NAS-Bench-201 strictly, an evolution child's labels with random draws
  for the labels its change switched on, and a partial candidate with its cheapest completion (sampling
  within cost limits).
* ``FixedTrial(params)``: the strict replay (no ``fill``), under its public name.
* ``RandomTrial(seed=...)`` draws every value (:func:`draw`: uniform, log-uniform for ``log=True``) from a
  seeded generator: for tests and plain random search. It is a replay of nothing with random draws as fill.

Each records what was asked: ``trial.params`` (label -> value) and ``trial.distributions`` (label -> a tuple
describing the distribution), and insists that a label keeps one distribution within a trial.
:func:`grid` lists the values of a discrete distribution (the evolution sampler's mutations and the
within-limits sampler's replacements use it through Optuna's distributions).

``evaluator`` marks the functions that a study may name as its evaluator (a stand-in for training, e.g. a
tabular benchmark).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from nas.spec import ArchSpec

__all__ = ["Distribution", "Evaluator", "FixedTrial", "RandomTrial", "ReplayTrial", "cat_dist", "draw", "evaluator",
           "fits", "float_dist", "grid", "int_dist", "rule"]

Distribution = tuple  # ("int", low, high, step, log) | ("float", low, high, step, log) | ("categorical", choices)

PLAIN = (int, float, str, bool, type(None))


EVALUATOR_MARK = "__nas_evaluator__"


class Evaluator(Protocol):
    """What ``@nas.evaluator`` marks (or, for a marked class, what its instances are): called with a spec, it
    returns the spec's metrics (``accuracy``, and e.g. ``latency_ms``; nas counts the analytic costs itself)."""

    def __call__(self, spec: ArchSpec, /) -> Mapping[str, object]: ...


E = TypeVar("E", bound=Callable[..., object])


def evaluator(obj: E) -> E:
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


def int_dist(low: int, high: int, step: int, log: bool) -> Distribution:
    if low > high:
        raise ValueError(f"suggest_int needs low <= high, but got low={low}, high={high}")
    if step < 1:
        raise ValueError(f"suggest_int needs step >= 1, but got step={step}")
    return ("int", int(low), int(high), int(step), bool(log))


def float_dist(low: float, high: float, step: float | None, log: bool) -> Distribution:
    if low > high:
        raise ValueError(f"suggest_float needs low <= high, but got low={low}, high={high}")
    if step is not None and not step > 0:
        raise ValueError(f"suggest_float needs step > 0 (or None), but got step={step}")
    return ("float", float(low), float(high), None if step is None else float(step), bool(log))


def cat_dist(choices: Sequence[Any]) -> Distribution:
    choices = tuple(choices)
    if not choices:
        raise ValueError("suggest_categorical needs at least one choice")
    for c in choices:
        if not isinstance(c, PLAIN):
            raise ValueError(f"categorical choices must be int, float, str, bool or None, but got {c!r}")
    return ("categorical", choices)


# ------------------------------------------------------------------ values of a distribution

def _steps(dist: Distribution) -> int:
    """How many values a stepped numeric distribution has: (high - low) // step + 1 (floats: up to 1e-9)."""
    _, low, high, step, _ = dist
    if dist[0] == "int":
        return (high - low) // step + 1
    return math.floor((high - low) / step + 1e-9) + 1


def _at(dist: Distribution, k: int) -> Any:
    """The ``k``-th value of a stepped numeric distribution (floats rounded to 10 decimals, as stored)."""
    low, step = dist[1], dist[3]
    return low + step * k if dist[0] == "int" else round(low + step * k, 10)


def grid(dist: Distribution, most: int | None = None) -> list[Any] | None:
    """Every value of a discrete distribution, in order: a categorical's choices, an integer range's values (log
    or not), a stepped float's grid. ``None`` for a continuous float, and for a numeric range of more than
    ``most`` values (a categorical's choices are always listed)."""
    if dist[0] == "categorical":
        return list(dist[1])
    if dist[0] == "float" and dist[3] is None:
        return None
    n = _steps(dist)
    if most is not None and n > most:
        return None
    return [_at(dist, k) for k in range(n)]


def draw(dist: Distribution, rng: random.Random) -> Any:
    """A value of ``dist`` at random: uniform over a categorical's choices and a grid's values, log-uniform for
    a log integer (rounded) or a log float, uniform over a continuous float's range."""
    kind, *rest = dist
    if kind == "categorical":
        return rest[0][rng.randrange(len(rest[0]))]
    low, high, step, log = rest
    if kind == "int" and log:
        return min(high, max(low, round(math.exp(rng.uniform(math.log(low), math.log(high))))))
    if step is not None:
        return _at(dist, rng.randrange(_steps(dist)))
    if log:
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    return rng.uniform(low, high)


def rule(dist: Distribution) -> str:
    """What a value of ``dist`` must be, in words (for error messages)."""
    if dist[0] == "categorical":
        return f"one of {list(dist[1])}"
    _, low, high, step, _ = dist
    if dist[0] == "int":
        return f"an integer in [{low}, {high}] (step {step})"
    return f"a number in [{low}, {high}]" + (f" on a grid of step {step}" if step is not None else "")


def fits(dist: Distribution, value: Any) -> bool:
    """Whether ``value`` is a value of ``dist``, strictly by type: a categorical value equals a choice of the
    same type (``True`` is not ``1``, ``1.0`` is not ``1``); an integer is an ``int`` (not a bool) in range on
    the step grid; a float is an int or float (not a bool) in range (1e-12 of slack) and, with a step, on its
    grid (1e-6 of a step of slack)."""
    if dist[0] == "categorical":
        return any(value == c and type(value) is type(c) for c in dist[1])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    _, low, high, step, _ = dist
    if dist[0] == "int":
        return isinstance(value, int) and low <= value <= high and (value - low) % step == 0
    if not low - 1e-12 <= value <= high + 1e-12:
        return False
    if step is None:
        return True
    k = (value - low) / step
    return abs(k - round(k)) < 1e-6


# ------------------------------------------------------------------ the trials

class ReplayTrial:
    """Answers from ``given`` where the value fits (:func:`fits`), else from ``fill`` (module docstring)."""

    def __init__(self, given: dict[str, Any], fill: Callable[[str, Distribution], Any] | None = None) -> None:
        if not isinstance(given, dict):
            raise ValueError(f"{type(self).__name__} needs a dict of label -> value, but got {given!r}")
        self._given = dict(given)
        self._fill = fill
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, Distribution] = {}
        self.filled: list[str] = []  # labels answered by ``fill``, in the order asked

    def unused(self) -> list[str]:
        """Labels that were given but never asked."""
        return sorted(set(self._given) - set(self.params))

    def _ask(self, name: str, dist: Distribution) -> Any:
        _check_label(name)
        known = self.distributions.get(name)
        if known is not None and known != dist:
            raise ValueError(f"label {name!r} was asked with two distributions in one trial: {known} and {dist}")
        self.distributions[name] = dist
        if name in self.params:
            return self.params[name]
        if name in self._given and fits(dist, self._given[name]):
            value = self._given[name]
        elif self._fill is not None:
            value = self._fill(name, dist)
            self.filled.append(name)
        elif name in self._given:
            raise ValueError(f"label {name!r} must be {rule(dist)}, but got {name}={self._given[name]!r}")
        else:
            raise ValueError(f"{type(self).__name__} has no value for label {name!r} (given: "
                             f"{', '.join(sorted(self._given))})")
        if dist[0] == "float":
            value = float(value)
        self.params[name] = value
        return value

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return self._ask(name, int_dist(low, high, step, log))

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return self._ask(name, float_dist(low, high, step, log))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._ask(name, cat_dist(choices))


class FixedTrial(ReplayTrial):
    """Replays ``params`` strictly: every label asked must be given, with a value that fits its question."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)


class RandomTrial(ReplayTrial):
    """A trial that draws every value at random (:func:`draw`) from a generator seeded with ``seed``."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        super().__init__({}, lambda name, dist: draw(dist, self._rng))
