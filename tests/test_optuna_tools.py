"""Optuna's own command line on a nas study: ``optuna trials`` and ``optuna studies`` (run as the real commands)
print rows under 400 characters, because a trial's user attributes are only its short values (the rest are
``nas:`` system attributes, which Optuna's listings leave out) and the study's is a one-line summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna

import nas
import search_spaces
from nas.engine import records

OPTUNA = str(Path(sys.executable).parent / "optuna")
MAX_ROW = 400


def optuna_rows(url: str, study: str) -> dict[str, list[str]]:
    """The table rows ``optuna trials`` and ``optuna studies`` print for ``study`` in ``url`` (default format:
    every column), checked to be under ``MAX_ROW`` characters each."""
    out = {}
    for command in (["trials", "--study-name", study], ["studies"]):
        run = subprocess.run([OPTUNA, *command, "--storage", url], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        rows = run.stdout.splitlines()
        widest = max(rows, key=len)
        assert len(widest) < MAX_ROW, f"`optuna {command[0]}`: a row of {len(widest)} characters:\n{widest}"
        out[command[0]] = rows
    return out


def test_optuna_trials_and_studies_print_rows_under_400_characters(tmp_path: Path) -> None:
    """Trials that completed, reused a result, were over budget and failed with a long error (cut in the user
    attribute, whole in the record)."""
    from engine_helpers import fails_at_length

    space = search_spaces.get("conv", input_shape=(8, 8, 1), num_classes=10, stages=(1, 2), depth=(1, 1),
                              widths=(4, 8, 16), kernels=(3,), hidden=(0, 0), dropouts=(0.0,))
    small = {"n_stages": 1, "bn": True, "head_pool": "flatten", "s1_width": 4, "s1_pool": "max"}
    wide = {**small, "s1_width": 16}  # 11,776 MACs: within the limit, failed by the evaluator
    big = {"n_stages": 2, "bn": True, "head_pool": "avg", "s1_width": 8, "s1_pool": None, "s2_width": 16,
           "s2_pool": None}  # 78,496 MACs
    study = nas.search(space, goal=nas.Goal(objectives=("accuracy", "macs"), constraints={"max_macs": 20_000}),
                       strategy=nas.Strategy(n_trials=2, sampler="random", seed=0,
                                             warm_start=[wide, big, small, small]),
                       run=nas.Run(storage=tmp_path / "t.db", study="listed"), evaluator=fails_at_length,
                       verbose=False)
    assert [r.status for r in study.trials] == ["failed", "infeasible", "ok", "reused"]
    url = f"sqlite:///{tmp_path / 't.db'}"
    rows = optuna_rows(url, "listed")
    assert len([r for r in rows["trials"] if r.startswith("|") and "number" not in r]) == len(study.trials)
    failed = next(t for t in optuna.load_study(study_name="listed", storage=url).trials if t.state.name == "FAIL")
    whole = records.attr(failed, "error")
    assert whole.startswith("RuntimeError: refusing first stage of 16 filters: the reason, ") and len(whole) > 300
    assert failed.user_attrs["error"] == whole[:57] + "..." and records.read(failed).error == whole
    assert set(failed.user_attrs) == {"status", "error", "macs", "params"}
    summary = json.dumps(optuna.load_study(study_name="listed", storage=url).user_attrs)
    assert len(summary) < 250, summary
