"""Inherited weights (``budget.inherit_epochs``): which trials start from their parent's weights, what is copied,
what is recorded, and what is refused; the decisions of real searches on digits recomputed from their records."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

import nas
from nas.engine import records
from nas.engine.evolution import ATTR
from nas.engine.inherit import (
    Unusable,
    copy_weights,
    model_arrays,
    parent_arrays,
    parent_of,
    parent_weights,
    weights_name,
)

SPACE = {"space": "conv", "options": {"stages": (1, 2), "depth": (1, 1), "widths": (4, 8, 16, 32), "kernels": (3, 5),
                                      "hidden": (0, 0), "dropouts": (0.0,)}}
BUDGET = {"epochs": 3, "batch_size": 128, "learning_rate": 0.01, "inherit_epochs": 1}


def _trial(number: int, state: TrialState = TrialState.COMPLETE, user: dict | None = None,
           system: dict | None = None) -> optuna.trial.FrozenTrial:
    t = create_trial(state=state, values=[0.5, 1.0] if state == TrialState.COMPLETE else None,
                     params={"a": 1}, distributions={"a": CategoricalDistribution([1, 2])},
                     user_attrs=user or {}, system_attrs=system or {})
    t.number = number
    return t


# -- which trial a trial starts from
@pytest.mark.parametrize("origin, parent", [("mutation", 4), ("neighbour", 4), ("exploit", 4), ("random", None),
                                            ("repeat", None)])
def test_a_child_starts_from_the_parent_its_plan_changed_one_label_of(origin: str, parent: int | None) -> None:
    plan = {"origin": origin, "parent": 4 if origin != "random" else None, "label": "a", "key": "k", "params": {}}
    assert parent_of({ATTR: plan}, {}, []) == parent


def test_a_retry_takes_its_originals_decision_and_nothing_else() -> None:
    trials = [_trial(0), _trial(1, TrialState.FAIL, user={"inherited": {"trial": 0, "epochs": 1, "share": 0.5}}),
              _trial(2, TrialState.FAIL), _trial(3, TrialState.FAIL, user={"inherit_skipped": {"trial": 0,
                                                                                              "reason": "gone"}})]
    mutation = {ATTR: {"origin": "mutation", "parent": 0}}
    assert parent_of(mutation, {"retry_of": 1}, trials) == 0
    assert parent_of(mutation, {"retry_of": 2}, trials) is None  # the original trained from scratch
    assert parent_of(mutation, {"retry_of": 3}, trials) is None  # the original's parent gave nothing
    assert parent_of({}, {}, trials) is None and parent_of({ATTR: "junk"}, {}, trials) is None


# -- whether the parent's weights can be used
def _saved(folder: Path, study: str = "s", number: int = 0) -> tuple[str, str]:
    path = folder / weights_name(study, number, "0123456789abcdef")
    path.write_bytes(b"weights of trial 0")
    return str(path), records.file_sha256(str(path))


def test_a_parents_weights_are_taken_from_the_studys_folder_by_name_and_checksum(tmp_path: Path) -> None:
    path, digest = _saved(tmp_path)
    elsewhere = "/some/other/machine/" + os.path.basename(path)  # the stored path: only its file name counts
    assert parent_weights(_trial(0, user={"weights": elsewhere, "weights_sha256": digest}), "s",
                          str(tmp_path)) == path


@pytest.mark.parametrize("state, user, reason", [
    (TrialState.PRUNED, {}, "trial 0 is pruned, not complete"),
    (TrialState.COMPLETE, {}, "trial 0 saved no weights"),
    (TrialState.COMPLETE, {"weights": "/etc/passwd", "weights_sha256": "x"},
     "trial 0's weights file name 'passwd' is not one of study 's''s"),
    (TrialState.COMPLETE, {"weights": "other.trial-0.0123456789ab.weights.h5", "weights_sha256": "x"},
     "trial 0's weights file name 'other.trial-0.0123456789ab.weights.h5' is not one of study 's''s"),
    (TrialState.COMPLETE, {"weights": "s.trial-7.0123456789ab.weights.h5", "weights_sha256": "x"},
     "trial 0's weights are not in the artefact folder"),
    (TrialState.COMPLETE, {"weights": "s.trial-0.0123456789ab.weights.h5", "weights_sha256": "0" * 64},
     "trial 0's weights at"),
])
def test_a_parent_that_cannot_give_its_weights_says_why(tmp_path: Path, state: TrialState, user: dict,
                                                         reason: str) -> None:
    _saved(tmp_path)
    with pytest.raises(Unusable) as info:
        parent_weights(_trial(0, state, user=user), "s", str(tmp_path))
    assert str(info.value).startswith(reason)
    if "at" in reason.split("weights ")[-1]:
        assert str(info.value).endswith("are not the ones it saved (SHA-256 differs)")


# -- what is copied
def _model(widths: tuple[int, ...], kernel: int = 3):
    """A small network with batch norm (its statistics are weights to inherit too)."""
    from nas.blocks import parse_block
    from nas.build import build_model
    from nas.spec import ArchSpec

    stages = [parse_block(f"conv_r1_k{kernel if i == 0 else 3}_s1_c{w}_mp2") for i, w in enumerate(widths)]
    return build_model(ArchSpec(input_shape=(8, 8, 1), num_classes=10, stages=tuple(stages)))


def test_a_child_takes_the_parents_weights_whole_or_their_overlapping_slice() -> None:
    import keras

    keras.utils.set_random_seed(1)
    parent = _model((8, 16))
    theirs = model_arrays(parent)
    same = _model((8, 16))
    assert copy_weights(same, theirs) == 1.0
    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    assert np.array_equal(same.predict(x, verbose=0), parent.predict(x, verbose=0))
    child = _model((4, 16), kernel=5)  # fewer channels, a larger kernel in the first stage
    mine = model_arrays(child)
    share = copy_weights(child, theirs)
    got = model_arrays(child)
    # the first conv: kernel (5, 5, 1, 4) takes the parent's (3, 3, 1, 8)[:3, :3, :, :4]
    first = next(n for n in mine if mine[n]["0"].ndim == 4)
    k_new, k_old = got[first]["0"], theirs[first]["0"]
    assert k_new.shape == (5, 5, 1, 4) and np.array_equal(k_new[:3, :3, :, :4], k_old[:3, :3, :, :4])
    assert np.array_equal(k_new[3:], mine[first]["0"][3:])  # the rest keeps its own initialisation
    total = sum(a.size for layer in mine.values() for a in layer.values())
    taken = 0
    for name, layer in mine.items():
        for k, a in layer.items():
            old = theirs[name][k]
            taken += int(np.prod([min(x, y) for x, y in zip(a.shape, old.shape, strict=True)]))
    assert 0 < share < 1 and share == taken / total


def _with_statistics(model, seed: int):
    """``model`` with batch-norm statistics that are not the identity, so that they matter to its function."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(size=layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, size=layer.moving_variance.shape))
            layer.gamma.assign(rng.uniform(0.5, 1.5, size=layer.gamma.shape))
    return model


@pytest.mark.parametrize("widths, kernel", [((8, 16), 5), ((12, 16), 3), ((12, 24), 5)])
def test_a_centred_copy_computes_the_parents_function_when_a_kernel_grows_or_a_layer_widens(widths, kernel) -> None:
    """Net2Net's function-preserving widening: the parent's kernel in the middle of a larger one (its border zero),
    the weights from channels the parent did not have zero; the leading copy of the same child does not."""
    import keras

    keras.utils.set_random_seed(2)
    parent = _with_statistics(_model((8, 16)), 0)
    x = np.random.default_rng(1).random((6, 8, 8, 1), dtype=np.float32)
    want = parent.predict(x, verbose=0)
    got = {}
    for copy in ("leading", "centred"):
        keras.utils.set_random_seed(3)  # the same child, freshly initialised, for each copy
        child = _model(widths, kernel=kernel)
        got[copy] = (copy_weights(child, model_arrays(parent), copy), child.predict(x, verbose=0))
    assert np.allclose(got["centred"][1], want, atol=1e-5)
    assert not np.allclose(got["leading"][1], want, atol=1e-3)
    assert 0 < got["centred"][0] == got["leading"][0] < 1  # the same values taken, placed elsewhere


def test_a_centred_copy_takes_the_middle_of_a_larger_kernel() -> None:
    import keras

    keras.utils.set_random_seed(4)
    parent = _model((8, 16), kernel=5)
    theirs = model_arrays(parent)
    child = _model((4, 16), kernel=3)  # a smaller kernel and fewer channels in the first stage
    mine = model_arrays(child)
    copy_weights(child, theirs, "centred")
    got = model_arrays(child)
    first = next(n for n in mine if mine[n]["0"].ndim == 4)
    assert np.array_equal(got[first]["0"], theirs[first]["0"][1:4, 1:4, :, :4])
    second = next(n for n in mine if mine[n]["0"].ndim == 4 and n != first)
    assert np.array_equal(got[second]["0"], theirs[second]["0"][:, :, :4, :])  # the parent's first 4 inputs
    with pytest.raises(ValueError, match=r"`copy` must be one of 'leading', 'centred', but got copy='middle'"):
        copy_weights(child, theirs, "middle")


# -- what is refused
def test_inherit_epochs_is_checked_with_the_field_the_rule_and_the_value() -> None:
    with pytest.raises(ValueError, match=r"budget: `inherit_epochs` must be an integer in \[0, epochs=3\] \(0: off\) "
                                         r"or None \(the sampler's default\), but got inherit_epochs=4"):
        nas.Budget(epochs=3, inherit_epochs=4)
    with pytest.raises(ValueError, match=r"but got inherit_epochs=True"):
        nas.Budget(epochs=3, inherit_epochs=True)
    assert nas.Budget(epochs=3).inherit_epochs is None


def test_the_default_is_resolved_and_stored_and_old_records_keep_training_from_scratch(tmp_path: Path) -> None:
    """None: `epochs` with the evolution sampler on training, 0 with another sampler, an evaluator or a Ray Tune
    scheduler; an explicit value is kept. A record stored before the default (no inherit_epochs) reads as 0."""
    from nas.engine.schema import RECORD_ATTR, read_config
    from search_spaces.nasbench201 import Table

    def stored(name: str, **kw) -> int:
        kw.setdefault("goal", nas.Goal(objectives=("accuracy", "macs")))
        run = {"storage": tmp_path / "d.db", "study": name, **kw.pop("run", {})}
        study = nas.create_study(kw.pop("space", SPACE), kw.pop("data", "digits"), **kw, run=run, verbose=False)
        return read_config(study.optuna_study).strategy.budget.inherit_epochs

    budget = {"epochs": 4}
    assert stored("evolution", strategy={"budget": budget}) == 4  # the default sampler of two objectives
    assert stored("explicit", strategy={"budget": {**budget, "inherit_epochs": 2}}) == 2
    assert stored("off", strategy={"budget": {**budget, "inherit_epochs": 0}}) == 0
    assert stored("tpe", strategy={"budget": budget, "sampler": "tpe"}) == 0
    assert stored("ray", goal=nas.Goal(objectives="accuracy"), strategy={"budget": budget, "sampler": "evolution"},
                  run={"backend": nas.Ray(scheduler="asha")}) == 0
    table = Table("cifar10")
    assert stored("table", space="nasbench201", data=None, evaluator=table,
                  strategy={"budget": budget, "sampler": "evolution"}) == 0
    # a record written before the default: the field absent
    study = nas.load_study("evolution", tmp_path / "d.db").optuna_study
    record = json.loads(study._storage.get_study_system_attrs(study._study_id)[RECORD_ATTR])
    del record["strategy"]["budget"]["inherit_epochs"]
    study._storage.set_study_system_attr(study._study_id, RECORD_ATTR, json.dumps(record))
    assert read_config(study).strategy.budget.inherit_epochs == 0
    assert nas.load_study("evolution", tmp_path / "d.db").config.budget.inherit_epochs == 0


def test_inherit_epochs_needs_the_evolution_sampler_and_no_ray_scheduler(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"it needs sampler='evolution', but got sampler='tpe' with inherit_epochs=1"):
        nas.create_study(SPACE, "digits", strategy=nas.Strategy(sampler="tpe", budget=BUDGET),
                         run=nas.Run(storage=tmp_path / "t.db", study="t"), verbose=False)
    with pytest.raises(ValueError, match=r"Ray: `scheduler` \(asha\) would compare the early accuracy"):
        nas.create_study(SPACE, "digits", goal=nas.Goal(objectives="accuracy"),
                         strategy=nas.Strategy(sampler="evolution", budget=BUDGET),
                         run=nas.Run(storage=tmp_path / "r.db", study="r", backend=nas.Ray(scheduler="asha")),
                         verbose=False)
    assert not (tmp_path / "t.db").exists() or not optuna.get_all_study_names(f"sqlite:///{tmp_path / 't.db'}")


# -- real searches: every decision recomputed from the records
def check_inheritance(study: nas.Study, inherit_epochs: int, epochs: int) -> int:
    """Assert every trial's decision and record against its plan and its parent's record; the number that
    inherited."""
    trials = {t.number: t for t in study.optuna_study.get_trials(deepcopy=False)}
    inherited = 0
    for t in trials.values():
        a = records.attrs_of(t)
        if a.get("status") not in ("ok", "pruned"):
            continue
        plan = t.system_attrs.get(ATTR) or {}
        parent = plan.get("parent") if plan.get("origin") in ("mutation", "neighbour", "exploit") else None
        if parent is None:
            assert "inherited" not in a and "inherit_skipped" not in a, t.number
            continue
        source = trials[parent]
        assert source.number < t.number  # one worker: trials in number order
        if source.state != TrialState.COMPLETE:  # a parent stopped at a rung saved no weights
            assert a["inherit_skipped"] == {"trial": parent, "reason": f"trial {parent} is pruned, not complete"}
            assert "inherited" not in a
            continue
        assert a["inherited"]["trial"] == parent and a["inherited"]["epochs"] == inherit_epochs
        assert a["epochs"] == len(a["history"]) == inherit_epochs and "rungs" not in a and a["status"] == "ok"
        assert t.intermediate_values == {}  # nothing a pruner or a sampler would read as a fresh curve
        path = parent_weights(source, study.name, study.config.artifacts)
        child = _rebuilt(records.read(t).spec)
        assert a["inherited"]["share"] == round(copy_weights(child, parent_arrays(source, path)), 4)
        inherited += 1
    fresh = [records.attrs_of(t) for t in trials.values() if records.attrs_of(t).get("status") in ("ok", "pruned")
             and "inherited" not in records.attrs_of(t)]
    assert fresh and all(len(a["history"]) <= epochs and "rungs" in a for a in fresh)
    return inherited


def _rebuilt(spec):
    from nas.build import build_model

    return build_model(spec)


def _search(tmp_path: Path, name: str, n_trials: int, backend=None) -> nas.Study:
    return nas.search(SPACE, "digits", goal=nas.Goal(objectives=("accuracy", "macs")),
                      strategy=nas.Strategy(n_trials=n_trials, seed=3, pruner="pareto", budget=BUDGET,
                                            sampler={"name": "evolution", "options": {"population_size": 3}}),
                      run=nas.Run(storage=tmp_path / f"{name}.db", study=name, backend=backend or nas.Local()),
                      verbose=False)


@pytest.mark.slow
def test_children_inherit_their_parents_weights_in_a_real_search_and_resume(tmp_path: Path) -> None:
    study = _search(tmp_path, "i", 8)
    assert study.counts()["done"] == 8
    first = check_inheritance(study, 1, 3)
    assert first >= 3
    # the parents' weights gone (a worker elsewhere without the artefact folder): children say why and train fresh
    for f in Path(study.config.artifacts).glob("*.weights.h5"):
        f.unlink()
    study.resume(n_trials=11, verbose=False)
    later = [t for t in study.optuna_study.trials if t.number >= 8]
    assert len(later) == 3 and all(records.attrs_of(t)["status"] in ("ok", "pruned") for t in later)
    skipped = [records.attrs_of(t) for t in later if "inherit_skipped" in records.attrs_of(t)]
    folder = study.config.artifacts
    assert skipped and all(a["inherit_skipped"]["reason"] == f"trial {a['inherit_skipped']['trial']}'s weights are "
                           f"not in the artefact folder {folder!r} here" for a in skipped)
    assert all("rungs" in a and "inherited" not in a for a in skipped)  # trained from scratch, judged as such
    for t in later:
        a = records.attrs_of(t)
        assert "inherited" not in a or a["inherited"]["trial"] >= 8  # only parents trained after the deletion


@pytest.mark.slow
def test_the_pruner_judges_inheriting_trials_among_themselves(tmp_path: Path) -> None:
    """With inherit_epochs = epochs = 3 an inheriting trial has a rung at epoch 1 as a fresh one has: each is
    judged against the trials of its own kind only, and a stopped inheriting trial saved no weights."""
    study = nas.search(SPACE, "digits", goal=nas.Goal(objectives=("accuracy", "macs")),
                       strategy=nas.Strategy(n_trials=10, seed=5, budget={**BUDGET, "inherit_epochs": 3},
                                             pruner={"name": "pareto", "options": {"rule": "ranked", "reach": False}},
                                             sampler={"name": "evolution", "options": {"population_size": 3}}),
                       run=nas.Run(storage=tmp_path / "p.db", study="p"), verbose=False)
    trials = study.optuna_study.get_trials(deepcopy=False)
    assert study.counts()["done"] == 10
    from test_early_stopping import _recompute

    decisions = {kind: sum(len(records.attrs_of(t).get("rungs") or {}) for t in trials if t.state != TrialState.FAIL
                           and ("inherited" in records.attrs_of(t)) == kind) for kind in (True, False)}
    assert decisions[True] >= 2 and decisions[False] >= 3, decisions
    assert _recompute(trials, 3, "ranked", ("macs",)) == decisions[True] + decisions[False]  # each in its own pool
    for t in trials:
        a = records.attrs_of(t)
        if "inherited" in a:
            assert a["inherited"]["epochs"] == 3 and set(a["rungs"]) == {"1"}
            assert t.intermediate_values == {}  # reported to no Optuna pruner
            stopped = not a["rungs"]["1"][1]
            assert (t.state == TrialState.PRUNED) == stopped and (a["epochs"] == 1) == stopped
            assert ("weights" in a) != stopped


@pytest.mark.slow
def test_two_local_workers_take_the_same_decisions_from_the_records(tmp_path: Path) -> None:
    study = _search(tmp_path, "w", 8, nas.Local(n_workers=2))
    assert study.counts()["done"] == 8
    trials = {t.number: t for t in study.optuna_study.trials}
    for t in trials.values():
        a, plan = records.attrs_of(t), t.system_attrs.get(ATTR) or {}
        if "inherited" in a:
            assert a["inherited"]["trial"] == plan["parent"] and a["epochs"] == 1 and "rungs" not in a
        elif a.get("status") in ("ok", "pruned") and plan.get("origin") in ("mutation", "neighbour", "exploit"):
            # the parent pool holds finished trials only: a parent that gives nothing was stopped at a rung
            assert a["inherit_skipped"]["reason"] == f"trial {plan['parent']} is pruned, not complete"


@pytest.mark.slow
def test_a_retried_trial_inherits_from_the_parent_its_dead_worker_recorded(tmp_path: Path) -> None:
    from nas.engine import claims

    study = _search(tmp_path, "r", 4)
    ost = study.optuna_study
    parent = next(t.number for t in ost.trials if t.state == TrialState.COMPLETE)
    # a worker that started trial 4 from `parent`'s weights and died before recording anything else
    t = ost.ask()
    study.space.sample(t)
    t.set_user_attr("worker", {"host": claims.HOST, "pid": 2**22 + 12345})
    records.write(t, {"inherited": {"trial": parent, "epochs": 1}})
    assert claims.fail_dead_trials(ost) == [4]
    study.resume(n_trials=5, verbose=False)
    retry = ost.trials[5]
    a = records.attrs_of(retry)
    assert a["retry_of"] == 4 and retry.params == ost.trials[4].params and ATTR not in retry.system_attrs
    assert a["inherited"]["trial"] == parent and a["inherited"]["epochs"] == 1 and a["epochs"] == 1
