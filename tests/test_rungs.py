"""nas.rungs: rung epochs, the "pareto" / "margin" / "ranked" / "nds" / "asha" rung rules (exact outcomes on
hand-made cases and hypothesis properties)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas import rungs
from nas.rungs import RULES, front_margins, keep, nds_order, pareto_front, rung_epochs

# ---------------------------------------------------------------- rung_epochs


@pytest.mark.parametrize("args, expected", [
    ((1, 3, 12), (1, 3, 9)), ((1, 2, 12), (1, 2, 4, 8)), ((2, 2, 12), (2, 4, 8)), ((1, 3, 10), (1, 3, 9)),
    ((1, 3, 9), (1, 3)), ((3, 3, 12), (3, 9)), ((12, 3, 12), ()), ((20, 3, 12), ()), ((1, 3, 1), ()),
    ((1, 4, 100), (1, 4, 16, 64)),
])
def test_rung_epochs_values(args, expected):
    assert rung_epochs(*args) == expected
    assert rung_epochs(min_epochs=args[0], eta=args[1], epochs=args[2]) == expected


@pytest.mark.parametrize("kwargs, field, rule", [
    ({"min_epochs": 0, "eta": 3, "epochs": 12}, "min_epochs", ">= 1"),
    ({"min_epochs": -2, "eta": 3, "epochs": 12}, "min_epochs", ">= 1"),
    ({"min_epochs": 1, "eta": 1, "epochs": 12}, "eta", ">= 2"),
    ({"min_epochs": 1, "eta": 3, "epochs": 0}, "epochs", ">= 1"),
    ({"min_epochs": 1.0, "eta": 3, "epochs": 12}, "min_epochs", "integer"),
    ({"min_epochs": 1, "eta": True, "epochs": 12}, "eta", "integer"),
    ({"min_epochs": 1, "eta": 3, "epochs": "12"}, "epochs", "integer"),
])
def test_rung_epochs_errors_name_field_rule_value(kwargs, field, rule):
    with pytest.raises(ValueError) as info:
        rung_epochs(**kwargs)
    text = str(info.value)
    assert f"`{field}`" in text and rule in text and f"{field}={kwargs[field]!r}" in text


# ---------------------------------------------------------------- hand-made cases

def A(acc: float, *costs: float) -> tuple[float, tuple[float, ...]]:
    return (acc, tuple(float(c) for c in costs))


def test_asha_quota_and_first_trials():
    accs = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    reached = [A(a, i) for i, a in enumerate(accs)]
    # q = 6 // 3 = 2: the two best continue
    assert [keep("asha", p, reached, 3) for p in reached] == [True, True, False, False, False, False]
    # eta 2: q = 3
    assert [keep("asha", p, reached, 2) for p in reached] == [True, True, True, False, False, False]
    # fewer than eta trials at the rung: only the best so far continues (Optuna's rule)
    assert keep("asha", A(0.5, 1), [A(0.5, 1)], 3)
    assert not keep("asha", A(0.5, 1), [A(0.6, 2), A(0.5, 1)], 3)
    assert keep("asha", A(0.6, 2), [A(0.6, 2), A(0.5, 1)], 3)
    # ties: equally accurate trials never count against each other
    tied = [A(0.8, 1), A(0.8, 2), A(0.8, 3)]
    assert all(keep("asha", p, tied, 3) for p in tied)
    tied4 = [A(0.9, 0), A(0.8, 1), A(0.8, 2), A(0.7, 3)]  # q = 4 // 2 = 2
    assert [keep("asha", p, tied4, 2) for p in tied4] == [True, True, True, False]


# one cost objective, eta 2: E is the cheapest, then A, B, C, D, F by cost
E, A1, B, C, D, F = A(0.60, 0.5), A(0.80, 1), A(0.85, 2), A(0.70, 3), A(0.90, 4), A(0.75, 5)
SIX = [E, A1, B, C, D, F]


def test_pareto_hand_case_one_cost():
    # pools (trials at least as cheap): E {E}; A {E,A}; B {E,A,B}; C {..,C} q=2, A and B more accurate;
    # D: q=2, none more accurate; F: q=3, A, B, D more accurate
    assert [keep("pareto", p, SIX, 2) for p in SIX] == [True, True, True, False, True, False]
    # asha on the same rung stops the cheap, inaccurate E (5 trials more accurate, q = 3)
    assert [keep("asha", p, SIX, 2) for p in SIX] == [False, True, True, False, True, False]


def test_pareto_asynchronous_stream():
    # the same six arriving one by one (reached = those before, and mine)
    stream = [D, C, E, F, A1, B]
    got = [keep("pareto", p, stream[: i + 1], 2) for i, p in enumerate(stream)]
    # D alone; C cheaper than D (pool {C}); E cheapest; F pool {D,C,E,F} q=2, D more accurate (1 < 2);
    # A pool {E,A}; B pool {E,A,B}: q=1, none more accurate
    assert got == [True, True, True, True, True, True]
    stream = [A1, B, D, C, F]
    got = [keep("pareto", p, stream[: i + 1], 3) for i, p in enumerate(stream)]
    # C: pool {A,B,C} q=1, A and B more accurate -> stop; F: pool of 5, q=1, 3 more accurate -> stop
    assert got == [True, True, True, False, False]


def test_margin_hand_cases():
    # margins on SIX: E has nothing at most as cheap (-inf); A 0.60-0.80; B 0.80-0.85; C 0.85-0.70; D
    # 0.85-0.90; F 0.90-0.75. Front members (negative) continue; C and F have 4 front members before them
    assert front_margins(SIX) == pytest.approx([-math.inf, -0.20, -0.05, 0.15, -0.05, 0.15])
    assert [keep("margin", p, SIX, 2) for p in SIX] == [True, True, True, False, True, False]
    # an expensive trial in the top third of the cheaper ones but dominated, behind 5 front members:
    # "pareto" keeps it (pool 7, q 2, one more accurate), "margin" stops it (5 trials closer to the front)
    cheap = [A(a, c) for a, c in ((0.5, 1), (0.6, 2), (0.7, 3), (0.8, 4), (0.9, 5), (0.55, 6))]
    x = A(0.85, 10)
    reached = [*cheap, x]
    assert keep("pareto", x, reached, 3) and not keep("margin", x, reached, 3)
    assert front_margins(reached)[-1] == pytest.approx(0.05)
    # copies: left out of each other's margin, so copies of a front member both continue; an equally
    # accurate, cheaper trial dominates (margin 0, not negative)
    twins = [A(0.7, 1), A(0.7, 1), A(0.6, 0.5), A(0.7, 2), A(0.65, 3)]
    assert front_margins(twins) == pytest.approx([-0.1, -0.1, -math.inf, 0.0, 0.05])
    assert [keep("margin", p, twins, 2) for p in twins] == [True, True, True, False, False]
    # two costs: Y (1, 3) has nothing at most as costly in both; X (2, 2) neither; Z (3, 3) is below X
    X, Y, Z = A(0.9, 2, 2), A(0.5, 1, 3), A(0.6, 3, 3)
    assert front_margins([X, Y, Z]) == pytest.approx([-math.inf, -math.inf, 0.3])
    assert [keep("margin", p, [X, Y, Z], 3) for p in (X, Y, Z)] == [True, True, False]


def test_ranked_hand_cases():
    # SIX's margins: E -inf, A -0.20, B -0.05, C 0.15, D -0.05, F 0.15. With eta 3 (q = 2) front members B
    # and D are stopped, which "margin" keeps
    assert [keep("ranked", p, SIX, 3) for p in SIX] == [True, True, False, False, False, False]
    assert [keep("margin", p, SIX, 3) for p in SIX] == [True, True, True, False, True, False]
    # a dense front (what a sampler proposing near the front makes): 9 trials all on it, q = 3 with eta 3,
    # ranked by how far each is above the front at its cost
    steps = [0.0, 0.01, 0.06, 0.01, 0.01, 0.06, 0.01, 0.01, 0.01]  # accuracy gained over the next cheaper one
    dense = [A(0.50 + sum(steps[:i + 1]), i + 1) for i in range(9)]
    assert all(m < 0 for m in front_margins(dense))
    assert [keep("margin", p, dense, 3) for p in dense] == [True] * 9
    assert [keep("ranked", p, dense, 3) for p in dense] == [True, False, True, False, False, True, False, False,
                                                            False]


def test_pareto_two_costs():
    X, Y, Z = A(0.9, 2, 2), A(0.5, 1, 3), A(0.6, 3, 3)
    reached = [X, Y, Z]
    # Y: no other trial has both costs <= (1, 3); X: Y has more params; Z: pool {X, Y, Z}, q = 1, X better
    assert [keep("pareto", p, reached, 3) for p in reached] == [True, True, False]
    assert [keep("pareto", p, reached, 2) for p in reached] == [True, True, False]


def test_nds_crowding_values_and_order():
    keys = nds_order(SIX)
    assert [r for r, _ in keys] == [0, 0, 0, 1, 0, 1]  # front {E, A, B, D}
    d = [-k for _, k in keys]
    assert d[0] == math.inf and d[4] == math.inf
    # A: accuracy (0.85 - 0.60) / 0.30 + cost (2 - 0.5) / 3.5; B: (0.90 - 0.80) / 0.30 + (4 - 1) / 3.5
    assert d[1] == pytest.approx(0.25 / 0.3 + 1.5 / 3.5)
    assert d[2] == pytest.approx(0.10 / 0.3 + 3.0 / 3.5)
    assert sorted(range(6), key=lambda i: keys[i])[:4] == [0, 4, 1, 2]  # E, D (boundary), then A, then B


def test_nds_copies_share_their_key_and_their_decision():
    # nas.ranking's rule: a copy of A gets A's front and crowding distance (counted once), so the front
    # {E, A, A, B, D} has the distances of {E, A, B, D}; both copies rank alike and get the same decision
    reached = [E, A1, B, C, D, F, A1]
    keys = nds_order(reached)
    assert keys[1] == keys[6] and keys[:6] == nds_order(SIX)
    assert [keep("nds", p, reached, 2) for p in reached] == [True, True, False, False, True, False, True]


def test_nds_stops_a_front_member_that_pareto_keeps():
    # (c): the front {E, A, B, D} has 4 members but the quota is 6 // 2 = 3: B, the front member with the
    # smallest crowding distance, is stopped by MO-ASHA's rule; the cost-aware rule keeps every front member
    assert B in pareto_front(SIX)
    assert [keep("nds", p, SIX, 2) for p in SIX] == [True, True, False, False, True, False]
    assert keep("pareto", B, SIX, 2)


def test_nds_first_trials_and_ties():
    # n < eta: continue only if nothing ranks strictly before (here: the two are both on the front, both
    # boundary points of a 2-point front, so both continue)
    assert keep("nds", A(0.5, 1), [A(0.9, 2), A(0.5, 1)], 3)
    # a dominated one does not
    assert not keep("nds", A(0.5, 3), [A(0.9, 2), A(0.5, 3)], 3)
    copies = [A(0.7, 1)] * 4
    assert all(keep(rule, copies[0], copies, 2) for rule in RULES)


def test_keep_errors():
    p = A(0.5, 1)
    cases = [
        (("nope", p, [p], 3), "`rule` must be one of 'pareto', 'margin', 'ranked', 'nds', 'asha', but got rule='nope'"),
        (("pareto", p, [p], 1), "`eta` must be an integer >= 2, but got eta=1"),
        (("pareto", p, [A(0.6, 1)], 3), "`reached` must be a list of the trials at the rung that includes mine"),
        (("asha", (float("nan"), (1.0,)), [p], 3), "`mine` must be (accuracy, (cost, ...)) of real numbers"),
        (("nds", p, [p, A(0.4, 1, 2)], 3), "`reached[]` must be points with 1 cost objectives, as mine"),
        (("nds", p, "p", 3), "`reached` must be a list of (accuracy, costs) including mine"),
        (("pareto", (0.5, 1.0), [p], 3), "`mine` must be (accuracy, (cost, ...))"),
    ]
    for args, text in cases:
        with pytest.raises(ValueError) as info:
            keep(*args)
        assert text in str(info.value), str(info.value)


# ---------------------------------------------------------------- properties

ACC = st.sampled_from([i / 20 for i in range(21)])  # a coarse grid: ties are common
COST = st.integers(0, 6)


def points(n_costs: int, min_size: int = 1, max_size: int = 30):
    return st.lists(st.tuples(ACC, st.tuples(*[COST.map(float)] * n_costs)), min_size=min_size, max_size=max_size)


@pytest.mark.parametrize("rule", ["pareto", "margin"])
@settings(max_examples=200, deadline=None)
@given(reached=st.integers(1, 3).flatmap(points), eta=st.integers(2, 5))
def test_cost_aware_rules_keep_every_front_member(rule, reached, eta):
    # (a) for the whole rung, and for every prefix of it as an asynchronous stream
    for p in pareto_front(reached):
        assert keep(rule, p, reached, eta)
    for i, p in enumerate(reached):
        prefix = reached[: i + 1]
        if p in pareto_front(prefix):
            assert keep(rule, p, prefix, eta)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3).flatmap(points), st.integers(2, 5), st.data())
def test_margin_is_negative_exactly_on_the_front_and_bounds_the_quota(reached, eta, data):
    margins = front_margins(reached)
    front = pareto_front(reached)
    for p, m in zip(reached, margins):
        others = [o[0] for o in reached if o != p and all(c <= k for c, k in zip(o[1], p[1]))]
        assert m == (max(others) - p[0] if others else -math.inf)
        assert (m < 0) is (p in front)
    # a dominated trial continues only while fewer than q trials are closer to the front than it
    mine = data.draw(st.sampled_from(reached))
    i = reached.index(mine)
    if margins[i] >= 0:
        closer = sum(m < margins[i] for m in margins)
        assert keep("margin", mine, reached, eta) is (closer < max(1, len(reached) // eta))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3).flatmap(points), st.integers(2, 5), st.data())
def test_ranked_is_margin_with_the_quota_on_front_members_too(reached, eta, data):
    # "ranked" keeps exactly the trials with fewer than q strictly smaller margins, so it never keeps what
    # "margin" stops, agrees with it on dominated trials, and keeps at most q trials up to ties
    margins = front_margins(reached)
    q = max(1, len(reached) // eta)
    mine = data.draw(st.sampled_from(reached))
    m = margins[reached.index(mine)]
    kept = keep("ranked", mine, reached, eta)
    assert kept is (sum(x < m for x in margins) < q)
    if kept:
        assert keep("margin", mine, reached, eta)
    if m >= 0:
        assert kept is keep("margin", mine, reached, eta)
    n_kept = sum(keep("ranked", p, reached, eta) for p in reached)
    cut = sorted(margins)[q - 1]  # the q-th best margin: all equal to it go on too
    assert n_kept == sum(x <= cut for x in margins)


def expected_pareto_fraction(n: int, eta: int) -> tuple[float, float]:
    """Mean and standard deviation of the fraction kept by "pareto" over a stream of n trials with one cost
    objective and independent, continuous accuracies and costs. Trial t (reached = t trials) has a pool of
    m trials with m uniform on 1..t (its cost rank) and, independently, a uniform accuracy rank within the pool,
    whatever the earlier trials were: so it continues with probability p_t = (1/t) sum_m max(1, m//eta)/m given
    the past, the keep indicators minus p_t are uncorrelated, and Var(kept) = sum p_t (1 - p_t)."""
    ps = [sum(max(1, m // eta) / m for m in range(1, t + 1)) / t for t in range(1, n + 1)]
    return sum(ps) / n, math.sqrt(sum(p * (1 - p) for p in ps)) / n


@pytest.mark.parametrize("eta", [2, 3, 4])
def test_pareto_keeps_about_one_in_eta_of_a_random_stream(eta):
    # (b) deterministic seed; the tolerance is 4 standard deviations of the exact distribution above (a
    # seed fails with probability < 1e-4), and that expectation is itself within 0.02 of 1/eta at n = 1200
    n = 1200
    rng = random.Random(eta)
    stream = [(rng.random(), (rng.random(),)) for _ in range(n)]
    kept = sum(keep("pareto", p, stream[: i + 1], eta) for i, p in enumerate(stream))
    mean, sd = expected_pareto_fraction(n, eta)
    assert abs(mean - 1 / eta) < 0.02
    assert abs(kept / n - mean) < 4 * sd, (kept / n, mean, sd)


def optuna_rule(value: float, competing: list[float], eta: int) -> bool:
    """Optuna's SuccessiveHalvingPruner test for a maximised value (written out here from its documented
    rule): promotable index = len // eta - 1, or 0 for the first eta - 1 trials; continue iff the value is
    >= the value at that index from the top."""
    idx = len(competing) // eta - 1
    if idx == -1:
        idx = 0
    return value >= sorted(competing)[-(idx + 1)]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2).flatmap(points), st.integers(2, 5), st.data())
def test_asha_is_the_single_objective_rule(reached, eta, data):
    # (d) asha ignores costs and equals Optuna's rule; "pareto" with no cost objectives is asha too
    mine = data.draw(st.sampled_from(reached))
    expected = optuna_rule(mine[0], [p[0] for p in reached], eta)
    assert keep("asha", mine, reached, eta) is expected
    no_costs = [(a, ()) for a, _ in reached]
    assert keep("pareto", (mine[0], ()), no_costs, eta) is expected
    assert keep("nds", (mine[0], ()), no_costs, eta) is expected
    assert keep("margin", (mine[0], ()), no_costs, eta) is expected
    # one cost objective, all costs equal: the cost-aware pool is the whole rung
    flat = [(a, (1.0,)) for a, _ in reached]
    assert keep("pareto", (mine[0], (1.0,)), flat, eta) is expected
    assert keep("margin", (mine[0], (1.0,)), flat, eta) is expected


def test_asha_matches_optuna_when_installed():
    sh = pytest.importorskip("optuna.pruners._successive_halving")
    optuna = pytest.importorskip("optuna")
    fn = getattr(sh, "_is_trial_promotable_to_next_rung", None)
    if fn is None:
        pytest.skip("optuna's private helper is gone")
    rng = random.Random(1)
    for _ in range(300):
        reached = [(round(rng.random(), 1), ()) for _ in range(rng.randint(1, 12))]
        mine, eta = rng.choice(reached), rng.randint(2, 4)
        competing = [a for a, _ in reached]
        try:
            expected = fn(mine[0], competing, eta, optuna.study.StudyDirection.MAXIMIZE)
        except TypeError:
            pytest.skip("optuna's private helper changed its signature")
        assert keep("asha", mine, reached, eta) is bool(expected)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 3).flatmap(points), st.integers(2, 4), st.randoms(use_true_random=False), st.data())
def test_decisions_do_not_depend_on_order(reached, eta, rnd, data):
    mine = data.draw(st.sampled_from(reached))
    shuffled = list(reached)
    rnd.shuffle(shuffled)
    for rule in RULES:
        assert keep(rule, mine, reached, eta) is keep(rule, mine, shuffled, eta)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2).flatmap(points), st.integers(2, 5), st.data())
def test_nds_keeps_within_quota_and_only_front_members_first(reached, eta, data):
    # continuing trials are at most q plus ties; a trial dominated by q or more trials never continues
    q = max(1, len(reached) // eta)
    mine = data.draw(st.sampled_from(reached))
    kept = keep("nds", mine, reached, eta)
    if sum(rungs.dominates(p, mine) for p in reached) >= q:
        assert not kept
    if len(pareto_front(reached)) <= q and mine in pareto_front(reached):
        assert kept


# ---------------------------------------------------------------- can_reach (the pruner's ``reach`` option)

def test_can_reach_hand_cases():
    finished = [(0.80, (100.0,)), (0.90, (300.0,))]
    gains = [0.01, 0.05, 0.02]  # the largest, 0.05, bounds what mine can still gain
    assert rungs.can_reach((0.76, (150.0,)), gains, finished)  # 0.81 > 0.80, the best at most as costly
    assert not rungs.can_reach((0.75, (150.0,)), gains, finished)  # 0.80: equal adds no hypervolume
    assert not rungs.can_reach((0.70, (150.0,)), gains, finished)
    assert rungs.can_reach((0.70, (50.0,)), gains, finished)  # cheaper than every finished trial
    assert not rungs.can_reach((0.84, (300.0,)), gains, finished)  # 0.89 < 0.90 at the same cost
    assert rungs.can_reach((0.86, (400.0,)), gains, finished)  # 0.91 beats both cheaper ones
    # too few gains: no bound yet, whatever the front
    assert rungs.can_reach((0.10, (400.0,)), gains[:2], finished)
    assert not rungs.can_reach((0.10, (400.0,)), gains[:1], finished, evidence=1)
    assert rungs.can_reach((0.10, (400.0,)), gains, [])  # nothing finished
    # two costs: only a finished trial at most as costly in both counts
    two = [(0.9, (100.0, 10.0))]
    assert rungs.can_reach((0.5, (200.0, 5.0)), gains, two)
    assert not rungs.can_reach((0.5, (200.0, 10.0)), gains, two)
    # no cost objective: the best finished accuracy
    assert not rungs.can_reach((0.5, ()), gains, [(0.6, ())])
    assert rungs.can_reach((0.56, ()), gains, [(0.6, ())])
    # negative gains (a finished trial ended below its rung accuracy) bound from below too
    assert not rungs.can_reach((0.80, (150.0,)), [-0.02, -0.01, -0.03], finished)


def test_can_reach_errors_name_field_rule_value():
    with pytest.raises(ValueError, match=r"`gains\[\]` must be real numbers, none NaN, but got gains\[\]=nan"):
        rungs.can_reach((0.5, (1.0,)), [0.1, math.nan, 0.0], [])
    with pytest.raises(ValueError, match=r"`finished\[\]` must be points with 1 cost objectives, as mine"):
        rungs.can_reach((0.5, (1.0,)), [0.1] * 3, [(0.5, (1.0, 2.0))])
    with pytest.raises(ValueError, match=r"`mine` must be \(accuracy, \(cost, ...\)\) of real numbers"):
        rungs.can_reach(("x", (1.0,)), [0.1] * 3, [])
    with pytest.raises(ValueError, match=r"`evidence` must be an integer >= 1, but got evidence=0"):
        rungs.can_reach((0.5, (1.0,)), [0.1] * 3, [], evidence=0)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2).flatmap(lambda n: st.tuples(points(n, 0, 12), points(n, 1, 1))),
       st.lists(st.sampled_from([-0.05, 0.0, 0.05, 0.1, 0.2]), min_size=3, max_size=6))
def test_can_reach_is_whether_the_bound_would_join_the_front(data, gains):
    finished, (mine,) = data
    best = (mine[0] + max(gains), mine[1])
    # it can reach exactly when its bound, added to the finished trials, is on their front and no copy of one
    on_front = best in pareto_front([*finished, best]) and best not in finished
    assert rungs.can_reach(mine, gains, finished) is on_front
    # and more gain never makes it unreachable
    assert rungs.can_reach(mine, gains, finished) <= rungs.can_reach(mine, [*gains, 1.0], finished)
