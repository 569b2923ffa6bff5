"""The ``pareto`` pruner: multi-objective early stopping at rungs, decided by nas from the study storage.

Real training on digits; every decision recorded in a study is recomputed here from the stored rung results
with ``nas.rungs.keep`` (one worker: the trials that reached a rung before a trial are those numbered before it)."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import nas
from nas.engine import claims, records
from nas.engine.components import REACH_DEFAULT, pruner_component
from nas.engine.records import attrs_of
from nas.rungs import can_reach, keep, rung_epochs

SPACE = {"space": "conv", "options": {"stages": (1, 2), "depth": (1, 1), "widths": (4, 8, 16, 32), "kernels": (3, 5),
                                      "hidden": (0, 0), "dropouts": (0.0,)}}
BUDGET = {"epochs": 4, "batch_size": 128, "learning_rate": 0.01}


def _recompute(trials: list[optuna.trial.FrozenTrial], eta: int, rule: str, cost_keys: tuple[str, ...],
               inherited: frozenset[tuple[int, str]] = frozenset(), reach: bool = False) -> int:
    """Check every recorded decision against the rule over the trials numbered before it of the same kind (started
    from a parent's weights or fresh: the ``inherited`` record), failed trials left out as the engine leaves them
    out (and their own decisions, and the ``(number, rung)`` of ``inherited``: decisions a re-run took from its
    dead first attempt); with ``reach``, a trial the rule keeps must also be able to reach the front of the
    finished trials numbered before it (``can_reach`` with the gains after the rung of the finished ones of its
    kind). Returns how many were checked."""
    checked = 0
    for t in trials:
        if t.state == TrialState.FAIL:
            continue
        kind = "inherited" in attrs_of(t)
        for rung, (acc, kept) in (attrs_of(t).get("rungs") or {}).items():
            if (t.number, rung) in inherited:
                continue
            pool = [(attrs_of(u)["rungs"][rung][0], tuple(attrs_of(u)[k] for k in cost_keys)) for u in trials
                    if u.number < t.number and u.state != TrialState.FAIL and ("inherited" in attrs_of(u)) == kind
                    and rung in (attrs_of(u).get("rungs") or {})]
            mine = (acc, tuple(attrs_of(t)[k] for k in cost_keys))
            expected = keep(rule, mine, pool + [mine], eta)
            if reach and expected:
                finished = [attrs_of(u) for u in trials if u.number < t.number and u.state == TrialState.COMPLETE
                            and attrs_of(u)["status"] == "ok"]
                gains = [a["accuracy"] - a["rungs"][rung][0] for a in finished
                         if rung in (a.get("rungs") or {}) and ("inherited" in a) == kind]
                expected = can_reach(mine, gains, [(a["accuracy"], tuple(a[k] for k in cost_keys)) for a in finished])
                if not expected:  # stopped by the bound: a finished trial at most as costly is out of its reach
                    assert attrs_of(t)["pruned_by"].startswith(f"cannot reach the front at epoch {rung}: ")
                    assert len(gains) >= 3 and any(a["accuracy"] >= acc + max(gains) and all(
                        a[k] <= attrs_of(t)[k] for k in cost_keys) for a in finished)
            assert expected == kept, (t.number, rung)
            checked += 1
    return checked


def test_pareto_pruner_options_are_checked_and_stored() -> None:
    c = pruner_component("pareto", ("accuracy", "macs"))
    assert (c.name, c.options) == ("pareto", {"min_epochs": 1, "reduction_factor": 3, "rule": "margin",
                                              "calibrate": True, "reach": REACH_DEFAULT})
    c = pruner_component({"name": "pareto", "options": {"min_epochs": 2, "reduction_factor": 2, "rule": "nds"}},
                         ("accuracy", "params"))
    assert c.options == {"min_epochs": 2, "reduction_factor": 2, "rule": "nds", "calibrate": True,
                         "reach": REACH_DEFAULT}
    c = pruner_component({"name": "pareto", "options": {"calibrate": False, "reach": not REACH_DEFAULT}},
                         ("accuracy", "macs"))
    assert c.options["calibrate"] is False and c.options["reach"] is (not REACH_DEFAULT)
    with pytest.raises(ValueError, match=r"`pruner.calibrate` must be true or false, but got pruner.calibrate=1"):
        pruner_component({"name": "pareto", "options": {"calibrate": 1}}, ("accuracy", "macs"))
    with pytest.raises(ValueError, match=r"`pruner.reach` must be true or false, but got pruner.reach='yes'"):
        pruner_component({"name": "pareto", "options": {"reach": "yes"}}, ("accuracy", "macs"))
    with pytest.raises(ValueError, match=r"`pruner.min_epochs` must be an integer >= 1, but got pruner.min_epochs=0"):
        pruner_component({"name": "pareto", "options": {"min_epochs": 0}}, ("accuracy", "macs"))
    with pytest.raises(ValueError, match=r"`pruner.reduction_factor` must be an integer >= 2, but got "
                                         r"pruner.reduction_factor=1"):
        pruner_component({"name": "pareto", "options": {"reduction_factor": 1}}, ("accuracy", "macs"))
    with pytest.raises(ValueError, match=r"`pruner.rule` must be one of pareto, margin, ranked, nds, asha, but got "
                                         r"pruner.rule='x'"):
        pruner_component({"name": "pareto", "options": {"rule": "x"}}, ("accuracy", "macs"))
    with pytest.raises(ValueError, match=r"unknown option 'eta'"):
        pruner_component({"name": "pareto", "options": {"eta": 3}}, ("accuracy", "macs"))
    # Optuna's pruners stay single-objective
    with pytest.raises(ValueError, match=r"needs objectives=\('accuracy',\)"):
        pruner_component("median", ("accuracy", "macs"))


def test_ray_refuses_a_tune_scheduler_together_with_the_pareto_pruner(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"`scheduler` \(asha\) and `pruner` \('pareto'\) both stop trials early"):
        nas.create_study(SPACE, "digits", goal=nas.Goal(objectives=("accuracy",)),
                         strategy=nas.Strategy(pruner="pareto"),
                         run=nas.Run(storage=tmp_path / "r.db", backend=nas.Ray(scheduler="asha")), verbose=False)


@pytest.mark.slow
def test_reach_stops_what_cannot_reach_the_finished_front_and_each_decision_is_recomputed(tmp_path: Path) -> None:
    """The ``reach`` option on a real search (digits, random sampler, the lenient ``pareto`` rule so that the bound
    does the stopping): every recorded decision is recomputed from the trials numbered before it - the rule among
    the trials at the rung, then :func:`nas.rungs.can_reach` with the gains and final accuracies of the finished
    ones - and a trial the bound stopped is shown to be below a finished trial at most as costly, even with the
    largest gain."""
    pruner = {"name": "pareto", "options": {"min_epochs": 1, "reduction_factor": 2, "rule": "pareto", "reach": True}}
    study = nas.search(SPACE, "digits", goal=nas.Goal(objectives=("accuracy", "macs")),
                       strategy=nas.Strategy(n_trials=16, sampler="random", seed=5, budget=BUDGET, pruner=pruner),
                       run=nas.Run(storage=tmp_path / "r.db", study="r"), verbose=False)
    trials = study.optuna_study.trials
    assert study.config.strategy.pruner.options["reach"] is True
    assert _recompute(trials, 2, "pareto", ("macs",), reach=True) == sum(len(attrs_of(t).get("rungs") or {})
                                                                       for t in trials)
    why = [attrs_of(t)["pruned_by"] for t in trials if t.state == TrialState.PRUNED]
    by_reach = sum(w.startswith("cannot reach the front at epoch ") for w in why)
    assert by_reach >= 2 and why.count("pareto rung at epoch 1 (reduction factor 2)") + why.count(
        "pareto rung at epoch 2 (reduction factor 2)") == len(why) - by_reach
    # a stopped trial is in no ranking; the front is of finished trials only
    pruned = {t.number for t in trials if t.state == TrialState.PRUNED}
    assert pruned and pruned.isdisjoint(r.number for r in study.pareto_front())


@pytest.mark.slow
def test_multi_objective_search_stops_trials_at_rungs_from_stored_data(tmp_path: Path) -> None:
    study = nas.search(SPACE, "digits", goal=nas.Goal(objectives=("accuracy", "macs")),
                       strategy=nas.Strategy(n_trials=14, sampler="random", seed=3, budget=BUDGET,
                                             pruner={"name": "pareto",
                                                     "options": {"min_epochs": 1, "reduction_factor": 2,
                                                                 "reach": False}}),
                       run=nas.Run(storage=tmp_path / "p.db", study="p"), verbose=False)
    trials = study.optuna_study.trials
    assert rung_epochs(1, 2, 4) == (1, 2)
    c = study.counts()
    assert c["done"] == 14 and c["pruned"] > 0 and c["complete"] > c["pruned"] // 4
    trained = [t for t in trials if attrs_of(t).get("status") in ("ok", "pruned")]
    assert _recompute(trained, 2, "margin", ("macs",)) >= len(trained)  # every trained trial met rung 1
    for t in trials:
        a = attrs_of(t)
        if "reused_from" in a and t.state == TrialState.PRUNED:  # a repeat took the stop of the same architecture
            first = attrs_of(trials[a["reused_from"]])
            assert (first["spec_key"], first["epochs"], first["history"]) == (a["spec_key"], a["epochs"], a["history"])
            assert a["pruned_by"] == f"{first['pruned_by']}, reused from trial {a['reused_from']}"
        elif t.state == TrialState.PRUNED:
            e = int(a["pruned_by"].split("epoch ")[1].split(" ")[0])
            assert a["status"] == "pruned" and a["pruned_by"].startswith("margin rung at epoch")
            assert a["epochs"] == e == len(a["history"]) and list(a["rungs"].values())[-1][1] is False
            assert len(a["history"]) == e
            # it was stopped because a trial at most as expensive was more accurate at that rung
            assert any(attrs_of(u).get("rungs", {}).get(str(e), [0])[0] > a["rungs"][str(e)][0]
                       and attrs_of(u)["macs"] <= a["macs"] for u in trials if u.number < t.number)
            assert "weights" not in a and t.values is None
        elif a.get("status") == "ok":
            assert all(kept for _, kept in a["rungs"].values()) and a["epochs"] == 4
    # the rung accuracies are the calibrated ones: trained again outside the engine, with the same seed, a stopped
    # trial and a finished one give the same values at their rungs, and the same plain per-epoch history
    from nas.budget import Budget
    from nas.data import load_data
    from nas.train import train_model

    data = load_data("digits")
    for t in [next(t for t in trained if t.state == s) for s in (TrialState.PRUNED, TrialState.COMPLETE)]:
        rungs, plain, calibrated = attrs_of(t)["rungs"], [], {}
        train_model(study.trials[t.number].spec, data, Budget(**BUDGET), seed=t.number,
                    report=lambda e, a, plain=plain: plain.append(round(a, 6)), calibrate_at=(1, 2),
                    calibrated=lambda e, a, calibrated=calibrated: calibrated.__setitem__(str(e + 1), round(a, 6)))
        assert {r: v[0] for r, v in rungs.items()} == {r: calibrated[r] for r in rungs}, t.number
        assert plain[:len(attrs_of(t)["history"])] == attrs_of(t)["history"]
    assert any(a != attrs_of(t)["history"][int(r) - 1] for t in trained for r, (a, _) in attrs_of(t)["rungs"].items())
    # a stopped trial is never ranked with its low-fidelity accuracy
    pruned = {t.number for t in trials if t.state == TrialState.PRUNED}
    assert pruned.isdisjoint(r.number for r in study.pareto_front())
    assert pruned.isdisjoint(r.number for r in study.evaluated())
    # what the sampler learns from them: Optuna's TPE puts a stopped trial (PRUNED, no values) in its "above"
    # (bad) group, after the complete trials, as long as fewer than its "below" share are complete
    from optuna.samplers._tpe.sampler import _split_trials

    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    below, above = _split_trials(study.optuna_study, finished, n_below=2)
    assert pruned <= {t.number for t in above} and len(below) == 2
    spent = study.epochs()
    assert spent["trained"] == sum(attrs_of(t)["epochs"] for t in trained)
    assert spent["full"] == 4 * len(trained) and spent["saved"] == spent["full"] - spent["trained"] > 0
    assert sum(spent["stopped_at"].values()) == len(pruned)


@pytest.mark.slow
def test_the_ranked_rule_is_applied_and_stored(tmp_path: Path) -> None:
    # the stored option decides: every recorded decision is the "ranked" rule's over the trials before it, and the
    # search stops more than "margin" would on the same rung results (front members are under the quota too)
    study = nas.search(SPACE, "digits", goal=nas.Goal(objectives=("accuracy", "macs")),
                       strategy=nas.Strategy(n_trials=10, sampler="random", seed=3, budget=BUDGET,
                                             pruner={"name": "pareto", "options": {"reduction_factor": 2,
                                                                                   "rule": "ranked",
                                                                                   "reach": False}}),
                       run=nas.Run(storage=tmp_path / "r.db", study="r"), verbose=False)
    loaded = nas.load_study("r", tmp_path / "r.db")
    assert loaded.config.strategy.pruner.options["rule"] == "ranked"
    trials = study.optuna_study.trials
    trained = [t for t in trials if attrs_of(t).get("status") in ("ok", "pruned")]
    assert _recompute(trained, 2, "ranked", ("macs",)) >= len(trained)
    stopped = [t for t in trials if t.state == TrialState.PRUNED and "reused_from" not in attrs_of(t)]
    assert stopped and all(attrs_of(t)["pruned_by"].startswith("ranked rung at epoch") for t in stopped)
    with pytest.raises(AssertionError):  # "margin" would have decided some of them otherwise
        _recompute(trained, 2, "margin", ("macs",))


@pytest.mark.slow
def test_a_retried_trial_takes_the_decisions_its_dead_worker_recorded(tmp_path: Path) -> None:
    study = nas.create_study(SPACE, "digits", goal=nas.Goal(objectives=("accuracy", "macs")),
                             strategy=nas.Strategy(n_trials=1, sampler="random", seed=0, budget=BUDGET,
                                                   pruner="pareto"),
                             run=nas.Run(storage=tmp_path / "d.db", study="d"), verbose=False)
    ost = study.optuna_study
    # a worker that trained trial 0 to its first rung, was told to stop there, and died before recording it
    t = ost.ask()
    study.space.sample(t)
    t.set_user_attr("worker", {"host": claims.HOST, "pid": 2**22 + 12345})
    t.set_user_attr("rungs", {"1": [0.01, False]})
    assert claims.fail_dead_trials(ost) == [0]
    study.resume(verbose=False)
    trials = study.optuna_study.trials
    retry = trials[1]
    assert attrs_of(retry)["retry_of"] == 0 and retry.params == trials[0].params
    assert retry.state == TrialState.PRUNED and attrs_of(retry)["epochs"] == 1
    assert attrs_of(retry)["pruned_by"] == "margin rung at epoch 1 (reduction factor 3, decision of trial 0)"
    assert attrs_of(retry)["rungs"]["1"][1] is False
    assert study.counts()["done"] == 1  # the stopped retry is the study's one trial
    assert os.path.exists(tmp_path / "d.db")


def test_rungs_judge_calibrated_accuracy_unless_the_stored_pruner_predates_the_option(tmp_path: Path) -> None:

    from nas.engine.runner import Runner
    from nas.engine.schema import Component, read_config

    study = nas.create_study(SPACE, "digits", goal=nas.Goal(objectives=("accuracy", "macs")),
                             strategy=nas.Strategy(pruner="pareto", budget=BUDGET),
                             run=nas.Run(storage=tmp_path / "c.db", study="c"), verbose=False)
    config = read_config(study.optuna_study)
    assert config.strategy.pruner.options["calibrate"] is True  # stored with the study
    assert Runner(study.optuna_study, config)._calibrate_at() == rung_epochs(1, 3, 4) == (1, 3)
    for options in ({"min_epochs": 1, "reduction_factor": 3, "rule": "margin"},  # a study stored before the option
                    {**config.strategy.pruner.options, "calibrate": False}):
        old = config.replace(strategy=config.strategy.replace(pruner=Component(name="pareto", options=options)))
        assert Runner(study.optuna_study, old)._calibrate_at() == ()
    none = config.replace(strategy=config.strategy.replace(pruner=None))
    assert Runner(study.optuna_study, none)._calibrate_at() == ()


@pytest.mark.slow
def test_sigkill_between_rungs_then_resume_keeps_rung_results_and_decisions(tmp_path: Path) -> None:
    """A real search process killed while a trial is past a rung (kept) and still training; resumed."""
    import signal
    import subprocess
    import sys

    from test_engine import _wait_for

    from nas.engine.storage import open_storage

    storage = f"sqlite:///{tmp_path}/k.db"
    pruner = {"name": "pareto", "options": {"min_epochs": 1, "reduction_factor": 2, "reach": False}}
    budget = {**BUDGET, "epochs": 6, "batch_size": 32}
    script = tmp_path / "run.py"
    script.write_text(f"import nas\nnas.search({SPACE!r}, 'digits', goal={{'objectives': ('accuracy', 'macs')}}, "
                      f"strategy={{'n_trials': 8, 'sampler': 'random', 'seed': 3, 'budget': {budget!r}, "
                      f"'pruner': {pruner!r}}}, run={{'storage': {storage!r}, 'study': 'k'}}, verbose=False)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ost = lambda: optuna.load_study(study_name="k", storage=open_storage(storage))  # noqa: E731

    def past_a_rung() -> list[optuna.trial.FrozenTrial]:
        try:
            trials = ost().trials
        except Exception:
            return []
        finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        running = [t for t in trials if t.state == TrialState.RUNNING
                   and any(kept for _, kept in (attrs_of(t).get("rungs") or {}).values())]
        return running if len(finished) >= 2 else []

    _wait_for(lambda: bool(past_a_rung()) or proc.poll() is not None, 240)
    assert proc.poll() is None, "no trial was caught between rungs"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {t.number: t for t in ost().trials}
    victim = next(t for t in before.values() if t.state == TrialState.RUNNING)
    worker_pid = attrs_of(victim)["worker"]["pid"]
    _wait_for(lambda: not os.path.exists(f"/proc/{worker_pid}") or
              Path(f"/proc/{worker_pid}/stat").read_text().split(")")[-1].split()[0] == "Z", 30)

    study = nas.load_study("k", storage)
    study.resume(verbose=False)
    trials = study.optuna_study.trials
    assert study.counts()["done"] == 8 and study.counts()["running"] == 0
    # nothing finished before the kill changed: states, values, rung results and decisions
    for n, t in before.items():
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            u = trials[n]
            assert (u.state, u.values, attrs_of(u)["rungs"], attrs_of(u).get("pruned_by")) == \
                   (t.state, t.values, attrs_of(t)["rungs"], attrs_of(t).get("pruned_by"))
    # the killed trial keeps the rung results it had recorded; its re-run has its params and its decisions
    killed = trials[victim.number]
    assert killed.state == TrialState.FAIL and f"worker process {worker_pid} died" in attrs_of(killed)["error"]
    assert attrs_of(killed)["rungs"] == attrs_of(victim)["rungs"]
    retry = next(t for t in trials if attrs_of(t).get("retry_of") == victim.number)
    assert retry.params == victim.params and retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert attrs_of(retry)["seed_of"] == victim.number
    for rung, (_, kept) in attrs_of(victim)["rungs"].items():
        assert attrs_of(retry)["rungs"][rung][1] == kept
    # ... and trains with the first attempt's seed: the same rung accuracies as the killed run
    assert {r: v[0] for r, v in attrs_of(retry)["rungs"].items() if r in attrs_of(victim)["rungs"]} == \
           {r: v[0] for r, v in attrs_of(victim)["rungs"].items()}
    # every other decision is the rule's over the stored rung results of the trials that came before it
    # (one worker at a time: number order), failed ones excluded
    inherited = frozenset((retry.number, rung) for rung in attrs_of(victim)["rungs"])
    assert _recompute(trials, 2, "margin", ("macs",), inherited) >= 8


def _crafted(ost: optuna.Study, space, labels: dict, state: TrialState, **attrs) -> None:
    """A finished trial of the space's ``labels`` with ``attrs``, as a worker records one (through Optuna's API)."""
    ost.enqueue_trial(labels)
    t = ost.ask()
    space.sample(t)
    for k, v in attrs.items():
        t.set_user_attr(k, v)
    ost.tell(t, [attrs["rungs"]["1"][0], attrs["macs"]] if state == TrialState.COMPLETE else None, state=state)


@pytest.mark.slow
def test_a_repeated_stopped_architecture_takes_its_stop_while_the_stop_still_holds(tmp_path: Path) -> None:
    """Trial 1 (an expensive architecture) was stopped at rung 1 below trial 0 (a cheaper, more accurate one).
    Sampled again, it is recorded as stopped again from trial 1's result, without training, and counts as a
    finished trial; sampled again after four more trials have reached the rung, below it, the same accuracy
    would now go on (the rung keeps 2 of 6), so it is trained afresh."""
    space_config = {"space": "conv", "options": {"stages": (1, 1), "depth": (1, 1), "widths": (4, 32),
                                                 "kernels": (3,), "hidden": (0, 0), "dropouts": (0.0,)}}
    study = nas.create_study(space_config, "digits", goal=nas.Goal(objectives=("accuracy", "macs")),
                             strategy=nas.Strategy(n_trials=2, sampler="random", seed=0,
                                                   budget={"epochs": 2, "batch_size": 128},
                                                   pruner={"name": "pareto",
                                                           "options": {"min_epochs": 1, "reduction_factor": 3}}),
                             run=nas.Run(storage=tmp_path / "r.db", study="r"), verbose=False)
    space, ost = study.space, study.optuna_study
    draws = [nas.RandomTrial(seed=s) for s in range(20)]
    specs = [space.sample(t) for t in draws]
    order = sorted(range(len(specs)), key=lambda i: nas.cost(specs[i]).macs)
    (cheap, a), (costly, b) = ((draws[i].params, {"spec_key": specs[i].key(), "spec_str": str(specs[i]),
                                                  **nas.cost(specs[i]).as_dict()}) for i in (order[0], order[-1]))
    assert a["macs"] < b["macs"]
    _crafted(ost, space, cheap, TrialState.COMPLETE, **a, status="ok", accuracy=0.9, epochs=2,
             history=[0.9, 0.9], rungs={"1": [0.9, True]})
    stop = "margin rung at epoch 1 (reduction factor 3)"
    _crafted(ost, space, costly, TrialState.PRUNED, **b, status="pruned", epochs=1, history=[0.25],
             rungs={"1": [0.2, False]}, pruned_by=stop)
    ost.enqueue_trial(costly)
    study.resume(3, verbose=False)
    repeat = records.read(study.optuna_study.trials[2])
    assert (repeat.state, repeat.status, repeat.key) == ("PRUNED", "pruned", b["spec_key"])
    assert repeat.user_attrs["reused_from"] == 1 and repeat.user_attrs["pruned_by"] == f"{stop}, reused from trial 1"
    assert (repeat.user_attrs["epochs"], repeat.user_attrs["history"]) == (1, [0.25])
    assert "rungs" not in repeat.user_attrs and "train_s" not in repeat.timings and "worker" in repeat.user_attrs
    assert study.counts() == {"done": 3, "running": 0, "waiting": 0, "infeasible": 0, "failed": 0, "pruned": 2,
                              "complete": 1}
    assert study.epochs() == {"trained": 3, "full": 4, "saved": 1, "stopped_at": {1: 1}}  # the repeat trained none
    # four more trials reached rung 1, all below trial 1: with six at the rung, the best two go on
    for i in range(4):
        _crafted(ost, space, cheap, TrialState.PRUNED, **{**a, "spec_key": f"crafted-{i}"}, status="pruned",
                 epochs=1, history=[0.05], rungs={"1": [0.05, False]}, pruned_by=stop)
    ost.enqueue_trial(costly)
    study.resume(8, verbose=False)
    again = records.read(study.optuna_study.trials[7])
    assert again.key == b["spec_key"] and "reused_from" not in again.user_attrs
    assert again.timings["train_s"] > 0 and "1" in again.user_attrs["rungs"]  # trained, judged live at rung 1
    assert study.counts()["done"] == 8
