"""Sampling inside analytic cost limits (nas.engine.limits): every candidate fits, the distributions Optuna
stores stay the space's own, and the engine records no over-budget candidate."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

import nas
import search_spaces
from nas.engine.limits import WithinLimits, analytic_limits, cheapest_candidate

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _macs_of(space, sampler, n: int, limit: float) -> tuple[list[int], optuna.Study]:
    study = optuna.create_study(sampler=sampler, directions=["maximize", "minimize"])
    macs = []
    for _ in range(n):
        trial = study.ask()
        m = nas.cost(space.sample(trial)).macs
        macs.append(m)
        study.tell(trial, [1.0 - 1.0 / (1 + m / 1e5) if m <= limit else 0.0, m])
    return macs, study


def test_analytic_limits_keep_only_costs_known_before_training() -> None:
    assert analytic_limits({"max_macs": 2e6, "max_params": 5e4, "max_latency": 3.0}) == \
        {"macs": 2e6, "params": 5e4}


@pytest.mark.parametrize("base", ["random", "tpe"])
def test_the_readme_example_space_fits_every_candidate_the_plain_sampler_does_not(base: str) -> None:
    space = search_spaces.get("mbconv", input_shape=(8, 8, 1))
    limit = 2_000_000

    def make() -> optuna.samplers.BaseSampler:
        if base == "random":
            return optuna.samplers.RandomSampler(seed=3)
        return optuna.samplers.TPESampler(seed=3, multivariate=True, group=True, n_startup_trials=10)
    plain, _ = _macs_of(space, make(), 40, limit)
    wrapped, study = _macs_of(space, WithinLimits(make(), space, {"max_macs": limit}, seed=3), 40, limit)
    assert sum(m > limit for m in plain) >= 10  # the space's defaults are mostly over this limit
    assert max(wrapped) <= limit and len(wrapped) == 40
    # what Optuna stores: the space's own distributions, whatever value was kept
    free = optuna.create_study()
    free_trial = free.ask()
    space.sample(free_trial)
    for t in study.trials:
        for label, dist in t.distributions.items():
            if label in free_trial.distributions:
                assert dist == free_trial.distributions[label]
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 40  # still a search, not one point


@pytest.mark.parametrize("name", ["conv", "residual", "mbconv", "families", "inception"])
def test_every_space_samples_inside_a_tight_limit_on_params(name: str) -> None:
    space = search_spaces.get(name, input_shape=(28, 28, 1))
    cheapest = cheapest_candidate(space, {"max_params": 1.0})  # the cheapest candidate's params
    limit = 4 * cheapest
    params = []
    sampler = WithinLimits(optuna.samplers.RandomSampler(seed=0), space, {"max_params": limit}, seed=0)
    study = optuna.create_study(sampler=sampler)
    for _ in range(25):
        trial = study.ask()
        p = nas.cost(space.sample(trial)).params
        params.append(p)
        study.tell(trial, float(p))
    assert max(params) <= limit
    assert len(set(params)) > 5


def test_a_limit_below_the_cheapest_candidate_leaves_the_samplers_values(tmp_path: Path) -> None:
    space = search_spaces.get("residual", input_shape=(8, 8, 1))
    assert cheapest_candidate(space, {"max_macs": 10}) > 1
    sampler = WithinLimits(optuna.samplers.RandomSampler(seed=1), space, {"max_macs": 10}, seed=1)
    plain = optuna.samplers.RandomSampler(seed=1)
    a, b = optuna.create_study(sampler=sampler), optuna.create_study(sampler=plain)
    for s in (a, b):
        for _ in range(5):
            t = s.ask()
            space.sample(t)
            s.tell(t, 0.0)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]


def test_the_engine_records_no_over_budget_candidate_unless_asked_to(tmp_path: Path) -> None:
    space = {"space": "mbconv", "options": {"input_shape": (8, 8, 1)}}
    goal = nas.Goal(objectives=("accuracy", "macs"), constraints={"max_macs": 2_000_000})
    strategy = nas.Strategy(n_trials=12, sampler="random", seed=5)
    common = dict(evaluator="engine_helpers:score_by_macs", goal=goal, verbose=False)
    inside = nas.search(space, strategy=strategy, run=nas.Run(storage=tmp_path / "in.db", study="in",
                                                              backend=nas.Local(max_trials_per_worker=0)), **common)
    rejected = nas.search(space, strategy=strategy.replace(sample_within_limits=False),
                          run=nas.Run(storage=tmp_path / "out.db", study="out",
                                      backend=nas.Local(max_trials_per_worker=0)), **common)
    assert inside.config.strategy.sample_within_limits is True
    assert rejected.config.strategy.sample_within_limits is False
    assert inside.counts()["infeasible"] == 0 and inside.counts()["done"] == 12
    assert all(r.metrics["macs"] <= 2_000_000 for r in inside.trials)
    assert rejected.counts()["infeasible"] >= 4
    # stored with the study: a resume samples the same way
    again = nas.load_study("in", tmp_path / "in.db")
    assert again.config.strategy.sample_within_limits is True


def test_sample_within_limits_must_be_a_bool(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"`sample_within_limits` must be true or false, but got "
                                         r"sample_within_limits='yes'"):
        nas.create_study("conv", strategy=nas.Strategy(sample_within_limits="yes"),
                         run=nas.Run(storage=tmp_path / "x.db"), evaluator="engine_helpers:score_by_macs",
                         verbose=False)
    assert not (tmp_path / "x.db").exists()


def test_a_limit_no_candidate_can_meet_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"`constraints`: no candidate of the 'residual' space fits; the cheapest "
                                         r"nas can build breaks max_macs=10 \(its macs: [0-9,]+\)"):
        nas.create_study({"space": "residual", "options": {"input_shape": (8, 8, 1)}},
                         goal=nas.Goal(constraints={"max_macs": 10}), run=nas.Run(storage=tmp_path / "x.db"),
                         evaluator="engine_helpers:score_by_macs", verbose=False)
    assert not (tmp_path / "x.db").exists()
    # drawing and rejecting stays possible on request
    study = nas.create_study({"space": "residual", "options": {"input_shape": (8, 8, 1)}},
                             goal=nas.Goal(constraints={"max_macs": 10}),
                             strategy=nas.Strategy(sample_within_limits=False), run=nas.Run(storage=tmp_path / "x.db"),
                             evaluator="engine_helpers:score_by_macs", verbose=False)
    assert study.config.constraints == {"max_macs": 10.0}


def test_grid_and_self_limiting_samplers_are_left_as_they_are() -> None:
    from nas.engine.evolution import ParetoEvolutionSampler
    from nas.engine.limits import within_limits

    space = search_spaces.get("mbconv", input_shape=(8, 8, 1))
    limits = {"max_macs": 2_000_000}
    grid = optuna.samplers.GridSampler({"n_stages": [3, 4]})  # also when named by class: {"name": "GridSampler"}
    evolution = ParetoEvolutionSampler(space, seed=0)
    assert within_limits(grid, space, limits) is grid and within_limits(evolution, space, limits) is evolution
    random_sampler = optuna.samplers.RandomSampler(seed=0)
    assert within_limits(random_sampler, space, {"max_latency": 3.0}) is random_sampler  # measured, not analytic
    wrapped = within_limits(random_sampler, space, limits)
    assert isinstance(wrapped, WithinLimits) and wrapped.base is random_sampler
