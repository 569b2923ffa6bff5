"""The keras-tuner bridge: nas spaces as keras-tuner HyperModels, keras-tuner runs as nas studies.

Real keras-tuner tuners, real Keras training on digits (tiny budgets), real .keras files reloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras_tuner
import numpy as np
import optuna
import pytest

import nas
import search_spaces
from nas.keras_tuner import HPTrial, HyperModel, hyperband_trials, make_tuner, spec_of
from nas.ranking import non_dominated_ranks
from nas.trial import FixedTrial, RandomTrial

DIGITS = {"input_shape": (8, 8, 1), "num_classes": 10}


def tiny_conv() -> search_spaces.Space:
    return search_spaces.get("conv", **DIGITS, stages=(1, 2), depth=(1, 2), widths=(4, 8, 16, 64),
                             hidden=(0, 1), hidden_units=(16, 256))


def tiny_mbconv() -> search_spaces.Space:
    return search_spaces.get("mbconv", **DIGITS, stem_widths=(8,), stages=(1, 2), depth=(1, 2), kernels=(3,),
                             expansions=(1, 2), widths=(8, 16), head_widths=(0, 32))


@pytest.fixture(scope="module")
def digits():
    return nas.load_data("digits")


# ------------------------------------------------------------------ the trial interface over `hp`

@pytest.mark.parametrize("name", ["conv", "residual", "inception", "mbconv", "families"])
def test_hp_trial_asks_the_same_labels_as_optuna_and_replays_exactly(name):
    space = search_spaces.get(name, input_shape=(32, 32, 3), num_classes=10)
    for seed in range(8):
        draw = RandomTrial(seed=seed)
        spec = space.sample(draw)
        hp = keras_tuner.HyperParameters()
        HPTrial(hp).write(draw.params, draw.distributions)
        replay = HPTrial(hp)
        assert space.sample(replay) == spec
        assert replay.params == draw.params
        assert replay.distributions == draw.distributions
        # the same labels and values an Optuna trial records for this spec
        fixed = FixedTrial(draw.params)
        space.sample(fixed)
        assert set(hp.values) == set(fixed.params)
        optuna_trial = optuna.trial.FixedTrial(draw.params)
        assert space.sample(optuna_trial) == spec


def test_choices_keras_tuner_cannot_hold_are_asked_as_json_strings():
    space = search_spaces.get("conv", **DIGITS, stages=1, bns=(False, True), pools=("max", None))
    hp = keras_tuner.HyperParameters()
    space.sample(HPTrial(hp))  # registers with defaults (the first choice)
    kinds = {p.name: p for p in hp.space}
    assert kinds["bn"].values == ["false", "true"]       # keras-tuner would turn bools into 0 / 1
    assert kinds["s1_pool"].values == ['"max"', "null"]  # and refuses None or mixed types
    assert kinds["s1_width"].values == [8, 16, 32, 64, 128, 256, 512]  # plain ints stay ints
    hp.values.update({"bn": "true", "s1_pool": "null"})
    trial = HPTrial(hp)
    spec = space.sample(trial)
    assert trial.params["bn"] is True and trial.params["s1_pool"] is None
    assert spec.stages[0].bn is True and spec.stages[0].pool is None


def test_a_value_outside_the_space_names_the_label():
    space = tiny_conv()
    hp = keras_tuner.HyperParameters()
    space.sample(HPTrial(hp))
    hp.values["s1_width"] = 7
    with pytest.raises(ValueError, match=r"s1_width=7, which is outside what the space asks for 's1_width'"):
        space.sample(HPTrial(hp))
    # checked as strictly as nas's replay trial (nas.trial.fits): True is not the integer 1
    hp.values.update({"s1_width": 4, "n_stages": True})
    with pytest.raises(ValueError, match=r"^keras-tuner holds n_stages=True, which is outside what the space asks for "
                                         r"'n_stages' \(an integer in \[1, 2\] \(step 1\)\); was the tuner's"):
        space.sample(HPTrial(hp))
    with pytest.raises(ValueError, match="labels starting with 'tuner/'"):
        HPTrial(keras_tuner.HyperParameters()).suggest_int("tuner/epochs", 1, 3)


def test_compound_floats_and_ints_round_trip_through_hp():
    base = search_spaces.baseline("efficientnet_b0")
    space = search_spaces.get("compound", base=base, mode="free", max_macs=1.2e9)
    for seed in range(5):
        draw = RandomTrial(seed=seed)
        spec = space.sample(draw)
        hp = keras_tuner.HyperParameters()
        HPTrial(hp).write(draw.params, draw.distributions)
        assert space.sample(HPTrial(hp)) == spec


# ------------------------------------------------------------------ oversized candidates

def test_an_oversized_candidate_is_replaced_before_building_and_the_values_rewritten():
    space = tiny_conv()
    hm = HyperModel(space, max_params=5_000, seed=3)
    big = {"n_stages": 2, "bn": "true", "activation": "relu", "head_pool": "flatten", "n_hidden": 1,
           "fc1_units": 256, "dropout": 0.0, "s1_depth": 2, "s1_width": 64, "s1_kernel": 5, "s1_pool": '"max"',
           "s2_depth": 2, "s2_width": 64, "s2_kernel": 5, "s2_pool": '"max"'}
    hp = keras_tuner.HyperParameters()
    hp.values.update(big)
    oversized = spec_of(space, big)
    assert nas.cost(oversized).params > 5_000
    spec = hm.spec(hp)
    assert nas.cost(spec).params <= 5_000
    assert spec_of(space, hp.values) == spec  # the trial's values now stand for what is trained
    [record] = hm.rejected
    assert record["rejected"] == str(oversized)
    assert record["reason"] == f"params {nas.cost(oversized).params:,} > 5,000"
    assert record["replacement"] == str(spec)
    # the replacement is seeded by the rejected values: the same candidate is replaced the same way
    hp2 = keras_tuner.HyperParameters()
    hp2.values.update(big)
    assert HyperModel(space, max_params=5_000, seed=3).spec(hp2) == spec


def test_an_impossible_limit_fails_the_trial_naming_the_limit():
    hm = HyperModel(tiny_conv(), max_macs=10, max_redraws=20)
    with pytest.raises(keras_tuner.errors.FailedTrialError, match=r"none of 20 random draws .* fits max_macs=10"):
        hm.spec(keras_tuner.HyperParameters())


def test_bad_hypermodel_arguments_are_refused():
    with pytest.raises(ValueError, match="max_redraws"):
        HyperModel(tiny_conv(), max_redraws=0)
    with pytest.raises(ValueError, match="max_latency is not an analytic cost"):
        nas.keras_tuner._limits({"max_latency": 5.0})
    with pytest.raises(ValueError, match="max_params"):
        HyperModel(tiny_conv(), max_params=-1)
    with pytest.raises(ValueError, match="`space` must be one of"):
        HyperModel("nope")


# ------------------------------------------------------------------ real keras-tuner runs on digits

@pytest.mark.slow
def test_random_search_over_conv_never_aborts_on_oversized_models_and_the_view_matches_the_models(
        digits, tmp_path):
    hm = HyperModel(tiny_conv(), budget={"epochs": 2, "batch_size": 128}, max_params=3_000)
    tuner = keras_tuner.RandomSearch(hm, objective="val_accuracy", max_trials=5, seed=7, directory=tmp_path,
                                     project_name="conv")
    tuner.search(digits.x_train, digits.y_train, validation_data=(digits.x_val, digits.y_val), verbose=0)
    states = [t.status for t in tuner.oracle.trials.values()]
    assert states == ["COMPLETED"] * 5
    # keras-tuner's own max_model_size would have ended the search at the third oversized model in a row
    assert len(hm.rejected) >= 3
    study = nas.from_keras_tuner(tuner)
    assert study.counts()["complete"] == 5 and study.counts()["infeasible"] == len(hm.rejected)
    for record in study.trials:
        if record.status != "ok":
            assert record.status == "infeasible" and record.error.startswith("over budget: params")
            continue
        kt_trial = tuner.oracle.trials[record.user_attrs["kt_trial_id"]]
        model = tuner.load_model(kt_trial)
        assert record.metrics["params"] == model.count_params() <= 3_000
        assert record.spec == spec_of(hm.space, kt_trial.hyperparameters.values)
        assert record.metrics["accuracy"] == pytest.approx(kt_trial.score)
        assert record.metrics["macs"] == nas.cost(record.spec).macs
        assert record.params == {k: json.loads(v) if isinstance(v, str) and k in ("bn", "s1_pool", "s2_pool") else v
                                 for k, v in kt_trial.hyperparameters.values.items() if k in record.params}
    front = study.pareto_front()
    assert front and all(r.status == "ok" for r in front)
    # export: keras-tuner's best-epoch weights in a nas-built model reproduce the recorded accuracy
    best = study.best()
    [folder] = study.export("best", tmp_path / "export")
    import keras

    model = keras.saving.load_model(folder / "model.keras")
    # a view of a keras-tuner run does not know the data the tuner was fed: its model takes those inputs
    predicted = np.argmax(model.predict(digits.x_val, verbose=0), axis=1)
    assert np.mean(predicted == digits.y_val) == pytest.approx(best.metrics["accuracy"], abs=1e-6)
    assert json.loads((folder / "spec.json").read_text()) == json.loads(best.spec.to_json())
    assert "input" not in json.loads((folder / "metrics.json").read_text())


@pytest.mark.slow
def test_hyperband_over_mbconv_as_a_nas_search_and_resume(tmp_path):
    storage = tmp_path / "nas.db"
    study = nas.search(tiny_mbconv(), "digits", goal=nas.Goal(constraints={"max_params": 6_000}),
                       strategy=nas.Strategy(budget={"epochs": 3, "batch_size": 128}, seed=1),
                       run=nas.Run(backend=nas.KerasTuner(tuner="hyperband", options={"factor": 3, "max_epochs": 3}),
                                   storage=storage, study="hb"), verbose=False)
    trials = study.trials
    kt = [r for r in trials if "kt_trial_id" in r.user_attrs]
    # Hyperband(max_epochs=3, factor=3) runs one-epoch trials and promotes the best to three epochs: the
    # one-epoch results are low-fidelity (pruned, as in nas), every COMPLETE trial trained max_epochs
    assert study.counts()["pruned"] >= 1 and study.counts()["complete"] >= 1
    assert {r.user_attrs["epochs"] for r in kt if r.state == "COMPLETE"} == {3}
    assert {r.user_attrs["epochs"] for r in kt if r.state == "PRUNED"} <= {1}
    assert all(r.user_attrs["pruned_by"].startswith("keras_tuner.Hyperband") for r in kt if r.state == "PRUNED")
    assert all(r.status in ("ok", "pruned") for r in kt)
    import keras

    for r in kt:
        assert r.metrics["params"] <= 6_000
        model = nas.build_model(r.spec)
        assert model.count_params() == r.metrics["params"]
        keras.backend.clear_session()
    n = len(trials)
    assert len(study.pareto_front()) >= 1
    # the view lives in the storage: a reload sees the same trials; resume finds Hyperband finished
    again = nas.load_study("hb", storage)
    assert [r.number for r in again.trials] == [r.number for r in trials]
    again.resume(verbose=False)
    assert len(again.trials) == n


@pytest.mark.slow
def test_random_search_backend_resumes_to_a_larger_target_without_repeating_trials(tmp_path):
    storage = tmp_path / "nas.db"
    space = {"space": "conv", "options": {"stages": (1, 1), "depth": (1, 1), "widths": (4, 8), "hidden": (0, 0)}}
    study = nas.search(space, "digits",
                       strategy=nas.Strategy(n_trials=2, budget={"epochs": 1, "batch_size": 256}, seed=2),
                       run=nas.Run(backend=nas.KerasTuner(tuner="random"), storage=storage, study="rs"), verbose=False)
    assert study.counts()["complete"] == 2
    nas.load_study("rs", storage).resume(n_trials=4, verbose=False)
    resumed = nas.load_study("rs", storage)
    ids = [r.user_attrs["kt_trial_id"] for r in resumed.trials]
    assert len(ids) == 4 == len(set(ids)) and resumed.counts()["complete"] == 4
    assert resumed.config.strategy.sampler.name == "keras_tuner.random"
    assert resumed.backend == nas.KerasTuner(tuner="random", directory=str(tmp_path / "nas-artifacts" / "rs" /
                                                                           "keras_tuner"), project_name="rs")
    with pytest.raises(ValueError, match="a keras-tuner search and an Optuna one cannot switch"):
        resumed.resume(backend="local")


@nas.evaluator
def params_as_accuracy(spec):
    """A deterministic 'evaluator': more params, higher accuracy (saturating)."""
    p = nas.cost(spec).params
    return {"accuracy": p / (p + 2_000), "latency_ms": 1.0}


def test_bayesian_with_an_evaluator_trains_nothing_and_records_the_evaluator(tmp_path):
    space = tiny_conv()
    hm = HyperModel(space)
    tuner = make_tuner("bayesian", hm, directory=tmp_path, project_name="b", max_trials=6, seed=0,
                       evaluator=params_as_accuracy)
    tuner.search(verbose=0)
    assert [t.status for t in tuner.oracle.trials.values()] == ["COMPLETED"] * 6
    assert not list(tmp_path.glob("b/trial_*/checkpoint.weights.h5"))  # nothing was trained
    study = nas.from_keras_tuner(tuner, objectives=("accuracy", "params"))
    for r in study.trials:
        assert r.metrics["accuracy"] == pytest.approx(params_as_accuracy(r.spec)["accuracy"])
    front = study.pareto_front()
    # with accuracy a growing function of params every evaluated architecture is on the front
    assert len(front) == len({r.key for r in study.evaluated()})


def test_a_keras_tuner_view_stores_replaced_candidates_as_infeasible_for_optuna_and_the_dashboard(tmp_path):
    """The candidates the hypermodel replaced (over max_params, never built) are in the view as COMPLETE trials
    with accuracy 0, their constraint value > 0 in the list form optuna-dashboard reads; the trials keras-tuner
    ran hold theirs (<= 0). So Optuna's best trials, and the dashboard, never take a replaced one."""
    hm = HyperModel(tiny_conv(), max_params=3_000, seed=1)
    tuner = make_tuner("random", hm, directory=tmp_path, project_name="c", max_trials=6, seed=0,
                       evaluator=params_as_accuracy)
    tuner.search(verbose=0)
    assert len(hm.rejected) >= 1
    study = nas.from_keras_tuner(tuner, objectives=("accuracy", "params"))
    trials = study.optuna_study.get_trials()
    for t, record in zip(trials, study.trials):
        assert t.system_attrs["constraints"] == [(record.metrics["params"] - 3_000) / 3_000]
        assert (t.system_attrs["constraints"][0] > 0) == (record.status == "infeasible")
    assert [r.status for r in study.trials].count("infeasible") == len(hm.rejected)
    ok = [t for t, r in zip(trials, study.trials) if r.status == "ok"]
    ranks = non_dominated_ranks(np.array([t.values for t in ok]), ["maximize", "minimize"])
    assert sorted(t.number for t in study.optuna_study.best_trials) == [t.number for t, k in zip(ok, ranks) if k == 0]


def test_keras_tuner_backend_arguments_are_checked_before_anything_runs(tmp_path):
    db = tmp_path / "x.db"
    with pytest.raises(ValueError, match="KerasTuner: `tuner` must be one of random, bayesian, hyperband"):
        nas.KerasTuner(tuner="grid")
    with pytest.raises(ValueError, match="KerasTuner: `options` 'max_trials' is set by nas"):
        nas.KerasTuner(options={"max_trials": 3})
    run, tuner = nas.Run(storage=db, study="bad", backend="keras_tuner"), nas.KerasTuner(tuner="hyperband")
    cases = [
        (dict(strategy={"sampler": "tpe"}), "`strategy.sampler` is Optuna's"),
        (dict(goal={"objectives": ("accuracy", "latency")}), "measures no latency"),
        (dict(goal={"constraints": {"max_latency": 3.0}}), "only limit analytic"),
        (dict(strategy={"pruner": "median"}, goal={"objectives": ("accuracy",)}), "`pruner` is Optuna's"),
        (dict(run=run.replace(backend=tuner), evaluator=params_as_accuracy), "Hyperband's budget"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            nas.search("conv", "digits", **{"run": run, **kwargs}, verbose=False)
    assert not db.exists()  # nothing was stored


def test_a_view_made_outside_nas_cannot_be_resumed_by_nas(tmp_path):
    tuner = make_tuner("random", HyperModel(tiny_conv()), directory=tmp_path, project_name="v", max_trials=2,
                       seed=0, evaluator=params_as_accuracy)
    tuner.search(verbose=0)
    study = nas.from_keras_tuner(tuner, storage=tmp_path / "v.db", study_name="view")
    assert study.counts()["complete"] == 2
    with pytest.raises(ValueError, match="continue the tuner itself"):
        study.resume(50)
    assert nas.load_study("view", tmp_path / "v.db").n_trials == 2  # refused before anything was written
    # a second call adds nothing new; a third after two more trials adds exactly those
    assert len(nas.from_keras_tuner(tuner, storage=tmp_path / "v.db", study_name="view").trials) == 2
    tuner2 = make_tuner("random", HyperModel(tiny_conv()), directory=tmp_path, project_name="v", max_trials=4,
                        seed=0, evaluator=params_as_accuracy)
    tuner2.search(verbose=0)
    view = nas.from_keras_tuner(tuner2, storage=tmp_path / "v.db", study_name="view")
    assert [r.user_attrs["kt_trial_id"] for r in view.trials] == ["0", "1", "2", "3"]


def test_the_keras_tuner_experiment_config_is_a_record():

    from nas.config import load_config

    config = load_config(Path(__file__).resolve().parent.parent / "experiments/digits_keras_tuner.yaml").config
    assert config.run.backend == nas.KerasTuner(tuner="hyperband", options={"max_epochs": 6, "factor": 3})
    assert config.goal == nas.Goal(objectives=("accuracy", "params"), constraints={"max_params": 200_000})


@pytest.mark.parametrize(("max_epochs", "factor", "iterations", "trials"), [(6, 3, 1, 10), (2, 3, 1, 2), (6, 3, 2, 20),
                                                                             (9, 3, 1, 23)])
def test_the_progress_counts_to_hyperband_s_own_number_of_trials(tmp_path: Path, max_epochs: int, factor: int,
                                                                  iterations: int, trials: int) -> None:
    """Hyperband runs the trials its brackets make (each round a trial of its own), whatever n_trials says: the
    progress lines count to that. (6, 3): 5 models for 2 epochs, the best 2 of them again for 6, and 3 for 6 in the
    last bracket, as the docs' example ran; (9, 3): 9 + 3 + 1, 5 + 2, 3."""
    tuner = keras_tuner.Hyperband(hypermodel=lambda hp: None, objective="val_accuracy", max_epochs=max_epochs,
                                  factor=factor, hyperband_iterations=iterations, directory=str(tmp_path),
                                  project_name="p")
    assert hyperband_trials(tuner) == trials
    random = keras_tuner.RandomSearch(hypermodel=lambda hp: None, objective="val_accuracy", max_trials=3,
                                      directory=str(tmp_path), project_name="r")
    assert hyperband_trials(random) is None


def test_a_seeded_keras_tuner_search_runs_the_same_trials_again_seed_0_included(tmp_path: Path) -> None:
    """keras-tuner takes seed=0 as no seed at all (its oracle draws one): the same nas search with seed 0 ran other
    architectures each time. Two studies of each seed now hold the same architectures in the same order, and the
    two seeds differ."""
    space = search_spaces.get("conv", input_shape=(8, 8, 1), num_classes=10, stages=(1, 3), widths=(4, 8, 16, 32))

    def keys(seed: int, name: str) -> list[str]:
        study = nas.search(space, evaluator=params_as_accuracy, strategy=nas.Strategy(n_trials=6, seed=seed),
                           run=nas.Run(storage=tmp_path / "s.db", study=name, backend=nas.KerasTuner(tuner="random")),
                           verbose=False)
        return [str(r.key) for r in study.trials]

    zero, one = keys(0, "zero-a"), keys(1, "one-a")
    assert len(set(zero)) >= 4 and zero == keys(0, "zero-b")
    assert one == keys(1, "one-b") and one != zero


@pytest.mark.slow
def test_the_seeded_hyperband_example_trains_the_same_models_to_the_same_accuracies(tmp_path: Path) -> None:
    """The docs' keras-tuner example (Hyperband, seed 0, mbconv on digits) at a smaller budget (max_epochs 2: two
    trials of 2 epochs), run twice: the same architectures, params and validation accuracies to the last digit."""
    def run(name: str) -> list[tuple[str, int, float]]:
        study = nas.search({"name": "mbconv", "options": {"stem_widths": [16], "stages": [1, 2], "depth": [1, 1],
                                                          "widths": [16, 24]}}, "digits",
                           goal=nas.Goal(objectives=("accuracy", "params"), constraints={"max_params": 200_000}),
                           strategy=nas.Strategy(seed=0, budget={"epochs": 2, "batch_size": 64}),
                           run=nas.Run(storage=tmp_path / "h.db", study=name,
                                       backend=nas.KerasTuner(tuner="hyperband", options={"max_epochs": 2})),
                           verbose=False)
        return [(str(r.key), int(r.metrics["params"]), float(r.metrics["accuracy"])) for r in study.trials]

    first = run("a")
    assert len(first) == 2 and first == run("b")
