"""nas: neural architecture search over convolutional block families, ranked by accuracy against cost.

Importing ``nas`` does not import TensorFlow; ``nas.build_model`` loads Keras on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas._ops import ACTIVATIONS, LayerCost
from nas.blocks import KINDS, Basic, Block, Bottleneck, Conv, Inception, MBConv, SepConv, parse_block
from nas.cost import Cost, cost, summary
from nas.scaling import round_filters, round_repeats, scale
from nas.spec import ArchSpec, Head
from nas.trial import FixedTrial, RandomTrial, evaluator

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS", "ArchSpec", "Basic", "Block", "Bottleneck", "Conv", "Cost", "FixedTrial", "Head", "Inception",
    "KINDS", "LayerCost", "MBConv", "RandomTrial", "SepConv", "build_model", "cost", "parse_block",
    "round_filters", "round_repeats", "scale", "summary", "search", "create_study", "load_study", "Study",
    "TrialRecord", "Goal", "Strategy", "Run", "StudyConfig", "Budget", "Device", "Local", "Ray", "KerasTuner",
    "evaluator", "load_data", "from_keras_tuner",
]

_LAZY = {  # name -> module: the engine (Optuna, the data loaders) loads on first use, so `import nas` stays light
    "search": "nas.study", "create_study": "nas.study", "load_study": "nas.study", "Study": "nas.study",
    "from_keras_tuner": "nas.study", "TrialRecord": "nas.engine.records", "Budget": "nas.budget",
    "Goal": "nas.engine.schema", "Strategy": "nas.engine.schema", "StudyConfig": "nas.engine.schema",
    "Run": "nas.engine.where", "Local": "nas.engine.where", "Ray": "nas.engine.where", "KerasTuner": "nas.engine.where",
    "Device": "nas.devices", "load_data": "nas.data",
}

if TYPE_CHECKING:  # the lazy names for type checkers (a module __getattr__ alone would make each of them Any)
    from nas.budget import Budget
    from nas.data import load_data
    from nas.devices import Device
    from nas.engine.records import TrialRecord
    from nas.engine.schema import Goal, Strategy, StudyConfig
    from nas.engine.where import KerasTuner, Local, Ray, Run
    from nas.study import Study, create_study, from_keras_tuner, load_study, search


def build_model(spec: ArchSpec, *, name: str | None = None, bn_momentum: float | None = None) -> Any:
    """Build ``spec`` as a Keras 3 functional model (imports Keras on first call). See ``nas.build``."""
    from nas.build import build_model as _build

    return _build(spec, name=name, bn_momentum=bn_momentum)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nas' has no attribute {name!r}")
