"""Studies stored by earlier versions of nas load and resume unchanged (the fixtures in tests/data were written by
those versions: v1 by nas 0.1, v2 by the version of 2026-12-06 before the one-schema record)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nas
from nas.engine.runner import Runner
from nas.engine.schema import Component

DATA = Path(__file__).resolve().parent / "data"


def test_a_version_2_evaluator_study_loads_and_resumes(tmp_path: Path) -> None:
    shutil.copy(DATA / "v2-evaluator.db", tmp_path / "v2.db")
    study = nas.load_study("v2-evaluator", tmp_path / "v2.db")
    assert study.objectives == ("accuracy", "params") and study.n_trials == 4
    assert study.config.strategy.sampler == Component(name="evolution") and study.config.strategy.seed == 3
    assert study.config.constraints == {"max_params": 200_000.0}
    assert study.config.evaluator == Component(name="engine_helpers:score_by_macs")
    assert study.backend == nas.Local(n_workers=1, max_trials_per_worker=7)
    before = [(r.number, r.status, r.key, r.metrics["accuracy"]) for r in study.trials]
    assert len(before) == 4 and {s for _, s, _, _ in before} == {"ok"}
    # its stored artefact folder is where the fixture was written, not beside this copy: confirmed
    study.resume(n_trials=6, verbose=False, artifacts=study.config.artifacts)
    again = nas.load_study("v2-evaluator", tmp_path / "v2.db")
    assert again.counts()["done"] == 6 and again.n_trials == 6
    assert [(r.number, r.status, r.key, r.metrics["accuracy"]) for r in again.trials][:4] == before


def test_a_version_2_trained_study_loads_as_it_was(tmp_path: Path) -> None:
    shutil.copy(DATA / "v2-trained.db", tmp_path / "v2.db")
    study = nas.load_study("v2-trained", tmp_path / "v2.db")
    stored = json.loads(study.optuna_study.user_attrs["nas"])
    assert stored["version"] == 2
    assert study.config.strategy.pruner.name == "pareto" and study.config.strategy.pruner.options["calibrate"] is True
    assert "reach" not in stored["pruner"]["options"]  # stored before the option: read as off
    assert Runner(study.optuna_study, study.config)._pruner_options().get("reach", False) is False
    assert study.config.device == nas.Device(kind="cpu") and study.config.budget == nas.Budget(epochs=1, batch_size=128,
                                                                                inherit_epochs=0)
    assert study.config.data["name"] == "digits" and study.config.strategy.sampler == Component(name="random")
    assert [r.status for r in study.trials] == ["ok", "ok"]
    assert all(0.0 < r.metrics["accuracy"] <= 1.0 for r in study.trials)
    assert len(study.pareto_front()) >= 1 and study.best().metrics["accuracy"] == max(
        r.metrics["accuracy"] for r in study.trials)
    # reading never rewrote it
    assert json.loads(nas.load_study("v2-trained", tmp_path / "v2.db").optuna_study.user_attrs["nas"]) == stored
