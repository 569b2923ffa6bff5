"""What every search space shares.

A space is configured once (``search_spaces.get(name, **options)``), validates its options at construction,
and then turns a trial's answers into an ``ArchSpec`` with ``sample(trial)``. It never builds a model and
imports no TensorFlow.

Option conventions, the same in every space:

* a *choices* option (plural name: ``widths``, ``kernels``, ``activations``...) is a list of values; with two
  or more values the space asks a categorical label, with exactly one the value is fixed and nothing is asked;
* a *range* option (``depth``, ``stages``...) is ``(low, high)``: an integer label in that range, or fixed
  when ``low == high`` (a single int is accepted for a fixed value).

Default ranges fit the data (:meth:`Space._fit_to_data`). The defaults are ImageNet- and CIFAR-sized; for
inputs smaller than 32 pixels (8x8 digits, 28x28 Fashion-MNIST) the options the user did not give are cut to
the resolution, with ``d = ceil(log2(min(height, width))) - 1``, the stride-2 steps that keep the feature map
at least 2x2 (8 pixels: 2; 16: 3; 28: 4):

* ``max_downsampling`` (spaces with per-stage strides): at most ``d`` stride-2 steps in all, the stem's
  included; once they are used, later stages have stride 1 and their ``s{i}_stride`` is not asked;
* ``stages``: at most ``d + 2``; ``widths``: at most ``32 * 2**d`` channels; ``depth``: the upper end times
  ``sqrt(min(height, width) / 32)``, rounded up; ``head_widths``: at most ``max(320, 64 * num_classes)``.

At 32 pixels and more nothing changes (so the classic networks stay points at their own sizes); an option the
user gives is never changed; the fitted values are what the study stores, so a resumed study or a worker
rebuilds the same space.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, TypeVar

from nas.blocks import MAX_CHANNELS, Block
from nas.spec import ArchSpec
from nas.trial import FixedTrial
from search_spaces._baselines import baseline

B = TypeVar("B", bound=Block)


class Space:
    name: ClassVar[str]
    # baselines this space contains (when configured at their input size and classes; the compound space's
    # depend on its base network, so it sets them per instance)
    classics: tuple[str, ...] = ()

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

    FIT_BELOW: ClassVar[int] = 32  # inputs smaller than this get fitted default ranges

    def _fit_to_data(self, given: dict[str, Any], o: dict[str, Any]) -> dict[str, Any]:
        """The options ``o`` with the defaults the user did not ``give`` fitted to the input (module docstring);
        records the fitted values as the space's options. Sets ``self.max_downsampling`` (None: no limit)."""
        side = min(self.input_shape[:2])
        fitted: dict[str, Any] = {}
        small = side < self.FIT_BELOW
        d = max(1, math.ceil(math.log2(side)) - 1)
        if "max_downsampling" in o:
            value = o["max_downsampling"]
            if value == "auto":
                value = d if small and "strides" not in given else None
            elif value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise opt_fail(self.name, "max_downsampling", "'auto', null or an integer >= 0", value)
            fitted["max_downsampling"] = value
        if small:
            if "stages" in o and "stages" not in given:
                low, high = range_option(self.name, "stages", o["stages"], low=1, high=64)
                high = min(high, d + 2)
                fitted["stages"] = (min(low, high), high)
            if "widths" in o and "widths" not in given:
                widths = tuple(o["widths"])
                fitted["widths"] = tuple(w for w in widths if w <= 32 * 2**d) or (min(widths),)
            if "depth" in o and "depth" not in given:
                low, high = range_option(self.name, "depth", o["depth"], low=1, high=64)
                fitted["depth"] = (low, max(low, math.ceil(high * math.sqrt(side / 32))))
            if "head_widths" in o and "head_widths" not in given:
                cap = max(320, 64 * self.num_classes)
                fitted["head_widths"] = tuple(w for w in o["head_widths"] if w <= cap)
        self._options.update(copy.deepcopy(fitted))
        self.max_downsampling = fitted.get("max_downsampling")
        return {**o, **fitted}

    def _stride(self, trial: Any, label: str, strides: Sequence[int], used: int) -> int:
        """A stage's stride: asked while stride-2 steps are left (``max_downsampling``), else 1."""
        if self.max_downsampling is not None and used >= self.max_downsampling:
            return 1
        return self.choose(trial, label, strides)

    max_downsampling: int | None = None

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
        """``{"name": name, "options": {...}}``, JSON-able; ``search_spaces.from_config`` rebuilds the space."""
        return {"name": self.name, "options": _jsonable(self._options)}

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
        kinds = kind if isinstance(kind, tuple) else (kind,)
        bad = not isinstance(v, kind) or (isinstance(v, bool) and bool not in kinds)
        if bad or (allowed is not None and v not in allowed) or (low is not None and v < low):
            rule = f"a list of values from {list(allowed)}" if allowed is not None else \
                f"a list of {getattr(kind, '__name__', 'values')}" + (f" >= {low}" if low is not None else "")
            raise opt_fail(space, option, rule, value)
        if v not in out:
            out.append(v)
    return tuple(out)


def widths_option(space: str, option: str, value: Any, *, low: int = 1) -> tuple[int, ...]:
    """A choices option of channel counts (``widths``, ``stem_widths``, ``head_widths``, branch widths...): integers
    in [low, 65,536], the bound every layer of an ``ArchSpec`` has (see ``nas.blocks``)."""
    widths = choices_option(space, option, value, kind=int, low=low)
    if max(widths) > MAX_CHANNELS:
        raise opt_fail(space, option, f"a list of channel counts in [{low}, {MAX_CHANNELS:,}] (no layer needs more, "
                                      f"and one 3x3 convolution that wide holds 38.7 billion weights)", value)
    return widths


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


def stages_of(spec: ArchSpec, kind: type[B] | tuple[type[B], ...]) -> list[B]:
    """The stages of ``spec``, a classic network of a space's own family, as blocks of ``kind``; a stage of
    another kind is a programming error (the classics of each space are fixed data)."""
    stages = [s for s in spec.stages if isinstance(s, kind)]
    if len(stages) != len(spec.stages):
        raise TypeError(f"{spec} has a stage that is not {kind}")
    return stages


def check_unknown(space: str, given: dict[str, Any], known: Iterable[str]) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"{space} space: unknown option {unknown[0]!r}; known options: {', '.join(sorted(known))}")
