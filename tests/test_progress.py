"""What a search prints while it runs: the workers starting, each epoch of a trial in training (from the
storage, so from workers anywhere), each finished trial with the time the search has left, the closing summary;
and a keras-tuner search recording each trial in the study as it ends."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import nas
import search_spaces
from nas.engine import records
from nas.engine.progress import Live, duration, epoch_line, progress_attr

SPACE = {"name": "conv", "options": {"stages": (1, 1), "depth": (1, 1), "widths": (8, 16), "kernels": (3,),
                                     "hidden": (0, 0), "dropouts": (0.0,)}}


def test_durations_read_at_a_glance() -> None:
    assert [duration(s) for s in (0.4, 45, 89.6, 90, 300, 5399, 5400, 36_000)] == [
        "0 s", "45 s", "90 s", "1.5 min", "5.0 min", "90.0 min", "1.5 h", "10.0 h"]


def test_a_finished_line_says_which_trial_s_weights_a_child_started_from() -> None:
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import create_trial

    from nas.engine.progress import line

    system = {"nas:status": "ok", "nas:accuracy": 0.91, "nas:macs": 1200, "nas:params": 300,
              "nas:timings": {"total_s": 4.25}, "nas:spec_str": "8x8x1 conv_r1_k3_s1_c8 head_avg classes10"}
    kw = {"state": TrialState.COMPLETE, "values": [0.91, 1200], "params": {"a": 1},
          "distributions": {"a": CategoricalDistribution([1, 2])}}
    fresh = create_trial(**kw, system_attrs=system)
    child = create_trial(**kw, system_attrs={**system, "nas:inherited": {"trial": 3, "epochs": 9, "share": 1.0}})
    fresh.number = child.number = 7
    assert line(fresh, 2, 8) == ("[  2/8] trial   7 ok          acc 0.9100  MACs        1,200  params        300  "
                                 "   4.2s  8x8x1 conv_r1_k3_s1_c8 head_avg classes10")
    assert line(child, 2, 8) == ("[  2/8] trial   7 ok          acc 0.9100  MACs        1,200  params        300  "
                                 "from trial 3's weights     4.2s  8x8x1 conv_r1_k3_s1_c8 head_avg classes10")


def test_an_epoch_line_gives_the_epoch_s_time_and_the_trial_s_time_left() -> None:
    progress = progress_attr(5, [0.5, 0.81234], [20.0, 32.0])["progress"]
    assert progress == {"epochs": 5, "accuracy": [0.5, 0.8123], "seconds": [20.0, 32.0]}
    # the first epoch's time includes building the model (and TensorFlow's tracing): the second one gives the pace
    assert epoch_line(5, progress, 0) == "      trial   5: epoch 1/5  val acc 0.5000  (20.0 s with the model's build)"
    assert epoch_line(5, progress, 1) == "      trial   5: epoch 2/5  val acc 0.8123  (12.0 s/epoch, ~36 s left)"


def _trial(number: int, state: TrialState, progress: dict | None, **attrs: object) -> optuna.trial.FrozenTrial:
    system = {} if progress is None else {"nas:progress": progress}
    system["nas:spec_str"] = "8x8x1 conv_r1_k3_s1_c8 head_avg classes10"
    values = [0.5, 100.0] if state == TrialState.COMPLETE else None
    t = optuna.trial.create_trial(state=state, values=values, user_attrs=dict(attrs), system_attrs=system)
    t.number = number
    return t


def test_the_driver_prints_each_epoch_once_and_before_the_trial_s_line(capsys) -> None:
    """Epochs seen live, then the rest caught up from the record when the trial finished between two looks
    (fast epochs): each printed once, the last one only as the finished line."""
    live = Live([], target=2, verbose=True)
    two = progress_attr(4, [0.1, 0.2], [2.0, 3.0])["progress"]
    live.update([_trial(0, TrialState.RUNNING, None)])
    live.update([_trial(0, TrialState.RUNNING, two)])
    live.update([_trial(0, TrialState.RUNNING, two)])  # nothing new
    four = progress_attr(4, [0.1, 0.2, 0.3, 0.4], [2.0, 3.0, 4.0, 5.0])["progress"]
    new = live.update([_trial(0, TrialState.COMPLETE, four, status="ok", accuracy=0.4, macs=100, params=10)])
    assert [t.number for t in new] == [0]
    out = capsys.readouterr().out.splitlines()
    assert [re.sub(r"\s+", " ", o).strip() for o in out] == [
        "trial 0: training 8x8x1 conv_r1_k3_s1_c8 head_avg classes10",
        "trial 0: epoch 1/4 val acc 0.1000 (2.0 s with the model's build)",
        "trial 0: epoch 2/4 val acc 0.2000 (1.0 s/epoch, ~2 s left)",
        "trial 0: epoch 3/4 val acc 0.3000 (1.0 s/epoch, ~1 s left)",
        "[ 1/2] trial 0 ok acc 0.4000 MACs 100 params 10 8x8x1 conv_r1_k3_s1_c8 head_avg classes10"]


@pytest.mark.slow
def test_a_training_search_prints_each_epoch_of_a_trial_before_its_finished_line(tmp_path: Path, capsys) -> None:
    study = nas.search(SPACE, "digits", strategy=nas.Strategy(n_trials=2, sampler="random", seed=1,
                                                              budget={"epochs": 3, "batch_size": 64}),
                       run=nas.Run(storage=tmp_path / "p.db", study="p", backend=nas.Local(n_workers=1)))
    out = capsys.readouterr().out.splitlines()
    assert out[1] == (f"nas: 0/2 trials finished; starting 1 worker process on cpu (TensorFlow loads in each: 5-60 s); "
                      f"their logs in {study.config.artifacts}")
    trained = [t for t in study.optuna_study.trials if t.user_attrs["status"] == "ok"]
    assert len(trained) == 2
    log = "".join(p.read_text() for p in Path(study.config.artifacts).glob("p.worker-*.log"))
    for t in trained:
        progress = records.attr(t, "progress")
        assert progress["epochs"] == 3 and len(progress["accuracy"]) == 3
        assert progress["accuracy"] == [round(a, 4) for a in records.attr(t, "history")]
        finished = next(i for i, o in enumerate(out) if re.match(rf"\[ +\d/2\] trial +{t.number} ok ", o))
        for epoch in (0, 1):
            expected = epoch_line(t.number, progress, epoch)
            assert expected in out and out.index(expected) < finished
            assert expected + "\n" in log  # the worker printed it to its log as well
        assert epoch_line(t.number, progress, 2) not in out  # the last epoch is the finished line
    assert out[-1].startswith("nas: 2/2 finished (2 complete, 0 pruned), 0 over budget, 0 failed, in ")


@pytest.mark.slow
def test_a_keras_tuner_search_records_each_trial_in_the_study_as_it_ends(tmp_path: Path, capsys) -> None:
    """A callback of the search reads the storage through a second connection when the first trial ends: the
    study holds it then, while keras-tuner has trials to run yet."""
    from test_keras_tuner import params_as_accuracy

    seen: list[tuple[int, int, int]] = []

    def look(study: nas.Study, record: nas.TrialRecord) -> None:
        other = nas.load_study("kt", tmp_path / "k.db")
        seen.append((record.number, other.counts()["done"], len(other.trials)))
    space = search_spaces.get("conv", input_shape=(8, 8, 1), num_classes=10, stages=(1, 2), widths=(4, 8, 16))
    study = nas.search(space, evaluator=params_as_accuracy, strategy=nas.Strategy(n_trials=3, seed=0),
                       run=nas.Run(storage=tmp_path / "k.db", study="kt", backend=nas.KerasTuner(tuner="random")),
                       callbacks=[look])
    assert study.counts()["done"] == 3
    assert seen == [(0, 1, 1), (1, 2, 2), (2, 3, 3)]  # each trial was in the storage when it ended
    out = capsys.readouterr().out.splitlines()
    finished = [o for o in out if re.match(r"\[ +\d/3\] trial", o)]
    assert [re.match(r"\[ +(\d)/3\] trial +(\d)", o).groups() for o in finished] == [("1", "0"), ("2", "1"),
                                                                                     ("3", "2")]
    assert out[-1].startswith("nas: 3/3 finished (3 complete, 0 pruned), 0 over budget, 0 failed, in ")
    assert out[-1].endswith("; 3 keras-tuner trials added")
