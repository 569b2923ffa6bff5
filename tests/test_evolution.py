"""nas's evolution sampler (``sampler="evolution"``, :mod:`nas.engine.evolution`): real Optuna storages, real
spaces, the NAS-Bench-201 table as evaluator; values asserted, nothing mocked."""

from __future__ import annotations

import hashlib
import math
import random
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

import nas
import search_spaces
from nas.engine import evolution, records
from nas.engine.components import make_sampler, sampler_component
from nas.engine.evolution import ATTR, ParetoEvolutionSampler, rank_members
from nas.engine.schema import Component
from nas.trial import FixedTrial, RandomTrial
from search_spaces.nasbench201 import Table

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
NB201 = search_spaces.get("nasbench201")
TABLE = Table("cifar10")


def _table_objective(space: Any = NB201) -> Any:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        spec = space.sample(trial)
        return TABLE(spec)["accuracy"], float(nas.cost(spec).params)
    return objective


def _study(sampler: optuna.samplers.BaseSampler, storage: Any = None, name: str | None = None) -> optuna.Study:
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler, storage=storage,
                                study_name=name, load_if_exists=True)
    if study.metric_names is None:
        study.set_metric_names(["accuracy", "params"])
    return study


def _evolution(space: Any = NB201, seed: int | None = 0, **options: Any) -> optuna.samplers.BaseSampler:
    return make_sampler(Component(name="evolution", options=options), n_trials=100, space=space, seed=seed)


def _plans(study: optuna.Study) -> list[dict[str, Any]]:
    return [t.system_attrs[ATTR] for t in study.trials if ATTR in t.system_attrs]


def _exploit_children(trials: list[optuna.trial.FrozenTrial]) -> list[int]:
    """The numbers of the trials made by the exploitation step, each checked: its parent is the most accurate
    completed feasible trial before it (the earliest of equals), and it differs from its parent in one label."""
    made = []
    for t in trials:
        plan = t.system_attrs.get(ATTR) or {}
        if plan.get("origin") != "exploit":
            continue
        before = [b for b in trials[:t.number] if b.state == TrialState.COMPLETE
                  and b.user_attrs.get("status") != "infeasible" and not any(v > 0 for v in b.constraints.values())]
        best = max(before, key=lambda b: (b.values[0], -b.number))
        assert plan["parent"] == best.number, (t.number, plan["parent"], best.number)
        changed = [k for k in t.params if t.params[k] != trials[plan["parent"]].params.get(k)]
        assert changed == [plan["label"]], (t.number, changed)
        made.append(t.number)
    return made


# ------------------------------------------------------------------ configuration

def test_evolution_is_a_named_sampler_with_checked_options() -> None:
    # stored with its first population's rule resolved: a record without it (stored before 2026-12-07) reads random
    assert sampler_component("evolution", ("accuracy", "params"), NB201) == \
        Component(name="evolution", options={"init": "spread"})
    sampler = _evolution(population_size=8, tournament_size=3, candidates=2)
    assert isinstance(sampler, ParetoEvolutionSampler)
    assert (sampler.population_size, sampler.tournament_size, sampler.candidates) == (8, 3, 2)
    with pytest.raises(ValueError, match=r"`sampler.tournament_size` must be an integer >= 1, but got "
                                         r"sampler.tournament_size=0"):
        sampler_component({"name": "evolution", "options": {"tournament_size": 0}}, ("accuracy", "params"), NB201)
    with pytest.raises(ValueError, match=r"`sampler.tournament_size` must be at most population_size \(4\), but got "
                                         r"sampler.tournament_size=5"):
        sampler_component({"name": "evolution", "options": {"population_size": 4, "tournament_size": 5}},
                          ("accuracy", "params"), NB201)
    with pytest.raises(ValueError, match=r"`sampler` 'evolution': unknown option 'population'; known options: "
                                         r"population_size, tournament_size, candidates, exploit"):
        sampler_component({"name": "evolution", "options": {"population": 8}}, ("accuracy", "params"), NB201)
    with pytest.raises(ValueError, match=r"`sampler.population_size` must be an integer >= 1, but got "
                                         r"sampler.population_size=True"):
        ParetoEvolutionSampler(NB201, population_size=True)


def test_the_exploit_option_is_a_checked_probability() -> None:
    assert _evolution().exploit == 0.35  # the default, tuned on CIFAR-10 (BENCHMARKS.md)
    assert _evolution(exploit=0).exploit == 0.0 and _evolution(exploit=1).exploit == 1.0
    assert sampler_component({"name": "evolution", "options": {"exploit": 0.5}}, ("accuracy", "params"), NB201) == \
        Component(name="evolution", options={"exploit": 0.5, "init": "spread"})
    for bad in (1.5, -0.1, True, "0.5"):
        with pytest.raises(ValueError, match=rf"^`sampler.exploit` must be a finite number in \[0, 1\], but got "
                                             rf"sampler.exploit={re.escape(repr(bad))}$"):
            sampler_component({"name": "evolution", "options": {"exploit": bad}}, ("accuracy", "params"), NB201)
        with pytest.raises(ValueError, match=rf"^`sampler.exploit` must be a finite number in \[0, 1\], but got "
                                             rf"sampler.exploit={re.escape(repr(bad))}$"):
            make_sampler(Component(name="evolution", options={"exploit": bad}), n_trials=10, space=NB201, seed=0)
        with pytest.raises(ValueError, match=r"^`sampler.exploit` must be a finite number in \[0, 1\], but got "):
            ParetoEvolutionSampler(NB201, exploit=bad)


def test_exploit_zero_is_the_pareto_step_alone_and_one_mutates_the_most_accurate_every_time() -> None:
    """exploit=0: every evolved child comes from a Pareto-rank tournament; exploit=1: after the random population
    every child changes one label of the most accurate trial so far (it has 24 neighbours, more than the 20
    children); the random population is the same (the coin is not drawn before it)."""
    never = _study(_evolution(seed=5, population_size=10, exploit=0))
    never.optimize(_table_objective(), n_trials=30)
    assert [p["origin"] for p in _plans(never)] == ["random"] * 10 + ["mutation"] * 20
    always = _study(_evolution(seed=5, population_size=10, exploit=1))
    always.optimize(_table_objective(), n_trials=30)
    assert [p["origin"] for p in _plans(always)] == ["random"] * 10 + ["exploit"] * 20
    assert _exploit_children(always.trials) == list(range(10, 30))
    assert [t.params for t in always.trials[:10]] == [t.params for t in never.trials[:10]]


def test_the_init_option_is_checked_by_name() -> None:
    assert _evolution().init == "random" and _evolution(init="spread").init == "spread"  # a record without it
    for init in ("random", "spread"):
        assert sampler_component({"name": "evolution", "options": {"init": init}}, ("accuracy", "params"), NB201) \
            == Component(name="evolution", options={"init": init})
    for bad in ("grid", 1, True):
        message = rf"^`sampler.init` must be one of 'random', 'spread', but got sampler.init={re.escape(repr(bad))}$"
        with pytest.raises(ValueError, match=message):
            sampler_component({"name": "evolution", "options": {"init": bad}}, ("accuracy", "params"), NB201)
        with pytest.raises(ValueError, match=message):
            make_sampler(Component(name="evolution", options={"init": bad}), n_trials=10, space=NB201, seed=0)
        with pytest.raises(ValueError, match=message):
            ParetoEvolutionSampler(NB201, init=bad)


def test_a_spread_first_population_member_is_the_draw_nearest_its_place_on_the_cost_axis() -> None:
    """init="spread": of 16 fresh random architectures, the k-th member of the first population (k taken so far) is
    the one whose cost (params here, no limit: divided by the largest drawn) is nearest (k + 1/2) / population_size;
    recomputed from a twin of the random stream."""
    sampler = _evolution(population_size=4, init="spread")
    study = _study(sampler)
    costs = []
    for taken in range(6):
        pop = evolution._Population()
        pop.taken = {f"key-{i}" for i in range(taken)}
        rng, twin = random.Random(taken), random.Random(taken)
        chosen = sampler._spread(study, pop, {}, rng, lambda c: c is not None)
        drawn: list[Any] = []
        while len(drawn) < 16:
            child = sampler._replay({}, twin)
            if child is not None:
                drawn.append(child)
        params = [float(nas.cost(c.spec).params) for c in drawn]
        target = (min(taken, 3) + 0.5) / 4
        nearest = min(range(16), key=lambda i: abs(params[i] / max(params) - target))
        assert chosen is not None and chosen.key == drawn[nearest].key, taken
        costs.append(params[nearest] / max(params))
    assert costs[:4] == sorted(costs[:4]) and costs[0] < 0.3 and costs[3] > 0.7, costs  # cheap first, spread out
    # without an analytic cost objective there is no cost axis: the draws are plain random ones
    single = optuna.create_study(directions=["maximize"], sampler=sampler)
    single.set_metric_names(["accuracy"])
    assert sampler._spread(single, evolution._Population(), {}, random.Random(0), lambda c: True) is None


def test_a_spread_first_population_keeps_within_the_limit_then_evolves(tmp_path: Path) -> None:
    """Through nas: the stored option, the first population random (each over its share of the MACs limit: the
    cheapest first), then children; a seed gives the same search."""
    space = search_spaces.get("families", input_shape=(28, 28, 1), stem_widths=(16,), stages=(2, 4), depth=(1, 2),
                              widths=(16, 24, 32, 48, 64), head_widths=(0, 128), dropouts=(0.0,))
    runs = []
    for name in ("a", "b"):
        study = nas.search(space, goal=nas.Goal(objectives=("accuracy", "macs"), constraints={"max_macs": 1.5e6}),
                           strategy=nas.Strategy(n_trials=8, seed=4, sampler={"name": "evolution",
                                                                             "options": {"init": "spread"}}),
                           run=nas.Run(storage=tmp_path / f"{name}.db", study=name),
                           evaluator="engine_helpers:score_by_macs", verbose=False)
        assert study.config.strategy.sampler == Component(name="evolution", options={"init": "spread"})
        runs.append([(t.system_attrs[ATTR]["origin"], records.attr(t, "macs")) for t in study.optuna_study.trials])
    assert runs[0] == runs[1]
    origins, macs = [o for o, _ in runs[0]], [m / 1.5e6 for _, m in runs[0]]
    assert origins[:4] == ["random"] * 4 and set(origins[4:]) <= {"mutation", "exploit", "neighbour"}, origins
    assert all(m <= 1 for m in macs) and macs[0] < 0.35 and macs[0] == min(macs[:4]), macs


def test_a_failed_architecture_without_a_recorded_place_takes_the_place_its_cost_falls_in() -> None:
    """The place of a failed architecture: the one recorded with its plan, else the one its cost falls in (here 0.6
    of the params limit: place 2 of 4). With 2 architectures taken that did not fail, the k-th place is 2; when a
    failure holds it, the draw aims at the free place nearest it, the cheaper of 1 and 3."""
    sampler = _evolution(population_size=4, init="spread")
    study = _study(sampler)
    failed = next(c for c in (sampler._replay({}, random.Random(i)) for i in range(50)) if c is not None)
    limits = {"max_params": float(nas.cost(failed.spec).params) / 0.6}

    def place(plan: dict[str, Any] | None) -> int | None:
        pop = evolution._Population()
        pop.taken = {"a", "b", failed.key}
        if plan is not None:
            pop.failed = {failed.key: plan}
        else:
            pop.taken.remove(failed.key)
        chosen = sampler._spread(study, pop, limits, random.Random(7), lambda c: c is not None)
        assert chosen is not None
        return chosen.place

    assert place(None) == 2  # no failure: the k-th place
    assert place({"params": failed.params}) == 1  # placed by its cost: 2 is taken, 1 and 3 are as near
    assert place({"params": failed.params, "place": 3}) == 2  # its recorded place, 3: 2 stays free
    assert place({"params": failed.params, "place": 1}) == 2


def test_a_failed_first_population_member_takes_its_place_on_the_cost_axis(tmp_path: Path) -> None:
    """init="spread" when training fails in one region of the space (here every network above half the MACs
    limit): a failed architecture is not a member, but its place on the cost axis counts as taken, so the next
    draw aims at the free place nearest the k-th (k the architectures taken that did not fail) instead of the same
    failing place again. Each of the 5 failing places fails once, and the population of 10 fills (4 trials after
    it are children)."""
    space = search_spaces.get("families", input_shape=(28, 28, 1), stem_widths=(16,), stages=(2, 4), depth=(1, 2),
                              widths=(16, 24, 32, 48, 64), head_widths=(0, 128), dropouts=(0.0,))
    study = nas.search(space, goal=nas.Goal(objectives=("accuracy", "macs"), constraints={"max_macs": 1.5e6}),
                       strategy=nas.Strategy(n_trials=14, seed=4, max_failures=40,
                                             sampler={"name": "evolution",
                                                      "options": {"init": "spread", "population_size": 10}}),
                       run=nas.Run(storage=tmp_path / "f.db", study="f"),
                       evaluator="engine_helpers:fails_above_750k_macs", verbose=False)
    trials = study.optuna_study.trials
    first = [t for t in trials if t.system_attrs[ATTR]["origin"] == "random"]  # the first population's draws
    assert [t.number for t in first] == list(range(15)) and study.counts()["done"] == 14
    # (place drawn for, state) in trial order: 5 fails, then the free place nearest 5 (4, the cheaper of 4 and 6);
    # 6 fails, 7 fails (nearer than 4), 4; 8 fails, 9 fails, then 4 until the population is full
    made = [(t.system_attrs[ATTR]["place"], t.state.name[0]) for t in first]
    assert made == [(0, "C"), (1, "C"), (2, "C"), (3, "C"), (4, "C"), (5, "F"), (4, "C"), (6, "F"), (7, "F"),
                    (4, "C"), (8, "F"), (9, "F"), (4, "C"), (4, "C"), (4, "C")], made


# ------------------------------------------------------------------ the search itself

def test_deterministic_under_a_seed() -> None:
    runs = []
    for seed in (3, 3, 4):
        study = _study(_evolution(seed=seed, population_size=10))
        study.optimize(_table_objective(), n_trials=40)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def _space(name: str) -> search_spaces.Space:
    shape = (32, 32, 3)
    if name == "compound":
        base = search_spaces.get("mbconv", input_shape=shape, widths=(16, 24, 32), head_widths=(0, 320)).sample(
            RandomTrial(seed=1))
        return search_spaces.get("compound", base=base)
    return search_spaces.get(name, input_shape=shape)


def _hashed_objective(space: search_spaces.Space) -> Any:
    """Cheap and deterministic: a pseudo-accuracy from the architecture's key, and its exact params."""
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        spec = space.sample(trial)
        score = int(hashlib.sha256(spec.key().encode()).hexdigest()[:8], 16) / 16**8
        return score, float(nas.cost(spec).params)
    return objective


@pytest.mark.parametrize("name", search_spaces.names())
def test_a_child_changes_one_active_label_and_asks_exactly_what_its_spec_needs(name: str) -> None:
    space = _space(name)
    study = _study(_evolution(space, seed=1, population_size=5))
    study.optimize(_hashed_objective(space), n_trials=24)
    trials = study.trials
    children = 0
    for t in trials:
        replay = FixedTrial(t.params)
        space.sample(replay)
        assert replay.params == t.params and replay.unused() == []  # exactly the labels its spec asks
        plan = t.system_attrs[ATTR]
        assert plan["params"] == t.params and plan["key"] == space.sample(FixedTrial(t.params)).key()
        if plan["origin"] not in ("mutation", "neighbour"):
            continue
        children += 1
        parent = trials[plan["parent"]]
        assert parent.number < t.number and parent.state == TrialState.COMPLETE
        label = plan["label"]
        assert label in parent.params and label in t.params and not parent.distributions[label].single()
        common = set(parent.params) & set(t.params)
        assert [k for k in sorted(common) if parent.params[k] != t.params[k]] == [label]
        # (labels the change switched on or off differ in the label sets: checked exact above by the replay)
        assert space.sample(FixedTrial(t.params)).key() != space.sample(FixedTrial(parent.params)).key()
    assert children >= 10


def test_conditional_parts_switched_on_by_a_mutation_get_their_labels() -> None:
    """In the residual space, n_stages and block switch labels on and off: over a search some children must have
    gained and some lost labels, each still exactly the labels its spec asks."""
    space = _space("residual")
    study = _study(_evolution(space, seed=2, population_size=4))
    study.optimize(_hashed_objective(space), n_trials=60)
    gained = lost = 0
    for t in study.trials:
        plan = t.system_attrs[ATTR]
        if plan["origin"] in ("mutation", "neighbour"):
            parent = study.trials[plan["parent"]]
            gained += bool(set(t.params) - set(parent.params))
            lost += bool(set(parent.params) - set(t.params))
    assert gained > 0 and lost > 0


def test_no_architecture_is_proposed_twice_while_unevaluated_ones_remain(tmp_path: Path) -> None:
    study = nas.search(NB201, goal=nas.Goal(objectives=("accuracy", "params")),
                       strategy=nas.Strategy(sampler="evolution", seed=0, n_trials=150),
                       run=nas.Run(storage=tmp_path / "s.journal", study="s",
                                   backend=nas.Local(max_trials_per_worker=0)), evaluator=TABLE, verbose=False)
    records = study.trials
    assert len(records) == 150 and {r.status for r in records} == {"ok"}
    assert len({r.key for r in records}) == 150
    trials = study.optuna_study.trials
    origins = [t.system_attrs[ATTR]["origin"] for t in trials]
    # after the first population every child comes from a tournament or the exploitation step (no neighbour scan,
    # random fallback or repeat was needed)
    assert origins[:10] == ["random"] * 10 and origins.count("mutation") + origins.count("exploit") == 140
    # the sampler found good networks: better than the median random network by far
    best = max(r.metrics["accuracy"] for r in records)
    assert best > 0.905 and study.hypervolume() > 0


def test_a_tiny_space_is_exhausted_then_repeats_without_crashing(tmp_path: Path) -> None:
    tiny = search_spaces.get("nasbench201", ops=("none", "skip_connect"))  # 2**6 = 64 networks
    study = nas.search(tiny, goal=nas.Goal(objectives=("accuracy", "params")),
                       strategy=nas.Strategy(sampler="evolution", seed=1, n_trials=80),
                       run=nas.Run(storage=tmp_path / "t.journal", study="t",
                                   backend=nas.Local(max_trials_per_worker=0)), evaluator=TABLE, verbose=False)
    records = sorted(study.trials, key=lambda r: r.number)
    assert len(records) == 80
    assert len({r.key for r in records[:64]}) == 64  # every network before any repeat
    assert [r.status for r in records[64:]] == ["reused"] * 16
    origins = [t.system_attrs[ATTR]["origin"] for t in study.optuna_study.trials]
    assert origins[64:] == ["repeat"] * 16 and "neighbour" in origins[:64]


def test_two_concurrent_workers_propose_no_common_child(tmp_path: Path) -> None:
    study = nas.search(NB201, goal=nas.Goal(objectives=("accuracy", "params")),
                       strategy=nas.Strategy(sampler={"name": "evolution", "options": {"population_size": 10}}, seed=5,
                                             n_trials=60),
                       run=nas.Run(storage=tmp_path / "c.db", study="c",
                                   backend=nas.Local(n_workers=2, max_trials_per_worker=0)), evaluator=TABLE,
                       verbose=False)
    records = study.trials
    assert len(records) == 60 and {r.status for r in records} == {"ok"}
    assert len({r.key for r in records}) == 60
    workers = {r.user_attrs["worker"]["pid"] for r in records}
    assert len(workers) == 2  # both proposed children (one each would not test anything)
    by_worker = {pid: [r for r in records if r.user_attrs["worker"]["pid"] == pid] for pid in workers}
    assert all(sum(1 for r in rs if r.number >= 10) > 5 for rs in by_worker.values())


def test_a_resumed_study_continues_the_same_search(tmp_path: Path) -> None:
    # the sampler alone: 30 trials, a new sampler object on the same storage for 30 more == 60 at once
    whole = _study(_evolution(seed=7, population_size=10))
    whole.optimize(_table_objective(), n_trials=60)
    url = f"sqlite:///{tmp_path}/r.db"
    _study(_evolution(seed=7, population_size=10), url, "r").optimize(_table_objective(), n_trials=30)
    resumed = _study(_evolution(seed=7, population_size=10), url, "r")
    resumed.optimize(_table_objective(), n_trials=30)
    assert [t.params for t in resumed.trials] == [t.params for t in whole.trials]
    # through nas: the resumed search's parents are trials the first part stored
    study = nas.search(NB201, goal=nas.Goal(objectives=("accuracy", "params")),
                       strategy=nas.Strategy(sampler="evolution", seed=7, n_trials=30),
                       run=nas.Run(storage=tmp_path / "n.journal", study="n",
                                   backend=nas.Local(max_trials_per_worker=0)), evaluator=TABLE, verbose=False)
    first = {t.number for t in study.optuna_study.trials}
    nas.load_study("n", tmp_path / "n.journal").resume(n_trials=60, verbose=False)
    trials = nas.load_study("n", tmp_path / "n.journal").optuna_study.trials
    assert len(trials) == 60
    later = [t.system_attrs[ATTR] for t in trials if t.number >= 30]
    exploit = _exploit_children(trials)  # a third of the evolved children mutate the most accurate trial
    assert exploit == [8, 9, 12, 14, 15, 18, 20, 21, 22, 25, 29, 35, 48, 49, 54, 55, 56, 58, 59]
    assert [p["origin"] for p in later] == ["exploit" if n in exploit else "mutation" for n in range(30, 60)]
    assert any(p["parent"] in first for p in later)
    assert all(p["parent"] < n for p, n in zip(later, range(30, 60)))
    assert len({records.attr(t, "spec_key") for t in trials}) == 60


def test_over_budget_children_are_not_proposed(tmp_path: Path) -> None:
    """With an analytic limit the sampler proposes only children within it (checked on their exact cost before
    proposing), so the engine's own within-limits sampling keeps every child whole: one label changed."""
    limit = 330_000  # about a third of the space's networks fit
    study = nas.search(NB201, goal=nas.Goal(objectives=("accuracy", "params"), constraints={"max_params": limit}),
                       strategy=nas.Strategy(sampler="evolution", seed=2, n_trials=40),
                       run=nas.Run(storage=tmp_path / "b.journal", study="b",
                                   backend=nas.Local(max_trials_per_worker=0)), evaluator=TABLE, verbose=False)
    records = study.trials
    assert {r.status for r in records} == {"ok"} and len(records) == 40 and len({r.key for r in records}) == 40
    assert all(r.metrics["params"] <= limit for r in records)
    trials = study.optuna_study.trials
    assert all(t.params == t.system_attrs[ATTR]["params"] for t in trials)  # what the sampler proposed
    exploit = _exploit_children(trials)
    assert exploit == [8, 9, 11, 12, 14, 15, 16, 18, 19, 21, 24, 25, 27, 29, 30, 33, 35, 38]
    assert [t.system_attrs[ATTR]["origin"] for t in trials] == \
        ["random"] * 8 + ["exploit" if n in exploit else "mutation" for n in range(8, 40)]  # population 40 // 5


def _member_study(tmp_path: Path) -> optuna.Study:
    """A stored study with completed, pruned and infeasible trials of known values (as nas records them)."""
    study = _study(optuna.samplers.RandomSampler(seed=0), f"sqlite:///{tmp_path}/m.db", "m")
    dists = {label: optuna.distributions.CategoricalDistribution(list(NB201.ops)) for label in
             search_spaces.nasbench201.LABELS}

    def add(ops: str, state: TrialState, values: list[float] | None, attrs: dict[str, Any],
            constraint: float | None = None) -> None:
        params = dict(zip(search_spaces.nasbench201.LABELS, [NB201.ops[int(c)] for c in ops]))
        system = {} if constraint is None else {"constraints:max_params": constraint}
        key = NB201.sample(FixedTrial(params)).key()
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, state=state, values=values,
                                                  user_attrs={"spec_key": key, **attrs}, system_attrs=system))

    add("000000", TrialState.COMPLETE, [0.5, 100.0], {"status": "ok"})           # 0: front (cheapest)
    add("111111", TrialState.COMPLETE, [0.9, 300.0], {"status": "ok"})           # 1: front (best)
    add("222222", TrialState.COMPLETE, [0.7, 200.0], {"status": "ok"})           # 2: front (middle)
    add("333333", TrialState.PRUNED, None, {"status": "pruned", "history": [0.7], "params": 200})  # 3: front, pruned
    add("444444", TrialState.COMPLETE, [0.6, 250.0], {"status": "ok"})           # 4: second front
    add("012340", TrialState.COMPLETE, [0.0, 900.0], {"status": "infeasible"}, 0.5)   # 5: over budget
    add("012341", TrialState.COMPLETE, [0.0, 800.0], {"status": "infeasible"}, 0.2)   # 6: less over budget
    return study


def test_ranking_puts_pruned_behind_completed_and_infeasible_last(tmp_path: Path) -> None:
    study = _member_study(tmp_path)
    sampler = ParetoEvolutionSampler(NB201, population_size=3, seed=0)
    current = study.ask()
    pop = sampler._population(study, current._cached_frozen_trial)
    assert len(pop.members) == 7 and len(pop.taken) == 7
    ranked = rank_members(pop.members, study.directions)
    order = [m.trial.number for m in ranked]
    assert set(order[:2]) == {0, 1}  # the front's boundary points (infinite crowding distance)
    assert order[2:] == [2, 3, 4, 6, 5]  # the middle of the front, then its pruned twin, the second front, infeasible
    pruned = ranked[3]
    assert pruned.pruned and pruned.values == (0.7, 200.0) and pruned.rank == ranked[2].rank == 0
    assert [m.feasible for m in ranked] == [True] * 5 + [False] * 2
    study.tell(current, state=TrialState.FAIL)


def test_evolution_searches_with_the_pareto_pruner_from_stored_trials(tmp_path: Path) -> None:
    """Children of a population holding pruned and infeasible trials: parents come from the feasible ones."""
    study = _member_study(tmp_path)
    study.sampler = ParetoEvolutionSampler(NB201, population_size=3, tournament_size=2, seed=4)
    study.optimize(_table_objective(), n_trials=12)
    plans = _plans(study)
    assert len(plans) == 12 and _exploit_children(study.trials) == [7, 9, 11]  # each from the most accurate before it
    assert [p["origin"] for p in plans] == ["exploit" if n in (7, 9, 11) else "mutation" for n in range(7, 19)]
    assert all(p["parent"] not in (5, 6) for p in plans)  # over-budget trials never parent a child
    keys = [t.user_attrs.get("spec_key") or NB201.sample(FixedTrial(t.params)).key() for t in study.trials]
    assert len(set(keys)) == len(keys) == 19


@pytest.mark.slow
def test_evolution_with_the_pareto_pruner_on_real_training(tmp_path: Path) -> None:
    space = {"space": "conv", "options": {"stages": (1, 2), "depth": (1, 1), "widths": (4, 8, 16, 32),
                                          "kernels": (3, 5), "hidden": (0, 0), "dropouts": (0.0,)}}
    study = nas.search(space, "digits", goal=nas.Goal(objectives=("accuracy", "macs")),
                       strategy=nas.Strategy(n_trials=10,
                                             sampler={"name": "evolution", "options": {"population_size": 4}}, seed=3,
                                             budget={"epochs": 4, "batch_size": 128, "learning_rate": 0.01},
                                             pruner={"name": "pareto",
                                                     "options": {"min_epochs": 1, "reduction_factor": 2}}),
                       run=nas.Run(storage=tmp_path / "p.db", study="p"), verbose=False)
    c = study.counts()
    assert c["done"] == 10 and c["pruned"] > 0
    assert len({r.key for r in study.trials}) == 10
    plans = [t.system_attrs[ATTR] for t in study.optuna_study.trials]
    assert [p["origin"] for p in plans[4:]].count("mutation") >= 4
    assert not any(math.isnan(v) for r in study.trials for v in (r.metrics.get("accuracy", 0.0),))
