"""The keras-tuner backend: keras-tuner's own tuners (random, Bayesian, Hyperband) sample and train, and every
trial is kept in the study in the nas trial schema (see ``nas.keras_tuner``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import optuna

from nas.backends.base import Backend
from nas.budget import ANALYTIC, CONSTRAINTS
from nas.engine.config import StudyConfig

__all__ = ["KerasTuner", "TUNER_KINDS"]

TUNER_KINDS = ("random", "bayesian", "hyperband")
# keras-tuner arguments that nas sets itself
RESERVED = ("hypermodel", "objective", "max_trials", "seed", "directory", "project_name", "overwrite")


@dataclasses.dataclass(frozen=True, kw_only=True)
class KerasTuner(Backend):
    """keras-tuner runs the search in this process: ``tuner`` random / bayesian / hyperband with keras-tuner
    ``options`` (e.g. ``{"max_epochs": 6, "factor": 3}`` for Hyperband). ``directory`` and ``project_name`` (the
    tuner's folder) are set by nas when the study is created; ``continuable`` is False for a view of a keras-tuner run
    made outside nas (``nas.from_keras_tuner``), which nas cannot continue."""

    kind = "keras_tuner"
    tuner: str = "random"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    directory: str | None = None
    project_name: str | None = None
    continuable: bool = True

    def __post_init__(self) -> None:
        if self.continuable and self.tuner not in TUNER_KINDS:
            raise ValueError(f"KerasTuner: `tuner` must be one of {', '.join(TUNER_KINDS)}, but got tuner={self.tuner!r}")
        if not isinstance(self.options, dict):
            raise ValueError(f"KerasTuner: `options` must be a dict of keras-tuner arguments, but got {self.options!r}")
        clash = sorted(set(RESERVED) & set(self.options))
        if clash:
            raise ValueError(f"KerasTuner: `options` {clash[0]!r} is set by nas (n_trials, seed, the study's "
                             f"directory); remove it from options")

    def check(self, config: StudyConfig) -> None:
        if not self.continuable:
            raise ValueError(f"this study is a view of a keras-tuner run made outside nas ({self.directory}/"
                             f"{self.project_name}): continue the tuner itself (overwrite=False) and call "
                             f"nas.from_keras_tuner(tuner) again")
        if self.directory is not None:  # read from the storage: the tuner writes there
            folder = Path(config.artifacts).resolve()
            tuner_dir = Path(self.directory, self.project_name or "").resolve()
            if folder not in tuner_dir.parents:
                raise ValueError(f"`backend`: the keras-tuner folder {str(tuner_dir)!r} is not inside the study's "
                                 f"artefact folder {str(folder)!r}, where nas keeps it; a folder read from the "
                                 f"storage is not written to")
        if not config.sampler.name.startswith("keras_tuner."):
            raise ValueError(f"`sampler` is Optuna's; with the keras_tuner backend the keras-tuner `tuner` samples, "
                             f"but got sampler={config.sampler.name!r}")
        if config.pruner is not None:
            raise ValueError("`pruner` is Optuna's; with the keras_tuner backend use KerasTuner(tuner='hyperband')")
        if "accuracy" not in config.objectives or "latency" in config.objectives:
            raise ValueError(f"`objectives` with the keras_tuner backend must include accuracy and may add macs, flops "
                             f"or params (keras-tuner measures no latency), but got objectives={list(config.objectives)}")
        for name in config.constraints:
            if CONSTRAINTS[name] not in ANALYTIC:
                raise ValueError(f"`constraints` with the keras_tuner backend may only limit analytic costs "
                                 f"(max_macs, max_flops, max_params), but got {name}")
        if config.evaluator is not None and self.tuner == "hyperband":
            raise ValueError("`evaluator` with tuner='hyperband': Hyperband's budget is training epochs; use "
                             "tuner='random' or 'bayesian' with a tabular evaluator")

    def run(self, study: optuna.Study, url: str, config: StudyConfig, *, verbose: bool) -> None:
        self.check(config)
        from nas.keras_tuner import run_study

        run_study(study, config, verbose=verbose)
