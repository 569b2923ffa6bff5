"""The facade's Optuna-like conveniences: callbacks per finished trial, a progress bar, trials_dataframe()."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

import nas

from engine_helpers import stored_record

SPACE = {"space": "conv", "options": {"stages": (1, 2), "depth": (1, 1), "widths": (4, 8, 16, 32), "kernels": (3, 5),
                                      "hidden": (0, 0), "dropouts": (0.0,)}}
EVALUATOR = "engine_helpers:evaluator_that_fails_on_wide_first_stages"


@pytest.mark.parametrize("n_workers", [1, 2])
def test_callbacks_see_every_finished_trial_once_in_order_of_finishing(tmp_path: Path, n_workers: int) -> None:
    seen: list[tuple[int, str]] = []
    studies = set()

    def callback(study: nas.Study, record: nas.TrialRecord) -> None:
        studies.add(id(study))
        seen.append((record.number, record.status))

    study = nas.search(SPACE, goal=nas.Goal(objectives=("accuracy", "params")),
                       strategy=nas.Strategy(n_trials=12, sampler="random", seed=1, max_failures=50),
                       run=nas.Run(storage=tmp_path / "c.db", study="c", backend=nas.Local(n_workers=n_workers)),
                       evaluator=EVALUATOR, callbacks=[callback], verbose=False)
    finished = {(t.number, t.user_attrs["status"]) for t in study.optuna_study.trials
                if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    assert len(seen) == len(set(seen)) == len(finished) and set(seen) == finished
    assert sum(s in ("ok", "reused") for _, s in seen) == 12 and any(s == "failed" for _, s in seen)
    assert len(studies) == 1
    # a resume calls them for the new trials only
    more: list[int] = []
    study.resume(n_trials=14, callbacks=lambda s, r: more.append(r.number), verbose=False)
    assert more and min(more) > max(n for n, _ in seen)


def test_an_exception_in_a_callback_stops_the_search_and_leaves_nothing_running(tmp_path: Path) -> None:
    class Enough(Exception):
        pass

    def stop_after_three(study: nas.Study, record: nas.TrialRecord) -> None:
        if sum(r.status == "ok" for r in study.trials) >= 3:
            raise Enough

    with pytest.raises(Enough):
        nas.search(SPACE, goal=nas.Goal(objectives=("accuracy", "params")),
                   strategy=nas.Strategy(n_trials=30, sampler="random", seed=2, max_failures=50),
                   run=nas.Run(storage=tmp_path / "s.db", study="s"), evaluator=EVALUATOR, callbacks=[stop_after_three],
                   verbose=False)
    study = nas.load_study("s", tmp_path / "s.db")
    c = study.counts()
    assert 3 <= c["done"] < 30 and c["running"] == 0
    study.resume(verbose=False)  # and it resumes to its target
    assert study.counts()["done"] == 30


def test_callbacks_are_checked_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"`callbacks` must be a list of functions fn\(study, record\), but got an "
                                         r"item 3"):
        nas.search(SPACE, strategy=nas.Strategy(n_trials=2), run=nas.Run(storage=tmp_path / "x.db", study="x"),
                   evaluator=EVALUATOR, callbacks=[3], verbose=False)
    assert not (tmp_path / "x.db").exists()


def test_progress_bar_counts_finished_trials(tmp_path: Path, capsys) -> None:
    nas.search(SPACE, goal=nas.Goal(objectives=("accuracy", "params")),
               strategy=nas.Strategy(n_trials=9, sampler="random", seed=3, max_failures=50),
               run=nas.Run(storage=tmp_path / "p.db", study="p"), evaluator=EVALUATOR, progress_bar=True, verbose=False)
    err = capsys.readouterr().err
    assert "nas p" in err and "9/9" in err and "10/9" not in err


def test_trials_dataframe_has_a_row_per_trial_with_the_record(tmp_path: Path) -> None:
    study = nas.search(SPACE, goal=nas.Goal(objectives=("accuracy", "params")),
                       strategy=nas.Strategy(n_trials=8, sampler="random", seed=4, max_failures=50),
                       run=nas.Run(storage=tmp_path / "d.db", study="d"), evaluator=EVALUATOR, verbose=False)
    df = study.trials_dataframe()
    records = study.trials
    assert list(df["number"]) == [r.number for r in records]
    assert list(df["status"]) == [r.status for r in records]
    ok = df[df["status"] == "ok"]
    assert len(ok) == sum(r.status == "ok" for r in records)
    for _, row in ok.iterrows():
        r = records[int(row["number"])]
        assert row["accuracy"] == r.metrics["accuracy"] and row["params"] == r.metrics["params"]
        assert row["spec"] == r.spec_str and row["duration_s"] > 0
    assert {c for c in df.columns if c.startswith("params_")} == {f"params_{k}" for r in records for k in r.params}
    failed = df[df["status"] == "failed"]
    assert all("refusing first stage" in e for e in failed["error"])


@pytest.mark.slow
def test_tensorboard_logs_per_trial_on_request(tmp_path: Path) -> None:
    import tensorflow as tf

    study = nas.search(SPACE, "digits",
                       strategy=nas.Strategy(n_trials=2, sampler="random", seed=5,
                                             budget={"epochs": 2, "batch_size": 128, "tensorboard": True}),
                       run=nas.Run(storage=tmp_path / "t.db", study="t"), verbose=False)
    root = Path(study.config.artifacts) / "tensorboard"
    trained = [t.number for t in study.optuna_study.trials if t.user_attrs["status"] == "ok"]
    assert sorted(p.name for p in root.iterdir()) == sorted(f"t.trial-{n}" for n in trained)
    for n in trained:
        for split in ("train", "validation"):
            steps = {}
            for file in (root / f"t.trial-{n}" / split).glob("events.out.tfevents.*"):
                for event in tf.compat.v1.train.summary_iterator(str(file)):
                    for value in event.summary.value:
                        steps.setdefault(value.tag, set()).add(event.step)
            assert steps["epoch_accuracy"] == {0, 1} and steps["epoch_loss"] == {0, 1}
    with pytest.raises(ValueError, match=r"budget: `tensorboard` must be true or false, but got tensorboard='yes'"):
        nas.Budget(tensorboard="yes")


def test_search_on_a_study_made_with_plain_optuna(tmp_path: Path) -> None:
    import optuna

    from nas.engine.storage import describe_storage, open_storage

    url = describe_storage(tmp_path / "o.db")
    made = optuna.create_study(study_name="mine", storage=open_storage(url), directions=["maximize", "minimize"])
    study = nas.search(SPACE, goal=nas.Goal(objectives=("accuracy", "params")),
                       strategy=nas.Strategy(n_trials=4, sampler="random", seed=6, max_failures=50),
                       run=nas.Run(storage=made), evaluator=EVALUATOR, verbose=False)
    assert study.name == "mine" and study.counts()["done"] == 4
    assert stored_record(optuna.load_study(study_name="mine", storage=url))  # now a nas study
    # refused: a study with trials, other directions, an in-memory study
    other = optuna.create_study(study_name="used", storage=open_storage(url), directions=["maximize", "minimize"])
    other.add_trial(optuna.trial.create_trial(values=[0.5, 1.0]))
    with pytest.raises(ValueError, match=r"study 'used' in sqlite:///.* is an Optuna study with 1 trials: nas "
                                         r"searches only on an empty one"):
        nas.create_study(SPACE, goal=nas.Goal(objectives=("accuracy", "params")), run=nas.Run(storage=other),
                         evaluator=EVALUATOR, verbose=False)
    optuna.create_study(study_name="min", storage=open_storage(url), directions=["minimize", "minimize"])
    with pytest.raises(ValueError, match=r"has the directions \['minimize', 'minimize'\], but the objectives need "
                                         r"\['maximize', 'minimize'\]"):
        nas.create_study(SPACE, goal=nas.Goal(objectives=("accuracy", "params")), run=nas.Run(storage=url, study="min"),
                         evaluator=EVALUATOR, verbose=False)
    with pytest.raises(ValueError, match="an in-memory Optuna storage cannot be shared with worker processes"):
        nas.create_study(SPACE, run=nas.Run(storage=optuna.create_study()), evaluator=EVALUATOR, verbose=False)
    assert len(optuna.load_study(study_name="used", storage=url).trials) == 1  # untouched
