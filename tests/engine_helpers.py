"""Helpers importable by worker processes (tests put this folder on PYTHONPATH)."""

from __future__ import annotations

from nas import ArchSpec, cost, evaluator


@evaluator
def evaluator_that_fails_on_wide_first_stages(spec: ArchSpec) -> dict[str, float]:
    """A cheap stand-in for training: fails for some specs with a clear error, scores the others."""
    if spec.stages[0].filters >= 32:
        raise RuntimeError(f"refusing first stage of {spec.stages[0].filters} filters")
    return {"accuracy": 1.0 - 1.0 / (1 + cost(spec).params / 1000)}


@evaluator
def slow_evaluator(spec: ArchSpec) -> dict[str, float]:
    """A table-like score that takes 0.2 s: long enough to kill a search in the middle of a trial."""
    import time

    time.sleep(0.2)
    return {"accuracy": 1.0 - 1.0 / (1 + cost(spec).params / 1000)}


@evaluator
def score_by_macs(spec: ArchSpec) -> dict[str, float]:
    """A cheap stand-in for training that never fails: more MACs, more accuracy."""
    return {"accuracy": 1.0 - 1.0 / (1 + cost(spec).macs / 1e5)}


@evaluator
def fails_above_750k_macs(spec: ArchSpec) -> dict[str, float]:
    """Scores as ``score_by_macs``, but fails every network of more than 750,000 MACs (as a device without the
    memory for the larger half of a 1.5 M limit would)."""
    macs = cost(spec).macs
    if macs > 750_000:
        raise RuntimeError(f"out of memory at {macs} MACs")
    return {"accuracy": 1.0 - 1.0 / (1 + macs / 1e5)}


@evaluator
def fails_at_length(spec: ArchSpec) -> dict[str, float]:
    """Scores as ``score_by_macs``, but fails wide first stages with a long message (as a library's error may be):
    the record keeps it whole, Optuna's listings a short part."""
    if spec.stages[0].filters >= 16:
        raise RuntimeError(f"refusing first stage of {spec.stages[0].filters} filters: " + "the reason, " * 30)
    return {"accuracy": 1.0 - 1.0 / (1 + cost(spec).macs / 1e5)}


@evaluator
def score_with_latency(spec: ArchSpec) -> dict[str, float]:
    """A cheap stand-in for training and latency measurement: accuracy as ``score_by_macs``, a "latency" of one
    millisecond per 1,000 params (so a ``max_latency`` limit is a measured constraint known only after evaluation)."""
    c = cost(spec)
    return {"accuracy": 1.0 - 1.0 / (1 + c.macs / 1e5), "latency_ms": c.params / 1000}


def stored_record(study: object) -> dict:
    """The record a nas study holds (an ``optuna.Study``'s system attribute ``nas:config``), as a dict."""
    import json

    from nas.engine.schema import RECORD_ATTR

    return json.loads(study._storage.get_study_system_attrs(study._study_id)[RECORD_ATTR])  # type: ignore[attr-defined]


def store_record(study: object, data: dict) -> None:
    """Overwrite a study's stored record, as anyone who can write to its storage could."""
    import json

    from nas.engine.schema import RECORD_ATTR

    study._storage.set_study_system_attr(study._study_id, RECORD_ATTR, json.dumps(data))  # type: ignore[attr-defined]


@evaluator
def stalls_on_node_2(spec: ArchSpec) -> dict[str, float]:
    """The score of :func:`slow_evaluator` after 0.5 s, except on node 2 of a test Ray cluster
    (tests/ray_cluster.py gives each node's workers ``NAS_TEST_NODE``), where a trial does not end by itself:
    it is surely in flight when the test kills that node."""
    import os
    import time

    time.sleep(600.0 if os.environ.get("NAS_TEST_NODE") == "2" else 0.5)
    return {"accuracy": 1.0 - 1.0 / (1 + cost(spec).params / 1000)}
