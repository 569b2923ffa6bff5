"""Search spaces over the block families, and the classic networks as named points in them.

``search_spaces.get(name, **options)`` returns a configured space; ``space.sample(trial)`` turns a trial's
answers (Optuna's ``suggest_*`` calls) into an ``ArchSpec``. Importing this package does not import
TensorFlow.
"""

from __future__ import annotations

from typing import Any

from search_spaces import nasbench201
from search_spaces._baselines import baseline, baselines
from search_spaces._compound import CompoundSpace
from search_spaces._conv import ConvSpace
from search_spaces._families import FamiliesSpace
from search_spaces._inception import InceptionSpace
from search_spaces._mbconv import MBConvSpace
from search_spaces._residual import ResidualSpace
from search_spaces._space import Space, from_jsonable
from search_spaces.nasbench201 import NASBench201Space

SPACES: dict[str, type[Space]] = {cls.name: cls for cls in (ConvSpace, ResidualSpace, InceptionSpace, MBConvSpace,
                                                            FamiliesSpace, CompoundSpace, NASBench201Space)}

__all__ = ["SPACES", "Space", "baseline", "baselines", "from_config", "from_jsonable", "get", "names", "nasbench201"]


def names() -> list[str]:
    """Names of the registered spaces."""
    return list(SPACES)


def get(name: str, **options: Any) -> Space:
    """The space ``name`` configured with ``options`` (each space documents its options and labels)."""
    if not isinstance(name, str) or name not in SPACES:
        raise ValueError(f"`space` must be one of {', '.join(SPACES)}, but got space={name!r}")
    return SPACES[name](**options)


def from_config(config: dict[str, Any]) -> Space:
    """Rebuild a space from ``space.config()``, ``{"name": ..., "options": {...}}`` (e.g. as stored with a study;
    earlier versions spelled the name ``"space"``)."""
    if not isinstance(config, dict):
        raise ValueError(f"a space config must be {{'name': ..., 'options': {{...}}}}, but got {config!r}")
    name = config.get("name", config.get("space"))
    if not isinstance(name, str) or name not in SPACES:
        raise ValueError(f"`space` must be one of {', '.join(SPACES)}, but got space={name!r}")
    options = config.get("options", {})
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise ValueError(f"a space config's `options` must be a dict of option names to values, but got "
                         f"options={options!r}")
    return get(name, **from_jsonable(options))
