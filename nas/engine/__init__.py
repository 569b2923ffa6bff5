"""The search engine: what a study stores and how trials are claimed, run and recorded, for every backend.

* :mod:`nas.engine.config`: the study's configuration (:class:`~nas.engine.config.StudyConfig`), stored as
  JSON; samplers, pruners and evaluators by name, never as code.
* :mod:`nas.engine.records`: the trial record, its one writer and one reader.
* :mod:`nas.engine.claims`: counting, caps, the claim under a lock, worker numbers, dead-trial recovery.
* :mod:`nas.engine.runner`: the trial pipeline (sample -> cost -> constraints -> reuse -> evaluate -> record).
* :mod:`nas.engine.storage`: opening storages, the claim lock, masking secrets in URLs.
* :mod:`nas.engine.progress`: the per-trial progress lines.
* :mod:`nas.engine.limits`: sampling inside analytic cost limits (every sampler wrapped).
* :mod:`nas.engine.evolution`: nas's own multi-objective sampler (``sampler="evolution"``).

Backends (:mod:`nas.backends`) dispatch the pipeline; the facade (:mod:`nas.study`) creates, loads and
resumes studies. Nothing here imports a backend or the facade.
"""
