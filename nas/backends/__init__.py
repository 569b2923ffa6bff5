"""Backends start, place and stop the workers that run a study's trials; their options are records
(:mod:`nas.engine.where`: ``Local``, ``Ray``, ``KerasTuner``), stored with the study.

* ``local`` - worker processes on this machine (:func:`nas.backends.local.supervise`);
* ``ray`` - workers on a Ray instance or cluster (:func:`nas.backends.ray.run_ray`);
* ``keras_tuner`` - keras-tuner's own tuners in this process (:func:`nas.keras_tuner.run_study`).

Every Optuna backend's workers run the same worker loop (:mod:`nas.engine.worker`) and trial pipeline, and write
the same records, so a study can be inspected with any of them and resumed on the one it was made with (or the
other Optuna one: local <-> Ray).
"""

from __future__ import annotations

import optuna

from nas.engine.schema import StudyConfig

__all__ = ["run"]


def run(study: optuna.Study, url: str, config: StudyConfig, *, verbose: bool) -> None:
    """Run trials on the study's backend (``config.run.backend``) until it has ``config.n_trials`` finished."""
    kind = config.run.backend.kind
    config.run.backend.check(config)
    if kind == "local":
        from nas.backends.local import supervise

        supervise(study, url, config, verbose=verbose)
    elif kind == "ray":
        from nas.backends.ray import run_ray

        run_ray(study, url, config, verbose=verbose)
    else:
        from nas._quiet import import_keras

        import_keras()  # keras-tuner imports TensorFlow: without its start-up banner in the caller's terminal
        from nas.keras_tuner import run_study

        run_study(study, config, verbose=verbose)
