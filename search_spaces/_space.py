"""What every search space shares.

A space is configured once (``search_spaces.get(name, **options)``), validates its options at construction,
and then turns a trial's answers into an ``ArchSpec`` with ``sample(trial)``. It never builds a model and
imports no TensorFlow.

Option conventions, the same in every space:

* a *choices* option (plural name: ``widths``, ``kernels``, ``activations``...) is a list of values; with two
  or more values the space asks a categorical label, with exactly one the value is fixed and nothing is asked;
* a *range* option (``depth``, ``stages``...) is ``(low, high)``: an integer label in that range, or fixed
  when ``low == high`` (a single int is accepted for a fixed value).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any, ClassVar

from nas.spec import ArchSpec
from nas.trial import FixedTrial
from search_spaces._baselines import baseline


class Space:
    name: ClassVar[str]
    # baselines this space contains (when configured at their input size and classes)
    classics: ClassVar[tuple[str, ...]] = ()

    def _configure(self, options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
        """Refuse unknown options, merge them over ``defaults``, remember them for :meth:`config`, and read the
        input shape and classes (spaces that have them). Returns the merged options."""
        check_unknown(self.name, options, defaults)
        o = {**defaults, **options}
        self._options = copy.deepcopy(o)
        if defaults.get("input_shape") is not None:  # (compound: from its base unless given)
            self.input_shape = shape_option(self.name, o["input_shape"])
            self.num_classes = classes_option(self.name, o["num_classes"])
        return o

    def _dropouts(self, o: dict[str, Any]) -> tuple[float, ...]:
        """The head-dropout choices, each checked as a ``Head`` would check it."""
        from nas.spec import Head

        dropouts = choices_option(self.name, "dropouts", o["dropouts"], kind=float, low=0.0)
        for d in dropouts:
            Head(dropout=d)
        return dropouts

    def _stem_stride(self, value: Any) -> int:
        """``auto``: stride 2 from 64 pixels up (keeps small inputs at full resolution), else 1 or 2."""
        if value not in ("auto", 1, 2):
            raise opt_fail(self.name, "stem_stride", "'auto', 1 or 2", value)
        return value if value != "auto" else (2 if min(self.input_shape[:2]) >= 64 else 1)

    # ------------------------------------------------------------------ options
    def config(self) -> dict[str, Any]:
        """``{"space": name, "options": {...}}``, JSON-able; ``search_spaces.from_config`` rebuilds the space."""
        return {"space": self.name, "options": _jsonable(self._options)}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self._options.items())
        return f"search_spaces.get({self.name!r}, {opts})"

    # ------------------------------------------------------------------ asking
    @staticmethod
    def choose(trial: Any, label: str, choices: Sequence[Any]) -> Any:
        """Ask a categorical label, or return the single fixed choice without asking."""
        return choices[0] if len(choices) == 1 else trial.suggest_categorical(label, list(choices))

    @staticmethod
    def integer(trial: Any, label: str, bounds: tuple[int, int]) -> int:
        low, high = bounds
        return low if low == high else trial.suggest_int(label, low, high)

    # ------------------------------------------------------------------ interface
    def sample(self, trial: Any) -> ArchSpec:
        raise NotImplementedError

    def _params_of(self, name: str) -> dict[str, Any]:
        raise NotImplementedError

    def params_of(self, name: str) -> dict[str, Any]:
        """The labels at which this space reproduces the classic network ``name`` exactly."""

        if name not in self.classics:
            raise ValueError(f"`name` must be a classic network of the {self.name!r} space "
                             f"({', '.join(self.classics) or 'none'}), but got name={name!r}")
        return self._replay(name, self._params_of(name), self._expected(name))

    def _replay(self, name: Any, params: dict[str, Any], expected: ArchSpec) -> dict[str, Any]:
        """Sample with ``params`` replayed strictly; the labels asked if that gives ``expected``, else an error
        saying the space as configured does not contain ``name``."""
        trial = FixedTrial(params)
        try:
            got = self.sample(trial)
        except ValueError as exc:
            raise ValueError(f"the {self.name!r} space as configured does not contain {name}: {exc}") from None
        if got != expected:
            raise ValueError(f"the {self.name!r} space as configured does not contain {name} "
                             f"(its fixed options differ): sampled {got}, expected {expected}")
        # only the labels the space actually asks (fixed options are not labels)
        return dict(trial.params)

    @property
    def constraints(self) -> dict[str, float]:
        """Cost limits that belong to the space (the compound space's budget); empty for most spaces."""
        return getattr(self, "_constraints", {})

    @constraints.setter
    def constraints(self, value: dict[str, float]) -> None:
        self._constraints = value

    def _expected(self, name: str) -> ArchSpec:
        return baseline(name, input_shape=self.input_shape, num_classes=self.num_classes)

    def warm_start(self, names: Sequence[str]) -> list[dict[str, Any]]:
        return [self.params_of(n) for n in names]

    input_shape: tuple[int, int, int]
    num_classes: int


def _jsonable(value: Any) -> Any:
    if isinstance(value, ArchSpec):
        return {"__spec__": json.loads(value.to_json())}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def from_jsonable(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"__spec__"}:
        return ArchSpec.from_dict(value["__spec__"])
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: from_jsonable(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------- option validation

def opt_fail(space: str, option: str, rule: str, value: Any) -> ValueError:
    return ValueError(f"{space} space: `{option}` must be {rule}, but got {option}={value!r}")


def choices_option(space: str, option: str, value: Any, *, kind: type | tuple[type, ...],
                   allowed: Sequence[Any] | None = None, low: float | None = None) -> tuple[Any, ...]:
    if isinstance(value, (str, int, float, bool)) or value is None:
        value = (value,)
    if not isinstance(value, (list, tuple)) or not value:
        raise opt_fail(space, option, "a non-empty list", value)
    out = []
    for v in value:
        bad = not isinstance(v, kind) or (isinstance(v, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)))
        if bad or (allowed is not None and v not in allowed) or (low is not None and v < low):
            rule = f"a list of values from {list(allowed)}" if allowed is not None else \
                f"a list of {getattr(kind, '__name__', 'values')}" + (f" >= {low}" if low is not None else "")
            raise opt_fail(space, option, rule, value)
        if v not in out:
            out.append(v)
    return tuple(out)


def range_option(space: str, option: str, value: Any, *, low: int, high: int) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
            or not low <= value[0] <= value[1] <= high):
        raise opt_fail(space, option, f"(low, high) integers with {low} <= low <= high <= {high}", value)
    return (value[0], value[1])


def shape_option(space: str, value: Any) -> tuple[int, int, int]:
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)):
        raise opt_fail(space, "input_shape", "(height, width, channels) of positive integers", value)
    return (value[0], value[1], value[2])


def classes_option(space: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise opt_fail(space, "num_classes", "an integer >= 2", value)
    return value


def check_unknown(space: str, given: dict[str, Any], known: Sequence[str]) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"{space} space: unknown option {unknown[0]!r}; known options: {', '.join(sorted(known))}")
