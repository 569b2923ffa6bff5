"""nas's distribution tuples (``nas.trial``) and Optuna's distributions, one to the other.

The trials of ``nas.trial`` record what a space asked as plain tuples (no Optuna import in the core); the
engine's samplers and the keras-tuner bridge hand Optuna its own distribution objects. These two conversions
are the only place the two forms meet, so a value grid, a random draw or a fit check is written once (on the
tuples, in ``nas.trial``) and applied to an Optuna distribution as ``grid(from_optuna(dist))``.
"""

from __future__ import annotations

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from nas.trial import Distribution, cat_dist, float_dist, int_dist

__all__ = ["from_optuna", "to_optuna"]


def to_optuna(dist: Distribution) -> BaseDistribution:
    """The Optuna distribution of a ``nas.trial`` tuple (a log distribution has no step in Optuna: step 1 for an
    integer, none for a float)."""
    if dist[0] == "categorical":
        return CategoricalDistribution(list(dist[1]))
    _, low, high, step, log = dist
    if dist[0] == "int":
        return IntDistribution(low, high, log=log, step=1 if log else step)
    return FloatDistribution(low, high, log=log, step=None if log else step)


def from_optuna(dist: BaseDistribution) -> Distribution:
    """The ``nas.trial`` tuple of an Optuna distribution (categorical, integer or float)."""
    if isinstance(dist, CategoricalDistribution):
        return cat_dist(dist.choices)
    if isinstance(dist, IntDistribution):
        return int_dist(dist.low, dist.high, dist.step, dist.log)
    if isinstance(dist, FloatDistribution):
        return float_dist(dist.low, dist.high, dist.step, dist.log)
    raise ValueError(f"a distribution must be Optuna's categorical, integer or float one, but got {dist!r}")
