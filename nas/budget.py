"""What a search optimises and how much each trial may spend: objectives, constraints, the training budget."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

__all__ = ["Budget", "BudgetLike", "CONSTRAINTS", "Direction", "OBJECTIVES", "ObjectivesLike", "TrialFailed",
           "check_objectives", "check_constraints"]

Direction = Literal["maximize", "minimize"]

# objective -> its direction (Optuna's names)
OBJECTIVES: dict[str, Direction] = {"accuracy": "maximize", "macs": "minimize", "flops": "minimize",
                                    "params": "minimize", "latency": "minimize"}
# objectives as they are given: one name, or a list or tuple of names (see check_objectives)
ObjectivesLike: TypeAlias = str | list[str] | tuple[str, ...]
# constraint -> metric it limits (analytic ones are checked before anything is built)
CONSTRAINTS: dict[str, str] = {"max_macs": "macs", "max_flops": "flops", "max_params": "params",
                               "max_latency": "latency"}
ANALYTIC = ("macs", "flops", "params")


class TrialFailed(Exception):
    """A trial that cannot give a result within its budget (NaN loss, timeout, out of memory, a bad spec). Raised
    by training (``nas.train``) and by the trial pipeline (``nas.engine.runner``); recorded as a failed trial."""


@dataclass(frozen=True, kw_only=True)
class Budget:
    """How each candidate is trained.

    ``epochs`` and ``batch_size`` of training; ``optimizer`` adam / adamw / sgd (momentum 0.9, Nesterov) with
    ``learning_rate``, ``weight_decay`` (adamw, sgd) and ``schedule`` constant / cosine; ``augment`` none /
    flip / shift / flip+shift (random horizontal flips, random 2-4 pixel shifts); ``bn_momentum`` of batch norm
    while searching (0.9: Keras's 0.99 never settles in a few hundred steps); ``seed``; ``latency_runs``
    (batch-1 inference calls timed for the latency metric); ``timeout`` seconds per trial (training stops and
    the trial fails past it; None: no limit); ``tensorboard``: write TensorBoard logs of each trial's training to
    ``<artifacts>/tensorboard/<study>.trial-N`` (``tensorboard --logdir <artifacts>/tensorboard``).

    ``inherit_epochs``: a child the ``evolution`` sampler made from a trained parent (one label changed) starts
    from the parent's saved weights, every layer of the same name taking them whole or the overlapping slice, and
    trains this many epochs instead of ``epochs``; the ``pareto`` pruner judges it at its rungs among inheriting
    trials only (its readings are not comparable with a fresh training's): :mod:`nas.engine.inherit`. 0: off.
    None (the default): ``epochs`` with the ``evolution`` sampler on training (with it the search found better
    fronts in the same seconds on every seed measured), 0 otherwise (other samplers, an evaluator, a Ray Tune
    scheduler); the study stores the number it resolved to. Studies stored before this default kept 0.
    """

    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 3e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "cosine"
    augment: str = "none"
    bn_momentum: float = 0.9
    seed: int = 0
    latency_runs: int = 20
    timeout: float | None = None
    tensorboard: bool = False
    inherit_epochs: int | None = None

    def __post_init__(self) -> None:
        def bad(field: str, rule: str) -> ValueError:
            return ValueError(f"budget: `{field}` must be {rule}, but got {field}={getattr(self, field)!r}")

        for name, low, high in (("epochs", 1, 10_000), ("batch_size", 1, 65_536), ("latency_runs", 1, 10_000),
                                ("seed", 0, 2**31 - 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
                raise bad(name, f"an integer in [{low}, {high}]")
        real_ranges = (("learning_rate", 1e-7, 10.0), ("weight_decay", 0.0, 1.0), ("bn_momentum", 0.0, 0.9999))
        for name, lowest, highest in real_ranges:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or not lowest <= v <= highest:
                raise bad(name, f"a number in [{lowest}, {highest}]")
            object.__setattr__(self, name, float(v))
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise bad("optimizer", "one of 'adam', 'adamw', 'sgd'")
        if self.schedule not in ("constant", "cosine"):
            raise bad("schedule", "'constant' or 'cosine'")
        if self.augment not in ("none", "flip", "shift", "flip+shift"):
            raise bad("augment", "one of 'none', 'flip', 'shift', 'flip+shift'")
        if self.timeout is not None and (isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float))
                                         or self.timeout <= 0):
            raise bad("timeout", "a positive number of seconds or None")
        if not isinstance(self.tensorboard, bool):
            raise bad("tensorboard", "true or false")
        v = self.inherit_epochs
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= self.epochs):
            raise bad("inherit_epochs", f"an integer in [0, epochs={self.epochs}] (0: off) or None (the sampler's "
                                        f"default)")

    @classmethod
    def of(cls, value: BudgetLike) -> Budget:
        if value is None:
            return cls()
        if isinstance(value, Budget):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"`budget` must be a nas.Budget or a dict of its fields, but got {value!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"budget: unknown field {unknown[0]!r}; known fields: {', '.join(sorted(known))}")
        return cls(**value)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# a budget as it is given: itself, a dict of its fields (a YAML mapping) or None (the defaults)
BudgetLike: TypeAlias = Budget | dict[str, Any] | None


def check_objectives(objectives: Any) -> tuple[str, ...]:
    if isinstance(objectives, str):
        objectives = (objectives,)
    if not isinstance(objectives, (list, tuple)) or not objectives:
        raise ValueError(f"`objectives` must be a non-empty list of {', '.join(OBJECTIVES)}, but got "
                         f"objectives={objectives!r}")
    for o in objectives:
        if not isinstance(o, str) or o not in OBJECTIVES:
            raise ValueError(f"`objectives` must be chosen from {', '.join(OBJECTIVES)}, but got {o!r}")
    if len(set(objectives)) != len(objectives):
        raise ValueError(f"`objectives` must not repeat, but got objectives={list(objectives)!r}")
    return tuple(objectives)


def check_constraints(constraints: Any) -> dict[str, float]:
    if constraints is None:
        return {}
    if not isinstance(constraints, dict):
        raise ValueError(f"`constraints` must be a dict like {{'max_macs': 5e6}}, but got {constraints!r}")
    out = {}
    for k, v in constraints.items():
        if k not in CONSTRAINTS:
            raise ValueError(f"`constraints` keys must be chosen from {', '.join(CONSTRAINTS)}, but got {k!r}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or math.isinf(v):
            raise ValueError(f"constraint `{k}` must be a positive number, but got {k}={v!r}")
        out[k] = float(v)
    return out
